"""HTTP: push, pull and the live poke stream of the sync protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage

from server.auth import service as auth_service
from server.deps import CallerDep, SettingsDep
from server.errors import Unauthorized
from server.sync import push as push_service
from server.sync import service
from shared.sync import PullRequest, PullResponse, PushRequest, PushResponse

KEEPALIVE_SECONDS = 15.0
_encoder = msgspec.json.Encoder()


class SyncController(Controller):
    path = "/api/sync"
    tags = ["sync"]

    @post("/push", status_code=200)
    async def push(self, request: Request, caller: CallerDep, data: JSONBody[PushRequest]) -> PushResponse:
        """Apply a device's mutations in order, each exactly once; every one is answered."""
        response = await push_service.push(caller=caller, request=data)
        request.app.state.pokes.wake()
        return response

    @post("/pull", status_code=200)
    async def pull(self, caller: CallerDep, data: JSONBody[PullRequest]) -> PullResponse:
        """The changes of the caller's scopes after the cursor, one page at a time."""
        return await service.pull(caller=caller, request=data)

    @get("/events")
    async def events(self, request: Request, caller: CallerDep, settings: SettingsDep) -> ServerSentEvent:
        """Server-sent events: ``{scope, version}`` each time one of the caller's scopes changes
        (every scope's version first). Data-free: the app pulls. The stream ends when the access
        token stops being valid; the app reconnects with a fresh one."""
        hub = request.app.state.pokes
        scopes = await service.scopes_of(caller)
        token = request.auth

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            async with hub.listen(scopes) as queue:
                while True:
                    try:
                        poke = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        try:
                            await auth_service.caller_for_token(token, settings=settings)
                        except Unauthorized:
                            return
                        yield ServerSentEventMessage(data=None, comment="keep-alive")  # no event fires
                        continue
                    if poke is None:  # the server is stopping
                        return
                    yield ServerSentEventMessage(data=_encoder.encode(poke).decode(), event="poke")

        return ServerSentEvent(stream(), retry_duration=2000)
