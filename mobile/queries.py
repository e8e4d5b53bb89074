"""What the phone's screens read, straight from the replica (works offline).

Each query is a handful of indexed SQL statements (the replica's indexes come from the table specs
in shared/sync.py); results are plain dataclasses. Money is summed as Decimal in Python for the
card, and as REAL in SQL only where it filters (the high-value threshold).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from mobile import times
from mobile.mutators import fetch_all, fetch_one
from mobile.replica import Replica
from shared.enums import ValueTier
from shared.phones import mask

HIGH_VALUE_12M = Decimal("5000")  # REQUIREMENTS §7: more than 5,000 in the last twelve months
CONTACT_KINDS = ("visit", "call", "message", "note")  # what a person logs; browse/cart are not contact
CARD_ORDERS = 50
CARD_INTERACTIONS = 50
CENT = Decimal("0.01")


def _like(fragment: str) -> str:
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _money(value: Any) -> Decimal:
    return Decimal(str(value or "0")).quantize(CENT)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- search -------------------------------------------------------------------------------------


@dataclasses.dataclass
class CustomerHit:
    id: str
    name: str
    phone: str | None  # the primary phone, masked unless asked otherwise
    store_id: str
    owner_id: str | None
    tags: list[str]


def search_customers(
    replica: Replica,
    text: str = "",
    *,
    mine: bool = False,
    high_value: bool = False,
    open_opportunity: bool = False,
    not_contacted_days: int | None = None,
    user_id: str | None = None,
    now: dt.datetime | None = None,
    limit: int = 50,
    unmask: bool = False,
) -> list[CustomerHit]:
    """Customers whose name contains ``text``, or one of whose phones contains its digits (3 or
    more digits), with optional filters: ``mine`` (owned by the user), ``high_value`` (more than
    5,000 in twelve months), ``open_opportunity``, ``not_contacted_days`` (no visit, call, message
    or note for that many days). Ordered by name."""
    now = now or _utcnow()
    where: list[str] = []
    params: list[Any] = []
    text = text.strip()
    if text:
        digits = re.sub(r"[\s\-()+]", "", text)
        if digits.isdigit() and len(digits) >= 3:
            where.append("c.id IN (SELECT p.customer_id FROM customer_phones p WHERE p.digits LIKE ? ESCAPE '\\')")
            params.append(_like(digits))
        else:
            where.append("c.name LIKE ? ESCAPE '\\'")  # SQLite's LIKE ignores ASCII case
            params.append(_like(text))
    if mine:
        where.append("c.owner_id = ?")
        params.append(user_id or replica.user_id)
    if high_value:
        where.append(
            "(SELECT sum(CAST(o.amount AS REAL)) FROM orders o WHERE o.customer_id = c.id AND o.ordered_at >= ?) > ?"
        )
        params.extend([times.bound(now - dt.timedelta(days=365)), float(HIGH_VALUE_12M)])
    if open_opportunity:
        where.append(
            "EXISTS (SELECT 1 FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id "
            "WHERE o.customer_id = c.id AND s.kind = 'open')"
        )
    if not_contacted_days is not None:
        kinds = ", ".join("?" * len(CONTACT_KINDS))
        where.append(
            f"NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id AND i.occurred_at >= ? "
            f"AND i.kind IN ({kinds}))"
        )
        params.extend([times.bound(now - dt.timedelta(days=not_contacted_days)), *CONTACT_KINDS])
    sql = (
        "SELECT c.id, c.name, c.store_id, c.owner_id, (SELECT p.number FROM customer_phones p "
        "WHERE p.customer_id = c.id ORDER BY p.is_primary DESC, p.created_at LIMIT 1) AS phone FROM customers c"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY c.name, c.id LIMIT ?"
    )
    rows = fetch_all(replica.db, sql, [*params, limit])
    tags = _tags_of(replica, [r["id"] for r in rows])
    return [
        CustomerHit(
            id=r["id"],
            name=r["name"],
            phone=r["phone"] if unmask else mask(r["phone"]),
            store_id=r["store_id"],
            owner_id=r["owner_id"],
            tags=tags.get(r["id"], []),
        )
        for r in rows
    ]


def _tags_of(replica: Replica, ids: list[str]) -> dict[str, list[str]]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    out: dict[str, list[str]] = {}
    sql = f"SELECT customer_id, tag FROM customer_tags WHERE customer_id IN ({marks}) ORDER BY created_at, tag"
    for customer_id, tag in replica.db.execute(sql, ids):
        out.setdefault(customer_id, []).append(tag)
    return out


# --- the customer card ----------------------------------------------------------------------------


@dataclasses.dataclass
class PhoneView:
    id: str
    number: str | None
    kind: str
    is_primary: bool
    masked: bool  # the number shown is masked (by this query or already by the server)


@dataclasses.dataclass
class ValueView:
    tier: str
    amount_12m: Decimal
    amount_total: Decimal
    order_count: int
    last_order_at: str | None
    store_amount: Decimal
    online_amount: Decimal


@dataclasses.dataclass
class OrderLineView:
    product_id: str | None
    product_name: str
    category: str | None
    quantity: int
    unit_price: Decimal
    amount: Decimal


@dataclasses.dataclass
class OrderView:
    id: str
    channel: str
    ordered_at: str
    amount: Decimal
    payment_method: str | None
    sold_by_store_code: str | None
    lines: list[OrderLineView]


@dataclasses.dataclass
class InteractionView:
    id: str
    kind: str
    channel: str | None
    occurred_at: str
    duration_seconds: int | None
    body: str | None
    user_id: str | None
    user_name: str | None
    pending: bool  # made on this phone, not yet on the server


@dataclasses.dataclass
class OpportunityView:
    id: str
    title: str
    stage: str | None  # stage code
    stage_name_zh: str | None
    stage_name_en: str | None
    stage_kind: str | None
    amount: Decimal
    expected_close_date: str | None
    contract_end_date: str | None
    stage_entered_at: str | None
    lost_reason: str | None
    owner_id: str | None
    pending: bool


@dataclasses.dataclass
class TaskView:
    id: str
    kind: str
    title: str
    notes: str | None
    due_at: str
    status: str
    customer_id: str | None
    customer_name: str | None
    opportunity_id: str | None
    overdue: bool
    pending: bool


@dataclasses.dataclass
class ComplaintView:
    id: str
    category: str
    status: str
    description: str | None
    opened_at: str | None
    solved_at: str | None
    callback_at: str | None
    satisfaction: int | None


@dataclasses.dataclass
class CustomerCardView:
    profile: dict[str, Any]  # the customers row, plus store_code and owner_name
    phones: list[PhoneView]
    identities: list[dict[str, Any]]
    tags: list[dict[str, Any]]  # {id, tag}: the id is what tag.remove needs
    value: ValueView
    orders: list[OrderView]
    interactions: list[InteractionView]
    opportunities: list[OpportunityView]
    tasks: list[TaskView]
    complaints: list[ComplaintView]


def customer_card(
    replica: Replica, customer_id: str, *, unmask: bool = False, now: dt.datetime | None = None
) -> CustomerCardView | None:
    """Everything the card shows about one customer, or None when it is not on the phone."""
    db = replica.db
    now = now or _utcnow()
    cid = str(customer_id)
    profile = fetch_one(
        db,
        "SELECT c.*, s.code AS store_code, u.display_name AS owner_name FROM customers c "
        "LEFT JOIN stores s ON s.id = c.store_id LEFT JOIN users u ON u.id = c.owner_id WHERE c.id = ?",
        (cid,),
    )
    if profile is None:
        return None
    phones = []
    for r in fetch_all(
        db,
        "SELECT id, number, kind, is_primary FROM customer_phones WHERE customer_id = ? "
        "ORDER BY is_primary DESC, created_at",
        (cid,),
    ):
        already = bool(r["number"]) and "*" in r["number"]
        number = r["number"] if unmask or already else mask(r["number"])
        phones.append(PhoneView(r["id"], number, r["kind"], bool(r["is_primary"]), masked=already or not unmask))
    tags = fetch_all(db, "SELECT id, tag FROM customer_tags WHERE customer_id = ? ORDER BY created_at, tag", (cid,))
    identities = fetch_all(
        db, "SELECT kind, value FROM customer_identities WHERE customer_id = ? ORDER BY created_at", (cid,)
    )
    return CustomerCardView(
        profile=profile,
        phones=phones,
        identities=identities,
        tags=tags,
        value=_value(replica, cid, now),
        orders=_orders(replica, cid),
        interactions=_interactions(replica, cid),
        opportunities=_opportunities(replica, cid),
        tasks=_tasks(replica, "t.customer_id = ? AND t.status = 'open'", [cid], now),
        complaints=[
            ComplaintView(
                r["id"],
                r["category"],
                r["status"],
                r["description"],
                r["opened_at"],
                r["solved_at"],
                r["callback_at"],
                r["satisfaction"],
            )
            for r in fetch_all(db, "SELECT * FROM complaints WHERE customer_id = ? ORDER BY opened_at DESC", (cid,))
        ],
    )


def _value(replica: Replica, cid: str, now: dt.datetime) -> ValueView:
    since = times.bound(now - dt.timedelta(days=365))
    total = last_12m = in_store = Decimal(0)
    count = 0
    last: str | None = None
    for amount, channel, ordered_at in replica.db.execute(
        "SELECT amount, channel, ordered_at FROM orders WHERE customer_id = ?", (cid,)
    ):
        value = _money(amount)
        count += 1
        total += value
        if channel == "store":
            in_store += value
        if ordered_at and ordered_at >= since:
            last_12m += value
        if ordered_at and (last is None or ordered_at > last):
            last = ordered_at
    tier = ValueTier.NEW if not count else ValueTier.HIGH if last_12m > HIGH_VALUE_12M else ValueTier.REGULAR
    return ValueView(tier.value, last_12m, total, count, last, in_store, total - in_store)


def _orders(replica: Replica, cid: str) -> list[OrderView]:
    rows = fetch_all(
        replica.db,
        "SELECT o.id, o.channel, o.ordered_at, o.amount, o.payment_method, s.code AS sold_by FROM orders o "
        "LEFT JOIN stores s ON s.id = o.sold_by_store_id WHERE o.customer_id = ? ORDER BY o.ordered_at DESC LIMIT ?",
        (cid, CARD_ORDERS),
    )
    if not rows:
        return []
    marks = ", ".join("?" * len(rows))
    lines: dict[str, list[OrderLineView]] = {}
    for r in fetch_all(
        replica.db,
        "SELECT l.order_id, l.product_id, l.product_name, g.code AS category, l.quantity, l.unit_price, l.amount "
        "FROM order_lines l LEFT JOIN categories g ON g.id = l.category_id "
        f"WHERE l.order_id IN ({marks}) ORDER BY l.id",
        [r["id"] for r in rows],
    ):
        lines.setdefault(r["order_id"], []).append(
            OrderLineView(
                r["product_id"],
                r["product_name"],
                r["category"],
                int(r["quantity"] or 0),
                _money(r["unit_price"]),
                _money(r["amount"]),
            )
        )
    return [
        OrderView(
            r["id"],
            r["channel"],
            r["ordered_at"],
            _money(r["amount"]),
            r["payment_method"],
            r["sold_by"],
            lines.get(r["id"], []),
        )
        for r in rows
    ]


def _interactions(replica: Replica, cid: str) -> list[InteractionView]:
    rows = fetch_all(
        replica.db,
        "SELECT i.*, u.display_name AS user_name FROM interactions i LEFT JOIN users u ON u.id = i.user_id "
        "WHERE i.customer_id = ? ORDER BY i.occurred_at DESC LIMIT ?",
        (cid, CARD_INTERACTIONS),
    )
    return [
        InteractionView(
            r["id"],
            r["kind"],
            r["channel"],
            r["occurred_at"],
            r["duration_seconds"],
            r["body"],
            r["user_id"],
            r["user_name"],
            pending=r["version"] == 0,
        )
        for r in rows
    ]


def _opportunities(replica: Replica, cid: str) -> list[OpportunityView]:
    rows = fetch_all(
        replica.db,
        "SELECT o.*, s.code AS stage_code, s.name_zh, s.name_en, s.kind AS stage_kind FROM opportunities o "
        "LEFT JOIN pipeline_stages s ON s.id = o.stage_id WHERE o.customer_id = ? ORDER BY o.created_at DESC",
        (cid,),
    )
    return [
        OpportunityView(
            r["id"],
            r["title"],
            r["stage_code"],
            r["name_zh"],
            r["name_en"],
            r["stage_kind"],
            _money(r["amount"]),
            r["expected_close_date"],
            r["contract_end_date"],
            r["stage_entered_at"],
            r["lost_reason"],
            r["owner_id"],
            pending=r["version"] == 0,
        )
        for r in rows
    ]


def _tasks(replica: Replica, where: str, params: list[Any], now: dt.datetime) -> list[TaskView]:
    rows = fetch_all(
        replica.db,
        "SELECT t.*, c.name AS customer_name FROM tasks t LEFT JOIN customers c ON c.id = t.customer_id "
        f"WHERE {where} ORDER BY t.due_at, t.id",
        params,
    )
    current = times.bound(now)
    return [
        TaskView(
            r["id"],
            r["kind"],
            r["title"],
            r["notes"],
            r["due_at"],
            r["status"],
            r["customer_id"],
            r["customer_name"],
            r["opportunity_id"],
            overdue=r["status"] == "open" and r["due_at"] < current,
            pending=r["version"] == 0,
        )
        for r in rows
    ]


# --- today ----------------------------------------------------------------------------------------


def today_tasks(
    replica: Replica,
    user_id: str | None = None,
    *,
    tz: str | dt.tzinfo = "Asia/Shanghai",
    now: dt.datetime | None = None,
) -> dict[str, list[TaskView]]:
    """The user's open tasks due before the end of today in ``tz`` (overdue ones included),
    grouped by kind, each group ordered by due time."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    now = now or _utcnow()
    local = now.astimezone(zone)
    end_of_day = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    tasks = _tasks(
        replica,
        "t.owner_id = ? AND t.status = 'open' AND t.due_at < ?",
        [str(user_id or replica.user_id), times.bound(end_of_day)],
        now,
    )
    grouped: dict[str, list[TaskView]] = {}
    for task in tasks:
        grouped.setdefault(task.kind, []).append(task)
    return grouped
