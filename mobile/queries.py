"""What the phone's screens read, straight from the replica (works offline).

Each query is a handful of indexed SQL statements (the replica's indexes come from the table specs
in shared/sync.py); results are plain dataclasses. Money is summed as Decimal in Python for the
card, and as REAL in SQL only where it filters (the high-value threshold).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from mobile import times
from mobile.mutators import fetch_all, fetch_one
from mobile.replica import Replica
from shared import complaints as complaint_rules
from shared import kb
from shared.phones import mask
from shared.segments import CONTACT_DAYS, DORMANT_DAYS, HIGH_VALUE_12M, WIN_BACK_AMOUNT, Facts, standing, tier
from shared.wire import Standing

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
    win_back: bool = False,
    user_id: str | None = None,
    now: dt.datetime | None = None,
    limit: int = 50,
    unmask: bool = False,
) -> list[CustomerHit]:
    """Customers whose name contains ``text``, or one of whose phones contains its digits (3 or
    more digits), with optional filters: ``mine`` (owned by the user), ``high_value`` (more than
    5,000 in twelve months), ``open_opportunity``, ``not_contacted_days`` (no visit, call, message
    or note for that many days), ``win_back`` (dormant or lost and worth winning back, as
    shared/segments.py decides: no order for over 180 days, and 5,000 spent or two orders). Ordered
    by name."""
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
    if win_back:
        where.append(
            "c.id IN (SELECT o.customer_id FROM orders o GROUP BY o.customer_id HAVING MAX(o.ordered_at) < ? "
            "AND (SUM(CAST(o.amount AS REAL)) >= ? OR COUNT(*) >= 2))"
        )
        params.extend([times.bound(now - dt.timedelta(days=DORMANT_DAYS + 1)), float(WIN_BACK_AMOUNT)])
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
    standing: Standing


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
    history_retrieved_at: str | None = None
    first_response_at: str | None = None
    resolution: str = ""
    callback_note: str = ""
    next_steps: tuple[str, ...] = ()  # what the card offers now (shared/complaints.py)
    late: tuple[str, ...] = ()  # steps past their time: history, respond, callback

    @property
    def live(self) -> bool:
        return self.status != "closed"


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


def survivor_of(replica: Replica, customer_id: str) -> str:
    """The customer an id means now (after merges: the survivor, as the synced aliases say)."""
    row = fetch_one(replica.db, "SELECT survivor_id FROM customer_aliases WHERE id = ?", (str(customer_id),))
    return row["survivor_id"] if row else str(customer_id)


def customer_card(
    replica: Replica, customer_id: str, *, unmask: bool = False, now: dt.datetime | None = None
) -> CustomerCardView | None:
    """Everything the card shows about one customer, or None when it is not on the phone. A
    merged-away customer's id shows the customer it was merged into."""
    db = replica.db
    now = now or _utcnow()
    cid = survivor_of(replica, str(customer_id))
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
            _complaint(r, now)
            for r in fetch_all(db, "SELECT * FROM complaints WHERE customer_id = ? ORDER BY opened_at DESC", (cid,))
        ],
    )


def _complaint(r: dict[str, Any], now: dt.datetime) -> ComplaintView:
    """A complaint with the steps it may take next and those past their time (the server's
    clocks: shared/complaints.py)."""
    opened = times.parse(r["opened_at"]) if r["opened_at"] else now
    live = r["status"] != "closed"
    clocks = (
        ("history", r["history_retrieved_at"], opened + dt.timedelta(minutes=complaint_rules.HISTORY_MINUTES)),
        ("respond", r["first_response_at"], opened + dt.timedelta(minutes=complaint_rules.SOLUTION_MINUTES)),
    )
    if r["solved_at"]:
        due = times.parse(r["solved_at"]) + dt.timedelta(hours=complaint_rules.CALLBACK_HOURS)
        clocks += (("callback", r["callback_at"], due),)
    late = tuple(step for step, done, due in clocks if (times.parse(done) > due if done else live and now > due))
    return ComplaintView(
        r["id"],
        r["category"],
        r["status"],
        r["description"],
        r["opened_at"],
        r["solved_at"],
        r["callback_at"],
        r["satisfaction"],
        history_retrieved_at=r["history_retrieved_at"],
        first_response_at=r["first_response_at"],
        resolution=r.get("resolution") or "",
        callback_note=r.get("callback_note") or "",
        next_steps=tuple(
            complaint_rules.next_steps(r["status"], bool(r["history_retrieved_at"]), bool(r["first_response_at"]))
        ),
        late=late,
    )


def _value(replica: Replica, cid: str, now: dt.datetime) -> ValueView:
    """The card's value line and the customer's standing, from the replica with the function the
    server scores with (shared/segments.py): offline, the card says what the server's does."""
    year, quarter = times.bound(now - dt.timedelta(days=365)), times.bound(now - dt.timedelta(days=CONTACT_DAYS))
    total = last_12m = in_store = Decimal(0)
    count = count_12m = 0
    first: str | None = None
    last: str | None = None
    for amount, channel, ordered_at in replica.db.execute(
        "SELECT amount, channel, ordered_at FROM orders WHERE customer_id = ?", (cid,)
    ):
        value = _money(amount)
        count += 1
        total += value
        if channel == "store":
            in_store += value
        if ordered_at and ordered_at >= year:
            last_12m += value
            count_12m += 1
        if ordered_at and (last is None or ordered_at > last):
            last = ordered_at
        if ordered_at and (first is None or ordered_at < first):
            first = ordered_at
    complaints = replica.db.execute(
        "SELECT COUNT(*) FROM complaints WHERE customer_id = ? AND opened_at >= ?", (cid, year)
    ).fetchone()[0]
    contacts = replica.db.execute(
        "SELECT COUNT(*) FROM interactions WHERE customer_id = ? AND occurred_at >= ?", (cid, quarter)
    ).fetchone()[0]
    facts = Facts(
        orders=count,
        amount_total=total,
        orders_12m=count_12m,
        amount_12m=last_12m,
        first_order_at=times.parse(first) if first else None,
        last_order_at=times.parse(last) if last else None,
        complaints_12m=complaints,
        interactions_90d=contacts,
    )
    return ValueView(
        tier(count, last_12m).value, last_12m, total, count, last, in_store, total - in_store, standing(facts, now)
    )


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


def upcoming_tasks(
    replica: Replica,
    user_id: str | None = None,
    *,
    tz: str | dt.tzinfo = "Asia/Shanghai",
    now: dt.datetime | None = None,
    days: int = 3,
) -> list[TaskView]:
    """The user's open tasks due in the ``days`` days after today (what tomorrow holds: a browse
    follow-up the rules made for the next store day, a call-back), ordered by due time."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    now = now or _utcnow()
    local = now.astimezone(zone)
    start = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return _tasks(
        replica,
        "t.owner_id = ? AND t.status = 'open' AND t.due_at >= ? AND t.due_at < ?",
        [str(user_id or replica.user_id), times.bound(start), times.bound(start + dt.timedelta(days=days))],
        now,
    )


# --- pipeline -------------------------------------------------------------------------------------


@dataclasses.dataclass
class StageView:
    id: str
    code: str
    name_zh: str
    name_en: str
    kind: str
    position: int
    idle_days: int | None


def stages(replica: Replica) -> list[StageView]:
    return [
        StageView(r["id"], r["code"], r["name_zh"], r["name_en"], r["kind"], int(r["position"] or 0), r["idle_days"])
        for r in fetch_all(replica.db, "SELECT * FROM pipeline_stages ORDER BY position, code")
    ]


@dataclasses.dataclass
class StageStep:
    stage: str | None
    name_zh: str | None
    name_en: str | None
    entered_at: str | None
    left_at: str | None
    days: float  # time spent in the stage (until now when it has not been left)


@dataclasses.dataclass
class OpportunityDetail:
    opportunity: OpportunityView
    customer_id: str
    customer_name: str | None
    days_in_stage: float
    history: list[StageStep]


def _days(start: str | None, end: dt.datetime) -> float:
    if not start:
        return 0.0
    return max(0.0, (end - times.parse(start)).total_seconds() / 86400)


def opportunity_detail(
    replica: Replica, opportunity_id: str, *, now: dt.datetime | None = None
) -> OpportunityDetail | None:
    """One opportunity with its stage path (oldest first) and time in each stage."""
    now = now or _utcnow()
    row = fetch_one(replica.db, "SELECT customer_id FROM opportunities WHERE id = ?", (str(opportunity_id),))
    if row is None:
        return None
    view = next(o for o in _opportunities(replica, row["customer_id"]) if o.id == str(opportunity_id))
    customer = fetch_one(replica.db, "SELECT name FROM customers WHERE id = ?", (row["customer_id"],))
    history = [
        StageStep(
            r["code"],
            r["name_zh"],
            r["name_en"],
            r["entered_at"],
            r["left_at"],
            _days(r["entered_at"], times.parse(r["left_at"]) if r["left_at"] else now),
        )
        for r in fetch_all(
            replica.db,
            "SELECT h.entered_at, h.left_at, s.code, s.name_zh, s.name_en FROM stage_history h "
            "LEFT JOIN pipeline_stages s ON s.id = h.stage_id WHERE h.opportunity_id = ? ORDER BY h.entered_at, h.id",
            (str(opportunity_id),),
        )
    ]
    return OpportunityDetail(
        opportunity=view,
        customer_id=row["customer_id"],
        customer_name=customer["name"] if customer else None,
        days_in_stage=_days(view.stage_entered_at, now) if view.stage_kind == "open" else 0.0,
        history=history,
    )


# --- the managers' board --------------------------------------------------------------------------


@dataclasses.dataclass
class BoardDeal:
    id: str
    title: str
    customer_id: str
    customer_name: str
    owner_id: str | None
    owner_name: str | None
    store_id: str
    amount: Decimal
    days_in_stage: float
    idle_days: int | None  # the stage's limit (None: never stalls)

    @property
    def stalled(self) -> bool:
        return self.idle_days is not None and self.days_in_stage > self.idle_days


@dataclasses.dataclass
class BoardColumn:
    stage: StageView
    deals: list[BoardDeal]

    @property
    def amount(self) -> Decimal:
        return sum((d.amount for d in self.deals), Decimal(0))


def board(
    replica: Replica, *, now: dt.datetime | None = None, owner_id: str | None = None, store_id: str | None = None
) -> list[BoardColumn]:
    """Open deals in the replica (the manager's stores) by open stage, longest idle first."""
    now = now or _utcnow()
    where, params = ["s.kind = 'open'"], []
    if owner_id:
        where.append("o.owner_id = ?")
        params.append(owner_id)
    if store_id:
        where.append("o.store_id = ?")
        params.append(store_id)
    rows = fetch_all(
        replica.db,
        "SELECT o.id, o.title, o.customer_id, c.name AS customer_name, o.owner_id, u.display_name AS owner_name, "
        "o.store_id, o.amount, o.stage_entered_at, o.stage_id, s.idle_days FROM opportunities o "
        "JOIN pipeline_stages s ON s.id = o.stage_id LEFT JOIN customers c ON c.id = o.customer_id "
        f"LEFT JOIN users u ON u.id = o.owner_id WHERE {' AND '.join(where)} ORDER BY o.stage_entered_at, o.id",
        params,
    )
    columns = {stage.id: BoardColumn(stage, []) for stage in stages(replica) if stage.kind == "open"}
    for r in rows:
        column = columns.get(r["stage_id"])
        if column is None:
            continue
        column.deals.append(
            BoardDeal(
                r["id"],
                r["title"],
                r["customer_id"],
                r["customer_name"] or "",
                r["owner_id"],
                r["owner_name"],
                r["store_id"],
                _money(r["amount"]),
                _days(r["stage_entered_at"], now),
                r["idle_days"],
            )
        )
    return list(columns.values())


def stalled_deals(columns: list[BoardColumn]) -> list[tuple[StageView, BoardDeal]]:
    """The board's stalled deals, most overdue (days over the limit) first."""
    found = [(c.stage, d) for c in columns for d in c.deals if d.stalled]
    return sorted(found, key=lambda pair: pair[1].idle_days - pair[1].days_in_stage)


def owners(replica: Replica) -> list[dict[str, str]]:
    """Reps of the stores on this device ({id, name, store_id}), for the board's owner filter."""
    return [
        dict(r)
        for r in fetch_all(
            replica.db,
            "SELECT id, display_name AS name, store_id FROM users WHERE role = 'rep' AND active = 1 "
            "AND store_id IN (SELECT DISTINCT store_id FROM opportunities) ORDER BY display_name",
        )
    ]


# --- roll-out: the store's feature switches ----------------------------------------------------------


def features(replica: Replica, store_id: str | None) -> dict[str, bool]:
    """The switches head office set for the store (a feature without a row is on)."""
    if not store_id:
        return {}
    return {
        r["feature"]: bool(r["enabled"])
        for r in fetch_all(replica.db, "SELECT feature, enabled FROM store_features WHERE store_id = ?", (store_id,))
    }


# --- cross-sell -----------------------------------------------------------------------------------

# What goes with what (REQUIREMENTS §1: "bought a sofa → cushions", "bought a dining table → chairs").
COMPANIONS: dict[str, tuple[str, ...]] = {
    "sofa": ("cushion",),
    "dining_table": ("dining_chair",),
    "bed": ("mattress", "bed_sheet"),
    "mattress": ("pillow", "bed_sheet"),
    "bed_sheet": ("duvet_cover", "pillow"),
    "duvet_cover": ("bed_sheet",),
}


def cross_sell(replica: Replica, customer_id: str) -> list[dict[str, str]]:
    """Categories that go with what the customer bought and that they have not bought yet
    ({code, name_zh, name_en}), in the order of the companion table."""
    bought = {
        r[0]
        for r in replica.db.execute(
            "SELECT DISTINCT g.code FROM order_lines l JOIN orders o ON o.id = l.order_id "
            "JOIN categories g ON g.id = l.category_id WHERE o.customer_id = ?",
            (str(customer_id),),
        )
    }
    wanted: list[str] = []
    for code in sorted(bought):
        for other in COMPANIONS.get(code, ()):
            if other not in bought and other not in wanted:
                wanted.append(other)
    if not wanted:
        return []
    names = {
        r["code"]: r
        for r in fetch_all(
            replica.db,
            f"SELECT code, name_zh, name_en FROM categories WHERE code IN ({', '.join('?' * len(wanted))})",
            wanted,
        )
    }
    return [dict(code=c, name_zh=names[c]["name_zh"], name_en=names[c]["name_en"]) for c in wanted if c in names]


# --- the message centre ---------------------------------------------------------------------------


@dataclasses.dataclass
class MessageView:
    key: str  # stable: kind + row id
    kind: str  # notice (a notification record) | interaction (derived on the phone)
    at: str
    customer_id: str | None
    customer_name: str | None
    values: dict[str, Any]  # what the message text is made of
    task_id: str | None = None
    opportunity_id: str | None = None
    unread: bool = False
    notice_id: str | None = None  # the notification record (marked read on the server too)
    title: str = ""  # a record's title and body, written by the server in the user's language
    body: str = ""
    link: str = ""
    notice_kind: str = ""  # task_assigned, reminder, task_due, complaint, order, stage_moved, …
    critical: bool = False


MESSAGE_DAYS = 7
OTHERS_KINDS = ("visit", "call", "message", "note", "browse", "cart")


def messages(
    replica: Replica,
    user_id: str | None = None,
    *,
    now: dt.datetime | None = None,
    seen_at: str | None = None,
    days: int = MESSAGE_DAYS,
    limit: int = 100,
) -> list[MessageView]:
    """What the rep should hear about, newest first, from the last ``days`` days: the server's
    notifications (tasks given to them, reminders, due tasks, orders, complaints and deal moves of
    the customers they follow — synced, so read state is the same on every device), and what
    colleagues or the shop systems did with the customers they own (browsing, carts, visits: made
    on the phone from the replica). ``unread``: a notification not read yet; an interaction newer
    than ``seen_at``."""
    now = now or _utcnow()
    uid = str(user_id or replica.user_id)
    since = times.bound(now - dt.timedelta(days=days))
    current = times.bound(now)
    db = replica.db
    out: list[MessageView] = []
    for r in fetch_all(
        db,
        "SELECT n.id, n.kind, n.title, n.body, n.link, n.customer_id, n.opportunity_id, n.task_id, n.critical, "
        "n.created_at, n.read_at, c.name AS customer_name FROM notifications n "
        "LEFT JOIN customers c ON c.id = n.customer_id WHERE n.user_id = ? AND n.created_at >= ? "
        "ORDER BY n.created_at DESC LIMIT ?",
        (uid, since, limit),
    ):
        out.append(
            MessageView(
                f"notice:{r['id']}",
                "notice",
                r["created_at"],
                r["customer_id"],
                r["customer_name"],
                {},
                task_id=r["task_id"],
                opportunity_id=r["opportunity_id"],
                unread=r["read_at"] is None,
                notice_id=r["id"],
                title=r["title"],
                body=r["body"] or "",
                link=r["link"] or "",
                notice_kind=r["kind"],
                critical=bool(r["critical"]),
            )
        )
    kinds = ", ".join("?" * len(OTHERS_KINDS))
    for r in fetch_all(
        db,
        "SELECT i.id, i.kind, i.channel, i.occurred_at, i.customer_id, c.name AS customer_name FROM interactions i "
        "JOIN customers c ON c.id = i.customer_id WHERE c.owner_id = ? AND i.version > 0 AND i.occurred_at >= ? "
        f"AND i.occurred_at <= ? AND (i.user_id IS NULL OR i.user_id <> ?) AND i.kind IN ({kinds}) "
        "ORDER BY i.occurred_at DESC LIMIT ?",
        (uid, since, current, uid, *OTHERS_KINDS, limit),
    ):
        out.append(
            MessageView(
                f"interaction:{r['id']}",
                "interaction",
                r["occurred_at"],
                r["customer_id"],
                r["customer_name"],
                {"kind": r["kind"], "channel": r["channel"]},
            )
        )
    for m in out:
        if m.kind != "notice":
            m.unread = seen_at is None or (m.at or "") > seen_at
    out.sort(key=lambda m: (m.at or "", m.key), reverse=True)
    return out[:limit]


def following(replica: Replica, user_id: str, customer_id: str) -> bool:
    """Does the user follow the customer: an explicit follow row, else whether they own it."""
    row = fetch_one(
        replica.db,
        "SELECT following FROM customer_follows WHERE user_id = ? AND customer_id = ?",
        (str(user_id), str(customer_id)),
    )
    if row is not None:
        return bool(row["following"])
    owner = fetch_one(replica.db, "SELECT owner_id FROM customers WHERE id = ?", (str(customer_id),))
    return owner is not None and owner["owner_id"] == str(user_id)


PREFS_DEFAULT = {"quiet_start": "22:00", "quiet_end": "08:00", "daily_budget": 20, "muted_kinds": [], "language": ""}


def notification_prefs(replica: Replica, user_id: str) -> dict[str, Any]:
    row = fetch_one(
        replica.db,
        "SELECT quiet_start, quiet_end, daily_budget, muted_kinds, language FROM notification_prefs WHERE user_id = ?",
        (str(user_id),),
    )
    if row is None:
        return dict(PREFS_DEFAULT)
    muted = row["muted_kinds"]
    return {**row, "muted_kinds": json.loads(muted) if isinstance(muted, str) else list(muted or [])}


def fresh_notices(replica: Replica, user_id: str, after: str) -> list[dict[str, Any]]:
    """Unread notifications made after ``after`` (what an in-app banner announces), newest first."""
    return fetch_all(
        replica.db,
        "SELECT id, kind, title, body, link, critical, created_at FROM notifications WHERE user_id = ? "
        "AND read_at IS NULL AND created_at > ? ORDER BY created_at DESC LIMIT 20",
        (str(user_id), after),
    )


def came_due(replica: Replica, user_id: str, after: str, upto: str) -> list[dict[str, Any]]:
    """The user's open tasks whose due time passed in (after, upto]: the phone's own reminders,
    which fire on time with no network."""
    return fetch_all(
        replica.db,
        "SELECT t.id, t.title, t.due_at, t.customer_id, c.name AS customer_name FROM tasks t "
        "LEFT JOIN customers c ON c.id = t.customer_id WHERE t.owner_id = ? AND t.status = 'open' "
        "AND t.due_at > ? AND t.due_at <= ? ORDER BY t.due_at",
        (str(user_id), after, upto),
    )


def kb_articles(replica: Replica) -> list[kb.Article]:
    """The knowledge base as the phone holds it (synced with the catalog)."""
    return [
        kb.Article(r["id"], r["code"], r["topic"], r["title"], r["title_en"] or "", r["body"] or "", r["tags"] or "")
        for r in fetch_all(replica.db, "SELECT id, code, topic, title, title_en, body, tags FROM kb_articles")
    ]
