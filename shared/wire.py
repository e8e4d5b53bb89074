"""Wire structs (msgspec) for the HTTP API. New fields get defaults; a field never changes type.

Write structs (the ones a client sends) forbid unknown fields, so a misspelt or server-owned
field (id, store, owner, timestamps) is refused with its name instead of being ignored.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from shared.enums import (
    ComplaintCategory,
    ComplaintStatus,
    Gender,
    Group,
    Health,
    IdentityKind,
    InteractionChannel,
    InteractionKind,
    OrderChannel,
    PaymentMethod,
    PhoneKind,
    Role,
    StageKind,
    TaskKind,
    TaskSource,
    TaskStatus,
    ValueTier,
)

# Text a client sends never holds NUL: PostgreSQL cannot store it, and no person types it.
NO_NUL = r"^[^\x00]*$"


Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
LongText = Annotated[str, msgspec.Meta(max_length=4000, pattern=NO_NUL)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=NO_NUL)]  # e.g. a stage code
Reason = Annotated[str, msgspec.Meta(max_length=500, pattern=NO_NUL)]
Username = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NO_NUL)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=NO_NUL)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=NO_NUL)]


class Write(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every struct a client sends."""


class Read(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Base of every struct the server sends."""


# --- auth -------------------------------------------------------------------------------------


class LoginRequest(Write):
    username: Username
    password: Password


class RefreshRequest(Write):
    refresh_token: Token


class LogoutRequest(Write):
    refresh_token: Token


class UserOut(Read):
    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    store_id: uuid.UUID | None
    region_id: uuid.UUID | None
    language: str
    store_ids: list[uuid.UUID] = []  # the stores this user may see (empty for admin: all)


class TokenPair(Read):
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives
    user: UserOut
    token_type: str = "Bearer"


class StoreOut(Read):
    id: uuid.UUID
    code: str
    name: str
    city: str
    region_id: uuid.UUID
    time_zone: str
    opening_hours: dict[str, list[list[str]]]


# --- customers --------------------------------------------------------------------------------


class CustomerSummary(Read):
    id: uuid.UUID
    name: str
    phone: str | None  # the primary phone, masked unless the caller may see it in full
    store_id: uuid.UUID
    owner_id: uuid.UUID | None
    tags: list[str] = []


class CustomerPage(Read):
    items: list[CustomerSummary]
    next_cursor: str | None


class PhoneOut(Read):
    id: uuid.UUID
    number: str
    kind: PhoneKind
    is_primary: bool


class IdentityOut(Read):
    kind: IdentityKind
    value: str


class CustomerProfile(Read):
    id: uuid.UUID
    name: str
    gender: Gender | None
    birthday: dt.date | None
    email: str | None
    province: str
    city: str
    district: str
    address: str
    consents: dict[str, bool]
    store_id: uuid.UUID
    store_code: str
    owner_id: uuid.UUID | None
    owner_name: str | None
    created_at: dt.datetime


class OrderLineOut(Read):
    product_id: uuid.UUID | None
    product_name: str
    category: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


class OrderOut(Read):
    id: uuid.UUID
    channel: OrderChannel
    ordered_at: dt.datetime
    amount: Decimal
    payment_method: PaymentMethod
    sold_by_store_code: str | None
    lines: list[OrderLineOut] = []


class InteractionOut(Read):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: InteractionKind
    channel: InteractionChannel
    occurred_at: dt.datetime
    duration_seconds: int | None
    body: str
    user_id: uuid.UUID | None
    product_name: str | None = None
    category: str | None = None


class StageOut(Read):
    code: str
    name_zh: str
    name_en: str
    position: int
    kind: StageKind
    probability: int
    idle_days: int | None


class StageHistoryOut(Read):
    stage: str
    entered_at: dt.datetime
    left_at: dt.datetime | None
    moved_by: uuid.UUID | None


class OpportunityOut(Read):
    id: uuid.UUID
    customer_id: uuid.UUID
    customer_name: str
    store_id: uuid.UUID
    owner_id: uuid.UUID | None
    title: str
    stage: str
    stage_kind: StageKind
    amount: Decimal
    expected_close_date: dt.date | None
    contract_end_date: dt.date | None
    stage_entered_at: dt.datetime
    lost_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    history: list[StageHistoryOut] = []


class OpportunityPage(Read):
    items: list[OpportunityOut]
    next_cursor: uuid.UUID | None


class TaskOut(Read):
    id: uuid.UUID
    kind: TaskKind
    title: str
    notes: str
    due_at: dt.datetime
    status: TaskStatus
    source: TaskSource
    store_id: uuid.UUID
    owner_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    customer_name: str | None
    opportunity_id: uuid.UUID | None
    completed_at: dt.datetime | None
    overdue: bool


class TaskPage(Read):
    items: list[TaskOut]
    next_cursor: str | None


class ComplaintOut(Read):
    id: uuid.UUID
    category: ComplaintCategory
    status: ComplaintStatus
    description: str
    opened_at: dt.datetime
    history_retrieved_at: dt.datetime | None
    first_response_at: dt.datetime | None
    solved_at: dt.datetime | None
    callback_at: dt.datetime | None
    satisfaction: int | None
    resolution: str = ""  # what the customer was offered / how it was solved
    callback_note: str = ""
    customer_id: uuid.UUID | None = None
    store_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    # the loop's clocks (shared/complaints.py defaults): when each step is due, and which are late
    history_due_at: dt.datetime | None = None
    response_due_at: dt.datetime | None = None
    callback_due_at: dt.datetime | None = None
    late: list[str] = msgspec.field(default_factory=list)


class ComplaintCreate(Write):
    customer_id: uuid.UUID
    category: ComplaintCategory
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=NO_NUL)]
    opened_at: dt.datetime | None = None


class ComplaintStep(Write):
    step: Annotated[str, msgspec.Meta(max_length=20, pattern=NO_NUL)]
    at: dt.datetime | None = None
    text: Annotated[str, msgspec.Meta(max_length=4000, pattern=NO_NUL)] = ""
    satisfaction: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None


class ComplaintPage(Read):
    items: list[ComplaintOut]
    next_cursor: str | None = None


KbTags = Annotated[list[Annotated[str, msgspec.Meta(max_length=30, pattern=NO_NUL)]], msgspec.Meta(max_length=20)]


class KbArticleOut(Read):
    id: uuid.UUID
    code: str
    topic: str  # shared/kb.py TOPICS
    title: str
    title_en: str
    body: str
    tags: list[str]
    deleted: bool = False


class KbArticleIn(Write):
    code: Annotated[str, msgspec.Meta(min_length=2, max_length=40, pattern=NO_NUL)]
    topic: Annotated[str, msgspec.Meta(max_length=20, pattern=NO_NUL)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=20000, pattern=NO_NUL)]
    title_en: Annotated[str, msgspec.Meta(max_length=150, pattern=NO_NUL)] = ""
    tags: KbTags = []


class KbArticlePatch(Write):
    topic: Annotated[str, msgspec.Meta(max_length=20, pattern=NO_NUL)] | None = None
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)] | None = None
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=20000, pattern=NO_NUL)] | None = None
    title_en: Annotated[str, msgspec.Meta(max_length=150, pattern=NO_NUL)] | None = None
    tags: KbTags | None = None
    deleted: bool = False


class Standing(Read):
    group: Group
    health: int  # 0–100
    health_level: Health
    recency: int | None  # RFM scores, 1–5; None before the first order
    frequency: int | None
    monetary: int | None
    days_since_order: int | None
    next_purchase_on: dt.date | None  # the last order plus the mean gap between orders (two or more)
    win_back: bool  # dormant or lost, and worth winning back

    @property
    def rfm(self) -> str:
        """The three scores as one code, e.g. "545" ("" before the first order)."""
        if self.recency is None:
            return ""
        return f"{self.recency}{self.frequency}{self.monetary}"


class CustomerValue(Read):
    tier: ValueTier
    amount_12m: Decimal
    amount_total: Decimal
    order_count: int
    last_order_at: dt.datetime | None
    store_amount: Decimal  # bought in a store
    online_amount: Decimal  # bought online or in the mini-program
    standing: Standing | None = None  # RFM, group, health, next purchase (shared/segments.py)


class CustomerCard(Read):
    profile: CustomerProfile
    phones: list[PhoneOut]
    identities: list[IdentityOut]
    tags: list[str]
    value: CustomerValue
    orders: list[OrderOut]
    interactions: list[InteractionOut]
    opportunities: list[OpportunityOut]
    tasks: list[TaskOut]
    complaints: list[ComplaintOut]


# --- writes -----------------------------------------------------------------------------------


class OpportunityCreate(Write):
    customer_id: uuid.UUID
    title: Text
    amount: Decimal = Decimal("0")
    stage: Code | None = None  # the pipeline's first stage when absent
    expected_close_date: dt.date | None = None
    contract_end_date: dt.date | None = None


class OpportunityUpdate(Write):
    """Only the fields present change; send null to clear a date."""

    title: Text | msgspec.UnsetType = msgspec.UNSET
    amount: Decimal | msgspec.UnsetType = msgspec.UNSET
    expected_close_date: dt.date | msgspec.UnsetType | None = msgspec.UNSET
    contract_end_date: dt.date | msgspec.UnsetType | None = msgspec.UNSET


class StageMove(Write):
    stage: Code
    lost_reason: Reason | None = None


class TaskCreate(Write):
    title: Text
    due_at: dt.datetime
    kind: TaskKind = TaskKind.FOLLOW_UP
    notes: LongText = ""
    customer_id: uuid.UUID | None = None
    opportunity_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None  # defaults to the caller


class TaskSnooze(Write):
    until: dt.datetime


class TaskReassign(Write):
    owner_id: uuid.UUID


class Nudge(Write):
    """A manager asks a deal's owner to move it: a task for the owner, and a notification."""

    note: LongText = ""


class NudgeOut(Read):
    task: TaskOut
    created: bool  # false: the deal's owner was already nudged about it today (the same task)


class InteractionCreate(Write):
    customer_id: uuid.UUID
    kind: InteractionKind
    channel: InteractionChannel | None = None  # store for a visit, phone for a call
    occurred_at: dt.datetime | None = None  # defaults to now
    duration_seconds: Annotated[int, msgspec.Meta(ge=0, le=86_400)] | None = None
    body: LongText = ""


# --- rules ------------------------------------------------------------------------------------------


class RuleStoreOut(Read):
    store_id: uuid.UUID
    enabled: bool
    params: dict[str, Any] = {}


class RuleOut(Read):
    code: str
    enabled: bool  # the default for stores without a switch of their own
    params: dict[str, Any]
    title_zh: str
    title_en: str
    cooldown_hours: int
    stores: list[RuleStoreOut] = []  # the switches of the stores the caller sees


class RulePatch(Write):
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    params: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    title_zh: Text | msgspec.UnsetType = msgspec.UNSET
    title_en: Text | msgspec.UnsetType = msgspec.UNSET
    cooldown_hours: Annotated[int, msgspec.Meta(ge=0, le=8760)] | msgspec.UnsetType = msgspec.UNSET


class RuleStoreSwitch(Write):
    enabled: bool
    params: dict[str, Any] = {}


# --- notifications and push -------------------------------------------------------------------------

B64URL = r"^[A-Za-z0-9_-]+={0,2}$"


class NotificationOut(Read):
    id: uuid.UUID
    kind: str
    title: str
    body: str
    link: str
    customer_id: uuid.UUID | None
    opportunity_id: uuid.UUID | None
    task_id: uuid.UUID | None
    critical: bool
    created_at: dt.datetime
    read_at: dt.datetime | None


class NotificationPage(Read):
    items: list[NotificationOut]
    unread: int


class NotificationsRead(Write):
    """Mark read: these ids, or (all=true) every unread one made up to ``upto`` (default: now)."""

    ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=500)] = []
    all: bool = False
    upto: dt.datetime | None = None


class NotificationPrefsOut(Read):
    quiet_start: str
    quiet_end: str
    daily_budget: int
    muted_kinds: list[str]
    language: str


class NotificationPrefsUpdate(Write):
    quiet_start: Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^$")] | None = None
    quiet_end: Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^$")] | None = None
    daily_budget: Annotated[int, msgspec.Meta(ge=0, le=200)] | None = None
    muted_kinds: Annotated[list[Annotated[str, msgspec.Meta(max_length=30)]], msgspec.Meta(max_length=20)] | None = None
    language: Annotated[str, msgspec.Meta(pattern=r"^(zh-CN|en)$")] | None = None


class FollowSet(Write):
    following: bool = True


class WebPushKeys(Write):
    p256dh: Annotated[str, msgspec.Meta(min_length=80, max_length=100, pattern=B64URL)]
    auth: Annotated[str, msgspec.Meta(min_length=16, max_length=30, pattern=B64URL)]


class PushSubscribe(Write):
    """A browser's PushSubscription (``channel`` webpush: endpoint and keys, as
    ``subscription.toJSON()`` gives them) or an Android app's FCM token (``channel`` fcm)."""

    channel: Annotated[str, msgspec.Meta(pattern=r"^(webpush|fcm)$")]
    endpoint: Annotated[str, msgspec.Meta(max_length=1000, pattern=NO_NUL)] | None = None
    keys: WebPushKeys | None = None
    token: Annotated[str, msgspec.Meta(min_length=20, max_length=4096, pattern=r"^[^\s\x00]+$")] | None = None
    label: Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)] = ""
    expirationTime: int | None = None


class PushSubscriptionOut(Read):
    id: uuid.UUID
    channel: str
    label: str
    created_at: dt.datetime
    last_sent_at: dt.datetime | None


class VapidKey(Read):
    public_key: str  # the applicationServerKey for PushManager.subscribe (base64url)
