"""Wire structs of the roll-out: a store's feature switches, the waves stores go live in, and the
feedback people send from the app. New fields get defaults; a field never changes type."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

from shared.wire import NO_NUL, Read, Write

FeatureKind = Literal["app", "rule"]  # app: store_features (synced to phones); rule: the rule's store switch
FeatureSource = Literal["default", "store"]  # default: no switch of the store's own
WaveStatus = Literal["planned", "live"]  # live from its starts_on (the chain's local date)
FeedbackStatus = Literal["new", "acknowledged", "planned", "done", "declined"]
FEEDBACK_STATUSES: tuple[str, ...] = ("new", "acknowledged", "planned", "done", "declined")

MAX_FEEDBACK_TEXT = 2000
MAX_SCREEN = 100
MAX_APP_VERSION = 40
MAX_SCREENSHOT_BYTES = 2 * 1024 * 1024  # PNG or JPEG

StoreRef = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=NO_NUL)]  # a store code or id
WaveCode = Annotated[str, msgspec.Meta(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_.-]+$")]
WaveName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
Notes = Annotated[str, msgspec.Meta(max_length=2000, pattern=NO_NUL)]
FeatureCode = Annotated[str, msgspec.Meta(min_length=1, max_length=60, pattern=NO_NUL)]
# Bounded loosely here (a runaway client); the real limits are checked by the server, which answers
# 413 / 422 naming them.
_LooseText = Annotated[str, msgspec.Meta(max_length=20_000, pattern=NO_NUL)]


# --- feature switches -----------------------------------------------------------------------------


class FeatureState(Read):
    """One feature of one store: on or off, and whether by the store's own switch or the default."""

    feature: str  # shared.features code, e.g. push, rule.browse_interest
    kind: FeatureKind
    label_zh: str
    label_en: str
    description_zh: str
    description_en: str
    enabled: bool
    source: FeatureSource
    store_id: uuid.UUID | None = None
    store_code: str = ""
    updated_at: dt.datetime | None = None


class FeatureSwitch(Write):
    enabled: bool


# --- waves ----------------------------------------------------------------------------------------


class WaveStoreOut(Read):
    id: uuid.UUID
    code: str
    name: str
    pilot: bool


class WaveOut(Read):
    id: uuid.UUID
    code: str
    name: str
    starts_on: dt.date
    position: int
    notes: str
    status: WaveStatus
    stores: list[WaveStoreOut]


class WaveCreate(Write):
    code: WaveCode
    name: WaveName
    starts_on: dt.date
    stores: Annotated[list[StoreRef], msgspec.Meta(max_length=2000)] = []  # a store in another wave moves here
    notes: Notes = ""
    position: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | None = None  # None: after the last wave


class WavePatch(Write):
    code: WaveCode | msgspec.UnsetType = msgspec.UNSET
    name: WaveName | msgspec.UnsetType = msgspec.UNSET
    starts_on: dt.date | msgspec.UnsetType = msgspec.UNSET
    stores: Annotated[list[StoreRef], msgspec.Meta(max_length=2000)] | msgspec.UnsetType = msgspec.UNSET  # the set
    notes: Notes | msgspec.UnsetType = msgspec.UNSET
    position: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | msgspec.UnsetType = msgspec.UNSET


class WaveFeatureSwitch(Write):
    feature: FeatureCode
    enabled: bool


class WaveSwitchOut(Read):
    wave: str
    feature: str
    enabled: bool
    stores: list[str]  # the codes of the stores switched


# --- feedback -------------------------------------------------------------------------------------


class FeedbackCreate(Write):
    text: _LooseText
    screen: _LooseText = ""  # the app route it was sent from, e.g. /customers/…
    app_version: _LooseText = ""
    screenshot_base64: str | None = None  # PNG or JPEG, at most MAX_SCREENSHOT_BYTES once decoded


class FeedbackPatch(Write):
    status: FeedbackStatus | msgspec.UnsetType = msgspec.UNSET
    reply: Annotated[str, msgspec.Meta(max_length=MAX_FEEDBACK_TEXT, pattern=NO_NUL)] | msgspec.UnsetType = (
        msgspec.UNSET
    )


class FeedbackOut(Read):
    id: uuid.UUID
    store_id: uuid.UUID
    store_code: str
    user_id: uuid.UUID | None
    user_name: str
    text: str
    screen: str
    app_version: str
    has_screenshot: bool
    status: FeedbackStatus
    reply: str
    created_at: dt.datetime
    updated_at: dt.datetime
    updated_by_name: str | None = None


class FeedbackPage(Read):
    items: list[FeedbackOut]
    next_cursor: str | None = None
