"""The sync protocol both sides import: which tables reach phones, with which columns, and the
push / pull messages (DESIGN.md, "Sync protocol").

A change travels as a page of rows of one table: ``{"table", "columns", "rows": [[...], ...]}``.
Column values are JSON primitives: ids, timestamps (RFC 3339, UTC), dates (ISO) and money
(a decimal string) are strings; ``json`` columns carry their JSON text; booleans are booleans.
A row whose ``deleted`` is true is a tombstone: the device deletes the row with that id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec

from shared.ids import uuid5_for
from shared.wire import NO_NUL, Read, Write

# The row format. A client whose cursor was made for another schema is reset (re-snapshot);
# a client older than MIN_SCHEMA_VERSION must be upgraded.
SCHEMA_VERSION = 2  # 2: complaints carry their resolution and call-back note; the knowledge base
MIN_SCHEMA_VERSION = 1

MAX_MUTATIONS_PER_PUSH = 100
MAX_PULL_LIMIT = 5000
DEFAULT_PULL_LIMIT = 2000
# A phone clock ahead of the server's by more than this is capped (it cannot win forever).
HLC_MAX_AHEAD_MS = 5 * 60 * 1000

ColumnType = Literal["uuid", "text", "int", "bool", "ts", "date", "money", "json"]

ORG_SCOPE = "org"  # regions, stores, users
CATALOG_SCOPE = "catalog"  # categories, products, pipeline stages
USER_SCOPE_PREFIX = "u:"  # "u:<user id>": a user's own rows (notifications, follows, preferences)


def user_scope(user_id: object) -> str:
    return f"{USER_SCOPE_PREFIX}{user_id}"


def follow_id(user_id: object, customer_id: object) -> uuid.UUID:
    """The one follow row of (user, customer): the same id on every device and the server."""
    return uuid5_for("follow", user_id, customer_id)


def prefs_id(user_id: object) -> uuid.UUID:
    return uuid5_for("notification-prefs", user_id)


class TableSpec(msgspec.Struct, frozen=True):
    name: str
    scope: Literal["org", "catalog", "store", "user"]
    columns: tuple[tuple[str, ColumnType], ...]
    # Local indexes the replica builds (tuples of column names).
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


def _t(name: str, scope: str, columns: str, indexes: tuple[tuple[str, ...], ...] = ()) -> TableSpec:
    """``columns``: 'name:type' words; every table starts with id, version, deleted (and store_id,
    or user_id for a user's own rows)."""
    base = "id:uuid version:int deleted:bool" + {"store": " store_id:uuid", "user": " user_id:uuid"}.get(scope, "")
    cols = tuple(tuple(word.split(":")) for word in f"{base} {columns}".split())
    return TableSpec(name=name, scope=scope, columns=cols, indexes=indexes)  # type: ignore[arg-type]


# Order matters only for readability: parents before children.
TABLES: tuple[TableSpec, ...] = (
    _t("regions", "org", "code:text name:text"),
    _t(
        "stores",
        "org",
        "code:text name:text city:text region_id:uuid time_zone:text opening_hours:json pilot:bool active:bool",
    ),
    # Colleagues' names (for "replaced by 王经理"); never usernames or password hashes.
    _t("users", "org", "display_name:text role:text store_id:uuid region_id:uuid active:bool"),
    _t("categories", "catalog", "code:text name_zh:text name_en:text repurchase_days:int"),
    _t("products", "catalog", "sku:text name_zh:text name_en:text category_id:uuid price:money"),
    # the knowledge base (shared/kb.py searches it, on the phone too)
    _t("kb_articles", "catalog", "code:text topic:text title:text title_en:text body:text tags:text"),
    _t(
        "pipeline_stages",
        "catalog",
        "code:text name_zh:text name_en:text position:int kind:text probability:int idle_days:int",
    ),
    _t(
        "customers",
        "store",
        "updated_at:ts owner_id:uuid name:text gender:text birthday:date email:text province:text city:text "
        "district:text address:text consents:json field_clocks:json created_at:ts",
        indexes=(("name",), ("owner_id",), ("store_id", "name")),
    ),
    _t(
        "customer_phones",
        "store",
        "customer_id:uuid number:text digits:text kind:text is_primary:bool created_at:ts",
        indexes=(("customer_id",), ("digits",)),
    ),
    _t("customer_tags", "store", "customer_id:uuid tag:text created_at:ts", indexes=(("customer_id",),)),
    _t(
        "customer_identities",
        "store",
        "customer_id:uuid kind:text value:text created_at:ts",
        indexes=(("customer_id",),),
    ),
    _t(
        "orders",
        "store",
        "customer_id:uuid channel:text sold_by_store_id:uuid ordered_at:ts amount:money payment_method:text "
        "external_ref:text",
        indexes=(("customer_id", "ordered_at"),),
    ),
    _t(
        "order_lines",
        "store",
        "order_id:uuid product_id:uuid category_id:uuid product_name:text quantity:int unit_price:money amount:money",
        indexes=(("order_id",),),
    ),
    _t(
        "interactions",
        "store",
        "customer_id:uuid user_id:uuid kind:text channel:text occurred_at:ts duration_seconds:int body:text "
        "product_id:uuid category_id:uuid created_at:ts",
        indexes=(("customer_id", "occurred_at"),),
    ),
    _t(
        "opportunities",
        "store",
        "customer_id:uuid owner_id:uuid title:text stage_id:uuid amount:money expected_close_date:date "
        "contract_end_date:date stage_entered_at:ts lost_reason:text closed_at:ts created_at:ts updated_at:ts",
        indexes=(("customer_id",), ("owner_id",)),
    ),
    _t(
        "stage_history",
        "store",
        "opportunity_id:uuid stage_id:uuid entered_at:ts left_at:ts moved_by_id:uuid",
        indexes=(("opportunity_id",),),
    ),
    _t(
        "tasks",
        "store",
        "owner_id:uuid customer_id:uuid opportunity_id:uuid kind:text title:text notes:text due_at:ts status:text "
        "source:text completed_at:ts created_by_id:uuid created_at:ts updated_at:ts",
        indexes=(("owner_id", "status", "due_at"), ("customer_id",)),
    ),
    _t(
        "complaints",
        "store",
        "customer_id:uuid owner_id:uuid category:text status:text description:text opened_at:ts "
        "history_retrieved_at:ts first_response_at:ts solved_at:ts callback_at:ts satisfaction:int "
        "resolution:text callback_note:text",
        indexes=(("customer_id",),),
    ),
    # A customer-card field whose concurrent edit lost (the audit trail the rep is shown).
    _t(
        "sync_conflicts",
        "store",
        "customer_id:uuid field:text winner_value:text loser_value:text winner_user_id:uuid loser_user_id:uuid "
        "winner_hlc:text loser_hlc:text at:ts",
        indexes=(("loser_user_id", "at"),),
    ),
    # A merged-away customer id and the customer it now is (the phone opens the survivor).
    _t("customer_aliases", "store", "survivor_id:uuid merge_id:uuid", indexes=(("survivor_id",),)),
    # The store's own feature switches (shared.features; a feature without a row is on).
    _t("store_features", "store", "feature:text enabled:bool updated_at:ts", indexes=(("store_id", "feature"),)),
    # The user's own rows (scope "u:<user id>"): the message centre, follows, push preferences.
    _t(
        "notifications",
        "user",
        "store_id:uuid kind:text cause:text title:text body:text customer_id:uuid opportunity_id:uuid task_id:uuid "
        "link:text critical:bool created_at:ts read_at:ts",
        indexes=(("created_at",), ("read_at",)),
    ),
    _t("customer_follows", "user", "customer_id:uuid store_id:uuid following:bool created_at:ts", (("customer_id",),)),
    _t(
        "notification_prefs",
        "user",
        "quiet_start:text quiet_end:text daily_budget:int muted_kinds:json language:text",
    ),
)
TABLES_BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES}

# Customer-card fields that merge independently, last writer (by hybrid logical clock) wins.
CUSTOMER_MERGE_FIELDS: tuple[str, ...] = (
    "name",
    "gender",
    "birthday",
    "email",
    "province",
    "city",
    "district",
    "address",
)


# --- hybrid logical clock -----------------------------------------------------------------------

# "<15-digit wall ms>-<5-digit counter>-<node>": string order is clock order.
HLC_PATTERN = r"^\d{15}-\d{5}-[0-9A-Za-z_.]{1,40}$"
Hlc = Annotated[str, msgspec.Meta(pattern=HLC_PATTERN)]


def hlc_format(wall_ms: int, counter: int, node: str) -> str:
    return f"{wall_ms:015d}-{counter:05d}-{node}"


def hlc_parse(value: str) -> tuple[int, int, str]:
    wall, counter, node = value.split("-", 2)
    return int(wall), int(counter), node


class HybridClock:
    """A hybrid logical clock (Kulkarni et al.): physical milliseconds plus a counter, so a
    stamp is always later than every stamp this node has made or seen."""

    def __init__(self, node: str, wall_ms, last: str | None = None) -> None:
        self.node = node
        self._wall_ms = wall_ms  # a callable returning the local clock in ms (a test may skew it)
        self._last = (0, 0)
        if last:
            self.observe(last)

    def now(self) -> str:
        wall = int(self._wall_ms())
        last_wall, counter = self._last
        self._last = (wall, 0) if wall > last_wall else (last_wall, counter + 1)
        return hlc_format(*self._last, self.node)

    def observe(self, stamp: str) -> None:
        wall, counter, _ = hlc_parse(stamp)
        if (wall, counter) > self._last:
            self._last = (wall, counter)

    @property
    def last(self) -> str:
        return hlc_format(*self._last, self.node)


# --- push -------------------------------------------------------------------------------------

MutationName = Literal[
    "customer.create",
    "customer.update",
    "phone.add",
    "tag.add",
    "tag.remove",
    "interaction.log",
    "task.create",
    "task.complete",
    "task.snooze",
    "opportunity.create",
    "opportunity.update",
    "opportunity.move",
    "notification.read",
    "notification.read_all",
    "follow.set",
    "prefs.update",
    "complaint.open",
    "complaint.step",
]


class Mutation(Write):
    id: Annotated[int, msgspec.Meta(ge=1, le=2**62)]  # strictly increasing per client
    name: MutationName
    args: dict[str, Any]  # checked per mutation against the structs below; a bad one is rejected alone
    hlc: Hlc


class PushRequest(Write):
    client_id: uuid.UUID
    schema_version: Annotated[int, msgspec.Meta(ge=1)]
    # The bound (MAX_MUTATIONS_PER_PUSH) is checked by the server to answer 422 naming it.
    mutations: Annotated[list[Mutation], msgspec.Meta(max_length=10_000)]


class TableRows(Read):
    table: str
    columns: list[str]
    rows: list[list[Any]]


class FieldLoss(Read):
    """A customer field this mutation set but a later clock had already set (or a concurrent
    edit replaced): the value kept and who wrote it."""

    field: str
    kept_value: str | None
    kept_by: uuid.UUID | None
    kept_hlc: str


class MutationResult(Read):
    id: int
    status: Literal["applied", "rejected"]
    reason: str | None = None
    field: str | None = None
    # The server's current rows of what the mutation touched (after applying, or as they are
    # when rejected; empty when the target does not exist for this user).
    rows: list[TableRows] = []
    lost_fields: list[FieldLoss] = []


class PushResponse(Read):
    results: list[MutationResult]
    last_mutation_id: int


# --- pull -------------------------------------------------------------------------------------


class PullRequest(Write):
    client_id: uuid.UUID
    schema_version: Annotated[int, msgspec.Meta(ge=1)]
    cursor: Annotated[str, msgspec.Meta(max_length=20_000, pattern=NO_NUL)] | None = None  # None: first sync
    # At most MAX_PULL_LIMIT: the server answers 422 naming the bound above it.
    limit: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_PULL_LIMIT


class PullResponse(Read):
    changes: list[TableRows]
    cursor: str  # opaque; store it with the page in one local transaction
    has_more: bool
    last_mutation_id: int  # every mutation up to this one is applied (heals a lost push reply)
    scopes_removed: list[str]  # store ids the user no longer sees: delete their rows
    reset_required: bool  # drop the replica (keep the outbox) and pull again from cursor None
    reset_reason: str | None = None
    server_time: str = ""  # RFC 3339


class SyncPoke(Read):
    scope: str
    version: int


# --- mutation arguments -------------------------------------------------------------------------

ShortText = Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NO_NUL)]


class CustomerFields(Write):
    """The mergeable fields of a customer card; only those present change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    gender: Literal["female", "male", "other"] | msgspec.UnsetType | None = msgspec.UNSET
    birthday: str | msgspec.UnsetType | None = msgspec.UNSET  # ISO date
    email: Annotated[str, msgspec.Meta(max_length=254, pattern=NO_NUL)] | msgspec.UnsetType | None = msgspec.UNSET
    province: Annotated[str, msgspec.Meta(max_length=32, pattern=NO_NUL)] | msgspec.UnsetType = msgspec.UNSET
    city: Annotated[str, msgspec.Meta(max_length=32, pattern=NO_NUL)] | msgspec.UnsetType = msgspec.UNSET
    district: Annotated[str, msgspec.Meta(max_length=32, pattern=NO_NUL)] | msgspec.UnsetType = msgspec.UNSET
    address: ShortText | msgspec.UnsetType = msgspec.UNSET


class CustomerCreateArgs(Write):
    id: uuid.UUID
    name: Name
    phone: Annotated[str, msgspec.Meta(max_length=32, pattern=NO_NUL)] | None = None
    phone_id: uuid.UUID | None = None  # the phone row's id, made by the device with the customer
    store_id: uuid.UUID | None = None  # defaults to the user's store
    gender: Literal["female", "male", "other"] | None = None
    email: Annotated[str, msgspec.Meta(max_length=254, pattern=NO_NUL)] | None = None
    city: Annotated[str, msgspec.Meta(max_length=32, pattern=NO_NUL)] = ""


class CustomerUpdateArgs(Write):
    customer_id: uuid.UUID
    fields: CustomerFields
    # The values the device showed when the user edited (detects a concurrent edit).
    base: dict[str, Any] = {}


class PhoneAddArgs(Write):
    id: uuid.UUID
    customer_id: uuid.UUID
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=NO_NUL)]
    kind: Literal["mobile", "landline"] = "mobile"


class TagAddArgs(Write):
    id: uuid.UUID
    customer_id: uuid.UUID
    tag: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=NO_NUL)]


class TagRemoveArgs(Write):
    tag_id: uuid.UUID


class InteractionLogArgs(Write):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: Literal["visit", "call", "note", "message"]
    channel: str | None = None
    occurred_at: str | None = None  # RFC 3339 with offset
    duration_seconds: Annotated[int, msgspec.Meta(ge=0, le=86_400)] | None = None
    body: Annotated[str, msgspec.Meta(max_length=4000, pattern=NO_NUL)] = ""


class ComplaintOpenArgs(Write):
    id: uuid.UUID
    customer_id: uuid.UUID
    category: Literal["quality", "delivery", "installation", "service", "price", "other"]
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=NO_NUL)]
    opened_at: str | None = None  # RFC 3339 with offset; the server's time when absent


class ComplaintStepArgs(Write):
    """One step of the complaint loop (shared/complaints.py): history | respond | solve | callback."""

    complaint_id: uuid.UUID
    step: Literal["history", "respond", "solve", "callback"]
    at: str | None = None  # RFC 3339 with offset: when it was done; the server's time when absent
    text: Annotated[str, msgspec.Meta(max_length=4000, pattern=NO_NUL)] = ""  # the solution / call-back note
    satisfaction: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None  # the call-back's rating


class TaskCreateArgs(Write):
    id: uuid.UUID
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
    due_at: str  # RFC 3339 with offset
    kind: str = "follow_up"
    notes: Annotated[str, msgspec.Meta(max_length=4000, pattern=NO_NUL)] = ""
    customer_id: uuid.UUID | None = None
    opportunity_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None


class TaskCompleteArgs(Write):
    task_id: uuid.UUID


class TaskSnoozeArgs(Write):
    task_id: uuid.UUID
    until: str  # RFC 3339 with offset


class OpportunityCreateArgs(Write):
    id: uuid.UUID
    customer_id: uuid.UUID
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
    amount: str = "0"  # decimal string
    stage: str | None = None
    expected_close_date: str | None = None
    contract_end_date: str | None = None


class OpportunityUpdateArgs(Write):
    opportunity_id: uuid.UUID
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    amount: str | msgspec.UnsetType = msgspec.UNSET
    expected_close_date: str | msgspec.UnsetType | None = msgspec.UNSET
    contract_end_date: str | msgspec.UnsetType | None = msgspec.UNSET


class OpportunityMoveArgs(Write):
    opportunity_id: uuid.UUID
    stage: Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=NO_NUL)]
    lost_reason: Annotated[str, msgspec.Meta(max_length=500, pattern=NO_NUL)] | None = None


class NotificationReadArgs(Write):
    notification_id: uuid.UUID


class NotificationReadAllArgs(Write):
    upto: str  # RFC 3339: everything created up to then (what the user saw) is read


class FollowSetArgs(Write):
    follow_id: uuid.UUID  # follow_id(user, customer): checked by the server
    customer_id: uuid.UUID
    following: bool


HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^$"
NOTIFICATION_KINDS = (
    "task_assigned",
    "reminder",
    "task_due",
    "complaint",
    "complaint_sla",
    "order",
    "stage_moved",
    "reassigned",
    "nudge",
    "digest",
)
# Never held by quiet hours or the budget, and never opted out of.
CRITICAL_KINDS = ("complaint_sla",)


class PrefsUpdateArgs(Write):
    prefs_id: uuid.UUID  # prefs_id(user): checked by the server
    quiet_start: Annotated[str, msgspec.Meta(pattern=HHMM)] | msgspec.UnsetType = msgspec.UNSET
    quiet_end: Annotated[str, msgspec.Meta(pattern=HHMM)] | msgspec.UnsetType = msgspec.UNSET
    daily_budget: Annotated[int, msgspec.Meta(ge=0, le=200)] | msgspec.UnsetType = msgspec.UNSET
    muted_kinds: (
        Annotated[list[Literal[NOTIFICATION_KINDS]], msgspec.Meta(max_length=20)]  # type: ignore[valid-type]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    language: Literal["zh-CN", "en"] | msgspec.UnsetType = msgspec.UNSET


# What each mutation touches: (table, the argument holding the row's id); the first is the row a
# "create" makes under an id the device chose. A push answer carries these rows as the server has
# them; a device deletes its own row of a refused create.
MUTATION_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "customer.create": (("customers", "id"), ("customer_phones", "phone_id")),
    "customer.update": (("customers", "customer_id"),),
    "phone.add": (("customer_phones", "id"),),
    "tag.add": (("customer_tags", "id"),),
    "tag.remove": (("customer_tags", "tag_id"),),
    "interaction.log": (("interactions", "id"),),
    "task.create": (("tasks", "id"),),
    "task.complete": (("tasks", "task_id"),),
    "task.snooze": (("tasks", "task_id"),),
    "opportunity.create": (("opportunities", "id"),),
    "opportunity.update": (("opportunities", "opportunity_id"),),
    "opportunity.move": (("opportunities", "opportunity_id"),),
    "notification.read": (("notifications", "notification_id"),),
    "notification.read_all": (),  # every unread one up to a time; the next pull brings them
    "follow.set": (("customer_follows", "follow_id"),),
    "prefs.update": (("notification_prefs", "prefs_id"),),
    "complaint.open": (("complaints", "id"),),
    "complaint.step": (("complaints", "complaint_id"),),
}
CREATES: dict[str, tuple[str, str]] = {
    name: targets[0] for name, targets in MUTATION_TARGETS.items() if targets and targets[0][1] == "id"
}

MUTATION_ARGS: dict[str, type[Write]] = {
    "customer.create": CustomerCreateArgs,
    "customer.update": CustomerUpdateArgs,
    "phone.add": PhoneAddArgs,
    "tag.add": TagAddArgs,
    "tag.remove": TagRemoveArgs,
    "interaction.log": InteractionLogArgs,
    "task.create": TaskCreateArgs,
    "task.complete": TaskCompleteArgs,
    "task.snooze": TaskSnoozeArgs,
    "opportunity.create": OpportunityCreateArgs,
    "opportunity.update": OpportunityUpdateArgs,
    "opportunity.move": OpportunityMoveArgs,
    "notification.read": NotificationReadArgs,
    "notification.read_all": NotificationReadAllArgs,
    "follow.set": FollowSetArgs,
    "prefs.update": PrefsUpdateArgs,
    "complaint.open": ComplaintOpenArgs,
    "complaint.step": ComplaintStepArgs,
}
assert set(MUTATION_TARGETS) == set(MUTATION_ARGS)
