"""The rule sweep under a controlled clock: every rule fires when due and not before, never twice,
with its owner, kind, title and due time (the store's time zone and opening hours), cooldowns,
per-store switches, escalation and the complaint service levels.

Each test builds its own store (never a demo store) and passes ``now`` to ``sweep`` (wall time
plays no part), restricted to its stores and usually to the rule under test. Everything made here
is removed when the module ends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from server import db
from server.auth.tables import User
from server.catalog.tables import Category
from server.complaints.tables import Complaint
from server.customers.tables import Customer
from server.interactions.tables import Interaction
from server.opportunities.tables import Opportunity, PipelineStage, StageHistory
from server.orders.tables import Order, OrderLine
from server.rules.service import SPECS, dedupe_key, sweep, task_id
from server.rules.tables import Rule, RuleStore
from server.stores.tables import Region, Store
from server.sync.service import current_version
from server.sync.tables import ScopeVersion
from server.tasks.tables import Task
from shared.ids import uuid7

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
# Monday to Saturday 10:00–22:00; Sunday closed.
SH_HOURS = {day: [["10:00", "22:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
NY_HOURS = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}

MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def sh(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """November 2026, Shanghai local time (the 18th is a Wednesday, the 21st a Saturday)."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SH)


BASE = sh(18, 14)  # Wednesday 14:00, the store is open
TODAY = BASE.date()
_names = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class Person:
    id: uuid.UUID
    name: str


@dataclasses.dataclass(frozen=True)
class Deal:
    id: uuid.UUID
    history_id: uuid.UUID  # the current stage_history row (the stage rules' subject)
    title: str


@dataclasses.dataclass(frozen=True)
class Cat:
    id: uuid.UUID
    name_zh: str
    name_en: str
    repurchase_days: int | None


@dataclasses.dataclass
class Shop:
    """A store of this module's own, with a rep (zh-CN), a rep whose language is English, an
    active store manager and a former (inactive) manager whose username sorts first."""

    world: World
    id: uuid.UUID
    rep: Person
    rep_en: Person
    manager: Person

    async def sweep(self, now: dt.datetime, *codes: str) -> dict[str, int]:
        result = await sweep(now, codes=list(codes) or None, stores=[self.id])
        return {code: result.created.get(code, 0) for code in (codes or SPECS)}

    async def customer(self, owner: Person | None = None) -> Person:
        person = Person(uuid7(), f"规测顾客{next(_names):04d}")
        owner = owner or self.rep
        await Customer.insert(Customer(id=person.id, version=0, store_id=self.id, owner_id=owner.id, name=person.name))
        return person

    async def interaction(
        self,
        customer: Person,
        kind: str,
        at: dt.datetime,
        *,
        seconds: int | None = None,
        category: Cat | None = None,
        by: Person | None = None,
    ) -> uuid.UUID:
        row_id = uuid7()
        logged = kind in ("visit", "call", "message", "note")
        await Interaction.insert(
            Interaction(
                id=row_id,
                version=0,
                store_id=self.id,
                customer_id=customer.id,
                user_id=(by or self.rep).id if logged else None,
                kind=kind,
                channel="store" if logged else "online",
                occurred_at=at,
                duration_seconds=seconds,
                category_id=category.id if category else None,
                body="规则测试",
            )
        )
        return row_id

    async def browse(self, customer: Person, category: Cat, at: dt.datetime, seconds: int = 600) -> uuid.UUID:
        return await self.interaction(customer, "browse", at, seconds=seconds, category=category)

    async def order(self, customer: Person, at: dt.datetime, amount: str, category: Cat) -> uuid.UUID:
        """An order with one line; returns the line's id."""
        order_id, line_id = uuid7(), uuid7()
        await Order.insert(
            Order(
                id=order_id,
                version=0,
                store_id=self.id,
                customer_id=customer.id,
                channel="store",
                ordered_at=at,
                amount=Decimal(amount),
                payment_method="card",
            )
        )
        await OrderLine.insert(
            OrderLine(
                id=line_id,
                version=0,
                store_id=self.id,
                order_id=order_id,
                category_id=category.id,
                product_name=category.name_zh,
                quantity=1,
                unit_price=Decimal(amount),
                amount=Decimal(amount),
            )
        )
        return line_id

    async def complaint(self, customer: Person, opened_at: dt.datetime, **fields) -> uuid.UUID:
        row_id = uuid7()
        await Complaint.insert(
            Complaint(
                id=row_id,
                version=0,
                store_id=self.id,
                customer_id=customer.id,
                owner_id=fields.pop("owner", self.rep).id,
                category="quality",
                status=fields.pop("status", "open"),
                description="沙发坐垫塌陷",
                opened_at=opened_at,
                **fields,
            )
        )
        return row_id

    async def deal(
        self,
        customer: Person,
        stage: str,
        *,
        entered_at: dt.datetime,
        close: dt.date | None = None,
        contract_end: dt.date | None = None,
    ) -> Deal:
        deal = Deal(uuid7(), uuid7(), f"规则测试商机{next(_names):04d}")
        stage_id = self.world.stages[stage]["id"]
        await Opportunity.insert(
            Opportunity(
                id=deal.id,
                version=0,
                store_id=self.id,
                customer_id=customer.id,
                owner_id=self.rep.id,
                title=deal.title,
                stage_id=stage_id,
                amount=Decimal("8800"),
                expected_close_date=close,
                contract_end_date=contract_end,
                stage_entered_at=entered_at,
            )
        )
        await StageHistory.insert(
            StageHistory(
                id=deal.history_id,
                version=0,
                store_id=self.id,
                opportunity_id=deal.id,
                stage_id=stage_id,
                entered_at=entered_at,
                left_at=None,
                moved_by_id=self.rep.id,
            )
        )
        return deal


class World:
    def __init__(self, region_id: uuid.UUID, categories: dict[str, Cat], stages: dict[str, dict]) -> None:
        self.region_id = region_id
        self.categories = categories
        self.stages = stages
        self.store_ids: list[uuid.UUID] = []

    async def shop(self, time_zone: str = "Asia/Shanghai", hours: dict | None = None) -> Shop:
        store_id = uuid7()
        tag = uuid.uuid4().hex[:10]
        self.store_ids.append(store_id)
        await Store.insert(
            Store(
                id=store_id,
                version=0,
                code=f"RT-{tag}",
                name=f"规则测试店{tag}",
                city="上海",
                region_id=self.region_id,
                time_zone=time_zone,
                opening_hours=json.dumps(SH_HOURS if hours is None else hours),
                pilot=False,
                active=True,
            )
        )

        async def user(suffix: str, name: str, role: str, language: str = "zh-CN", active: bool = True) -> Person:
            person = Person(uuid7(), name)
            await User.insert(
                User(
                    id=person.id,
                    version=0,
                    username=f"rt-{tag}-{suffix}",
                    display_name=name,
                    password_hash="-",
                    role=role,
                    store_id=store_id,
                    language=language,
                    active=active,
                )
            )
            return person

        await user("0-former-manager", "前任店长", "store_manager", active=False)
        manager = await user("manager", "规测店长", "store_manager")
        rep = await user("rep", "规测导购", "rep")
        rep_en = await user("rep-en", "Alex Rep", "rep", language="en")
        return Shop(self, store_id, rep, rep_en, manager)

    async def remove(self) -> None:
        ids = self.store_ids
        if not ids:
            return
        await Task.delete().where(Task.store_id.is_in(ids))
        await RuleStore.delete().where(RuleStore.store_id.is_in(ids))
        await Interaction.delete().where(Interaction.store_id.is_in(ids))
        await OrderLine.delete().where(OrderLine.store_id.is_in(ids))
        await Order.delete().where(Order.store_id.is_in(ids))
        await Complaint.delete().where(Complaint.store_id.is_in(ids))
        await StageHistory.delete().where(StageHistory.store_id.is_in(ids))
        await Opportunity.delete().where(Opportunity.store_id.is_in(ids))
        await Customer.delete().where(Customer.store_id.is_in(ids))
        await User.delete().where(User.store_id.is_in(ids))
        await ScopeVersion.delete().where(ScopeVersion.scope.is_in([str(i) for i in ids]))
        await Store.delete().where(Store.id.is_in(ids))


@pytest.fixture(scope="module")
async def world(settings, demo):
    started = db.is_postgres() and db.engine().pool is None
    if started:
        await db.start(settings)
    region = await Region.select(Region.id).order_by(Region.code).first()
    categories = {
        r["code"]: Cat(r["id"], r["name_zh"], r["name_en"], r["repurchase_days"])
        for r in await Category.select().where(Category.code.is_in(["sofa", "mattress", "bed_sheet"]))
    }
    stages = {r["code"]: r for r in await PipelineStage.select()}
    assert categories["bed_sheet"].repurchase_days and categories["sofa"].repurchase_days is None
    assert stages["proposal"]["idle_days"] and stages["won"]["kind"] == "won"
    the_world = World(region["id"], categories, stages)
    try:
        yield the_world
    finally:
        await the_world.remove()
        if started:
            await db.stop()


# --- checks ------------------------------------------------------------------------------------------


async def tasks_of(code: str, subject: str) -> list[dict]:
    return await Task.select().where(Task.dedupe_key == dedupe_key(code, subject))


async def keys_of(shop: Shop, code: str) -> list[str]:
    rows = await Task.select(Task.dedupe_key).where((Task.store_id == shop.id) & Task.dedupe_key.like(f"{code}:%"))
    return sorted(r["dedupe_key"] for r in rows)


async def the_task(
    code: str,
    subject: str,
    *,
    shop: Shop,
    owner: Person,
    kind: str,
    title: str,
    due: dt.datetime,
    customer: Person | None = None,
    deal: Deal | None = None,
) -> dict:
    """The one task of ``code`` for ``subject``, checked field by field."""
    rows = await tasks_of(code, subject)
    assert len(rows) == 1, rows
    task = rows[0]
    key = dedupe_key(code, subject)
    assert task["dedupe_key"] == key
    assert str(task["id"]) == str(task_id(key))
    assert str(task["store_id"]) == str(shop.id)
    assert str(task["owner_id"]) == str(owner.id), (task["owner_id"], owner)
    assert task["kind"] == kind
    assert task["source"] == "rule"
    assert task["status"] == "open"
    assert task["title"] == title
    assert task["due_at"] == due, (task["due_at"].astimezone(SH), due.astimezone(SH))
    if customer is not None:
        assert str(task["customer_id"]) == str(customer.id)
    if deal is not None:
        assert str(task["opportunity_id"]) == str(deal.id)
    return task


def none_created(*codes: str) -> dict[str, int]:
    return dict.fromkeys(codes, 0)


# --- pipeline ------------------------------------------------------------------------------------------


async def test_stage_idle_fires_after_idle_days_and_escalates_to_the_manager_after_twice_that(world):
    shop = await world.shop()
    stage = world.stages["proposal"]
    days = int(stage["idle_days"])
    entered = BASE - days * DAY
    deal = await shop.deal(await shop.customer(), "proposal", entered_at=entered)
    codes = ("stage_idle", "stage_escalation")

    idle_at = entered + days * DAY  # Wednesday 14:00
    assert await shop.sweep(idle_at - MIN, *codes) == none_created(*codes)
    assert await shop.sweep(idle_at + MIN, *codes) == {"stage_idle": 1, "stage_escalation": 0}
    await the_task(
        "stage_idle",
        str(deal.history_id),
        shop=shop,
        owner=shop.rep,
        kind="stage_reminder",
        title=f"商机停滞：{deal.title}已在「{stage['name_zh']}」{days}天",
        due=idle_at + MIN,
        deal=deal,
    )
    assert await shop.sweep(idle_at + MIN, *codes) == none_created(*codes)
    assert await shop.sweep(idle_at + DAY, *codes) == none_created(*codes)

    escalate_at = entered + 2 * days * DAY
    assert await shop.sweep(escalate_at - MIN, *codes) == none_created(*codes)
    assert await shop.sweep(escalate_at + MIN, *codes) == {"stage_idle": 0, "stage_escalation": 1}
    await the_task(
        "stage_escalation",
        str(deal.history_id),
        shop=shop,
        owner=shop.manager,  # the active manager, not the former one
        kind="stage_reminder",
        title=f"升级提醒：{deal.title}已在「{stage['name_zh']}」{2 * days}天（{shop.rep.name}）",
        due=escalate_at + MIN,
        deal=deal,
    )
    assert await shop.sweep(escalate_at + 3 * DAY, *codes) == none_created(*codes)


async def test_close_near_within_three_days_of_the_expected_close(world):
    shop = await world.shop()
    customer = await shop.customer()
    near = await shop.deal(customer, "negotiation", entered_at=BASE, close=TODAY + 3 * DAY)
    far = await shop.deal(customer, "negotiation", entered_at=BASE, close=TODAY + 5 * DAY)

    assert await shop.sweep(BASE - DAY, "close_near") == {"close_near": 0}  # four days before
    assert await shop.sweep(BASE, "close_near") == {"close_near": 1}
    await the_task(
        "close_near",
        f"{near.id}:{(TODAY + 3 * DAY).isoformat()}",
        shop=shop,
        owner=shop.rep,
        kind="stage_reminder",
        title=f"预计成交日临近：{near.title}",
        due=BASE,
        customer=customer,
        deal=near,
    )
    assert await shop.sweep(BASE, "close_near") == {"close_near": 0}
    assert await shop.sweep(BASE + DAY, "close_near") == {"close_near": 0}  # far is four days away then
    assert await keys_of(shop, "close_near") == [dedupe_key("close_near", f"{near.id}:{TODAY + 3 * DAY}")]
    assert far.id


async def test_contract_end_for_won_deals_within_seven_days(world):
    shop = await world.shop()
    customer = await shop.customer()
    seven = await shop.deal(customer, "won", entered_at=BASE - 90 * DAY, contract_end=TODAY + 7 * DAY)
    eight = await shop.deal(customer, "won", entered_at=BASE - 90 * DAY, contract_end=TODAY + 8 * DAY)
    still_open = await shop.deal(customer, "proposal", entered_at=BASE, contract_end=TODAY + 7 * DAY)

    assert await shop.sweep(BASE - DAY, "contract_end") == {"contract_end": 0}  # eight days before
    assert await shop.sweep(BASE, "contract_end") == {"contract_end": 1}
    end = TODAY + 7 * DAY
    await the_task(
        "contract_end",
        f"{seven.id}:{end.isoformat()}",
        shop=shop,
        owner=shop.rep,
        kind="stage_reminder",
        title=f"合同7天内到期：{seven.title}（{end.isoformat()}）",
        due=BASE,
        deal=seven,
    )
    assert await shop.sweep(BASE, "contract_end") == {"contract_end": 0}
    # A day later the eight-day contract comes into the window; the seven-day one is not made again.
    assert await shop.sweep(BASE + DAY, "contract_end") == {"contract_end": 1}
    assert await keys_of(shop, "contract_end") == sorted(
        [
            dedupe_key("contract_end", f"{seven.id}:{end}"),
            dedupe_key("contract_end", f"{eight.id}:{TODAY + 8 * DAY}"),
        ]
    )
    assert not await Task.exists().where(Task.opportunity_id == still_open.id)


# --- follow-ups ------------------------------------------------------------------------------------------


async def test_no_follow_up_48_hours_after_a_visit_unless_a_later_contact(world):
    shop = await world.shop()
    silent, called, noted = await shop.customer(), await shop.customer(), await shop.customer()
    visit_at = BASE - 49 * HOUR  # Monday 13:00
    visit = await shop.interaction(silent, "visit", visit_at)
    await shop.interaction(called, "visit", visit_at)
    await shop.interaction(called, "call", BASE - 30 * HOUR)
    await shop.interaction(noted, "visit", visit_at)
    await shop.interaction(noted, "note", BASE - 30 * HOUR)

    due_at = visit_at + 48 * HOUR
    assert await shop.sweep(due_at - MIN, "no_follow_up") == {"no_follow_up": 0}
    assert await shop.sweep(due_at + MIN, "no_follow_up") == {"no_follow_up": 1}
    await the_task(
        "no_follow_up",
        str(visit),
        shop=shop,
        owner=shop.rep,
        kind="follow_up",
        title=f"48小时未跟进：{silent.name}",
        due=due_at + MIN,
        customer=silent,
    )
    assert await shop.sweep(due_at + MIN, "no_follow_up") == {"no_follow_up": 0}
    assert await shop.sweep(BASE + 12 * HOUR, "no_follow_up") == {"no_follow_up": 0}
    assert not await Task.exists().where(Task.customer_id.is_in([called.id, noted.id]))


async def test_browse_interest_with_its_72_hour_cooldown(world):
    shop = await world.shop()
    sofa, mattress = world.categories["sofa"], world.categories["mattress"]
    keen, twice, brief = await shop.customer(), await shop.customer(), await shop.customer()
    first = await shop.browse(keen, sofa, BASE - 10 * MIN, seconds=300)  # exactly five minutes: enough
    await shop.browse(brief, sofa, BASE - 10 * MIN, seconds=299)  # not enough
    twice_first = await shop.browse(twice, sofa, BASE - 30 * MIN)
    twice_second = await shop.browse(twice, sofa, BASE - 20 * MIN)

    assert await shop.sweep(BASE - 31 * MIN, "browse_interest") == {"browse_interest": 0}  # before any browse
    assert await shop.sweep(BASE, "browse_interest") == {"browse_interest": 2}
    await the_task(
        "browse_interest",
        f"{keen.id}:{sofa.id}:{first}",
        shop=shop,
        owner=shop.rep,
        kind="follow_up",
        title=f"跟进：{keen.name}浏览{sofa.name_zh}超过5分钟",
        due=sh(19, 10),  # the next store day's opening
        customer=keen,
    )
    # two qualifying browses in one sweep: one task (the first)
    assert await tasks_of("browse_interest", f"{twice.id}:{sofa.id}:{twice_first}")
    assert not await tasks_of("browse_interest", f"{twice.id}:{sofa.id}:{twice_second}")
    assert await Task.count().where(Task.customer_id == twice.id) == 1
    assert await Task.count().where(Task.customer_id == brief.id) == 0
    assert await shop.sweep(BASE, "browse_interest") == {"browse_interest": 0}

    # within the cooldown: the same category again makes nothing, another category does
    again = await shop.browse(keen, sofa, BASE + HOUR)
    other = await shop.browse(keen, mattress, BASE + HOUR)
    assert await shop.sweep(BASE + 2 * HOUR, "browse_interest") == {"browse_interest": 1}
    assert not await tasks_of("browse_interest", f"{keen.id}:{sofa.id}:{again}")
    await the_task(
        "browse_interest",
        f"{keen.id}:{mattress.id}:{other}",
        shop=shop,
        owner=shop.rep,
        kind="follow_up",
        title=f"跟进：{keen.name}浏览{mattress.name_zh}超过5分钟",
        due=sh(19, 10),
        customer=keen,
    )
    assert await shop.sweep(BASE + 2 * HOUR, "browse_interest") == {"browse_interest": 0}

    # after the cooldown a new long browse makes a new task (Saturday 23:00: due Monday 10:00)
    later = await shop.browse(keen, sofa, BASE + 80 * HOUR)
    assert await shop.sweep(BASE + 81 * HOUR, "browse_interest") == {"browse_interest": 1}
    await the_task(
        "browse_interest",
        f"{keen.id}:{sofa.id}:{later}",
        shop=shop,
        owner=shop.rep,
        kind="follow_up",
        title=f"跟进：{keen.name}浏览{sofa.name_zh}超过5分钟",
        due=sh(23, 10),
        customer=keen,
    )
    assert await Task.count().where(Task.customer_id == keen.id) == 3


async def test_abandoned_cart_24_hours_without_a_later_order(world):
    shop = await world.shop()
    left, bought = await shop.customer(), await shop.customer()
    cart_at = BASE - 25 * HOUR  # Tuesday 13:00
    cart = await shop.interaction(left, "cart", cart_at, category=world.categories["sofa"])
    await shop.interaction(bought, "cart", cart_at, category=world.categories["sofa"])
    await shop.order(bought, cart_at + 2 * HOUR, "6999", world.categories["sofa"])

    due_at = cart_at + 24 * HOUR
    assert await shop.sweep(due_at - MIN, "abandoned_cart") == {"abandoned_cart": 0}
    assert await shop.sweep(due_at + MIN, "abandoned_cart") == {"abandoned_cart": 1}
    await the_task(
        "abandoned_cart",
        f"{left.id}:{cart}",
        shop=shop,
        owner=shop.rep,
        kind="follow_up",
        title=f"跟进：{left.name}加购未下单",
        due=sh(19, 10),
        customer=left,
    )
    assert await shop.sweep(due_at + MIN, "abandoned_cart") == {"abandoned_cart": 0}
    assert await shop.sweep(due_at + 48 * HOUR, "abandoned_cart") == {"abandoned_cart": 0}
    assert await Task.count().where(Task.customer_id == bought.id) == 0


async def test_abandoned_cart_after_its_cooldown_reports_no_task_it_did_not_make(world):
    """The cart stays in the rule's 7-day lookback after the 72-hour cooldown ends: the sweep
    must neither make a second task nor count one (the existing key is skipped on insert)."""
    shop = await world.shop()
    left = await shop.customer()
    cart_at = BASE - 25 * HOUR
    await shop.interaction(left, "cart", cart_at)
    first_sweep = cart_at + 24 * HOUR + MIN
    assert await shop.sweep(first_sweep, "abandoned_cart") == {"abandoned_cart": 1}

    later = first_sweep + 73 * HOUR  # cooldown over; the cart is 4 days old, inside the lookback
    version = await current_version(str(shop.id))
    created = await shop.sweep(later, "abandoned_cart")
    assert await Task.count().where(Task.customer_id == left.id) == 1
    moved = f"the store's version counter moved {version} → {await current_version(str(shop.id))}"
    assert created == {"abandoned_cart": 0}, f"the sweep counts a task it did not create ({moved})"
    assert await current_version(str(shop.id)) == version, moved


async def test_vip_silent_after_30_days_without_contact(world):
    shop = await world.shop()
    sofa = world.categories["sofa"]
    vip, recent, small, lapsed = [await shop.customer() for _ in range(4)]
    await shop.order(vip, BASE - 100 * DAY, "3500", sofa)
    await shop.order(vip, BASE - 40 * DAY, "2600", sofa)  # 6,100 in twelve months
    last_contact = BASE - 30 * DAY
    await shop.interaction(vip, "visit", last_contact)
    await shop.order(recent, BASE - 50 * DAY, "6000", sofa)
    await shop.interaction(recent, "visit", BASE - 10 * DAY)
    await shop.order(small, BASE - 50 * DAY, "4000", sofa)  # never contacted, but not high-value
    await shop.order(lapsed, BASE - 400 * DAY, "9000", sofa)  # high spend, but not in twelve months

    assert await shop.sweep(BASE - MIN, "vip_silent") == {"vip_silent": 0}
    now = BASE + MIN
    assert await shop.sweep(now, "vip_silent") == {"vip_silent": 1}
    period = int(now.timestamp() // (30 * 24 * 3600))
    await the_task(
        "vip_silent",
        f"{vip.id}:{period}",
        shop=shop,
        owner=shop.rep,
        kind="call",
        title=f"高价值客户30天未联系：{vip.name}",
        due=sh(19, 10),
        customer=vip,
    )
    assert await shop.sweep(now, "vip_silent") == {"vip_silent": 0}
    assert await shop.sweep(BASE + 20 * DAY, "vip_silent") == {"vip_silent": 0}  # within the cooldown
    assert await Task.count().where(Task.customer_id.is_in([recent.id, small.id, lapsed.id])) == 0


async def test_repurchase_due_after_the_categorys_repurchase_days(world):
    shop = await world.shop()
    sheet, sofa = world.categories["bed_sheet"], world.categories["sofa"]
    days = sheet.repurchase_days
    due, rebought, sofa_only = await shop.customer(), await shop.customer(), await shop.customer()
    bought_at = BASE - days * DAY
    line = await shop.order(due, bought_at, "199", sheet)
    await shop.order(rebought, bought_at, "199", sheet)
    await shop.order(rebought, bought_at + 100 * DAY, "299", sheet)
    await shop.order(sofa_only, bought_at, "6999", sofa)  # no repurchase cycle

    assert await shop.sweep(BASE - MIN, "repurchase_due") == {"repurchase_due": 0}
    assert await shop.sweep(BASE + MIN, "repurchase_due") == {"repurchase_due": 1}
    await the_task(
        "repurchase_due",
        f"{due.id}:{sheet.id}:{line}",
        shop=shop,
        owner=shop.rep,
        kind="follow_up",
        title=f"复购提醒：{due.name}的{sheet.name_zh}该换了",
        due=sh(19, 10),
        customer=due,
    )
    assert await shop.sweep(BASE + MIN, "repurchase_due") == {"repurchase_due": 0}
    assert await shop.sweep(BASE + 5 * DAY, "repurchase_due") == {"repurchase_due": 0}
    assert await Task.count().where(Task.customer_id.is_in([rebought.id, sofa_only.id])) == 0


# --- complaints --------------------------------------------------------------------------------------------


async def test_complaint_history_within_60_minutes_and_a_solution_within_120(world):
    shop = await world.shop()
    customer = await shop.customer()
    opened = BASE - 2 * HOUR  # Wednesday 12:00
    late = await shop.complaint(customer, opened)
    in_time = await shop.complaint(
        customer,
        opened,
        status="in_progress",
        history_retrieved_at=opened + 30 * MIN,
        first_response_at=opened + 90 * MIN,
    )
    codes = ("complaint_history", "complaint_solution")

    assert await shop.sweep(opened + 59 * MIN, *codes) == none_created(*codes)
    assert await shop.sweep(opened + 61 * MIN, *codes) == {"complaint_history": 1, "complaint_solution": 0}
    await the_task(
        "complaint_history",
        str(late),
        shop=shop,
        owner=shop.rep,
        kind="complaint_callback",
        title=f"投诉1小时内未调取历史：{customer.name}",
        due=opened + 61 * MIN,
        customer=customer,
    )
    assert await shop.sweep(opened + 119 * MIN, *codes) == none_created(*codes)
    assert await shop.sweep(opened + 121 * MIN, *codes) == {"complaint_history": 0, "complaint_solution": 1}
    await the_task(
        "complaint_solution",
        str(late),
        shop=shop,
        owner=shop.rep,
        kind="complaint_callback",
        title=f"投诉2小时内未给出方案：{customer.name}",
        due=opened + 121 * MIN,
        customer=customer,
    )
    assert await shop.sweep(opened + DAY, *codes) == none_created(*codes)
    assert not await tasks_of("complaint_history", str(in_time))
    assert not await tasks_of("complaint_solution", str(in_time))


async def test_complaint_callback_due_24_hours_after_solving_within_opening_hours(world):
    shop = await world.shop()
    customer = await shop.customer()
    opened = BASE - 3 * HOUR
    done = dict(history_retrieved_at=opened + 10 * MIN, first_response_at=opened + 20 * MIN)
    solving = await shop.complaint(customer, opened, status="in_progress", **done)
    called_back = await shop.complaint(
        customer, opened, status="closed", solved_at=opened + HOUR, callback_at=opened + 2 * HOUR, **done
    )

    assert await shop.sweep(BASE - HOUR - MIN, "complaint_callback") == {"complaint_callback": 0}  # not solved yet
    solved_at = BASE - HOUR  # Wednesday 13:00
    await Complaint.update({Complaint.status: "solved", Complaint.solved_at: solved_at}).where(Complaint.id == solving)
    assert await shop.sweep(BASE, "complaint_callback") == {"complaint_callback": 1}
    await the_task(
        "complaint_callback",
        str(solving),
        shop=shop,
        owner=shop.rep,
        kind="complaint_callback",
        title=f"满意度回访：{customer.name}",
        due=solved_at + 24 * HOUR,  # Thursday 13:00, open
        customer=customer,
    )
    assert await shop.sweep(BASE, "complaint_callback") == {"complaint_callback": 0}
    assert await shop.sweep(BASE + 2 * DAY, "complaint_callback") == {"complaint_callback": 0}
    assert not await tasks_of("complaint_callback", str(called_back))

    # solved on Saturday 15:00: 24 hours later is Sunday (closed), so Monday 10:00
    saturday = await shop.complaint(customer, sh(21, 11), status="solved", solved_at=sh(21, 15), **done)
    assert await shop.sweep(sh(21, 15, 5), "complaint_callback") == {"complaint_callback": 1}
    await the_task(
        "complaint_callback",
        str(saturday),
        shop=shop,
        owner=shop.rep,
        kind="complaint_callback",
        title=f"满意度回访：{customer.name}",
        due=sh(23, 10),
        customer=customer,
    )


# --- store time ----------------------------------------------------------------------------------------


async def test_found_while_closed_due_at_the_next_opening(world):
    shop = await world.shop()
    customer = await shop.customer()
    wednesday = await shop.complaint(customer, sh(18, 22))
    saturday = await shop.complaint(customer, sh(21, 22))
    common = dict(shop=shop, owner=shop.rep, kind="complaint_callback", customer=customer)
    title = f"投诉1小时内未调取历史：{customer.name}"

    assert await shop.sweep(sh(18, 23, 30), "complaint_history") == {"complaint_history": 1}
    await the_task("complaint_history", str(wednesday), title=title, due=sh(19, 10), **common)
    assert await shop.sweep(sh(21, 23, 30), "complaint_history") == {"complaint_history": 1}
    await the_task("complaint_history", str(saturday), title=title, due=sh(23, 10), **common)  # Sunday closed


async def test_date_windows_follow_the_stores_local_date(world):
    shop = await world.shop()
    deal = await shop.deal(await shop.customer(), "negotiation", entered_at=BASE, close=dt.date(2026, 11, 22))
    # Wednesday 23:59 local is four days before the 22nd; Thursday 00:01 local (still Wednesday in
    # UTC) is three.
    assert await shop.sweep(sh(18, 23, 59), "close_near") == {"close_near": 0}
    assert await shop.sweep(sh(19, 0, 1), "close_near") == {"close_near": 1}
    await the_task(
        "close_near",
        f"{deal.id}:2026-11-22",
        shop=shop,
        owner=shop.rep,
        kind="stage_reminder",
        title=f"预计成交日临近：{deal.title}",
        due=sh(19, 10),  # found at night: due when the store opens
        deal=deal,
    )


async def test_a_store_in_another_time_zone_computes_in_its_own(world):
    shanghai = await world.shop()
    new_york = await world.shop("America/New_York", NY_HOURS)
    sofa = world.categories["sofa"]
    here, there = await shanghai.customer(), await new_york.customer()
    here_complaint = await shanghai.complaint(here, BASE - 2 * HOUR)
    there_complaint = await new_york.complaint(there, BASE - 2 * HOUR)
    here_browse = await shanghai.browse(here, sofa, BASE - 10 * MIN)
    there_browse = await new_york.browse(there, sofa, BASE - 10 * MIN)

    # Wednesday 14:00 in Shanghai is Wednesday 01:00 in New York (closed until 09:00).
    result = await sweep(BASE, codes=["complaint_history", "browse_interest"], stores=[shanghai.id, new_york.id])
    assert result.created == {"complaint_history": 2, "browse_interest": 2}
    title = "投诉1小时内未调取历史：{}"
    await the_task(
        "complaint_history",
        str(here_complaint),
        shop=shanghai,
        owner=shanghai.rep,
        kind="complaint_callback",
        title=title.format(here.name),
        due=BASE,
    )
    await the_task(
        "complaint_history",
        str(there_complaint),
        shop=new_york,
        owner=new_york.rep,
        kind="complaint_callback",
        title=title.format(there.name),
        due=dt.datetime(2026, 11, 18, 9, tzinfo=NY),
    )
    await the_task(
        "browse_interest",
        f"{here.id}:{sofa.id}:{here_browse}",
        shop=shanghai,
        owner=shanghai.rep,
        kind="follow_up",
        title=f"跟进：{here.name}浏览{sofa.name_zh}超过5分钟",
        due=sh(19, 10),
    )
    await the_task(
        "browse_interest",
        f"{there.id}:{sofa.id}:{there_browse}",
        shop=new_york,
        owner=new_york.rep,
        kind="follow_up",
        title=f"跟进：{there.name}浏览{sofa.name_zh}超过5分钟",
        due=dt.datetime(2026, 11, 19, 9, tzinfo=NY),  # New York's next store day
    )


async def test_next_store_day_rules_found_on_saturday_are_due_monday(world):
    shop = await world.shop()
    sheet, sofa = world.categories["bed_sheet"], world.categories["sofa"]
    now = sh(21, 15, 5)  # Saturday; Sunday is closed
    browser, cart_owner, vip, repurchaser = [await shop.customer() for _ in range(4)]
    browse = await shop.browse(browser, sofa, sh(21, 15))
    cart = await shop.interaction(cart_owner, "cart", now - 24 * HOUR - 5 * MIN)
    await shop.order(vip, now - 60 * DAY, "6000", sofa)
    line = await shop.order(repurchaser, now - sheet.repurchase_days * DAY - HOUR, "199", sheet)
    codes = ("browse_interest", "abandoned_cart", "vip_silent", "repurchase_due")

    assert await shop.sweep(now, *codes) == dict.fromkeys(codes, 1)
    subjects = {
        "browse_interest": f"{browser.id}:{sofa.id}:{browse}",
        "abandoned_cart": f"{cart_owner.id}:{cart}",
        "vip_silent": f"{vip.id}:{int(now.timestamp() // (30 * 24 * 3600))}",
        "repurchase_due": f"{repurchaser.id}:{sheet.id}:{line}",
    }
    for code, subject in subjects.items():
        (task,) = await tasks_of(code, subject)
        assert task["due_at"] == sh(23, 10), (code, task["due_at"].astimezone(SH))


async def test_a_rep_whose_language_is_english_gets_english_titles(world):
    shop = await world.shop()
    sofa = world.categories["sofa"]
    customer = await shop.customer(owner=shop.rep_en)
    browse = await shop.browse(customer, sofa, BASE - 10 * MIN)
    complaint = await shop.complaint(customer, BASE - 2 * HOUR, owner=shop.rep_en)

    assert await shop.sweep(BASE, "browse_interest", "complaint_history") == {
        "browse_interest": 1,
        "complaint_history": 1,
    }
    await the_task(
        "browse_interest",
        f"{customer.id}:{sofa.id}:{browse}",
        shop=shop,
        owner=shop.rep_en,
        kind="follow_up",
        title=f"Follow up: {customer.name} browsed {sofa.name_en} for over 5 minutes",
        due=sh(19, 10),
    )
    await the_task(
        "complaint_history",
        str(complaint),
        shop=shop,
        owner=shop.rep_en,
        kind="complaint_callback",
        title=f"Complaint history not retrieved within 1 hour: {customer.name}",
        due=BASE,
    )


# --- settings -------------------------------------------------------------------------------------------


async def test_per_store_switches_override_the_rules_default(world):
    code = "complaint_history"
    a, b = await world.shop(), await world.shop()
    in_a, in_b = await a.customer(), await b.customer()
    complaint_a = await a.complaint(in_a, BASE - 2 * HOUR)
    complaint_b = await b.complaint(in_b, BASE - 2 * HOUR)
    rule = await Rule.select(Rule.id, Rule.enabled).where(Rule.code == code).first()
    assert rule["enabled"]

    switch = RuleStore(id=uuid7(), rule_id=rule["id"], store_id=a.id, enabled=False)
    await RuleStore.insert(switch)
    try:
        result = await sweep(BASE, codes=[code], stores=[a.id, b.id])
    finally:
        await RuleStore.delete().where(RuleStore.id == switch.id)
    assert result.created == {code: 1}
    assert await tasks_of(code, str(complaint_b))
    assert not await tasks_of(code, str(complaint_a))

    # off for the chain, on for store A only
    later_b = await b.complaint(in_b, BASE - 2 * HOUR)
    switch = RuleStore(id=uuid7(), rule_id=rule["id"], store_id=a.id, enabled=True)
    await Rule.update({Rule.enabled: False}).where(Rule.id == rule["id"])
    await RuleStore.insert(switch)
    try:
        result = await sweep(BASE, codes=[code], stores=[a.id, b.id])
    finally:
        await RuleStore.delete().where(RuleStore.id == switch.id)
        await Rule.update({Rule.enabled: rule["enabled"]}).where(Rule.id == rule["id"])
    assert result.created == {code: 1}
    assert await tasks_of(code, str(complaint_a))
    assert not await tasks_of(code, str(later_b))


async def test_a_stores_own_thresholds_override_the_rules(world):
    code = "no_follow_up"
    a, b = await world.shop(), await world.shop()
    in_a, in_b = await a.customer(), await b.customer()
    visit_a = await a.interaction(in_a, "visit", BASE - 49 * HOUR)
    visit_b = await b.interaction(in_b, "visit", BASE - 49 * HOUR)
    rule = await Rule.select(Rule.id).where(Rule.code == code).first()
    switch = RuleStore(id=uuid7(), rule_id=rule["id"], store_id=a.id, enabled=True, params=json.dumps({"hours": 72}))
    await RuleStore.insert(switch)
    try:
        first = await sweep(BASE, codes=[code], stores=[a.id, b.id])
        second = await sweep(BASE + 24 * HOUR, codes=[code], stores=[a.id, b.id])  # A's visit is 73 h old
    finally:
        await RuleStore.delete().where(RuleStore.id == switch.id)
    assert first.created == {code: 1} and second.created == {code: 1}
    (task_b,) = await tasks_of(code, str(visit_b))
    (task_a,) = await tasks_of(code, str(visit_a))
    assert task_b["created_at"] == BASE and task_a["created_at"] == BASE + 24 * HOUR


async def test_every_rule_swept_twice_at_the_same_time_creates_nothing_the_second_time(world):
    shop = await world.shop()
    sofa, sheet = world.categories["sofa"], world.categories["bed_sheet"]
    c = [await shop.customer() for _ in range(8)]
    await shop.deal(c[0], "proposal", entered_at=BASE - 30 * DAY)  # stage_idle and stage_escalation
    await shop.deal(c[0], "negotiation", entered_at=BASE, close=TODAY + 2 * DAY)  # close_near
    await shop.deal(c[0], "won", entered_at=BASE - 60 * DAY, contract_end=TODAY + 5 * DAY)  # contract_end
    await shop.interaction(c[1], "visit", BASE - 49 * HOUR)  # no_follow_up
    await shop.complaint(c[2], BASE - 3 * HOUR)  # complaint_history, complaint_solution
    await shop.complaint(c[2], BASE - 5 * HOUR, status="solved", solved_at=BASE - HOUR)  # complaint_callback
    await shop.browse(c[3], sofa, BASE - 10 * MIN)  # browse_interest
    await shop.interaction(c[4], "cart", BASE - 25 * HOUR)  # abandoned_cart
    await shop.order(c[5], BASE - 60 * DAY, "6000", sofa)  # vip_silent
    await shop.order(c[6], BASE - (sheet.repurchase_days + 1) * DAY, "199", sheet)  # repurchase_due

    first = await shop.sweep(BASE)
    assert all(first[code] >= 1 for code in SPECS), first
    keyed = await Task.count().where(Task.dedupe_key.is_not_null())
    assert await Task.count().where(Task.store_id == shop.id) == sum(first.values())

    second = await sweep(BASE, stores=[shop.id])
    assert second.total == 0, second.created
    assert await Task.count().where(Task.dedupe_key.is_not_null()) == keyed


async def test_a_backlog_is_made_in_slices_and_nothing_twice(world):
    """Each rule makes at most ``limit`` tasks per sweep; the next sweeps make the rest; then 0."""
    shop = await world.shop()
    visit_at = BASE - 49 * HOUR
    for _ in range(3):
        await shop.interaction(await shop.customer(), "visit", visit_at)
    made = []
    for _ in range(4):
        result = await sweep(BASE, codes=["no_follow_up"], stores=[shop.id], limit=2)
        made.append((result.created["no_follow_up"], result.capped))
    assert made == [(2, ["no_follow_up"]), (1, []), (0, []), (0, [])]
    assert len(await keys_of(shop, "no_follow_up")) == 3
