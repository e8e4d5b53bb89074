"""Segments and value (REQUIREMENTS §7): the facts behind a customer's standing, and the nightly
scoring that writes every live customer's standing to ``customer_standings``.

The standing itself is decided in ``shared/segments.py`` (the phone's offline card calls the same
function); here are only the reads and writes. A store is scored in one transaction: its rows are
replaced by its live customers' (a customer moved to another store leaves with the first of the
two stores scored, a deleted one with its store's next scoring).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from server import db
from server.analytics.filters import CHAIN_TZ
from server.values import as_uuid, money, utc
from shared.segments import CONTACT_DAYS, Facts, standing
from shared.wire import Standing

log = logging.getLogger("floorwalker.analytics")

SCORE_AT = dt.time(3, 0)  # nightly, in the chain's time zone
COLUMNS = (
    "customer_id",
    "store_id",
    "owner_id",
    "segment",
    "health",
    "recency",
    "frequency",
    "monetary",
    "days_since_order",
    "next_purchase_on",
    "win_back",
    "amount_total",
    "amount_12m",
    "computed_at",
)


def _windows(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return now - dt.timedelta(days=365), now - dt.timedelta(days=CONTACT_DAYS)


def facts_from(row: dict[str, Any]) -> Facts:
    """Facts from a row of the aggregates both queries below name alike."""
    return Facts(
        orders=int(row["n"] or 0),
        amount_total=money(row["total"]),
        orders_12m=int(row["n12"] or 0),
        amount_12m=money(row["a12"]),
        first_order_at=utc(row["first_at"]),
        last_order_at=utc(row["last_at"]),
        complaints_12m=int(row["complaints"] or 0),
        interactions_90d=int(row["contacts"] or 0),
    )


def one_customer_sql(customer_id: uuid.UUID, now: dt.datetime) -> tuple[str, list[Any]]:
    """One customer's facts (one row), plus the amount bought in a store, for the card."""
    year, quarter = _windows(now)
    sql = (
        "SELECT COUNT(*) AS n, SUM(amount) AS total, "
        "SUM(CASE WHEN ordered_at >= {} THEN 1 ELSE 0 END) AS n12, "
        "SUM(CASE WHEN ordered_at >= {} THEN amount ELSE 0 END) AS a12, "
        "MIN(ordered_at) AS first_at, MAX(ordered_at) AS last_at, "
        "SUM(CASE WHEN channel = 'store' THEN amount ELSE 0 END) AS in_store, "
        "(SELECT COUNT(*) FROM complaints WHERE customer_id = {} AND deleted = false AND opened_at >= {}) "
        "AS complaints, "
        "(SELECT COUNT(*) FROM interactions WHERE customer_id = {} AND deleted = false AND occurred_at >= {}) "
        "AS contacts "
        "FROM orders WHERE customer_id = {} AND deleted = false"
    )
    return sql, [year, year, customer_id, year, customer_id, quarter, customer_id]


def _store_sql(store_id: uuid.UUID, now: dt.datetime) -> tuple[str, list[Any]]:
    """Every live customer of the store (id, owner_id) with its facts."""
    year, quarter = _windows(now)
    mine = "customer_id IN (SELECT id FROM customers WHERE store_id = {} AND deleted = false)"
    sql = (
        "SELECT c.id, c.owner_id, o.n, o.total, o.n12, o.a12, o.first_at, o.last_at, k.n AS complaints, "
        "i.n AS contacts "
        "FROM customers c "
        "LEFT JOIN (SELECT customer_id, COUNT(*) AS n, SUM(amount) AS total, "
        "SUM(CASE WHEN ordered_at >= {} THEN 1 ELSE 0 END) AS n12, "
        "SUM(CASE WHEN ordered_at >= {} THEN amount ELSE 0 END) AS a12, "
        "MIN(ordered_at) AS first_at, MAX(ordered_at) AS last_at "
        f"FROM orders WHERE deleted = false AND {mine} GROUP BY customer_id) o ON o.customer_id = c.id "
        "LEFT JOIN (SELECT customer_id, COUNT(*) AS n FROM complaints "
        f"WHERE deleted = false AND opened_at >= {{}} AND {mine} GROUP BY customer_id) k ON k.customer_id = c.id "
        "LEFT JOIN (SELECT customer_id, COUNT(*) AS n FROM interactions "
        f"WHERE deleted = false AND occurred_at >= {{}} AND {mine} GROUP BY customer_id) i ON i.customer_id = c.id "
        "WHERE c.store_id = {} AND c.deleted = false"
    )
    return sql, [year, year, store_id, year, store_id, quarter, store_id, store_id]


def _row(customer_id: Any, store_id: uuid.UUID, owner_id: Any, facts: Facts, s: Standing, now: dt.datetime) -> tuple:
    return (
        as_uuid(customer_id),
        store_id,
        as_uuid(owner_id),
        s.group.value,
        s.health,
        s.recency,
        s.frequency,
        s.monetary,
        s.days_since_order,
        s.next_purchase_on,
        s.win_back,
        facts.amount_total,
        facts.amount_12m,
        now,
    )


async def score_store(store_id: uuid.UUID, now: dt.datetime) -> int:
    """Replace the store's standings with its live customers' as of ``now``; how many were written."""
    sql, params = _store_sql(store_id, now)
    from server.analytics.tables import CustomerStanding

    async with db.transaction():
        rows = []
        for r in await CustomerStanding.raw(sql, *params):
            facts = facts_from(r)
            rows.append(_row(r["id"], store_id, r["owner_id"], facts, standing(facts, now), now))
        ids = [row[0] for row in rows]
        await _delete(store_id, ids)
        await db.insert_many("customer_standings", COLUMNS, rows, copy=True)
    return len(rows)


async def _delete(store_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    from server.analytics.tables import CustomerStanding

    if db.is_postgres():
        await CustomerStanding.raw(
            "DELETE FROM customer_standings WHERE store_id = {} OR customer_id = ANY({}::uuid[])", store_id, ids
        )
        return
    await CustomerStanding.raw("DELETE FROM customer_standings WHERE store_id = {}", store_id)
    for start in range(0, len(ids), 500):  # SQLite: at most a few hundred parameters a statement
        part = ids[start : start + 500]
        marks = ", ".join("{}" for _ in part)
        await CustomerStanding.raw(f"DELETE FROM customer_standings WHERE customer_id IN ({marks})", *part)


async def score_all(now: dt.datetime | None = None, stores: list[uuid.UUID] | None = None) -> int:
    """Score every store (or those given), one transaction each; how many customers were scored."""
    from server.stores.tables import Store

    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if stores is None:
        stores = [r["id"] for r in await Store.select(Store.id).order_by(Store.code)]
    scored = 0
    for store_id in stores:
        scored += await score_store(as_uuid(store_id), now)
    log.info("scored %d customers of %d stores", scored, len(stores))
    return scored


async def last_scored(stores: list[uuid.UUID] | None = None) -> dt.datetime | None:
    """When the standings (of those stores) were last written; None: never."""
    from server.analytics.tables import CustomerStanding

    at = CustomerStanding.computed_at
    query = CustomerStanding.select(at).order_by(at, ascending=False)
    if stores is not None:
        query = query.where(CustomerStanding.store_id.is_in(list(stores)))
    row = await query.first()
    return utc(row["computed_at"]) if row else None


def due_since(now: dt.datetime) -> dt.datetime:
    """The last nightly scoring time at or before ``now`` (03:00 in the chain's time zone)."""
    local = now.astimezone(CHAIN_TZ)
    at = dt.datetime.combine(local.date(), SCORE_AT, CHAIN_TZ)
    if at > local:
        at -= dt.timedelta(days=1)
    return at.astimezone(dt.UTC)


async def scored_at() -> dict[uuid.UUID, dt.datetime]:
    """Each store's latest scoring (stores never scored are absent)."""
    from server.analytics.tables import CustomerStanding

    rows = await CustomerStanding.raw(
        "SELECT store_id, MAX(computed_at) AS at FROM customer_standings GROUP BY store_id"
    )
    return {as_uuid(r["store_id"]): utc(r["at"]) for r in rows}


async def score_if_due(now: dt.datetime | None = None, stores: list[uuid.UUID] | None = None) -> int:
    """The scheduler's hourly check: score each store (of those given, else all) not scored since
    the last 03:00 — a fresh database at once, a missed night at the first check after it; a store
    scored by hand during the day is not scored again, and does not hold the others back."""
    from server.stores.tables import Store

    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if stores is None:
        stores = [r["id"] for r in await Store.select(Store.id).order_by(Store.code)]
    done, since = await scored_at(), due_since(now)
    ids = [as_uuid(s) for s in stores]
    due = [s for s in ids if s not in done or done[s] < since]
    return await score_all(now, due) if due else 0
