"""Tasks: the rep's to-do list — list by view, create, complete, snooze, reassign."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from server.auth.scope import Caller, load_in_scope
from server.auth.tables import User
from server.db import transaction
from server.errors import Invalid
from server.stores.tables import Store
from server.sync.service import allocate_versions, store_scope
from server.tasks.tables import Task
from server.values import as_uuid, client_time, utc
from shared.enums import TaskKind, TaskSource, TaskStatus
from shared.ids import uuid7
from shared.wire import TaskCreate, TaskOut

VIEWS = ("mine", "today", "overdue", "store")
MAX_SNOOZE = dt.timedelta(days=90)

_SELECT = """
SELECT t.id, t.kind, t.title, t.notes, t.due_at, t.status, t.source, t.store_id, t.owner_id, t.customer_id,
       c.name AS customer_name, t.opportunity_id, t.completed_at
FROM tasks t
LEFT JOIN customers c ON c.id = t.customer_id
"""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_out(row: dict, *, now: dt.datetime | None = None) -> TaskOut:
    due = utc(row["due_at"])
    status = TaskStatus(row["status"])
    return TaskOut(
        id=as_uuid(row["id"]),
        kind=TaskKind(row["kind"]),
        title=row["title"],
        notes=row["notes"] or "",
        due_at=due,
        status=status,
        source=TaskSource(row["source"]),
        store_id=as_uuid(row["store_id"]),
        owner_id=as_uuid(row["owner_id"]),
        customer_id=as_uuid(row["customer_id"]),
        customer_name=row["customer_name"],
        opportunity_id=as_uuid(row["opportunity_id"]),
        completed_at=utc(row["completed_at"]),
        overdue=status == TaskStatus.OPEN and due < (now or _now()),
    )


async def for_customer(*, customer_id: uuid.UUID) -> list[TaskOut]:
    rows = await Task.raw(
        _SELECT + "WHERE t.customer_id = {} AND t.deleted = false AND t.status = 'open' ORDER BY t.due_at LIMIT 50",
        customer_id,
    )
    return [to_out(r) for r in rows]


async def _end_of_local_day(caller: Caller, now: dt.datetime) -> dt.datetime:
    zone = "Asia/Shanghai"
    if caller.store_id is not None:
        row = await Store.select(Store.time_zone).where(Store.id == caller.store_id).first()
        zone = row["time_zone"] if row else zone
    local = now.astimezone(ZoneInfo(zone))
    end = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=local.tzinfo)
    return end.astimezone(dt.UTC)


async def list_tasks(
    *, caller: Caller, view: str, limit: int, cursor: tuple[dt.datetime, uuid.UUID] | None
) -> tuple[list[TaskOut], tuple[dt.datetime, uuid.UUID] | None]:
    """mine: my open tasks; today: mine due before the end of today in my store's time zone
    (overdue included); overdue: mine past due; store: every open task in my scope."""
    if view not in VIEWS:
        raise Invalid(f"unknown view {view!r}; use one of {', '.join(VIEWS)}", field="view")
    now = _now()
    params: list[object] = []
    where = ["t.deleted = false", "t.status = 'open'", caller.store_filter("t.store_id", params)]
    if view != "store":
        where.append("t.owner_id = {}")
        params.append(caller.user_id)
    if view == "today":
        where.append("t.due_at < {}")
        params.append(await _end_of_local_day(caller, now))
    elif view == "overdue":
        where.append("t.due_at < {}")
        params.append(now)
    if cursor is not None:
        where.append("(t.due_at > {} OR (t.due_at = {} AND t.id > {}))")
        params.extend([cursor[0], cursor[0], cursor[1]])
    params.append(limit + 1)
    rows = await Task.raw(_SELECT + f"WHERE {' AND '.join(where)} ORDER BY t.due_at, t.id LIMIT {{}}", *params)
    items = [to_out(r, now=now) for r in rows[:limit]]
    next_cursor = (items[-1].due_at, items[-1].id) if len(rows) > limit else None
    return items, next_cursor


async def _load(*, caller: Caller, task_id: uuid.UUID, lock: bool = False) -> dict:
    return await load_in_scope(
        caller=caller, table=Task, select=_SELECT, alias="t", ident=task_id, what="task", lock=lock
    )


async def get(*, caller: Caller, task_id: uuid.UUID) -> TaskOut:
    return to_out(await _load(caller=caller, task_id=task_id))


async def _check_owner(*, owner_id: uuid.UUID, store_id: uuid.UUID) -> None:
    owner = await User.select(User.store_id, User.active).where(User.id == owner_id).first()
    if owner is None or not owner["active"]:
        raise Invalid(f"no active user {owner_id}", field="owner_id")
    if as_uuid(owner["store_id"]) != store_id:
        raise Invalid("the new owner does not work in the task's store", field="owner_id")


async def create(*, caller: Caller, data: TaskCreate, ident: uuid.UUID | None = None) -> TaskOut:
    """``ident``: the id a device made for the task (sync); a fresh UUIDv7 otherwise."""
    from server.customers.service import load_customer_scope
    from server.opportunities.service import get as get_opportunity

    due_at = client_time(data.due_at, "due_at")
    now = _now()
    task_id = ident or uuid7()
    async with transaction():
        store_id = caller.store_id
        if data.opportunity_id is not None:
            opportunity = await get_opportunity(caller=caller, opportunity_id=data.opportunity_id)
            if data.customer_id is not None and data.customer_id != opportunity.customer_id:
                raise Invalid("the opportunity belongs to another customer", field="opportunity_id")
            store_id = opportunity.store_id
            customer_id = opportunity.customer_id
        elif data.customer_id is not None:
            store_id, _ = await load_customer_scope(caller=caller, customer_id=data.customer_id)
            customer_id = data.customer_id
        else:
            customer_id = None
        if store_id is None:
            raise Invalid("a task without a customer needs a caller with a store; name a customer", field="customer_id")
        owner_id = data.owner_id or caller.user_id
        await _check_owner(owner_id=owner_id, store_id=store_id)
        version = await allocate_versions(store_scope(store_id))
        await Task.insert(
            Task(
                id=task_id,
                version=version,
                updated_at=now,
                store_id=store_id,
                owner_id=owner_id,
                customer_id=customer_id,
                opportunity_id=data.opportunity_id,
                kind=data.kind,
                title=data.title.strip(),
                notes=data.notes,
                due_at=due_at,
                status=TaskStatus.OPEN,
                source=TaskSource.MANUAL,
                created_by_id=caller.user_id,
                created_at=now,
            )
        )
    return await get(caller=caller, task_id=task_id)


async def _change(*, caller: Caller, task_id: uuid.UUID, check, changes: dict) -> TaskOut:
    async with transaction():
        row = await _load(caller=caller, task_id=task_id, lock=True)
        await check(row)
        changes[Task.version] = await allocate_versions(store_scope(as_uuid(row["store_id"])))
        changes[Task.updated_at] = _now()
        await Task.update(changes).where(Task.id == task_id)
    return await get(caller=caller, task_id=task_id)


async def _must_be_open(row: dict) -> None:
    if row["status"] != TaskStatus.OPEN:
        raise Invalid(f"task is {row['status']}, not open", field="status")


async def complete(*, caller: Caller, task_id: uuid.UUID) -> TaskOut:
    now = _now()
    return await _change(
        caller=caller,
        task_id=task_id,
        check=_must_be_open,
        changes={Task.status: TaskStatus.DONE, Task.completed_at: now},
    )


async def snooze(*, caller: Caller, task_id: uuid.UUID, until: dt.datetime) -> TaskOut:
    until = client_time(until, "until")
    now = _now()
    if until <= now:
        raise Invalid("until must be in the future", field="until")
    if until - now > MAX_SNOOZE:
        raise Invalid(f"a task can be snoozed at most {MAX_SNOOZE.days} days ahead", field="until")
    return await _change(caller=caller, task_id=task_id, check=_must_be_open, changes={Task.due_at: until})


async def reassign(*, caller: Caller, task_id: uuid.UUID, owner_id: uuid.UUID) -> TaskOut:
    async def check(row: dict) -> None:
        await _must_be_open(row)
        await _check_owner(owner_id=owner_id, store_id=as_uuid(row["store_id"]))

    return await _change(caller=caller, task_id=task_id, check=check, changes={Task.owner_id: owner_id})


NUDGE_TITLES = {"zh": "经理提醒：推进「{title}」", "en": "Your manager asks you to move “{title}” forward"}


async def nudge(*, caller: Caller, opportunity_id: uuid.UUID, note: str = "") -> tuple[TaskOut, bool]:
    """A manager nudges an open deal's owner: a follow-up task for the owner on that deal, due
    today, once per deal per local day (a second nudge the same day returns the same task). The
    notification feed tells the owner (kind 'nudge', from the task's key)."""
    from server.opportunities.service import get as get_opportunity
    from shared.enums import Role, StageKind

    if caller.role == Role.REP:
        from server.errors import Forbidden

        raise Forbidden("only managers nudge a deal's owner")
    deal = await get_opportunity(caller=caller, opportunity_id=opportunity_id)
    if deal.stage_kind != StageKind.OPEN:
        raise Invalid(f"the deal is {deal.stage_kind.value}; only open deals are nudged", field="opportunity_id")
    if deal.owner_id is None:
        raise Invalid("the deal has no owner to nudge; give it an owner first", field="opportunity_id")
    store = await Store.select(Store.time_zone).where(Store.id == deal.store_id).first()
    zone = ZoneInfo(store["time_zone"] if store else "Asia/Shanghai")
    now = _now()
    local = now.astimezone(zone)
    key = f"nudge:{opportunity_id}:{local.date().isoformat()}"
    task_id = uuid.uuid5(uuid.NAMESPACE_URL, f"floorwalker:task:{key}")
    async with transaction():
        existing = await Task.select(Task.id).where(Task.dedupe_key == key).first()
        if existing is None:
            owner = await User.select(User.language).where(User.id == deal.owner_id).first()
            language = "en" if owner and str(owner["language"]).startswith("en") else "zh"
            # An hour from now, not before 18:00, and still today (a nudge at 23:30 is due at 23:59).
            end_of_day = local.replace(hour=23, minute=59, second=0, microsecond=0)
            due = min(
                max(local + dt.timedelta(hours=1), local.replace(hour=18, minute=0, second=0, microsecond=0)),
                end_of_day,
            )
            due = max(due, local)
            version = await allocate_versions(store_scope(deal.store_id))
            await Task.insert(
                Task(
                    id=task_id,
                    version=version,
                    updated_at=now,
                    store_id=deal.store_id,
                    owner_id=deal.owner_id,
                    customer_id=deal.customer_id,
                    opportunity_id=opportunity_id,
                    kind=TaskKind.FOLLOW_UP,
                    title=NUDGE_TITLES[language].format(title=deal.title)[:200],
                    notes=note.strip(),
                    due_at=due.astimezone(dt.UTC),
                    status=TaskStatus.OPEN,
                    source=TaskSource.MANUAL,
                    dedupe_key=key,
                    created_by_id=caller.user_id,
                    created_at=now,
                )
            )
        else:
            task_id = as_uuid(existing["id"])
    return await get(caller=caller, task_id=task_id), existing is None
