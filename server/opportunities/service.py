"""Opportunities: create, update, move stage (validated commands), stage history, pipeline."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import msgspec

from server.auth.scope import Caller, load_in_scope
from server.db import transaction
from server.errors import Invalid
from server.opportunities.tables import Opportunity, PipelineStage, StageHistory
from server.sync.service import allocate_versions, store_scope
from server.values import as_date, as_uuid, money, utc
from shared.enums import Role, StageKind
from shared.ids import uuid7
from shared.wire import OpportunityCreate, OpportunityOut, OpportunityUpdate, StageHistoryOut, StageMove, StageOut

MAX_AMOUNT = Decimal("100000000")  # 100 million: anything above is a typo, not a sofa

_SELECT = """
SELECT o.id, o.customer_id, c.name AS customer_name, o.store_id, o.owner_id, o.title, s.code AS stage,
       s.kind AS stage_kind, o.amount, o.expected_close_date, o.contract_end_date, o.stage_entered_at,
       o.lost_reason, o.created_at, o.updated_at
FROM opportunities o
JOIN pipeline_stages s ON s.id = o.stage_id
JOIN customers c ON c.id = o.customer_id
"""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_out(row: dict, history: list[StageHistoryOut] | None = None) -> OpportunityOut:
    return OpportunityOut(
        id=as_uuid(row["id"]),
        customer_id=as_uuid(row["customer_id"]),
        customer_name=row["customer_name"],
        store_id=as_uuid(row["store_id"]),
        owner_id=as_uuid(row["owner_id"]),
        title=row["title"],
        stage=row["stage"],
        stage_kind=StageKind(row["stage_kind"]),
        amount=money(row["amount"]),
        expected_close_date=as_date(row["expected_close_date"]),
        contract_end_date=as_date(row["contract_end_date"]),
        stage_entered_at=utc(row["stage_entered_at"]),
        lost_reason=row["lost_reason"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        history=history or [],
    )


async def stages() -> list[StageOut]:
    rows = await PipelineStage.select().where(PipelineStage.deleted.eq(False)).order_by(PipelineStage.position)
    return [
        StageOut(
            code=r["code"],
            name_zh=r["name_zh"],
            name_en=r["name_en"],
            position=r["position"],
            kind=StageKind(r["kind"]),
            probability=r["probability"],
            idle_days=r["idle_days"],
        )
        for r in rows
    ]


async def for_customer(*, customer_id: uuid.UUID) -> list[OpportunityOut]:
    """A customer's opportunities, open ones first (the caller has already been scope-checked)."""
    rows = await Opportunity.raw(
        _SELECT + "WHERE o.customer_id = {} AND o.deleted = false "
        "ORDER BY CASE WHEN s.kind = 'open' THEN 0 ELSE 1 END, o.stage_entered_at DESC LIMIT 50",
        customer_id,
    )
    return [to_out(r) for r in rows]


async def list_opportunities(
    *,
    caller: Caller,
    customer_id: uuid.UUID | None,
    owner_id: uuid.UUID | None,
    stage: str | None,
    open_only: bool,
    limit: int,
    cursor: uuid.UUID | None,
) -> tuple[list[OpportunityOut], uuid.UUID | None]:
    params: list[object] = []
    where = ["o.deleted = false", caller.store_filter("o.store_id", params)]
    if customer_id is not None:
        where.append("o.customer_id = {}")
        params.append(customer_id)
    if owner_id is not None:
        where.append("o.owner_id = {}")
        params.append(owner_id)
    if stage is not None:
        where.append("s.code = {}")
        params.append(stage)
    if open_only:
        where.append("s.kind = 'open'")
    if cursor is not None:
        where.append("o.id < {}")
        params.append(cursor)
    params.append(limit + 1)
    rows = await Opportunity.raw(_SELECT + f"WHERE {' AND '.join(where)} ORDER BY o.id DESC LIMIT {{}}", *params)
    items = [to_out(r) for r in rows[:limit]]
    return items, (items[-1].id if len(rows) > limit else None)


async def _history(opportunity_id: uuid.UUID) -> list[StageHistoryOut]:
    rows = await StageHistory.raw(
        "SELECT s.code AS stage, h.entered_at, h.left_at, h.moved_by_id FROM stage_history h "
        "JOIN pipeline_stages s ON s.id = h.stage_id WHERE h.opportunity_id = {} AND h.deleted = false "
        "ORDER BY h.entered_at, h.version",
        opportunity_id,
    )
    return [
        StageHistoryOut(
            stage=r["stage"],
            entered_at=utc(r["entered_at"]),
            left_at=utc(r["left_at"]),
            moved_by=as_uuid(r["moved_by_id"]),
        )
        for r in rows
    ]


async def _load(*, caller: Caller, opportunity_id: uuid.UUID, lock: bool = False) -> dict:
    return await load_in_scope(
        caller=caller, table=Opportunity, select=_SELECT, alias="o", ident=opportunity_id, what="opportunity", lock=lock
    )


async def get(*, caller: Caller, opportunity_id: uuid.UUID) -> OpportunityOut:
    row = await _load(caller=caller, opportunity_id=opportunity_id)
    return to_out(row, await _history(opportunity_id))


def _check_amount(amount: Decimal) -> Decimal:
    if not amount.is_finite():
        raise Invalid("amount must be a number", field="amount")
    if amount < 0:
        raise Invalid(f"amount must not be negative, got {amount}", field="amount")
    if amount >= MAX_AMOUNT:
        raise Invalid(f"amount must be below {MAX_AMOUNT}, got {amount}", field="amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise Invalid(f"amount has more than two decimal places: {amount}", field="amount")
    return amount


async def _stage_by_code(code: str) -> dict:
    row = await PipelineStage.select().where((PipelineStage.code == code) & PipelineStage.deleted.eq(False)).first()
    if row is None:
        known = ", ".join(s.code for s in await stages())
        raise Invalid(f"unknown stage {code!r}; the pipeline's stages are: {known}", field="stage")
    return row


async def create(*, caller: Caller, data: OpportunityCreate, ident: uuid.UUID | None = None) -> OpportunityOut:
    """``ident``: the id a device made for the deal (sync); a fresh UUIDv7 otherwise."""
    from server.customers.service import load_customer_scope

    amount = _check_amount(data.amount)
    if data.stage is None:
        first = await (
            PipelineStage.select()
            .where(PipelineStage.deleted.eq(False) & (PipelineStage.kind == StageKind.OPEN))
            .order_by(PipelineStage.position)
            .first()
        )
        if first is None:
            raise Invalid("the pipeline has no open stage; an admin must configure one", field="stage")
        stage = first
    else:
        stage = await _stage_by_code(data.stage)
        if stage["kind"] != StageKind.OPEN:
            raise Invalid(f"a new opportunity cannot start in the closed stage {data.stage!r}", field="stage")
    now = _now()
    opportunity_id = ident or uuid7()
    async with transaction():
        store_id, owner_id = await load_customer_scope(caller=caller, customer_id=data.customer_id)
        last = await allocate_versions(store_scope(store_id), 2)
        await Opportunity.insert(
            Opportunity(
                id=opportunity_id,
                version=last - 1,
                updated_at=now,
                store_id=store_id,
                customer_id=data.customer_id,
                # The rep who opens a deal owns it; a manager opening one gives it to the customer's rep.
                owner_id=caller.user_id if caller.role == Role.REP else (owner_id or caller.user_id),
                title=data.title.strip(),
                stage_id=stage["id"],
                amount=amount,
                expected_close_date=data.expected_close_date,
                contract_end_date=data.contract_end_date,
                stage_entered_at=now,
                created_at=now,
            )
        )
        await StageHistory.insert(
            StageHistory(
                id=uuid7(),
                version=last,
                updated_at=now,
                store_id=store_id,
                opportunity_id=opportunity_id,
                stage_id=stage["id"],
                entered_at=now,
                moved_by_id=caller.user_id,
            )
        )
    return await get(caller=caller, opportunity_id=opportunity_id)


async def update(*, caller: Caller, opportunity_id: uuid.UUID, data: OpportunityUpdate) -> OpportunityOut:
    changes: dict = {}
    if data.title is not msgspec.UNSET:
        changes[Opportunity.title] = data.title.strip()
    if data.amount is not msgspec.UNSET:
        changes[Opportunity.amount] = _check_amount(data.amount)
    if data.expected_close_date is not msgspec.UNSET:
        changes[Opportunity.expected_close_date] = data.expected_close_date
    if data.contract_end_date is not msgspec.UNSET:
        changes[Opportunity.contract_end_date] = data.contract_end_date
    if not changes:
        raise Invalid("nothing to change: send at least one of title, amount, expected_close_date, contract_end_date")
    async with transaction():
        row = await _load(caller=caller, opportunity_id=opportunity_id, lock=True)
        closed_fields = {Opportunity.title, Opportunity.amount, Opportunity.expected_close_date}
        if row["stage_kind"] != StageKind.OPEN and closed_fields & set(changes):
            raise Invalid(
                f"opportunity is closed ({row['stage']}); only contract_end_date can still change", field="stage"
            )
        version = await allocate_versions(store_scope(as_uuid(row["store_id"])))
        changes[Opportunity.version] = version
        changes[Opportunity.updated_at] = _now()
        await Opportunity.update(changes).where(Opportunity.id == opportunity_id)
    return await get(caller=caller, opportunity_id=opportunity_id)


async def move_stage(*, caller: Caller, opportunity_id: uuid.UUID, data: StageMove) -> OpportunityOut:
    """Move a deal to another stage: validated, and written to the stage history."""
    target = await _stage_by_code(data.stage)
    if target["kind"] == StageKind.LOST and not (data.lost_reason or "").strip():
        raise Invalid("moving a deal to a lost stage needs a lost_reason", field="lost_reason")
    if target["kind"] != StageKind.LOST and data.lost_reason is not None:
        raise Invalid("lost_reason is only for a move to a lost stage", field="lost_reason")
    now = _now()
    async with transaction():
        row = await _load(caller=caller, opportunity_id=opportunity_id, lock=True)
        if row["stage_kind"] != StageKind.OPEN:
            raise Invalid(f"opportunity is already closed ({row['stage']}); a closed deal cannot move", field="stage")
        if row["stage"] == target["code"]:
            raise Invalid(f"opportunity is already in stage {target['code']!r}", field="stage")
        store_id = as_uuid(row["store_id"])
        last = await allocate_versions(store_scope(store_id), 3)
        current = await (
            StageHistory.select(StageHistory.id)
            .where((StageHistory.opportunity_id == opportunity_id) & StageHistory.left_at.is_null())
            .first()
        )
        if current is not None:
            await StageHistory.update(
                {StageHistory.left_at: now, StageHistory.version: last - 2, StageHistory.updated_at: now}
            ).where(StageHistory.id == current["id"])
        await StageHistory.insert(
            StageHistory(
                id=uuid7(),
                version=last - 1,
                updated_at=now,
                store_id=store_id,
                opportunity_id=opportunity_id,
                stage_id=target["id"],
                entered_at=now,
                moved_by_id=caller.user_id,
            )
        )
        closed = target["kind"] != StageKind.OPEN
        await Opportunity.update(
            {
                Opportunity.stage_id: target["id"],
                Opportunity.stage_entered_at: now,
                Opportunity.lost_reason: (data.lost_reason or "").strip() or None,
                Opportunity.closed_at: now if closed else None,
                Opportunity.version: last,
                Opportunity.updated_at: now,
            }
        ).where(Opportunity.id == opportunity_id)
    return await get(caller=caller, opportunity_id=opportunity_id)
