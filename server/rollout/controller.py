"""HTTP: the roll-out — feature switches per store and per wave, waves, adoption — and feedback
from the app."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from litestar import Controller, Response, get, patch, post, put
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from server.analytics.filters import resolve
from server.deps import CallerDep
from server.rollout import feedback, service
from shared.reports import Table
from shared.rollout import (
    MAX_SCREENSHOT_BYTES,
    FeatureState,
    FeatureSwitch,
    FeedbackCreate,
    FeedbackOut,
    FeedbackPage,
    FeedbackPatch,
    FeedbackStatus,
    WaveCreate,
    WaveFeatureSwitch,
    WaveOut,
    WavePatch,
    WaveSwitchOut,
)
from shared.wire import NO_NUL

StoreRef = Annotated[str, PathParameter(min_length=1, max_length=40, pattern=NO_NUL)]
FeatureCode = Annotated[str, PathParameter(min_length=1, max_length=60, pattern=NO_NUL)]
StoreQuery = Annotated[str | None, QueryParameter(max_length=40, pattern=NO_NUL, description="a store code or id")]
DateQuery = Annotated[str | None, QueryParameter(max_length=10, pattern=NO_NUL)]
# A screenshot of 2 MB in base64 with the rest of the message.
FEEDBACK_BODY_BYTES = MAX_SCREENSHOT_BYTES * 4 // 3 + 64 * 1024


class RolloutController(Controller):
    path = "/api/rollout"
    tags = ["rollout"]

    @get("/features")
    async def features(self, caller: CallerDep, store: StoreQuery = None) -> list[FeatureState]:
        """Every feature of a store (default: the caller's): on or off, and whether by the store's
        own switch or by default. A store outside the caller's scope answers 404."""
        return await service.features(caller=caller, store=store)

    @put("/features/{store:str}/{feature:str}", status_code=HTTP_200_OK)
    async def switch(
        self, caller: CallerDep, store: StoreRef, feature: FeatureCode, data: JSONBody[FeatureSwitch]
    ) -> FeatureState:
        """Switch a feature for one store (admin; a regional manager in their region). App features
        reach the store's phones with their next sync."""
        return await service.switch(caller=caller, store=store, feature_code=feature, enabled=data.enabled)

    @get("/waves")
    async def waves(self, caller: CallerDep) -> list[WaveOut]:
        """The waves in order, each with its stores (those the caller sees) and planned / live."""
        return await service.list_waves(caller=caller)

    @post("/waves", status_code=HTTP_201_CREATED)
    async def create_wave(self, caller: CallerDep, data: JSONBody[WaveCreate]) -> WaveOut:
        """A new wave (admin); a store already in another wave moves to it."""
        return await service.create_wave(caller=caller, data=data)

    @patch("/waves/{wave_id:uuid}")
    async def patch_wave(self, caller: CallerDep, wave_id: FromPath[uuid.UUID], data: JSONBody[WavePatch]) -> WaveOut:
        """Change a wave (admin); ``stores`` is the whole set (a store moves between waves)."""
        return await service.patch_wave(caller=caller, wave_id=wave_id, data=data)

    @post("/waves/{wave_id:uuid}/features", status_code=HTTP_200_OK)
    async def switch_wave(
        self, caller: CallerDep, wave_id: FromPath[uuid.UUID], data: JSONBody[WaveFeatureSwitch]
    ) -> WaveSwitchOut:
        """Switch a feature for every store of the wave (admin)."""
        return await service.switch_wave(caller=caller, wave_id=wave_id, data=data)

    @get("/adoption")
    async def adoption(
        self,
        caller: CallerDep,
        start: Annotated[str | None, QueryParameter(name="from", max_length=10, pattern=NO_NUL)] = None,
        end: Annotated[str | None, QueryParameter(name="to", max_length=10, pattern=NO_NUL)] = None,
        store: StoreQuery = None,
        region: Annotated[str | None, QueryParameter(max_length=40, pattern=NO_NUL)] = None,
    ) -> Table:
        """Adoption per store, then the pilot stores against the rest (managers; dates in the
        chain's time zone, ``from`` and ``to`` inclusive, the last 30 days by default)."""
        now = dt.datetime.now(dt.UTC)
        filters = await resolve(caller, start=start, end=end, store=store, region=region, now=now)
        return await service.adoption(filters, now)


class FeedbackController(Controller):
    path = "/api/feedback"
    tags = ["feedback"]

    @post("/", status_code=HTTP_201_CREATED, request_max_body_size=FEEDBACK_BODY_BYTES)
    async def send(self, caller: CallerDep, data: JSONBody[FeedbackCreate]) -> FeedbackOut:
        """Feedback from the app: text (up to 2000 characters), the screen it came from, the app's
        version and an optional screenshot (PNG or JPEG, base64, at most 2 MB)."""
        return await feedback.create(caller=caller, data=data)

    @get("/")
    async def list_feedback(
        self,
        caller: CallerDep,
        status: Annotated[FeedbackStatus | None, QueryParameter()] = None,
        store: StoreQuery = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL)] = None,
    ) -> FeedbackPage:
        """Newest first: admin every item, a regional manager their region's, a store manager their
        store's, a rep their own."""
        return await feedback.listing(caller=caller, status=status, store=store, limit=limit, cursor=cursor)

    @patch("/{feedback_id:uuid}")
    async def answer(
        self, caller: CallerDep, feedback_id: FromPath[uuid.UUID], data: JSONBody[FeedbackPatch]
    ) -> FeedbackOut:
        """Set the status and / or reply (admin; a regional manager for their region's stores)."""
        return await feedback.answer(caller=caller, feedback_id=feedback_id, data=data)

    @get("/{feedback_id:uuid}/screenshot", media_type="image/png")
    async def screenshot(self, caller: CallerDep, feedback_id: FromPath[uuid.UUID]) -> Response[bytes]:
        """The screenshot as sent (image/png or image/jpeg); 404 when there is none."""
        data, media_type = await feedback.screenshot(caller=caller, feedback_id=feedback_id)
        return Response(content=data, media_type=media_type)
