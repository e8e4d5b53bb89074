"""Interactions: log a visit, call, note or message; read a customer's timeline."""

from __future__ import annotations

import datetime as dt
import uuid

from server.auth.scope import Caller
from server.db import transaction
from server.errors import Invalid
from server.interactions.tables import Interaction
from server.sync.service import allocate_versions, store_scope
from server.values import as_uuid, client_time, utc
from shared.enums import LOGGABLE_INTERACTIONS, InteractionChannel, InteractionKind
from shared.ids import uuid7
from shared.wire import InteractionCreate, InteractionOut

DEFAULT_CHANNEL = {
    InteractionKind.VISIT: InteractionChannel.STORE,
    InteractionKind.CALL: InteractionChannel.PHONE,
    InteractionKind.NOTE: InteractionChannel.STORE,
    InteractionKind.MESSAGE: InteractionChannel.WECHAT,
}
CLOCK_SLACK = dt.timedelta(minutes=5)  # a phone's clock may run a little ahead

_SELECT = """
SELECT i.id, i.customer_id, i.kind, i.channel, i.occurred_at, i.duration_seconds, i.body, i.user_id,
       p.name_zh AS product_name, g.code AS category
FROM interactions i
LEFT JOIN products p ON p.id = i.product_id
LEFT JOIN categories g ON g.id = i.category_id
"""


def to_out(row: dict) -> InteractionOut:
    return InteractionOut(
        id=as_uuid(row["id"]),
        customer_id=as_uuid(row["customer_id"]),
        kind=InteractionKind(row["kind"]),
        channel=InteractionChannel(row["channel"]),
        occurred_at=utc(row["occurred_at"]),
        duration_seconds=row["duration_seconds"],
        body=row["body"] or "",
        user_id=as_uuid(row["user_id"]),
        product_name=row["product_name"],
        category=row["category"],
    )


async def for_customer(*, customer_id: uuid.UUID, limit: int = 50) -> list[InteractionOut]:
    rows = await Interaction.raw(
        _SELECT + "WHERE i.customer_id = {} AND i.deleted = false ORDER BY i.occurred_at DESC, i.id DESC LIMIT {}",
        customer_id,
        limit,
    )
    return [to_out(r) for r in rows]


async def log(*, caller: Caller, data: InteractionCreate, ident: uuid.UUID | None = None) -> InteractionOut:
    """``ident``: the id a device made for the entry (sync); a fresh UUIDv7 otherwise."""
    from server.customers.service import load_customer_scope

    if data.kind not in LOGGABLE_INTERACTIONS:
        allowed = ", ".join(sorted(LOGGABLE_INTERACTIONS))
        raise Invalid(f"{data.kind} events come from the shop systems; log one of {allowed}", field="kind")
    now = dt.datetime.now(dt.UTC)
    occurred_at = now
    if data.occurred_at is not None:
        occurred_at = client_time(data.occurred_at, "occurred_at")
        if occurred_at > now + CLOCK_SLACK:
            raise Invalid("occurred_at is in the future", field="occurred_at")
    if data.kind in (InteractionKind.NOTE,) and not data.body.strip():
        raise Invalid("a note needs a body", field="body")
    interaction_id = ident or uuid7()
    async with transaction():
        store_id, _ = await load_customer_scope(caller=caller, customer_id=data.customer_id)
        version = await allocate_versions(store_scope(store_id))
        await Interaction.insert(
            Interaction(
                id=interaction_id,
                version=version,
                updated_at=now,
                store_id=store_id,
                customer_id=data.customer_id,
                user_id=caller.user_id,
                kind=data.kind,
                channel=data.channel or DEFAULT_CHANNEL[data.kind],
                occurred_at=occurred_at,
                duration_seconds=data.duration_seconds,
                body=data.body.strip(),
                created_at=now,
            )
        )
    rows = await Interaction.raw(_SELECT + "WHERE i.id = {}", interaction_id)
    return to_out(rows[0])
