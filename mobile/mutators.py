"""Local mutators: each sync mutation applied optimistically to the replica, mirroring the server.

The server stays the authority: what a mutator writes here is shown until the server's rows
arrive (push reply or pull), and is re-applied on top of every page while the mutation waits in
the outbox (rebase). A mutator therefore has two modes:

- ``validate=True`` when the user acts: a mutation the server would obviously refuse (unknown stage,
  lost move without a reason, a closed deal moved, a negative amount, a missing row) raises
  :class:`MutationError` before anything is queued, so the UI can say why at once;
- ``validate=False`` during a rebase: it applies what still applies and skips the rest silently
  (the server's answer will say what happened).

Rows the phone makes carry ``version`` 0 until the server's copy replaces them.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from mobile import times
from shared import complaints as complaint_rules
from shared import sync as proto
from shared.enums import ComplaintStatus, InteractionChannel, Role, StageKind, TaskKind, TaskStatus
from shared.phones import PhoneError, normalise

TARGETS = proto.MUTATION_TARGETS
CREATES = proto.CREATES

DEFAULT_CHANNEL = {"visit": "store", "call": "phone", "note": "store", "message": "wechat"}
MAX_SNOOZE = dt.timedelta(days=90)
MAX_AMOUNT = Decimal("100000000")  # as the server: anything above is a typo


class MutationError(ValueError):
    """A change the server would refuse: the UI shows ``str(error)``; nothing was queued."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Context(msgspec.Struct, frozen=True):
    """Who is acting and when (the replica's clock)."""

    user_id: str | None
    store_id: str | None
    role: str | None
    now: str  # UTC RFC 3339


def fetch_one(db: sqlite3.Connection, sql: str, params: tuple | list = ()) -> dict[str, Any] | None:
    cursor = db.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def fetch_all(db: sqlite3.Connection, sql: str, params: tuple | list = ()) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _insert(db: sqlite3.Connection, table: str, values: dict[str, Any]) -> None:
    """Insert unless the id exists: a rebase re-applies creates, and the row may already hold later
    pending changes (or the server's copy)."""
    columns = ", ".join(values)
    marks = ", ".join("?" * len(values))
    db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT(id) DO NOTHING", list(values.values()))


def _update(db: sqlite3.Connection, table: str, ident: str, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{c} = ?" for c in values)
    db.execute(f"UPDATE {table} SET {sets} WHERE id = ?", [*values.values(), ident])


def _s(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


class _Skip(Exception):
    """Raised in rebase mode: this mutation no longer applies locally (the server will answer)."""


def _fail(validate: bool, message: str, field: str | None = None) -> None:
    if validate:
        raise MutationError(message, field)
    raise _Skip(message)


def _need(db: sqlite3.Connection, table: str, ident: uuid.UUID, what: str, validate: bool) -> dict[str, Any]:
    row = fetch_one(db, f"SELECT * FROM {table} WHERE id = ?", (str(ident),))
    if row is None:
        _fail(validate, f"{what} {ident} is not on this phone (not found or out of your scope)")
    assert row is not None
    return row


def _client_time(text: str, field: str, validate: bool) -> str:
    try:
        return times.utc_text(times.parse(text))
    except ValueError:
        _fail(validate, f"{field} must be an RFC 3339 timestamp, got {text!r}", field)
        raise  # unreachable


def _amount(text: str, validate: bool) -> str:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        _fail(validate, f"amount must be a decimal number, got {text!r}", "amount")
        raise
    if not amount.is_finite() or amount < 0:
        _fail(validate, "amount must not be negative", "amount")
    if amount >= MAX_AMOUNT:
        _fail(validate, f"amount must be below {MAX_AMOUNT}", "amount")
    return str(amount.quantize(Decimal("0.01")))


def _stage(db: sqlite3.Connection, code: str, validate: bool) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM pipeline_stages WHERE code = ?", (code,))
    if row is None:
        known = ", ".join(r["code"] for r in fetch_all(db, "SELECT code FROM pipeline_stages ORDER BY position"))
        _fail(validate, f"unknown stage {code!r}; the pipeline's stages are: {known}", "stage")
    assert row is not None
    return row


def _stage_kind(db: sqlite3.Connection, stage_id: str | None) -> str | None:
    row = fetch_one(db, "SELECT kind FROM pipeline_stages WHERE id = ?", (stage_id,))
    return row["kind"] if row else None


# --- the mutators -------------------------------------------------------------------------------


def customer_create(db: sqlite3.Connection, a: proto.CustomerCreateArgs, hlc: str, ctx: Context, v: bool) -> None:
    store = _s(a.store_id) or ctx.store_id
    if store is None:
        _fail(v, "name the customer's store: you do not belong to one", "store_id")
    if v and fetch_one(db, "SELECT 1 FROM customers WHERE id = ?", (str(a.id),)):
        _fail(v, f"id {a.id} is already used; make a new id for a new row", "id")
    number = digits = None
    if a.phone is not None and a.phone.strip():
        try:
            number, digits = normalise(a.phone)
        except PhoneError as exc:
            _fail(v, str(exc), "phone")
    clocks = {f: {"hlc": hlc, "by": ctx.user_id} for f in ("name", "gender", "email", "city")}
    _insert(
        db,
        "customers",
        {
            "id": str(a.id),
            "version": 0,
            "deleted": 0,
            "store_id": store,
            "updated_at": ctx.now,
            "owner_id": ctx.user_id if ctx.role in (Role.REP, None) else None,
            "name": a.name.strip(),
            "gender": a.gender,
            "birthday": None,
            "email": a.email.strip() if a.email else None,
            "province": "",
            "city": a.city.strip(),
            "district": "",
            "address": "",
            "consents": "{}",
            "field_clocks": json.dumps(clocks),
            "created_at": ctx.now,
        },
    )
    if number and a.phone_id is not None:
        _insert(
            db,
            "customer_phones",
            {
                "id": str(a.phone_id),
                "version": 0,
                "deleted": 0,
                "store_id": store,
                "customer_id": str(a.id),
                "number": number,
                "digits": digits,
                "kind": "mobile",
                "is_primary": 1,
                "created_at": ctx.now,
            },
        )


def customer_update(db: sqlite3.Connection, a: proto.CustomerUpdateArgs, hlc: str, ctx: Context, v: bool) -> None:
    row = _need(db, "customers", a.customer_id, "customer", v)
    fields = {k: val for k, val in msgspec.structs.asdict(a.fields).items() if val is not msgspec.UNSET}
    if not fields:
        _fail(v, "nothing to change: send at least one field", "fields")
    if isinstance(fields.get("name"), str) and not fields["name"].strip():
        _fail(v, "name must not be blank", "name")
    try:
        clocks = json.loads(row["field_clocks"] or "{}")
    except ValueError:
        clocks = {}
    changes: dict[str, Any] = {}
    for field, value in fields.items():
        stamp = clocks.get(field) or {}
        # Last writer wins by clock, as on the server: a later stamp already here keeps its value.
        if not stamp or hlc >= stamp.get("hlc", ""):
            changes[field] = value.strip() if isinstance(value, str) and field != "birthday" else value
            clocks[field] = {"hlc": hlc, "by": ctx.user_id}
    if changes:
        _update(db, "customers", row["id"], {**changes, "field_clocks": json.dumps(clocks), "updated_at": ctx.now})


def phone_add(db: sqlite3.Connection, a: proto.PhoneAddArgs, hlc: str, ctx: Context, v: bool) -> None:
    customer = _need(db, "customers", a.customer_id, "customer", v)
    try:
        e164, digits = normalise(a.number)
    except PhoneError as exc:
        _fail(v, str(exc), "number")
        raise
    existing = fetch_all(
        db, "SELECT id, number FROM customer_phones WHERE customer_id = ? AND id != ?", (customer["id"], str(a.id))
    )
    if v and any(r["number"] == e164 for r in existing):
        _fail(v, f"the customer already has the phone {e164}", "number")
    _insert(
        db,
        "customer_phones",
        {
            "id": str(a.id),
            "version": 0,
            "deleted": 0,
            "store_id": customer["store_id"],
            "customer_id": customer["id"],
            "number": e164,
            "digits": digits,
            "kind": a.kind,
            "is_primary": 0 if existing else 1,
            "created_at": ctx.now,
        },
    )


def tag_add(db: sqlite3.Connection, a: proto.TagAddArgs, hlc: str, ctx: Context, v: bool) -> None:
    customer = _need(db, "customers", a.customer_id, "customer", v)
    text = a.tag.strip()
    if not text:
        _fail(v, "tag must not be blank", "tag")
    same = fetch_one(
        db,
        "SELECT id FROM customer_tags WHERE customer_id = ? AND tag = ? AND id != ?",
        (customer["id"], text, str(a.id)),
    )
    if same is not None:
        _fail(v, f"the customer already has the tag {text!r}", "tag")
    _insert(
        db,
        "customer_tags",
        {
            "id": str(a.id),
            "version": 0,
            "deleted": 0,
            "store_id": customer["store_id"],
            "customer_id": customer["id"],
            "tag": text,
            "created_at": ctx.now,
        },
    )


def tag_remove(db: sqlite3.Connection, a: proto.TagRemoveArgs, hlc: str, ctx: Context, v: bool) -> None:
    _need(db, "customer_tags", a.tag_id, "tag", v)
    db.execute("DELETE FROM customer_tags WHERE id = ?", (str(a.tag_id),))


def interaction_log(db: sqlite3.Connection, a: proto.InteractionLogArgs, hlc: str, ctx: Context, v: bool) -> None:
    customer = _need(db, "customers", a.customer_id, "customer", v)
    channel = a.channel or DEFAULT_CHANNEL[a.kind]
    if channel not in {c.value for c in InteractionChannel}:
        _fail(v, f"unknown channel {channel!r}", "channel")
    occurred = ctx.now if a.occurred_at is None else _client_time(a.occurred_at, "occurred_at", v)
    _insert(
        db,
        "interactions",
        {
            "id": str(a.id),
            "version": 0,
            "deleted": 0,
            "store_id": customer["store_id"],
            "customer_id": customer["id"],
            "user_id": ctx.user_id,
            "kind": a.kind,
            "channel": channel,
            "occurred_at": occurred,
            "duration_seconds": a.duration_seconds,
            "body": a.body,
            "product_id": None,
            "category_id": None,
            "created_at": ctx.now,
        },
    )


def task_create(db: sqlite3.Connection, a: proto.TaskCreateArgs, hlc: str, ctx: Context, v: bool) -> None:
    if a.kind not in {k.value for k in TaskKind}:
        _fail(v, f"unknown task kind {a.kind!r}", "kind")
    due = _client_time(a.due_at, "due_at", v)
    store, customer_id = ctx.store_id, _s(a.customer_id)
    if a.opportunity_id is not None:
        opportunity = _need(db, "opportunities", a.opportunity_id, "opportunity", v)
        if customer_id is not None and customer_id != opportunity["customer_id"]:
            _fail(v, "the opportunity belongs to another customer", "opportunity_id")
        store, customer_id = opportunity["store_id"], opportunity["customer_id"]
    elif a.customer_id is not None:
        store = _need(db, "customers", a.customer_id, "customer", v)["store_id"]
    if store is None:
        _fail(v, "a task without a customer needs a caller with a store; name a customer", "customer_id")
    _insert(
        db,
        "tasks",
        {
            "id": str(a.id),
            "version": 0,
            "deleted": 0,
            "store_id": store,
            "owner_id": _s(a.owner_id) or ctx.user_id,
            "customer_id": customer_id,
            "opportunity_id": _s(a.opportunity_id),
            "kind": a.kind,
            "title": a.title.strip(),
            "notes": a.notes,
            "due_at": due,
            "status": TaskStatus.OPEN.value,
            "source": "manual",
            "completed_at": None,
            "created_by_id": ctx.user_id,
            "created_at": ctx.now,
            "updated_at": ctx.now,
        },
    )


def _open_task(db: sqlite3.Connection, task_id: uuid.UUID, v: bool) -> dict[str, Any]:
    row = _need(db, "tasks", task_id, "task", v)
    if v and row["status"] != TaskStatus.OPEN:
        _fail(v, f"the task is {row['status']}, not open", "task_id")
    return row


def task_complete(db: sqlite3.Connection, a: proto.TaskCompleteArgs, hlc: str, ctx: Context, v: bool) -> None:
    row = _open_task(db, a.task_id, v)
    if row["status"] == TaskStatus.OPEN:
        _update(
            db, "tasks", row["id"], {"status": TaskStatus.DONE.value, "completed_at": ctx.now, "updated_at": ctx.now}
        )


def task_snooze(db: sqlite3.Connection, a: proto.TaskSnoozeArgs, hlc: str, ctx: Context, v: bool) -> None:
    row = _open_task(db, a.task_id, v)
    until = _client_time(a.until, "until", v)
    if v:
        now = times.parse(ctx.now)
        if times.parse(until) <= now:
            _fail(v, "until must be in the future", "until")
        if times.parse(until) - now > MAX_SNOOZE:
            _fail(v, f"a task can be snoozed at most {MAX_SNOOZE.days} days ahead", "until")
    _update(db, "tasks", row["id"], {"due_at": until, "updated_at": ctx.now})


def opportunity_create(db: sqlite3.Connection, a: proto.OpportunityCreateArgs, hlc: str, ctx: Context, v: bool) -> None:
    amount = _amount(a.amount, v)
    if a.stage is None:
        stage = fetch_one(db, "SELECT * FROM pipeline_stages WHERE kind = 'open' ORDER BY position LIMIT 1")
        if stage is None:
            _fail(v, "the pipeline has no open stage (not synced yet?)", "stage")
    else:
        stage = _stage(db, a.stage, v)
    assert stage is not None
    if stage["kind"] != StageKind.OPEN:
        _fail(v, f"a new opportunity cannot start in the closed stage {a.stage!r}", "stage")
    customer = _need(db, "customers", a.customer_id, "customer", v)
    owner = ctx.user_id if ctx.role in (Role.REP, None) else (customer["owner_id"] or ctx.user_id)
    _insert(
        db,
        "opportunities",
        {
            "id": str(a.id),
            "version": 0,
            "deleted": 0,
            "store_id": customer["store_id"],
            "customer_id": customer["id"],
            "owner_id": owner,
            "title": a.title.strip(),
            "stage_id": stage["id"],
            "amount": amount,
            "expected_close_date": a.expected_close_date,
            "contract_end_date": a.contract_end_date,
            "stage_entered_at": ctx.now,
            "lost_reason": None,
            "closed_at": None,
            "created_at": ctx.now,
            "updated_at": ctx.now,
        },
    )


def opportunity_update(db: sqlite3.Connection, a: proto.OpportunityUpdateArgs, hlc: str, ctx: Context, v: bool) -> None:
    row = _need(db, "opportunities", a.opportunity_id, "opportunity", v)
    changes: dict[str, Any] = {}
    if a.title is not msgspec.UNSET:
        changes["title"] = a.title.strip()
    if a.amount is not msgspec.UNSET:
        changes["amount"] = _amount(a.amount, v)
    if a.expected_close_date is not msgspec.UNSET:
        changes["expected_close_date"] = a.expected_close_date
    if a.contract_end_date is not msgspec.UNSET:
        changes["contract_end_date"] = a.contract_end_date
    if not changes:
        _fail(v, "nothing to change: send at least one of title, amount, expected_close_date, contract_end_date")
    kind = _stage_kind(db, row["stage_id"])
    if kind not in (None, StageKind.OPEN) and {"title", "amount", "expected_close_date"} & set(changes):
        _fail(v, "the opportunity is closed: only its contract end date may change", "stage")
    _update(db, "opportunities", row["id"], {**changes, "updated_at": ctx.now})


def opportunity_move(db: sqlite3.Connection, a: proto.OpportunityMoveArgs, hlc: str, ctx: Context, v: bool) -> None:
    target = _stage(db, a.stage, v)
    if target["kind"] == StageKind.LOST and not (a.lost_reason or "").strip():
        _fail(v, "moving a deal to a lost stage needs a lost_reason", "lost_reason")
    if target["kind"] != StageKind.LOST and a.lost_reason is not None:
        _fail(v, "lost_reason is only for a move to a lost stage", "lost_reason")
    row = _need(db, "opportunities", a.opportunity_id, "opportunity", v)
    if row["stage_id"] == target["id"]:
        if v:
            _fail(v, f"opportunity is already in stage {a.stage!r}", "stage")
        return  # rebase: already there
    kind = _stage_kind(db, row["stage_id"])
    if kind not in (None, StageKind.OPEN):
        _fail(v, "opportunity is already closed; a closed deal cannot move", "stage")
    closed = target["kind"] != StageKind.OPEN
    _update(
        db,
        "opportunities",
        row["id"],
        {
            "stage_id": target["id"],
            "stage_entered_at": ctx.now,
            "lost_reason": (a.lost_reason or "").strip() or None,
            "closed_at": ctx.now if closed else None,
            "updated_at": ctx.now,
        },
    )


def notification_read(db: sqlite3.Connection, a: proto.NotificationReadArgs, hlc: str, ctx: Context, v: bool) -> None:
    row = _need(db, "notifications", a.notification_id, "notification", v)
    if row["read_at"] is None:
        _update(db, "notifications", row["id"], {"read_at": ctx.now})


def notification_read_all(
    db: sqlite3.Connection, a: proto.NotificationReadAllArgs, hlc: str, ctx: Context, v: bool
) -> None:
    upto = _client_time(a.upto, "upto", v)
    db.execute(
        "UPDATE notifications SET read_at = ? WHERE read_at IS NULL AND created_at <= ? AND user_id = ?",
        (ctx.now, upto, ctx.user_id),
    )


def follow_set(db: sqlite3.Connection, a: proto.FollowSetArgs, hlc: str, ctx: Context, v: bool) -> None:
    customer = _need(db, "customers", a.customer_id, "customer", v)
    if v and str(a.follow_id) != str(proto.follow_id(ctx.user_id, a.customer_id)):
        _fail(v, "follow_id must be follow_id(user, customer)", "follow_id")
    ident = str(a.follow_id)
    if fetch_one(db, "SELECT id FROM customer_follows WHERE id = ?", (ident,)) is None:
        _insert(
            db,
            "customer_follows",
            {
                "id": ident,
                "version": 0,
                "deleted": 0,
                "user_id": ctx.user_id,
                "customer_id": str(a.customer_id),
                "store_id": customer["store_id"],
                "following": int(a.following),
                "created_at": ctx.now,
            },
        )
    else:
        _update(db, "customer_follows", ident, {"following": int(a.following)})


def prefs_update(db: sqlite3.Connection, a: proto.PrefsUpdateArgs, hlc: str, ctx: Context, v: bool) -> None:
    values = {k: val for k, val in msgspec.structs.asdict(a).items() if k != "prefs_id" and val is not msgspec.UNSET}
    if "muted_kinds" in values:
        values["muted_kinds"] = json.dumps(sorted(set(values["muted_kinds"])))
    ident = str(a.prefs_id)
    if fetch_one(db, "SELECT id FROM notification_prefs WHERE id = ?", (ident,)) is None:
        row = {"quiet_start": "22:00", "quiet_end": "08:00", "daily_budget": 20, "muted_kinds": "[]", "language": ""}
        row.update(values)
        _insert(db, "notification_prefs", {"id": ident, "version": 0, "deleted": 0, "user_id": ctx.user_id, **row})
    elif values:
        _update(db, "notification_prefs", ident, values)


def _kept_time(text: str | None, field: str, ctx: Context, v: bool, not_before: str | None = None) -> str:
    """A time the user's action carries, kept between ``not_before`` and now (as the server does)."""
    if text is None:
        return ctx.now
    moment = min(_client_time(text, field, v), ctx.now)
    return max(moment, not_before) if not_before else moment


def complaint_open(db: sqlite3.Connection, a: proto.ComplaintOpenArgs, hlc: str, ctx: Context, v: bool) -> None:
    customer = _need(db, "customers", a.customer_id, "customer", v)
    if v and not a.description.strip():
        _fail(v, "say what the customer complains about", "description")
    _insert(
        db,
        "complaints",
        {
            "id": str(a.id),
            "version": 0,
            "deleted": 0,
            "store_id": customer["store_id"],
            "customer_id": customer["id"],
            "owner_id": customer["owner_id"] or ctx.user_id,
            "category": a.category,
            "status": ComplaintStatus.OPEN.value,
            "description": a.description.strip(),
            "opened_at": _kept_time(a.opened_at, "opened_at", ctx, v),
            "resolution": "",
            "callback_note": "",
        },
    )


def complaint_step(db: sqlite3.Connection, a: proto.ComplaintStepArgs, hlc: str, ctx: Context, v: bool) -> None:
    """The same rule as the server's (shared/complaints.py): refused here with its words, at once."""
    row = _need(db, "complaints", a.complaint_id, "complaint", v)
    why = complaint_rules.refusal(
        a.step, status=row["status"], resolution=row["resolution"] or "", text=a.text, satisfaction=a.satisfaction
    )
    if why is not None:
        _fail(v, *why)
    at = _kept_time(a.at, "at", ctx, v, not_before=row["opened_at"])
    text = a.text.strip()
    values: dict[str, Any] = {}
    if not row["history_retrieved_at"]:
        values["history_retrieved_at"] = at
    if a.step in ("respond", "solve"):
        if not row["first_response_at"]:
            values["first_response_at"] = at
        if text:
            values["resolution"] = text
        values["status"] = (ComplaintStatus.IN_PROGRESS if a.step == "respond" else ComplaintStatus.SOLVED).value
        if a.step == "solve":
            values["solved_at"] = at
    elif a.step == "callback":
        values.update(
            callback_at=at, satisfaction=a.satisfaction, callback_note=text, status=ComplaintStatus.CLOSED.value
        )
    if values:
        _update(db, "complaints", row["id"], values)


Mutator = Callable[[sqlite3.Connection, Any, str, Context, bool], None]
MUTATORS: dict[str, Mutator] = {
    "customer.create": customer_create,
    "customer.update": customer_update,
    "phone.add": phone_add,
    "tag.add": tag_add,
    "tag.remove": tag_remove,
    "interaction.log": interaction_log,
    "task.create": task_create,
    "task.complete": task_complete,
    "task.snooze": task_snooze,
    "opportunity.create": opportunity_create,
    "opportunity.update": opportunity_update,
    "opportunity.move": opportunity_move,
    "notification.read": notification_read,
    "notification.read_all": notification_read_all,
    "follow.set": follow_set,
    "prefs.update": prefs_update,
    "complaint.open": complaint_open,
    "complaint.step": complaint_step,
}
assert set(MUTATORS) == set(proto.MUTATION_ARGS)


def apply(db: sqlite3.Connection, name: str, args: Any, hlc: str, ctx: Context, *, validate: bool) -> bool:
    """Apply one mutation; False when (in rebase mode) it no longer applies locally."""
    try:
        MUTATORS[name](db, args, hlc, ctx, validate)
    except _Skip:
        return False
    return True


def target_ids(name: str, args: Any) -> list[tuple[str, str]]:
    """(table, id) of the rows a mutation touches."""
    found = []
    for table, arg in TARGETS[name]:
        value = getattr(args, arg, None)
        if value is not None:
            found.append((table, str(value)))
    return found
