"""The managers' reports against figures computed here, independently.

Two kinds of check:

- a store of this module's own (``world``) with hand-made deals, stage visits, tasks, contacts,
  complaints and orders whose figures are known in advance (worked out in the comments), under a
  fixed clock — medians, conversions, repeat complaints, contacts without follow-up, targets;
- the demo chain as it is at that moment (other tests change it): every table read with plain
  SELECTs and every report's figures recomputed in Python, then compared with the report — for
  the whole chain, for one store and for one rep.

Everything made here is removed when the module ends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.analytics import service
from server.analytics.filters import Filters
from server.auth.tables import User
from server.complaints.tables import Complaint
from server.customers.tables import Customer
from server.errors import DomainError, Invalid, NotFound
from server.interactions.tables import Interaction
from server.opportunities.tables import Opportunity, PipelineStage, StageHistory
from server.orders.tables import Order
from server.stores.tables import Region, Store
from server.tasks.tables import Task
from server.values import money, utc
from shared.ids import uuid7
from shared.reports import REPORTS as REPORT_NAMES

SH = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")
MINE = [n for n in REPORT_NAMES if n != "adoption"]  # adoption belongs to server/rollout


def sh(month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SH)


NOW = sh(11, 20, 12)  # Friday 20 November 2026, 12:00 in Shanghai
START, END = dt.date(2026, 11, 1), dt.date(2026, 11, 25)  # 25 days; the previous period: 7–31 October


def rows_of(table) -> list[dict[str, Any]]:
    keys = [c.key for c in table.columns]
    assert all(len(r) == len(keys) for r in table.rows)
    assert len(table.drill) == len(table.rows)
    return [dict(zip(keys, r, strict=True)) for r in table.rows]


def near(a: float | None, b: float | None, tolerance: float = 0.1 + 1e-9) -> bool:
    """Equal within a rounding step (days and minutes come from SQL arithmetic on timestamps)."""
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tolerance


def pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def cents(value: Decimal) -> str:
    return str(value.quantize(CENT))


# --- this module's own store ---------------------------------------------------------------------


@dataclasses.dataclass
class World:
    region_id: uuid.UUID
    store_id: uuid.UUID
    code: str
    stages: dict[str, dict]
    users: dict[str, uuid.UUID] = dataclasses.field(default_factory=dict)
    customers: dict[str, uuid.UUID] = dataclasses.field(default_factory=dict)
    deals: dict[str, uuid.UUID] = dataclasses.field(default_factory=dict)
    tasks: dict[str, uuid.UUID] = dataclasses.field(default_factory=dict)
    complaints: dict[str, uuid.UUID] = dataclasses.field(default_factory=dict)

    @property
    def filters(self) -> Filters:
        return Filters(start=START, end=END, store_ids=frozenset({self.store_id}), store_code=self.code)

    def name_of(self, ident: object) -> str:
        """The world's name (D1, T3, C2, …) of an id."""
        for group in (self.users, self.customers, self.deals, self.tasks, self.complaints):
            for name, value in group.items():
                if str(value) == str(ident):
                    return name
        raise KeyError(ident)

    async def user(self, name: str, role: str, *, active: bool = True, language: str = "zh-CN") -> None:
        from server.auth.passwords import hash_password

        self.users[name] = uuid7()
        await User.insert(
            User(
                id=self.users[name],
                version=0,
                username=f"{self.code.lower()}-{name.lower()}",
                display_name=f"报表{name}",
                password_hash=hash_password("floorwalker"),
                role=role,
                store_id=self.store_id,
                language=language,
                active=active,
            )
        )

    async def customer(self, name: str, owner: str, *, deleted: bool = False) -> None:
        self.customers[name] = uuid7()
        await Customer.insert(
            Customer(
                id=self.customers[name],
                version=0,
                deleted=deleted,
                store_id=self.store_id,
                owner_id=self.users[owner],
                name=f"报表顾客{name}",
                created_at=sh(1, 5),
            )
        )

    async def deal(
        self,
        name: str,
        owner: str,
        customer: str,
        amount: str,
        path: list[tuple[str, dt.datetime]],
        *,
        created: dt.datetime | None = None,
        close: dt.date | None = None,
        deleted: bool = False,
    ) -> None:
        """A deal that went through ``path`` (stage, entered at); it is in the last stage now."""
        ident = self.deals[name] = uuid7()
        stage, entered = path[-1]
        closed = self.stages[stage]["kind"] != "open"
        await Opportunity.insert(
            Opportunity(
                id=ident,
                version=0,
                deleted=deleted,
                store_id=self.store_id,
                customer_id=self.customers[customer],
                owner_id=self.users[owner],
                title=f"报表商机{name}",
                stage_id=self.stages[stage]["id"],
                amount=Decimal(amount),
                expected_close_date=close,
                stage_entered_at=entered,
                closed_at=entered if closed else None,
                lost_reason="价格" if stage == "lost" else None,
                created_at=created or path[0][1],
            )
        )
        for (code, at), following in zip(path, [*path[1:], None], strict=True):
            await StageHistory.insert(
                StageHistory(
                    id=uuid7(),
                    version=0,
                    store_id=self.store_id,
                    opportunity_id=ident,
                    stage_id=self.stages[code]["id"],
                    entered_at=at,
                    left_at=following[1] if following else None,
                    moved_by_id=self.users[owner],
                )
            )

    async def task(
        self, name: str, owner: str, due: dt.datetime, status: str, completed: dt.datetime | None = None
    ) -> None:
        self.tasks[name] = uuid7()
        await Task.insert(
            Task(
                id=self.tasks[name],
                version=0,
                store_id=self.store_id,
                owner_id=self.users[owner],
                kind="follow_up",
                title=f"报表任务{name}",
                due_at=due,
                status=status,
                completed_at=completed,
            )
        )

    async def touch(self, customer: str, kind: str, at: dt.datetime, by: str | None, *, deleted: bool = False) -> None:
        await Interaction.insert(
            Interaction(
                id=uuid7(),
                version=0,
                deleted=deleted,
                store_id=self.store_id,
                customer_id=self.customers[customer],
                user_id=self.users[by] if by else None,
                kind=kind,
                channel="store" if by else "wechat",
                occurred_at=at,
                body="报表测试",
            )
        )

    async def complaint(
        self,
        name: str,
        customer: str,
        opened: dt.datetime,
        *,
        response_minutes: int | None = None,
        callback: dt.datetime | None = None,
        satisfaction: int | None = None,
        deleted: bool = False,
    ) -> None:
        self.complaints[name] = uuid7()
        await Complaint.insert(
            Complaint(
                id=self.complaints[name],
                version=0,
                deleted=deleted,
                store_id=self.store_id,
                customer_id=self.customers[customer],
                owner_id=self.users["A"],
                category="quality",
                status="closed" if callback else "open",
                description="报表测试",
                opened_at=opened,
                first_response_at=opened + dt.timedelta(minutes=response_minutes) if response_minutes else None,
                callback_at=callback,
                satisfaction=satisfaction,
            )
        )

    async def order(self, customer: str, at: dt.datetime, *, deleted: bool = False) -> None:
        await Order.insert(
            Order(
                id=uuid7(),
                version=0,
                deleted=deleted,
                store_id=self.store_id,
                customer_id=self.customers[customer],
                channel="store",
                ordered_at=at,
                amount=Decimal("999"),
                payment_method="card",
            )
        )

    async def build(self) -> None:
        await self.user("M", "store_manager")
        await self.user("A", "rep")
        await self.user("B", "rep")
        await self.user("X", "rep", active=False)  # a former rep: in no rep figure
        await self.user("E", "store_manager", language="en")  # reads CSV headers in English
        for name, owner in (("C1", "A"), ("C2", "A"), ("C3", "A"), ("C4", "B"), ("C5", "B"), ("C6", "B")):
            await self.customer(name, owner)
        await self.customer("C7", "A")
        await self.customer("C8", "A")
        await self.customer("C9", "A", deleted=True)

        # Deals. Funnel (created 1–25 Nov: D1 D2 D3 D4 D5 D6 D9; D7 and D10 earlier, D8 deleted),
        # furthest non-lost stage: D1 won, D2 needs, D3 won, D4 initial, D5 proposal, D6 initial,
        # D9 negotiation → reached: initial 7, needs 5, proposal 4, negotiation 3, won 2.
        # Stage visits entered in the period and ended, in days: initial D1 2, D2 1, D3 3, D5 1,
        # D9 12 → median 2; needs D1 4, D2 2, D3 1 → 2; proposal D1 2, D3 3 → 2.5; negotiation D3 3.
        ic, nc, pr, ne = "initial_contact", "needs_confirmed", "proposal", "negotiation"
        await self.deal(
            "D1", "A", "C1", "10000", [(ic, sh(11, 2)), (nc, sh(11, 4)), (pr, sh(11, 8)), ("won", sh(11, 10))]
        )
        await self.deal("D2", "A", "C2", "5000", [(ic, sh(11, 3)), (nc, sh(11, 4)), ("lost", sh(11, 6))])
        await self.deal(
            "D3",
            "B",
            "C4",
            "20000",
            [(ic, sh(11, 5)), (nc, sh(11, 8)), (pr, sh(11, 9)), (ne, sh(11, 12)), ("won", sh(11, 15))],
        )
        # Open now: D4 in initial contact for 14.1 days (limit 3: stalled, 11.1 over), D5 in
        # proposal since the 13th (7.1 days, limit 5: stalled, 2.1 over), D6 and D9 within limits.
        await self.deal("D4", "B", "C5", "3000", [(ic, sh(11, 6))], close=dt.date(2026, 11, 25))
        await self.deal("D5", "A", "C3", "8000", [(ic, sh(11, 12)), (pr, sh(11, 13))], close=dt.date(2026, 12, 5))
        await self.deal("D6", "A", "C1", "1000", [(ic, sh(11, 18))], close=dt.date(2027, 1, 10))
        await self.deal("D7", "B", "C6", "7000", [(ic, sh(10, 20)), (ne, sh(10, 25)), ("won", sh(11, 3))])
        # D8 is deleted: its visits, stage and amount count nowhere.
        await self.deal(
            "D8", "A", "C2", "99999", [(ic, sh(11, 5)), (nc, sh(11, 6))], close=dt.date(2026, 11, 26), deleted=True
        )
        await self.deal("D9", "B", "C4", "6000", [(ic, sh(11, 7)), (ne, sh(11, 19))], close=dt.date(2026, 11, 30))
        await self.deal("D10", "A", "C3", "4000", [(ic, sh(10, 1)), ("won", sh(10, 21))])  # won in October: 20 days

        # Tasks due 1–25 Nov. A: T1 on time, T2 late, T3 overdue, T4 due later today (open, not
        # overdue), T5 cancelled. B: T6 done exactly when due (on time). T7 due before the period.
        # M: T8 late (a store figure, not a rep's).
        await self.task("T1", "A", sh(11, 5), "done", sh(11, 5, 9))
        await self.task("T2", "A", sh(11, 6), "done", sh(11, 7))
        await self.task("T3", "A", sh(11, 10), "open")
        await self.task("T4", "A", sh(11, 20, 18), "open")
        await self.task("T5", "A", sh(11, 8), "cancelled")
        await self.task("T6", "B", sh(11, 9), "done", sh(11, 9))
        await self.task("T7", "B", sh(10, 25), "open")
        await self.task("T8", "M", sh(11, 12), "done", sh(11, 14))

        # Contacts and follow-ups (48 h before NOW: 18 Nov 12:00).
        # (A note follows up but is no contact itself; a visit, call or message is both.)
        await self.touch("C1", "visit", sh(11, 10), "A")  # answered 47 h later
        await self.touch("C1", "note", sh(11, 12, 9), "A")
        await self.touch("C1", "note", sh(11, 16), "M")  # a manager's follow-up: staff, not a rep's
        await self.touch("C2", "call", sh(11, 10), "A")  # answered only 49 h later: unanswered
        await self.touch("C2", "note", sh(11, 12, 11), "B")
        await self.touch("C3", "message", sh(11, 11), "A")  # the reply came from WeChat, no staff: unanswered
        await self.touch("C3", "message", sh(11, 11, 12), None)
        await self.touch("C4", "visit", sh(11, 19), "A")  # within the last 48 h: not judged yet
        await self.touch("C5", "call", sh(11, 14), "B")  # answered by the next call …
        await self.touch("C5", "call", sh(11, 15), "B")  # … which nobody answered: C5 once
        await self.touch("C6", "browse", sh(11, 10, 9), None)  # not a contact
        await self.touch("C6", "visit", sh(11, 10), "X")  # by a former rep, answered by B's note
        await self.touch("C6", "note", sh(11, 10, 11), "B")
        await self.touch("C7", "visit", sh(10, 30), "A")  # before the period (a follow-up of the previous one)
        await self.touch("C7", "note", sh(11, 13), "M")  # a follow-up at the very same moment …
        await self.touch("C7", "call", sh(11, 13), "X")  # … answers this contact
        await self.touch("C8", "visit", sh(11, 12), "A")  # its follow-up was deleted: unanswered
        await self.touch("C8", "call", sh(11, 13), "A", deleted=True)
        # Follow-ups in the period: A 6 (C1 ×2, C2, C3, C4, C8), B 4 (C2, C5 ×2, C6), X 2, M 2.
        # Unanswered contacts' customers: A's C2, C3, C8; B's C5.

        # Complaints. Opened 1–25 Nov: P1 (4 min), P2 (10 min; C1 again within 30 days: repeat),
        # P3 (6 min), P4 (no response; C3's earlier one is 35 days before), P6 (8 min; C5's P5
        # 23 days before: repeat) → median 7 minutes, repeat 2 of 5. Call-backs rated in the
        # period: P1 5, P2 3, P6 4 → 2 of 3. Previous period: P5 opened (30 min, no repeat),
        # call-backs P0 4 and P5 2 → 1 of 2.
        await self.complaint("P0", "C3", sh(10, 5), response_minutes=20, callback=sh(10, 8), satisfaction=4)
        await self.complaint("P1", "C1", sh(11, 5), response_minutes=4, callback=sh(11, 6), satisfaction=5)
        await self.complaint("P2", "C1", sh(11, 20), response_minutes=10, callback=sh(11, 20, 11), satisfaction=3)
        await self.complaint("P3", "C2", sh(11, 8), response_minutes=6)
        await self.complaint("P4", "C3", sh(11, 9))
        await self.complaint("P5", "C5", sh(10, 20), response_minutes=30, callback=sh(10, 21), satisfaction=2)
        await self.complaint("P6", "C5", sh(11, 12), response_minutes=8, callback=sh(11, 13), satisfaction=4)
        await self.complaint("P7", "C2", sh(11, 10), response_minutes=1, deleted=True)

        # Orders. Ordered 7–31 Oct: C1, C2, C3, C5; again 1–25 Nov: C1, C3 (C2's is deleted) → 50 %.
        # Ordered 12 Sep – 6 Oct: C4, C5, C6; again 7–31 Oct: C5 → 33.3 %.
        await self.order("C1", sh(10, 10))
        await self.order("C1", sh(11, 3))
        await self.order("C2", sh(10, 15))
        await self.order("C2", sh(11, 5), deleted=True)
        await self.order("C3", sh(10, 20))
        await self.order("C3", sh(10, 25))
        await self.order("C3", sh(11, 20))
        await self.order("C4", sh(10, 2))
        await self.order("C4", sh(11, 10))
        await self.order("C5", sh(9, 20))
        await self.order("C5", sh(10, 12))
        await self.order("C6", sh(9, 30))
        await self.order("C9", sh(10, 10))  # a deleted customer's orders count for nobody
        await self.order("C9", sh(11, 10))

    async def remove(self) -> None:
        store = self.store_id
        for table in (Task, Interaction, Order, Complaint, StageHistory, Opportunity, Customer, User):
            await table.delete().where(table.store_id == store)
        await Store.delete().where(Store.id == store)
        await Region.delete().where(Region.id == self.region_id)


@pytest.fixture(scope="module")
async def world(client):  # the client's start-up starts the database pool
    tag = uuid.uuid4().hex[:6].upper()
    region_id, store_id = uuid7(), uuid7()
    await Region.insert(Region(id=region_id, version=0, code=f"rpt-{tag.lower()}", name=f"报表测试区{tag}"))
    await Store.insert(
        Store(
            id=store_id,
            version=0,
            code=f"RP-{tag}",
            name=f"报表测试店{tag}",
            city="北京",
            region_id=region_id,
            pilot=False,
            active=True,
        )
    )
    stages = {r["code"]: r for r in await PipelineStage.select().where(PipelineStage.deleted.eq(False))}
    the_world = World(region_id, store_id, f"RP-{tag}", stages)
    try:
        await the_world.build()
        yield the_world
    finally:
        await the_world.remove()


# --- the world's reports, figures known in advance --------------------------------------------------


async def test_pipeline_of_a_store(world):
    table = await service.pipeline(world.filters, NOW)
    got = {r["stage_code"]: (r["deals"], r["amount"], r["weighted"]) for r in rows_of(table)}
    assert [r["stage_code"] for r in rows_of(table)] == [
        "initial_contact",
        "needs_confirmed",
        "proposal",
        "negotiation",
    ]
    # D4 3000 + D6 1000 at 10 %; D5 8000 at 50 %; D9 6000 at 75 %. D8 is deleted.
    assert got == {
        "initial_contact": (2, "4000.00", "400.00"),
        "needs_confirmed": (0, "0.00", "0.00"),
        "proposal": (1, "8000.00", "4000.00"),
        "negotiation": (1, "6000.00", "4500.00"),
    }
    assert table.drill[0].kind == "deals" and table.drill[0].params == {"stage": "initial_contact"}
    # One rep: A's open deals only (D5, D6).
    mine = await service.pipeline(dataclasses.replace(world.filters, owner_id=world.users["A"]), NOW)
    assert {r["stage_code"]: r["deals"] for r in rows_of(mine)} == {
        "initial_contact": 1,
        "needs_confirmed": 0,
        "proposal": 1,
        "negotiation": 0,
    }


async def test_stalled_deals_most_overdue_first(world):
    table = await service.stalled(world.filters, NOW)
    rows = rows_of(table)
    assert [world.name_of(r["opportunity_id"]) for r in rows] == ["D4", "D5"]
    assert table.total == 2
    d4, d5 = rows
    assert (d4["days_in_stage"], d4["idle_days"], d4["overdue_days"]) == (14.1, 3, 11.1)
    assert (d5["days_in_stage"], d5["idle_days"], d5["overdue_days"]) == (7.1, 5, 2.1)
    assert d4["owner_id"] == str(world.users["B"]) and d4["owner"] == "报表B" and d4["amount"] == "3000.00"
    assert d5["customer"] == "报表顾客C3" and d5["stage_en"] == "Proposal" and d5["store"] == world.code
    assert table.drill[0].params == {"id": str(world.deals["D4"])}
    # A moment earlier D5 was still within its five days.
    earlier = await service.stalled(world.filters, sh(11, 18, 9))
    assert [world.name_of(r["opportunity_id"]) for r in rows_of(earlier)] == ["D4"]


async def test_funnel_conversion_and_median_days(world):
    table = await service.funnel(world.filters, NOW)
    rows = {r["stage_code"]: r for r in rows_of(table)}
    assert list(rows) == ["initial_contact", "needs_confirmed", "proposal", "negotiation", "won"]
    assert table.total == 7
    assert [rows[s]["reached"] for s in rows] == [7, 5, 4, 3, 2]
    assert [rows[s]["conversion"] for s in rows] == [None, 71.4, 80.0, 75.0, 66.7]
    assert [rows[s]["reached_pct"] for s in rows] == [100.0, 71.4, 57.1, 42.9, 28.6]
    assert [rows[s]["median_days"] for s in rows] == [2.0, 2.0, 2.5, 3.0, None]
    assert [rows[s]["timed"] for s in rows] == [5, 3, 2, 1, 0]


async def test_win_rate_per_owner_and_total(world):
    table = await service.win_rate(world.filters, NOW)
    rows = rows_of(table)
    # Closed 1–25 Nov: A won D1 (8 days) and lost D2; B won D3 (10 days) and D7 (14 days).
    assert [r["owner_id"] for r in rows] == [str(world.users["B"]), str(world.users["A"]), None]
    b, a, total = rows
    assert (b["won"], b["lost"], b["win_rate"], b["won_amount"]) == (2, 0, 100.0, "27000.00")
    assert (b["avg_cycle_days"], b["median_cycle_days"]) == (12.0, 12.0)
    assert (a["won"], a["lost"], a["closed"], a["win_rate"], a["won_amount"]) == (1, 1, 2, 50.0, "10000.00")
    assert (a["avg_cycle_days"], a["median_cycle_days"]) == (8.0, 8.0)
    assert (total["won"], total["lost"], total["win_rate"], total["won_amount"]) == (3, 1, 75.0, "37000.00")
    assert (total["avg_cycle_days"], total["median_cycle_days"]) == (10.7, 10.0)
    assert table.drill[1].params == {"owner": str(world.users["A"]), "status": "won"}


async def test_forecast_this_and_next_month(world):
    table = await service.forecast(world.filters, NOW)
    # November: D4 3000 at 10 % and D9 6000 at 75 %; December: D5 8000 at 50 %; D6 (January) is out.
    assert table.rows == [["2026-11", 2, "9000.00", "4800.00"], ["2026-12", 1, "8000.00", "4000.00"]]
    assert [d.params for d in table.drill] == [{"close_month": "2026-11"}, {"close_month": "2026-12"}]
    # On the last evening of November (already December 1st in China) the months move on.
    later = await service.forecast(world.filters, dt.datetime(2026, 11, 30, 17, tzinfo=dt.UTC))
    assert [r[0] for r in later.rows] == ["2026-12", "2027-01"]
    assert later.rows[1][1] == 1  # D6


async def test_rep_activity(world):
    table = await service.rep_activity(world.filters, NOW)
    rows = {world.name_of(r["rep_id"]): r for r in rows_of(table)}
    assert set(rows) == {"A", "B"}  # X left, M and E are managers
    a, b = rows["A"], rows["B"]
    assert (a["follow_ups"], a["follow_ups_per_day"]) == (6, 0.2)  # 6 / 25 days
    assert (b["follow_ups"], b["follow_ups_per_day"]) == (4, 0.2)
    assert (a["tasks_due"], a["on_time"], a["late"], a["overdue"], a["on_time_pct"]) == (4, 1, 1, 1, 33.3)
    assert (b["tasks_due"], b["on_time"], b["late"], b["overdue"], b["on_time_pct"]) == (1, 1, 0, 0, 100.0)
    assert (a["no_follow_up"], b["no_follow_up"]) == (3, 1)
    assert table.drill[list(rows).index("A")].params == {"user": str(world.users["A"])}
    assert "48" in table.notes_zh and "48 h" in table.notes_en
    # One rep asked for, even a former one.
    former = await service.rep_activity(dataclasses.replace(world.filters, owner_id=world.users["X"]), NOW)
    assert [(world.name_of(r["rep_id"]), r["follow_ups"]) for r in rows_of(former)] == [("X", 2)]


async def test_store_comparison_row(world):
    table = await service.stores(world.filters, NOW)
    (row,) = rows_of(table)
    assert row["code"] == world.code and row["pilot"] is False
    assert (row["customers"], row["open_deals"], row["open_amount"]) == (8, 4, "18000.00")
    assert (row["won_amount"], row["win_rate"], row["reps"]) == ("37000.00", 75.0, 2)
    assert row["follow_ups_per_rep_day"] == 0.2  # (6 + 4) / 2 reps / 25 days
    assert row["on_time_pct"] == 40.0  # on time T1 T6; late T2 T8; overdue T3
    assert row["response_minutes"] == 7.0  # 4, 6, 8, 10
    assert table.drill[0].params == {"store": world.code, "status": "open"}


async def test_targets_this_and_previous_period(world):
    table = await service.targets(world.filters, NOW)
    got = {r["metric_key"]: r for r in rows_of(table)}
    assert list(got) == [
        "retention",
        "sales_cycle",
        "campaign_conversion",
        "satisfaction",
        "complaint_response",
        "repeat_complaints",
        "follow_ups",
    ]

    def figures(key: str) -> tuple:
        r = got[key]
        return r["baseline"], r["target"], r["this_period"], r["previous_period"], r["change"]

    assert figures("retention") == (35, 50, 50.0, 33.3, 16.7)
    assert figures("sales_cycle") == (14, 11, 10.7, 20.0, -9.3)  # D1 8, D3 10, D7 14; October D10 20
    assert figures("campaign_conversion") == (2, 5, None, None, None)
    assert figures("satisfaction") == (70, 85, 66.7, 50.0, 16.7)
    assert figures("complaint_response") == (None, 5, 7.0, 30.0, -23.0)
    assert figures("repeat_complaints") == (18, 5, 40.0, 0.0, 40.0)
    assert figures("follow_ups") == (10, 15, 0.2, 0.0, 0.2)  # October: A's one visit / 2 reps / 25 days
    assert "营销活动" in table.notes_zh and "no campaign data" in table.notes_en
    assert table.filters["previous_from"] == "2026-10-07" and table.filters["previous_to"] == "2026-10-31"


async def test_trend_by_iso_week(world):
    table = await service.trend(world.filters, NOW)
    # 1 Nov 2026 is a Sunday: the period starts in week 44 and ends in week 48.
    assert [r[:3] for r in table.rows] == [
        ["2026-W44", dt.date(2026, 11, 1), dt.date(2026, 11, 1)],
        ["2026-W45", dt.date(2026, 11, 2), dt.date(2026, 11, 8)],
        ["2026-W46", dt.date(2026, 11, 9), dt.date(2026, 11, 15)],
        ["2026-W47", dt.date(2026, 11, 16), dt.date(2026, 11, 22)],
        ["2026-W48", dt.date(2026, 11, 23), dt.date(2026, 11, 25)],
    ]
    by_week = {r["week"]: r for r in rows_of(table)}
    assert [by_week[w]["new_deals"] for w in by_week] == [0, 5, 1, 1, 0]
    assert [(by_week[w]["won_deals"], by_week[w]["won_amount"]) for w in by_week] == [
        (0, "0.00"),
        (1, "7000.00"),
        (2, "30000.00"),
        (0, "0.00"),
        (0, "0.00"),
    ]
    # Every member of staff's follow-ups: X's and M's too.
    assert [by_week[w]["follow_ups"] for w in by_week] == [0, 0, 12, 2, 0]


async def test_drill_downs_list_the_rows_behind_the_numbers(world):
    f = world.filters

    async def names(kind: str, **params: str) -> list[str]:
        table = await service.drill(kind, params, f, NOW)
        assert table.total == len(table.rows)
        key = table.columns[0].key
        return sorted(world.name_of(r[key]) for r in rows_of(table))

    assert await names("deals", stage="initial_contact") == ["D4", "D6"]
    assert await names("deals", status="stalled") == ["D4", "D5"]
    assert await names("deals", status="won") == ["D1", "D3", "D7"]
    assert await names("deals", status="lost") == ["D2"]
    assert await names("deals", close_month="2026-11") == ["D4", "D9"]
    assert await names("deals", owner=str(world.users["A"]), status="won") == ["D1"]
    assert await names("deals") == ["D1", "D2", "D3", "D4", "D5", "D6", "D9"]  # created in the period
    assert await names("deals", id=str(world.deals["D7"])) == ["D7"]
    assert await names("tasks", owner=str(world.users["A"]), state="overdue") == ["T3"]
    assert await names("tasks", state="on_time") == ["T1", "T6"]
    assert await names("tasks", state="late") == ["T2", "T8"]
    assert await names("customers", owner=str(world.users["A"]), no_follow_up="1") == ["C2", "C3", "C8"]
    assert await names("complaints", repeat="1") == ["P2", "P6"]
    assert await names("complaints", rated="1") == ["P1", "P2", "P6"]
    assert await names("complaints") == ["P1", "P2", "P3", "P4", "P6"]

    unanswered = await service.drill("customers", {"no_follow_up": "1"}, f, NOW)
    contact = {world.name_of(r["customer_id"]): r["contact_at"] for r in rows_of(unanswered)}
    assert contact == {"C2": sh(11, 10), "C3": sh(11, 11), "C8": sh(11, 12), "C5": sh(11, 15)}
    follow_ups = await service.drill("interactions", {"user": str(world.users["A"])}, f, NOW)
    assert follow_ups.total == 6 and {r["user"] for r in rows_of(follow_ups)} == {"报表A"}
    assert (await service.drill("interactions", {}, f, NOW)).total == 14

    capped = await service.drill("deals", {}, f, NOW, limit=3)
    assert len(capped.rows) == 3 and capped.total == 7
    assert capped.rows == (await service.drill("deals", {}, f, NOW)).rows[:3]  # the same order, cut


async def test_drill_down_errors_name_the_problem(world):
    f = world.filters
    with pytest.raises(NotFound, match="drill-down 'orders' not found"):
        await service.drill("orders", {}, f, NOW)
    with pytest.raises(DomainError, match="takes no parameter 'colour'") as unknown:
        await service.drill("deals", {"colour": "red"}, f, NOW)
    assert unknown.value.status_code == 400 and unknown.value.field == "colour"
    with pytest.raises(Invalid, match="status must be one of"):
        await service.drill("deals", {"status": "sleeping"}, f, NOW)
    with pytest.raises(Invalid, match="unknown stage 'nap'"):
        await service.drill("deals", {"stage": "nap"}, f, NOW)
    with pytest.raises(Invalid, match="close_month must look like"):
        await service.drill("deals", {"close_month": "2026-13"}, f, NOW)
    with pytest.raises(Invalid, match="owner must be an id"):
        await service.drill("tasks", {"owner": "rep.bjcy"}, f, NOW)
    with pytest.raises(NotFound, match="report 'sales' not found"):
        await service.run("sales", f, NOW)


# --- the demo chain, recomputed from its rows ----------------------------------------------------


@dataclasses.dataclass
class Chain:
    """Every row the reports read, by plain SELECTs, with ids as text and times in UTC."""

    stages: list[dict]
    stores: list[dict]
    users: list[dict]
    customers: list[dict]
    deals: list[dict]
    history: list[dict]
    tasks: list[dict]
    interactions: list[dict]
    complaints: list[dict]
    orders: list[dict]

    def stage(self, ident: str) -> dict:
        return next(s for s in self.stages if s["id"] == ident)


def _clean(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, dt.datetime):
            value = utc(value)
        elif key in ("deleted", "active", "pilot"):
            value = bool(value)
        elif key == "amount":
            value = money(value)
        elif key.endswith("_id") and value is not None:
            value = str(value)
        out[key] = value
    if "id" in out:
        out["id"] = str(out["id"])
    return out


async def load_chain() -> Chain:
    async def rows(sql: str) -> list[dict]:
        return [_clean(r) for r in await Opportunity.raw(sql)]

    return Chain(
        stages=await rows("SELECT * FROM pipeline_stages WHERE deleted = false ORDER BY position"),
        stores=await rows("SELECT * FROM stores"),
        users=await rows("SELECT id, username, display_name, role, store_id, active, deleted FROM users"),
        customers=await rows("SELECT id, store_id, owner_id, deleted FROM customers"),
        deals=await rows("SELECT * FROM opportunities"),
        history=await rows("SELECT * FROM stage_history"),
        tasks=await rows("SELECT id, store_id, owner_id, due_at, status, completed_at, deleted FROM tasks"),
        interactions=await rows(
            "SELECT id, store_id, customer_id, user_id, kind, occurred_at, deleted FROM interactions"
        ),
        complaints=await rows("SELECT * FROM complaints"),
        orders=await rows("SELECT id, store_id, customer_id, ordered_at, deleted FROM orders"),
    )


@dataclasses.dataclass
class Scope:
    """The figures' scope, as the test reads it."""

    f: Filters
    now: dt.datetime

    def store(self, store_id: str | None) -> bool:
        return self.f.store_ids is None or (store_id is not None and uuid.UUID(store_id) in self.f.store_ids)

    def owner(self, user_id: str | None) -> bool:
        return self.f.owner_id is None or user_id == str(self.f.owner_id)

    def within(self, moment: dt.datetime | None, f: Filters | None = None) -> bool:
        f = f or self.f
        return moment is not None and f.since <= moment < f.until


FOLLOW_UPS = {"visit", "call", "message", "note"}
CONTACTS = {"visit", "call", "message"}


def follow_up(i: dict) -> bool:
    return i["kind"] in FOLLOW_UPS and i["user_id"] is not None and not i["deleted"]


def expect_pipeline(c: Chain, s: Scope) -> list[tuple]:
    out = []
    for stage in c.stages:
        if stage["kind"] != "open":
            continue
        deals = [
            d
            for d in c.deals
            if d["stage_id"] == stage["id"] and not d["deleted"] and s.store(d["store_id"]) and s.owner(d["owner_id"])
        ]
        amount = sum((d["amount"] for d in deals), Decimal(0))
        out.append((stage["code"], len(deals), cents(amount), cents(amount * stage["probability"] / Decimal(100))))
    return out


def stalled_ids(c: Chain, s: Scope) -> list[str]:
    found = []
    for d in c.deals:
        stage = c.stage(d["stage_id"])
        if d["deleted"] or stage["kind"] != "open" or not stage["idle_days"]:
            continue
        if not (s.store(d["store_id"]) and s.owner(d["owner_id"])):
            continue
        deadline = d["stage_entered_at"] + dt.timedelta(days=stage["idle_days"])
        if deadline < s.now:
            found.append((deadline, d["id"]))
    return [ident for _, ident in sorted(found)]


def expect_funnel(c: Chain, s: Scope) -> tuple[int, list[tuple]]:
    created = {
        d["id"]
        for d in c.deals
        if not d["deleted"] and s.within(d["created_at"]) and s.store(d["store_id"]) and s.owner(d["owner_id"])
    }
    position = {st["id"]: st["position"] for st in c.stages if st["kind"] != "lost"}
    top: dict[str, int] = {}
    visits = [(h["opportunity_id"], h["stage_id"]) for h in c.history if not h["deleted"]]
    for deal, stage in visits:
        if deal in created and stage in position:
            top[deal] = max(top.get(deal, 0), position[stage])
    live = {d["id"]: d for d in c.deals if not d["deleted"]}
    durations: dict[str, list[float]] = defaultdict(list)
    for h in c.history:
        deal = live.get(h["opportunity_id"])
        if h["deleted"] or deal is None or h["left_at"] is None or not s.within(h["entered_at"]):
            continue
        if s.store(h["store_id"]) and s.owner(deal["owner_id"]):
            durations[h["stage_id"]].append((h["left_at"] - h["entered_at"]).total_seconds() / 86400)
    rows, previous = [], None
    for stage in c.stages:
        if stage["kind"] == "lost":
            continue
        reached = sum(1 for t in top.values() if t >= stage["position"])
        spent = durations.get(stage["id"], [])
        rows.append(
            (
                stage["code"],
                reached,
                pct(reached, previous) if previous is not None else None,
                round(statistics.median(spent), 1) if spent else None,
                len(spent),
            )
        )
        previous = reached
    return len(created), rows


def closed_deals(c: Chain, s: Scope, f: Filters | None = None, kinds=("won", "lost")) -> list[dict]:
    return [
        d
        for d in c.deals
        if not d["deleted"]
        and c.stage(d["stage_id"])["kind"] in kinds
        and s.within(d["closed_at"], f)
        and s.store(d["store_id"])
        and s.owner(d["owner_id"])
    ]


def cycle_days(d: dict) -> float:
    return (d["closed_at"] - d["created_at"]).total_seconds() / 86400


def expect_win_rate(c: Chain, s: Scope) -> dict[str | None, tuple]:
    groups: dict[str | None, list[dict]] = defaultdict(list)
    deals = closed_deals(c, s)
    for d in deals:
        groups[d["owner_id"]].append(d)
    groups["*"] = deals

    def figures(ds: list[dict]) -> tuple:
        won = [d for d in ds if c.stage(d["stage_id"])["kind"] == "won"]
        lost = len(ds) - len(won)
        cycles = [cycle_days(d) for d in won]
        return (
            len(won),
            lost,
            pct(len(won), len(ds)),
            cents(sum((d["amount"] for d in won), Decimal(0))),
            round(sum(cycles) / len(cycles), 1) if cycles else None,
            round(statistics.median(cycles), 1) if cycles else None,
        )

    return {owner: figures(ds) for owner, ds in groups.items()}


def expect_forecast(c: Chain, s: Scope) -> list[tuple]:
    local = s.now.astimezone(SH).date()
    first = local.replace(day=1)
    second = (first + dt.timedelta(days=32)).replace(day=1)
    after = (second + dt.timedelta(days=32)).replace(day=1)
    out = []
    for lo, hi in ((first, second), (second, after)):
        deals = [
            d
            for d in c.deals
            if not d["deleted"]
            and c.stage(d["stage_id"])["kind"] == "open"
            and d["expected_close_date"] is not None
            and lo <= _date(d["expected_close_date"]) < hi
            and s.store(d["store_id"])
            and s.owner(d["owner_id"])
        ]
        amount = sum((d["amount"] for d in deals), Decimal(0))
        weighted = sum((d["amount"] * c.stage(d["stage_id"])["probability"] / Decimal(100) for d in deals), Decimal(0))
        out.append((lo.strftime("%Y-%m"), len(deals), cents(amount), cents(weighted)))
    return out


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def reps_of(c: Chain, s: Scope) -> list[dict]:
    return [
        u
        for u in c.users
        if u["role"] == "rep"
        and not u["deleted"]
        and (u["active"] or s.f.owner_id is not None)
        and s.store(u["store_id"])
        and s.owner(u["id"])
    ]


def rep_follow_ups(c: Chain, s: Scope, f: Filters | None = None) -> Counter:
    return Counter(
        i["user_id"]
        for i in c.interactions
        if follow_up(i) and s.within(i["occurred_at"], f) and s.store(i["store_id"]) and s.owner(i["user_id"])
    )


def task_states(c: Chain, s: Scope, key: str) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    for t in c.tasks:
        if t["deleted"] or t["status"] == "cancelled" or not s.within(t["due_at"]):
            continue
        if not (s.store(t["store_id"]) and s.owner(t["owner_id"])):
            continue
        counts = out[t[key]]
        counts["due"] += 1
        if t["status"] == "done" and t["completed_at"] is not None and t["completed_at"] <= t["due_at"]:
            counts["on_time"] += 1
        elif t["status"] == "done":
            counts["late"] += 1
        elif t["status"] == "open" and t["due_at"] < s.now:
            counts["overdue"] += 1
    return out


def on_time(counts: Counter) -> float | None:
    return pct(counts["on_time"], counts["on_time"] + counts["late"] + counts["overdue"])


def unanswered_customers(c: Chain, s: Scope) -> set[str]:
    by_customer: dict[str, list[dict]] = defaultdict(list)
    for i in c.interactions:
        by_customer[i["customer_id"]].append(i)
    found = set()
    window = dt.timedelta(hours=48)
    for i in c.interactions:
        if i["kind"] not in CONTACTS or i["user_id"] is None or i["deleted"]:
            continue
        if not s.within(i["occurred_at"]) or i["occurred_at"] >= s.now - window or not s.store(i["store_id"]):
            continue
        answered = any(
            follow_up(j) and j["id"] != i["id"] and i["occurred_at"] <= j["occurred_at"] <= i["occurred_at"] + window
            for j in by_customer[i["customer_id"]]
        )
        if not answered:
            found.add(i["customer_id"])
    return found


def median_minutes(complaints: list[dict]) -> float | None:
    spans = [(p["first_response_at"] - p["opened_at"]).total_seconds() / 60 for p in complaints]
    return round(statistics.median(spans), 1) if spans else None


def responded(c: Chain, s: Scope, f: Filters | None = None) -> list[dict]:
    return [
        p
        for p in c.complaints
        if not p["deleted"]
        and p["first_response_at"] is not None
        and s.within(p["opened_at"], f)
        and s.store(p["store_id"])
        and s.owner(p["owner_id"])
    ]


def expect_targets(c: Chain, s: Scope, f: Filters) -> dict[str, float | None]:
    live_customers = {x["id"]: x for x in c.customers if not x["deleted"]}

    def buyers(period: Filters, scoped: bool) -> set[str]:
        return {
            o["customer_id"]
            for o in c.orders
            if not o["deleted"]
            and s.within(o["ordered_at"], period)
            and o["customer_id"] in live_customers
            and (not scoped or (s.store(o["store_id"]) and s.owner(live_customers[o["customer_id"]]["owner_id"])))
        }

    base, again = buyers(f.previous(), True), buyers(f, False)
    won = closed_deals(c, s, f, ("won",))
    rated = [
        p
        for p in c.complaints
        if not p["deleted"]
        and p["satisfaction"] is not None
        and s.within(p["callback_at"], f)
        and s.store(p["store_id"])
        and s.owner(p["owner_id"])
    ]
    opened = [
        p
        for p in c.complaints
        if not p["deleted"] and s.within(p["opened_at"], f) and s.store(p["store_id"]) and s.owner(p["owner_id"])
    ]
    repeated = [
        p
        for p in opened
        if any(
            e["customer_id"] == p["customer_id"]
            and not e["deleted"]
            and e["id"] != p["id"]
            and p["opened_at"] - dt.timedelta(days=30) <= e["opened_at"] < p["opened_at"]
            for e in c.complaints
        )
    ]
    reps = [u["id"] for u in reps_of(c, s)]
    follow_ups = rep_follow_ups(c, s, f)
    cycles = [cycle_days(d) for d in won]
    return {
        "retention": pct(len(base & again), len(base)),
        "sales_cycle": round(sum(cycles) / len(cycles), 1) if cycles else None,
        "campaign_conversion": None,
        "satisfaction": pct(sum(1 for p in rated if p["satisfaction"] >= 4), len(rated)),
        "complaint_response": median_minutes(responded(c, s, f)),
        "repeat_complaints": pct(len(repeated), len(opened)),
        "follow_ups": round(sum(follow_ups[r] for r in reps) / (len(reps) * f.days), 1) if reps else None,
    }


def demo_filters(store_ids: frozenset | None = None, owner_id: uuid.UUID | None = None, days: int = 30) -> Filters:
    end = dt.datetime.now(SH).date()
    return Filters(start=end - dt.timedelta(days=days - 1), end=end, store_ids=store_ids, owner_id=owner_id)


@pytest.fixture
async def scopes(world, stores) -> list[Scope]:
    """The whole chain, one store, one rep of it — each as of one moment."""
    now = dt.datetime.now(dt.UTC)
    rep = (await User.select(User.id).where(User.username == "rep.bjcy").first())["id"]
    bjcy = frozenset({stores["BJ-CY"]})
    return [
        Scope(demo_filters(), now),
        Scope(demo_filters(bjcy), now),
        Scope(demo_filters(bjcy, owner_id=rep), now),
        Scope(demo_filters(days=120), now),
    ]


async def test_demo_pipeline_stalled_forecast(scopes):
    chain = await load_chain()
    for s in scopes:
        pipeline = await service.pipeline(s.f, s.now)
        got = [(r["stage_code"], r["deals"], r["amount"], r["weighted"]) for r in rows_of(pipeline)]
        assert got == expect_pipeline(chain, s)
        stalled = await service.stalled(s.f, s.now)
        expected = stalled_ids(chain, s)
        assert [r["opportunity_id"] for r in rows_of(stalled)] == expected[: service.STALLED_LIMIT]
        assert stalled.total == len(expected)
        deals = {d["id"]: d for d in chain.deals}
        for r in rows_of(stalled):
            entered = deals[r["opportunity_id"]]["stage_entered_at"]
            assert near(r["days_in_stage"], (s.now - entered).total_seconds() / 86400)
        forecast = await service.forecast(s.f, s.now)
        assert [tuple(r) for r in forecast.rows] == expect_forecast(chain, s)
    assert any(r[1] for r in expect_pipeline(chain, scopes[1])), "BJ-CY has open deals"
    assert stalled_ids(chain, scopes[0]), "the demo chain has stalled deals"


async def test_demo_funnel_and_win_rate(scopes):
    chain = await load_chain()
    for s in scopes:
        funnel = await service.funnel(s.f, s.now)
        created, expected = expect_funnel(chain, s)
        assert funnel.total == created
        got = rows_of(funnel)
        assert [(r["stage_code"], r["reached"], r["conversion"]) for r in got] == [e[:3] for e in expected]
        for r, e in zip(got, expected, strict=True):
            assert near(r["median_days"], e[3]) and r["timed"] == e[4], (r, e)

        win_rate = await service.win_rate(s.f, s.now)
        expected_rates = expect_win_rate(chain, s)
        got_rates = {(r["owner_id"] if r["owner_id"] is not None else "*"): r for r in rows_of(win_rate)}
        assert set(got_rates) == set(expected_rates)
        for owner, e in expected_rates.items():
            r = got_rates[owner]
            assert (r["won"], r["lost"], r["win_rate"], r["won_amount"]) == e[:4], owner
            assert near(r["avg_cycle_days"], e[4]) and near(r["median_cycle_days"], e[5]), (r, e)
    _, wide = expect_funnel(chain, scopes[3])
    assert wide[0][1] and wide[-1][1], "the demo chain's deals reach the first stage and won"


async def test_demo_rep_activity_and_stores(scopes):
    chain = await load_chain()
    for s in scopes:
        table = await service.rep_activity(s.f, s.now)
        reps = reps_of(chain, s)
        follow_ups = rep_follow_ups(chain, s)
        tasks = task_states(chain, s, "owner_id")
        unanswered = unanswered_customers(chain, s)
        owners = Counter(
            x["owner_id"]
            for x in chain.customers
            if x["id"] in unanswered and not x["deleted"] and s.owner(x["owner_id"])
        )
        got = {r["rep_id"]: r for r in rows_of(table)}
        assert set(got) == {u["id"] for u in reps}
        for rep in reps:
            r, t = got[rep["id"]], tasks[rep["id"]]
            assert r["follow_ups"] == follow_ups[rep["id"]]
            assert r["follow_ups_per_day"] == round(follow_ups[rep["id"]] / s.f.days, 1)
            assert (r["tasks_due"], r["on_time"], r["late"], r["overdue"]) == (
                t["due"],
                t["on_time"],
                t["late"],
                t["overdue"],
            )
            assert r["on_time_pct"] == on_time(t)
            assert r["no_follow_up"] == owners[rep["id"]], rep["username"]

        table = await service.stores(s.f, s.now)
        store_tasks = task_states(chain, s, "store_id")
        live = [x for x in chain.stores if not x["deleted"] and s.store(x["id"])]
        assert [r["code"] for r in rows_of(table)] == sorted(x["code"] for x in live)
        for r in rows_of(table):
            sid = r["store_id"]

            def mine(d: dict, sid: str = sid, s: Scope = s) -> bool:
                return d["store_id"] == sid and not d["deleted"] and s.owner(d["owner_id"])

            open_deals = [d for d in chain.deals if mine(d) and chain.stage(d["stage_id"])["kind"] == "open"]
            closed = [d for d in closed_deals(chain, s) if d["store_id"] == sid]
            won = [d for d in closed if chain.stage(d["stage_id"])["kind"] == "won"]
            store_reps = [u["id"] for u in reps if u["store_id"] == sid]
            assert r["customers"] == sum(1 for x in chain.customers if mine(x))
            assert (r["open_deals"], r["open_amount"]) == (
                len(open_deals),
                cents(sum((d["amount"] for d in open_deals), Decimal(0))),
            )
            assert r["won_amount"] == cents(sum((d["amount"] for d in won), Decimal(0)))
            assert r["win_rate"] == pct(len(won), len(closed))
            assert r["reps"] == len(store_reps)
            expected = sum(follow_ups[u] for u in store_reps) / (len(store_reps) * s.f.days) if store_reps else None
            assert r["follow_ups_per_rep_day"] == (round(expected, 1) if expected is not None else None)
            assert r["on_time_pct"] == on_time(store_tasks[sid])
            complaints = [p for p in responded(chain, s) if p["store_id"] == sid]
            assert near(r["response_minutes"], median_minutes(complaints)), r["code"]
    assert any(follow_ups.values()), "the demo reps log follow-ups"


async def test_demo_targets_and_trend(scopes):
    chain = await load_chain()
    for s in scopes:
        table = await service.targets(s.f, s.now)
        this, last = expect_targets(chain, s, s.f), expect_targets(chain, s, s.f.previous())
        for r in rows_of(table):
            key = r["metric_key"]
            assert near(r["this_period"], this[key]), (key, r, this[key])
            assert near(r["previous_period"], last[key]), (key, r, last[key])

        trend = await service.trend(s.f, s.now)
        weeks = rows_of(trend)
        assert weeks[0]["from"] == s.f.start and weeks[-1]["to"] == s.f.end
        assert all(w["from"].weekday() == 0 for w in weeks[1:]) and all(w["to"].weekday() == 6 for w in weeks[:-1])
        for w in weeks:
            since = dt.datetime.combine(w["from"], dt.time(), SH)
            until = dt.datetime.combine(w["to"] + dt.timedelta(days=1), dt.time(), SH)

            def inside(moment: dt.datetime | None, since: dt.datetime = since, until: dt.datetime = until) -> bool:
                return moment is not None and since <= moment < until

            created = [
                d
                for d in chain.deals
                if not d["deleted"] and inside(d["created_at"]) and s.store(d["store_id"]) and s.owner(d["owner_id"])
            ]
            won = [d for d in closed_deals(chain, s, kinds=("won",)) if inside(d["closed_at"])]
            follow_ups = [
                i
                for i in chain.interactions
                if follow_up(i) and inside(i["occurred_at"]) and s.store(i["store_id"]) and s.owner(i["user_id"])
            ]
            assert (w["new_deals"], w["won_deals"], w["won_amount"], w["follow_ups"]) == (
                len(created),
                len(won),
                cents(sum((d["amount"] for d in won), Decimal(0))),
                len(follow_ups),
            ), w["week"]
    whole = expect_targets(chain, scopes[3], scopes[3].f)
    assert whole["retention"] is not None and whole["sales_cycle"] is not None, "the demo chain has these figures"


async def test_demo_reports_split_by_customer_add_up_to_the_same_figures(scopes, monkeypatch):
    """On PostgreSQL the whole chain's heaviest queries run in parts side by side, each over a range
    of customer (or deal) ids cut by the tables' statistics: the parts add up to one query's figures."""
    from server import db
    from server.analytics import filters

    if not db.is_postgres():
        pytest.skip("SQLite runs every query whole")
    for table in ("customers", "opportunities"):
        await Customer.raw(f"ANALYZE {table}")
        assert len(await db.id_ranges(table, "id")) == db.REPORT_PARTS > 1, table
    for s in (scopes[0], scopes[3]):
        assert s.f.parts == db.REPORT_PARTS
        split = [await service.run(name, s.f, s.now) for name in ("funnel", "targets", "adoption")]
        monkeypatch.setattr(filters, "REPORT_PARTS", 1)
        assert s.f.parts == 1
        whole = [await service.run(name, s.f, s.now) for name in ("funnel", "targets", "adoption")]
        monkeypatch.undo()
        assert [t.rows for t in split] == [t.rows for t in whole]


async def test_every_report_is_registered_and_describes_its_filters(world):
    assert [n for n in service.REPORTS if n != "adoption"] == MINE
    for name in MINE:
        table = await service.run(name, world.filters, NOW)
        zh, en, _ = service.REPORTS[name]
        assert (table.report, table.title_zh, table.title_en) == (name, zh, en)
        assert table.filters["from"] == "2026-11-01" and table.filters["to"] == "2026-11-25"
        assert table.generated_at == NOW
        assert len(table.drill) == len(table.rows)
        for row in table.rows:
            for value, column in zip(row, table.columns, strict=True):
                if value is None:
                    continue
                if column.kind == "money":
                    assert isinstance(value, str) and Decimal(value) == Decimal(value).quantize(CENT)
                elif column.kind in ("percent", "days", "minutes", "number"):
                    assert isinstance(value, int | float) and round(value, 1) == value, (name, column.key, value)
                elif column.kind == "int":
                    assert isinstance(value, int)
