"""The push side of sync: a device's mutations, applied in order, each exactly once.

One transaction per push. The device's row in ``sync_clients`` is locked first, so two copies of
the same push (a retry racing the original) queue; each mutation runs under a savepoint, so a
rejected one leaves nothing behind while the others stand; ``last_mutation_id`` and every answer
are written in the same transaction. A mutation id at or below ``last_mutation_id`` is a replay:
it changes nothing and gets the answer stored the first time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec

from server.auth.scope import Caller
from server.complaints import service as complaints
from server.customers import service as customers
from server.db import insert_many, transaction
from server.errors import DomainError, Invalid, NotFound
from server.interactions import service as interactions
from server.notifications import service as notifications
from server.opportunities import service as opportunities
from server.rollout import activity
from server.sync.service import read_rows, register_client
from server.sync.tables import SyncClient, SyncMutation
from server.tasks import service as tasks
from shared import sync as proto
from shared.wire import (
    ComplaintCreate,
    ComplaintStep,
    InteractionCreate,
    OpportunityCreate,
    OpportunityUpdate,
    StageMove,
    TaskCreate,
)

TARGETS = proto.MUTATION_TARGETS
CREATES = proto.CREATES

Applier = Callable[[Caller, Any, str], Awaitable["Applied"]]


class Applied(msgspec.Struct):
    lost_fields: list[proto.FieldLoss] = []
    # Send the row back with the answer (not for a row the device made itself and the server
    # stored as sent: the next pull brings it, and the push stays cheap).
    echo: bool = True


def _convert(args: msgspec.Struct, target: type, drop: tuple[str, ...] = ("id",)) -> Any:
    data = {k: v for k, v in msgspec.structs.asdict(args).items() if k not in drop and v is not msgspec.UNSET}
    try:
        return msgspec.convert(data, target)
    except msgspec.ValidationError as exc:
        raise Invalid(str(exc)) from None


async def _customer_create(caller: Caller, a: proto.CustomerCreateArgs, hlc: str) -> Applied:
    await customers.create_customer(
        caller=caller,
        ident=a.id,
        name=a.name,
        phone=a.phone,
        phone_id=a.phone_id,
        store_id=a.store_id,
        gender=a.gender,
        email=a.email,
        city=a.city,
        hlc=hlc,
    )
    return Applied()


async def _customer_update(caller: Caller, a: proto.CustomerUpdateArgs, hlc: str) -> Applied:
    fields = {k: v for k, v in msgspec.structs.asdict(a.fields).items() if v is not msgspec.UNSET}
    lost = await customers.merge_fields(caller=caller, customer_id=a.customer_id, fields=fields, base=a.base, hlc=hlc)
    return Applied(lost_fields=lost)


async def _phone_add(caller: Caller, a: proto.PhoneAddArgs, hlc: str) -> Applied:
    await customers.add_phone(caller=caller, ident=a.id, customer_id=a.customer_id, number=a.number, kind=a.kind)
    return Applied()


async def _tag_add(caller: Caller, a: proto.TagAddArgs, hlc: str) -> Applied:
    await customers.add_tag(caller=caller, ident=a.id, customer_id=a.customer_id, tag=a.tag)
    return Applied()


async def _tag_remove(caller: Caller, a: proto.TagRemoveArgs, hlc: str) -> Applied:
    await customers.remove_tag(caller=caller, tag_id=a.tag_id)
    return Applied()


async def _interaction_log(caller: Caller, a: proto.InteractionLogArgs, hlc: str) -> Applied:
    await interactions.log(caller=caller, data=_convert(a, InteractionCreate), ident=a.id)
    return Applied()


async def _task_create(caller: Caller, a: proto.TaskCreateArgs, hlc: str) -> Applied:
    await tasks.create(caller=caller, data=_convert(a, TaskCreate), ident=a.id)
    return Applied()


async def _task_complete(caller: Caller, a: proto.TaskCompleteArgs, hlc: str) -> Applied:
    await tasks.complete(caller=caller, task_id=a.task_id)
    return Applied()


async def _task_snooze(caller: Caller, a: proto.TaskSnoozeArgs, hlc: str) -> Applied:
    until = _convert(a, _Until, drop=("task_id",)).until
    await tasks.snooze(caller=caller, task_id=a.task_id, until=until)
    return Applied()


class _Until(msgspec.Struct):
    until: dt.datetime


async def _opportunity_create(caller: Caller, a: proto.OpportunityCreateArgs, hlc: str) -> Applied:
    await opportunities.create(caller=caller, data=_convert(a, OpportunityCreate), ident=a.id)
    return Applied()


async def _opportunity_update(caller: Caller, a: proto.OpportunityUpdateArgs, hlc: str) -> Applied:
    data = _convert(a, OpportunityUpdate, drop=("opportunity_id",))
    await opportunities.update(caller=caller, opportunity_id=a.opportunity_id, data=data)
    return Applied()


async def _opportunity_move(caller: Caller, a: proto.OpportunityMoveArgs, hlc: str) -> Applied:
    data = _convert(a, StageMove, drop=("opportunity_id",))
    await opportunities.move_stage(caller=caller, opportunity_id=a.opportunity_id, data=data)
    return Applied()


async def _notification_read(caller: Caller, a: proto.NotificationReadArgs, hlc: str) -> Applied:
    rows = await SyncMutation.raw(
        "SELECT 1 AS x FROM notifications WHERE id = {} AND user_id = {}", a.notification_id, caller.user_id
    )
    if not rows:
        raise NotFound(f"notification {a.notification_id} not found")
    await notifications.mark_read(user_id=caller.user_id, ids=[a.notification_id])
    return Applied()


async def _notification_read_all(caller: Caller, a: proto.NotificationReadAllArgs, hlc: str) -> Applied:
    upto = _convert(a, _Upto, drop=()).upto
    if upto.tzinfo is None:
        raise Invalid("upto needs a time zone offset (RFC 3339), e.g. 2026-12-01T10:00:00+08:00", field="upto")
    await notifications.mark_read(user_id=caller.user_id, upto=upto)
    return Applied()


class _Upto(msgspec.Struct):
    upto: dt.datetime


async def _follow_set(caller: Caller, a: proto.FollowSetArgs, hlc: str) -> Applied:
    await notifications.set_follow(caller=caller, customer_id=a.customer_id, following=a.following, ident=a.follow_id)
    return Applied()


async def _prefs_update(caller: Caller, a: proto.PrefsUpdateArgs, hlc: str) -> Applied:
    if a.prefs_id != proto.prefs_id(caller.user_id):
        raise Invalid(f"prefs_id must be prefs_id(user) = {proto.prefs_id(caller.user_id)}", field="prefs_id")
    values = {k: v for k, v in msgspec.structs.asdict(a).items() if k != "prefs_id" and v is not msgspec.UNSET}
    await notifications.update_prefs(caller=caller, values=values)
    return Applied()


async def _complaint_open(caller: Caller, a: proto.ComplaintOpenArgs, hlc: str) -> Applied:
    await complaints.open_complaint(caller=caller, data=_convert(a, ComplaintCreate), ident=a.id)
    return Applied()


async def _complaint_step(caller: Caller, a: proto.ComplaintStepArgs, hlc: str) -> Applied:
    data = _convert(a, ComplaintStep, drop=("complaint_id",))
    await complaints.step(caller=caller, complaint_id=a.complaint_id, data=data)
    return Applied()


APPLIERS: dict[str, Applier] = {
    "customer.create": _customer_create,
    "customer.update": _customer_update,
    "phone.add": _phone_add,
    "tag.add": _tag_add,
    "tag.remove": _tag_remove,
    "interaction.log": _interaction_log,
    "task.create": _task_create,
    "task.complete": _task_complete,
    "task.snooze": _task_snooze,
    "opportunity.create": _opportunity_create,
    "opportunity.update": _opportunity_update,
    "opportunity.move": _opportunity_move,
    "notification.read": _notification_read,
    "notification.read_all": _notification_read_all,
    "follow.set": _follow_set,
    "prefs.update": _prefs_update,
    "complaint.open": _complaint_open,
    "complaint.step": _complaint_step,
}
assert set(APPLIERS) == set(proto.MUTATION_ARGS) == set(TARGETS)


def cap_hlc(stamp: str, now: dt.datetime) -> str:
    """A phone clock far ahead of the server's is pulled back, so it cannot win every merge."""
    wall, counter, node = proto.hlc_parse(stamp)
    limit = int(now.timestamp() * 1000) + proto.HLC_MAX_AHEAD_MS
    return proto.hlc_format(wall, counter, node) if wall <= limit else proto.hlc_format(limit, counter, node)


async def _id_taken(table: str, ident: uuid.UUID) -> bool:
    rows = await SyncMutation.raw(f"SELECT 1 AS x FROM {table} WHERE id = {{}}", ident)
    return bool(rows)


async def _apply(caller: Caller, mutation: proto.Mutation, args: msgspec.Struct, now: dt.datetime) -> Applied:
    if getattr(args, "customer_id", None) is not None:
        # An edit queued offline for a customer merged since: it lands on the customer it is now.
        survivor = await customers.resolve_merged(args.customer_id)
        if survivor != args.customer_id:
            args = msgspec.structs.replace(args, customer_id=survivor)
            if mutation.name == "follow.set":
                args = msgspec.structs.replace(args, follow_id=proto.follow_id(caller.user_id, survivor))
    create = CREATES.get(mutation.name)
    if create is not None and await _id_taken(create[0], args.id):
        raise Invalid(f"id {args.id} is already used; make a new id for a new row", field="id")
    return await APPLIERS[mutation.name](caller, args, cap_hlc(mutation.hlc, now))


async def _rows(caller: Caller, mutation: proto.Mutation, args: Any, applied: Applied | None) -> list[proto.TableRows]:
    """The server's current rows of what the mutation touched (tombstones included), in scope."""
    pages = []
    for table, arg in TARGETS[mutation.name]:
        ident = getattr(args, arg, None) if args else None
        if ident is None:
            continue
        spec = proto.TABLES_BY_NAME[table]
        params: list[Any] = [ident]
        if spec.scope == "user":  # the caller's own rows only
            params.append(caller.user_id)
            where = "id = {} AND user_id = {}"
        else:
            where = f"id = {{}} AND {caller.store_filter('store_id', params)}"
        rows = await read_rows(spec, where=where, params=params, caller=caller)
        if rows:
            pages.append(proto.TableRows(table=table, columns=list(spec.column_names), rows=rows))
    return pages


_ANSWER_COLUMNS = ("client_id", "mutation_id", "name", "status", "reason", "field", "lost_fields", "created_at")
_encoder = msgspec.json.Encoder()
_INTEGRITY = (asyncpg.IntegrityConstraintViolationError, sqlite3.IntegrityError)


async def push(*, caller: Caller, request: proto.PushRequest) -> proto.PushResponse:
    if len(request.mutations) > proto.MAX_MUTATIONS_PER_PUSH:
        raise Invalid(
            f"at most {proto.MAX_MUTATIONS_PER_PUSH} mutations per push, got {len(request.mutations)}",
            field="mutations",
        )
    ids = [m.id for m in request.mutations]
    if any(b <= a for a, b in itertools.pairwise(ids)):
        raise Invalid("mutation ids must increase within a push (oldest first)", field="mutations")
    now = dt.datetime.now(dt.UTC)
    results: list[proto.MutationResult] = []
    async with transaction() as txn:
        client = await register_client(
            caller=caller, client_id=request.client_id, schema_version=request.schema_version, lock=True
        )
        last = int(client["last_mutation_id"])
        replayed = [m.id for m in request.mutations if m.id <= last]
        answers = {}
        if replayed:
            for row in await SyncMutation.select().where(
                (SyncMutation.client_id == request.client_id) & SyncMutation.mutation_id.is_in(replayed)
            ):
                answers[int(row["mutation_id"])] = row
        decoded: list[tuple[proto.Mutation, Any, str | None]] = []
        for mutation in request.mutations:
            try:
                decoded.append((mutation, msgspec.convert(mutation.args, proto.MUTATION_ARGS[mutation.name]), None))
            except msgspec.ValidationError as exc:
                decoded.append((mutation, None, f"{mutation.name} arguments: {exc}"))
        # Logged visits and calls (most of what phones push) are checked in one go and written last,
        # so the store's change counter is locked only for the final statements.
        # (Not when the push creates a customer: its visits must see it, so everything goes in order.)
        batch = [(m, a) for m, a, bad in decoded if m.id > last and bad is None and m.name in BATCHED]
        if any(m.name == "customer.create" and m.id > last for m, _, _ in decoded):
            batch = []
        batch_answers, prepared = await _check_batch(caller, batch)
        records = []
        for mutation, args, bad_args in decoded:
            if mutation.id <= last:
                results.append(await _replayed(caller, mutation, args, answers.get(mutation.id), last))
                continue
            applied: Applied | None = None
            if bad_args is not None:
                result = proto.MutationResult(id=mutation.id, status="rejected", reason=bad_args, field="args")
            elif mutation.id in batch_answers:
                error = batch_answers[mutation.id]
                if error is None:
                    result = proto.MutationResult(id=mutation.id, status="applied")
                    applied = Applied(echo=False)
                else:
                    result = proto.MutationResult(
                        id=mutation.id, status="rejected", reason=error.detail, field=error.field
                    )
            else:
                savepoint = await txn.savepoint(f"m{mutation.id}")
                try:
                    applied = await _apply(caller, mutation, args, now)
                except DomainError as exc:
                    await savepoint.rollback_to()
                    result = proto.MutationResult(id=mutation.id, status="rejected", reason=exc.detail, field=exc.field)
                except _INTEGRITY as exc:
                    await savepoint.rollback_to()
                    reason = f"conflicts with data already on the server ({type(exc).__name__})"
                    result = proto.MutationResult(id=mutation.id, status="rejected", reason=reason)
                else:
                    await savepoint.release()
                    result = proto.MutationResult(id=mutation.id, status="applied", lost_fields=applied.lost_fields)
            if applied is None or applied.echo:
                result.rows = await _rows(caller, mutation, args, applied)
            results.append(result)
            records.append(
                (
                    request.client_id,
                    mutation.id,
                    mutation.name,
                    result.status,
                    result.reason,
                    result.field,
                    _encoder.encode(result.lost_fields).decode(),
                    now,
                )
            )
            last = mutation.id
        await insert_many("sync_mutations", _ANSWER_COLUMNS, records)
        await SyncClient.update({SyncClient.last_mutation_id: last, SyncClient.last_push_at: now}).where(
            SyncClient.id == request.client_id
        )
        rejected = sum(1 for r in records if r[3] == "rejected")  # answered now (a replay is counted once)
        await activity.record(user_id=caller.user_id, store_id=caller.store_id, now=now, pushes=1, rejected=rejected)
        await interactions.write_many(caller=caller, prepared=prepared)
    return proto.PushResponse(results=results, last_mutation_id=last)


BATCHED = {"interaction.log"}


async def _check_batch(
    caller: Caller, batch: list[tuple[proto.Mutation, Any]]
) -> tuple[dict[int, DomainError | None], interactions.Prepared]:
    """Check the batchable mutations; answers by mutation id (None: accepted)."""
    if not batch:
        return {}, {}
    items = []
    by_ident: dict[uuid.UUID, int] = {}
    answers: dict[int, DomainError | None] = {}
    merged = await customers.merged_ids({a.customer_id for _, a in batch})
    if merged:  # visits queued offline for a customer merged since: they land on the survivor
        batch = [
            (m, msgspec.structs.replace(a, customer_id=merged.get(a.customer_id, a.customer_id))) for m, a in batch
        ]
    for mutation, args in batch:
        if args.id in by_ident:  # the same id twice in one push: only the first may be stored
            continue
        try:
            items.append((args.id, _convert(args, InteractionCreate)))
        except DomainError as exc:
            answers[mutation.id] = exc
            continue
        by_ident[args.id] = mutation.id
    checked, prepared = await interactions.check_many(caller=caller, items=items)
    for mutation, args in batch:
        if mutation.id not in answers:
            error = checked.get(args.id)
            if by_ident.get(args.id) != mutation.id:  # the same id twice in one push
                error = Invalid(f"id {args.id} is already used; make a new id for a new row", field="id")
            answers[mutation.id] = error
    return answers, prepared


async def _replayed(
    caller: Caller, mutation: proto.Mutation, args: Any, answer: dict | None, last: int
) -> proto.MutationResult:
    if answer is None:
        # Never seen, yet below the last applied id: the device sent it out of order.
        return proto.MutationResult(
            id=mutation.id,
            status="rejected",
            reason=f"mutation {mutation.id} arrived after mutation {last} was applied; ids must increase",
            rows=await _rows(caller, mutation, args, None),
        )
    lost = msgspec.convert(json.loads(answer["lost_fields"] or "[]"), list[proto.FieldLoss])
    return proto.MutationResult(
        id=mutation.id,
        status=answer["status"],
        reason=answer["reason"],
        field=answer["field"],
        lost_fields=lost,
        rows=await _rows(caller, mutation, args, None),
    )
