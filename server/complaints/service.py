"""Complaints and their loop (REQUIREMENTS §4, §9): opened by a rep or the call centre, history
retrieved, a first solution offered, solved, the satisfaction call-back — then closed (archived).

Which step may come next is decided in shared/complaints.py (the phone checks the same offline).
Each step also finishes the rule task that was chasing it (``complaint_history:<id>`` and so on),
so a rep who acts is not reminded afterwards. Times a device sends are kept when they are
plausible: never later than now, never before the complaint was opened (a phone clock that is
off cannot lose the edit).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from server.auth.scope import Caller, load_in_scope
from server.complaints.tables import Complaint
from server.db import transaction
from server.errors import Invalid
from server.sync.service import allocate_versions, store_scope
from server.tasks.tables import Task
from server.values import as_uuid, client_time, utc
from shared.complaints import CALLBACK_HOURS, HISTORY_MINUTES, SOLUTION_MINUTES, refusal
from shared.enums import ComplaintCategory, ComplaintStatus, TaskStatus
from shared.ids import uuid7
from shared.wire import ComplaintCreate, ComplaintOut, ComplaintStep

MAX_LIST = 200
_SELECT = "SELECT p.* FROM complaints p"
# The rule tasks each step answers (server/rules/service.py makes them).
ANSWERS = {
    "history": ("complaint_history",),
    "respond": ("complaint_history", "complaint_solution"),
    "solve": ("complaint_history", "complaint_solution"),
    "callback": ("complaint_callback",),
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_out(r: dict[str, Any], now: dt.datetime | None = None) -> ComplaintOut:
    now = now or _now()
    opened = utc(r["opened_at"])
    history, response = utc(r["history_retrieved_at"]), utc(r["first_response_at"])
    solved, callback = utc(r["solved_at"]), utc(r["callback_at"])
    history_due = opened + dt.timedelta(minutes=HISTORY_MINUTES)
    response_due = opened + dt.timedelta(minutes=SOLUTION_MINUTES)
    callback_due = solved + dt.timedelta(hours=CALLBACK_HOURS) if solved else None
    late = [
        step
        for step, done, due in (
            ("history", history, history_due),
            ("respond", response, response_due),
            ("callback", callback, callback_due),
        )
        if due is not None and (done > due if done else now > due and r["status"] != ComplaintStatus.CLOSED)
    ]
    return ComplaintOut(
        id=as_uuid(r["id"]),
        category=ComplaintCategory(r["category"]),
        status=ComplaintStatus(r["status"]),
        description=r["description"],
        opened_at=opened,
        history_retrieved_at=history,
        first_response_at=response,
        solved_at=solved,
        callback_at=callback,
        satisfaction=r["satisfaction"],
        resolution=r.get("resolution") or "",
        callback_note=r.get("callback_note") or "",
        customer_id=as_uuid(r["customer_id"]),
        store_id=as_uuid(r["store_id"]),
        owner_id=as_uuid(r["owner_id"]),
        history_due_at=history_due,
        response_due_at=response_due,
        callback_due_at=callback_due,
        late=late,
    )


async def for_customer(*, customer_id: uuid.UUID) -> list[ComplaintOut]:
    rows = await (
        Complaint.select()
        .where((Complaint.customer_id == customer_id) & Complaint.deleted.eq(False))
        .order_by(Complaint.opened_at, ascending=False)
        .limit(50)
    )
    now = _now()
    return [to_out(r, now) for r in rows]


async def get(*, caller: Caller, complaint_id: uuid.UUID) -> ComplaintOut:
    return to_out(await _load(caller=caller, complaint_id=complaint_id))


async def _load(*, caller: Caller, complaint_id: uuid.UUID, lock: bool = False) -> dict:
    return await load_in_scope(
        caller=caller, table=Complaint, select=_SELECT, alias="p", ident=complaint_id, what="complaint", lock=lock
    )


def _when(value: dt.datetime | None, field: str, *, not_before: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """A device's time for the step: checked for an offset and a sane year, then kept between the
    complaint's opening and now."""
    if value is None:
        return now
    moment = min(client_time(value, field), now)
    return max(moment, not_before) if not_before is not None else moment


async def open_complaint(*, caller: Caller, data: ComplaintCreate, ident: uuid.UUID | None = None) -> ComplaintOut:
    """A new complaint of a customer in the caller's scope, owned by the customer's rep (or the
    caller when the customer has none)."""
    from server.customers.service import load_customer_scope

    if not data.description.strip():
        raise Invalid("say what the customer complains about", field="description")
    now = _now()
    opened = _when(data.opened_at, "opened_at", not_before=None, now=now)
    complaint_id = ident or uuid7()
    async with transaction():
        store_id, owner_id = await load_customer_scope(caller=caller, customer_id=data.customer_id)
        version = await allocate_versions(store_scope(store_id))
        await Complaint.insert(
            Complaint(
                id=complaint_id,
                version=version,
                updated_at=now,
                store_id=store_id,
                customer_id=data.customer_id,
                owner_id=owner_id or caller.user_id,
                category=data.category,
                status=ComplaintStatus.OPEN,
                description=data.description.strip(),
                opened_at=opened,
            )
        )
    return await get(caller=caller, complaint_id=complaint_id)


async def step(*, caller: Caller, complaint_id: uuid.UUID, data: ComplaintStep) -> ComplaintOut:
    """One step of the loop; refused (422, saying why) when the complaint's state does not allow it."""
    now = _now()
    async with transaction():
        row = await _load(caller=caller, complaint_id=complaint_id, lock=True)
        why = refusal(
            data.step,
            status=row["status"],
            resolution=row.get("resolution") or "",
            text=data.text,
            satisfaction=data.satisfaction,
        )
        if why is not None:
            raise Invalid(why[0], field=why[1])
        at = _when(data.at, "at", not_before=utc(row["opened_at"]), now=now)
        changes = _changes(data, row, at)
        store_id = as_uuid(row["store_id"])
        if changes:
            changes[Complaint.version] = await allocate_versions(store_scope(store_id))
            changes[Complaint.updated_at] = now
            await Complaint.update(changes).where(Complaint.id == complaint_id)
        await _finish_rule_tasks(store_id, complaint_id, ANSWERS[data.step], now)
    return await get(caller=caller, complaint_id=complaint_id)


def _changes(data: ComplaintStep, row: dict, at: dt.datetime) -> dict:
    text = data.text.strip()
    changes: dict = {}
    if row["history_retrieved_at"] is None:
        changes[Complaint.history_retrieved_at] = at  # every step means the history was looked at
    if data.step in ("respond", "solve"):
        if row["first_response_at"] is None:
            changes[Complaint.first_response_at] = at
        if text:
            changes[Complaint.resolution] = text
        changes[Complaint.status] = ComplaintStatus.IN_PROGRESS if data.step == "respond" else ComplaintStatus.SOLVED
        if data.step == "solve":
            changes[Complaint.solved_at] = at
    elif data.step == "callback":
        changes[Complaint.callback_at] = at
        changes[Complaint.satisfaction] = data.satisfaction
        changes[Complaint.callback_note] = text
        changes[Complaint.status] = ComplaintStatus.CLOSED
    return changes


async def _finish_rule_tasks(store_id: uuid.UUID, complaint_id: uuid.UUID, codes: tuple[str, ...], now: dt.datetime):
    """Mark done the open rule tasks that chased what this step did (one version for them all)."""
    keys = [f"{code}:{complaint_id}" for code in codes]
    open_tasks = await Task.select(Task.id).where(Task.dedupe_key.is_in(keys) & (Task.status == TaskStatus.OPEN))
    if not open_tasks:
        return
    version = await allocate_versions(store_scope(store_id))
    await Task.update(
        {Task.status: TaskStatus.DONE, Task.completed_at: now, Task.version: version, Task.updated_at: now}
    ).where(Task.id.is_in([t["id"] for t in open_tasks]))


async def list_complaints(
    *,
    caller: Caller,
    status: str | None,
    late: bool,
    customer_id: uuid.UUID | None,
    limit: int,
    cursor: tuple[dt.datetime, uuid.UUID] | None,
) -> tuple[list[ComplaintOut], tuple[dt.datetime, uuid.UUID] | None]:
    """Complaints in the caller's scope, newest first: ``status`` open | in_progress | solved |
    closed | live (open or in progress); ``late`` those past a step's time; ``customer_id``."""
    now = _now()
    params: list[object] = []
    where = ["p.deleted = false", caller.store_filter("p.store_id", params)]
    if status == "live":
        where.append("p.status IN ('open', 'in_progress')")
    elif status is not None:
        if status not in {s.value for s in ComplaintStatus}:
            known = ", ".join([*(s.value for s in ComplaintStatus), "live"])
            raise Invalid(f"status must be one of {known}, got {status!r}", field="status")
        where.append("p.status = {}")
        params.append(status)
    if customer_id is not None:
        where.append("p.customer_id = {}")
        params.append(customer_id)
    if late:
        where.append(
            "((p.status IN ('open', 'in_progress') AND ((p.history_retrieved_at IS NULL AND p.opened_at < {}) "
            "OR (p.first_response_at IS NULL AND p.opened_at < {}))) "
            "OR (p.status = 'solved' AND p.solved_at < {}))"
        )
        params.extend(
            [
                now - dt.timedelta(minutes=HISTORY_MINUTES),
                now - dt.timedelta(minutes=SOLUTION_MINUTES),
                now - dt.timedelta(hours=CALLBACK_HOURS),
            ]
        )
    if cursor is not None:
        where.append("(p.opened_at < {} OR (p.opened_at = {} AND p.id < {}))")
        params.extend([cursor[0], cursor[0], cursor[1]])
    params.append(limit + 1)
    rows = await Complaint.raw(
        _SELECT + f" WHERE {' AND '.join(where)} ORDER BY p.opened_at DESC, p.id DESC LIMIT {{}}", *params
    )
    items = [to_out(r, now) for r in rows[:limit]]
    after = (items[-1].opened_at, items[-1].id) if len(rows) > limit else None
    return items, after
