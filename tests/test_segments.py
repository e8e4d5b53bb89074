"""Segmentation and value (REQUIREMENTS §7): the bands and rules of shared/segments.py on their
edges and as properties; the nightly scoring on a store of its own under a fixed clock (each
customer lands in the segment its orders say, the card says the same, a re-run replaces rather
than adds); the segment report and its drill-downs adding up; the scheduler's nightly check.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.analytics import segments, service
from server.analytics.filters import Filters
from server.analytics.tables import CustomerStanding
from server.auth.scope import Caller
from server.customers import service as customers
from shared.enums import Group, Health, Role
from shared.segments import Facts, standing, tier
from tests.test_rules import SH, World
from tests.test_rules import world as rules_world  # noqa: F401 — the fixture, used through `world`

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def bought(*days_ago: int, amount: str = "1000", complaints: int = 0, contacts: int = 0) -> Facts:
    """Facts of a customer with one order of ``amount`` each of ``days_ago`` days before NOW."""
    at = [NOW - d * DAY for d in days_ago]
    recent = [a for a in at if a >= NOW - 365 * DAY]
    return Facts(
        orders=len(at),
        amount_total=Decimal(amount) * len(at),
        orders_12m=len(recent),
        amount_12m=Decimal(amount) * len(recent),
        first_order_at=min(at) if at else None,
        last_order_at=max(at) if at else None,
        complaints_12m=complaints,
        interactions_90d=contacts,
    )


# --- the rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "group"),
    [
        (Facts(), Group.NEW),  # never bought
        (bought(10), Group.NEW),  # one order, recently
        (bought(10, 40), Group.REPEAT),
        (bought(10, amount="5000.01"), Group.HIGH_VALUE),  # more than 5,000 in twelve months
        (bought(10, amount="5000"), Group.NEW),  # exactly 5,000 is not more
        (bought(180, 300), Group.REPEAT),  # 180 days is not yet dormant
        (bought(181, 300), Group.DORMANT),
        (bought(365, 400, amount="9000"), Group.DORMANT),  # a year to the day is not yet lost
        (bought(366, 400, amount="9000"), Group.LOST),
    ],
)
def test_the_segment_follows_the_last_order_and_the_spend(facts, group):
    assert standing(facts, NOW).group == group


@pytest.mark.parametrize(
    ("facts", "scores"),
    [
        (bought(30), (5, 2, 1)),  # 30 days ago; one order; 1,000
        (bought(31, 32, 33, amount="7000"), (4, 4, 5)),  # a month ago; three orders; 21,000
        (bought(91), (3, 2, 1)),
        (bought(181), (2, 2, 1)),
        (bought(366), (1, 1, 1)),  # nothing in twelve months: frequency and monetary 1
        (bought(1, 2, 3, 4, 5, amount="4000"), (5, 5, 5)),
    ],
)
def test_the_rfm_scores(facts, scores):
    got = standing(facts, NOW)
    assert (got.recency, got.frequency, got.monetary) == scores
    assert got.rfm == "".join(map(str, scores))


def test_the_bands_edges():
    # monetary: 2,000 / 5,000 / 10,000 / 20,000 reach 2 / 3 / 4 / 5
    for amount, score in (("1999.99", 1), ("2000", 2), ("5000", 3), ("10000", 4), ("20000", 5)):
        assert standing(bought(5, amount=amount), NOW).monetary == score, amount
    # frequency: 1 / 2 / 3–4 / 5+ orders in twelve months
    for n, score in ((1, 2), (2, 3), (3, 4), (4, 4), (5, 5), (9, 5)):
        assert standing(bought(*range(1, n + 1)), NOW).frequency == score, n
    # recency: within 30 / 90 / 180 / 365 days
    for days, score in ((0, 5), (30, 5), (31, 4), (90, 4), (91, 3), (180, 3), (181, 2), (365, 2), (366, 1)):
        assert standing(bought(days), NOW).recency == score, days


def test_health_from_purchases_complaints_and_contacts():
    assert standing(bought(5, 60, 120, contacts=3), NOW).health == 100  # 40 + 30 + 30
    assert standing(bought(5, 60, 120, contacts=3), NOW).health_level == Health.HEALTHY
    assert standing(bought(5, contacts=1), NOW).health == 20 + 30 + 10
    # one complaint per order: the complaint part is gone
    assert standing(bought(5, 60, complaints=2, contacts=2), NOW).health == 30 + 0 + 20
    # one complaint in three orders: a third of it
    assert standing(bought(5, 60, 120, complaints=1, contacts=3), NOW).health == 40 + 20 + 30
    assert standing(bought(5, 60, complaints=1, contacts=3), NOW).health_level == Health.WATCH  # 30 + 15 + 30 = 75
    assert standing(Facts(), NOW).health_level == Health.AT_RISK  # no order, no contact: 30


def test_the_next_purchase_is_the_mean_gap_after_the_last():
    s = standing(bought(20, 110, 200), NOW)  # gaps of 90 days
    assert s.next_purchase_on == (NOW - 20 * DAY + 90 * DAY).date()
    assert standing(bought(20), NOW).next_purchase_on is None  # one order: no gap to go by
    assert standing(Facts(), NOW).next_purchase_on is None


def test_who_is_worth_winning_back():
    assert standing(bought(200, amount="5000"), NOW).win_back  # dormant, 5,000 in all
    assert standing(bought(400, 500), NOW).win_back  # lost, but bought twice
    assert not standing(bought(400), NOW).win_back  # lost, once, 1,000
    assert not standing(bought(10, 20, amount="9000"), NOW).win_back  # not lapsed


def test_the_value_tier():
    assert tier(0, Decimal(0)) == "new"
    assert tier(1, Decimal("5000")) == "regular"
    assert tier(1, Decimal("5000.01")) == "high"


days = st.integers(min_value=0, max_value=2000)


@given(
    ages=st.lists(days, min_size=0, max_size=12),
    amount=st.decimals(min_value=0, max_value=50000, places=2),
    complaints=st.integers(min_value=0, max_value=10),
    contacts=st.integers(min_value=0, max_value=50),
)
def test_properties(ages, amount, complaints, contacts):
    facts = bought(*ages, amount=str(amount), complaints=complaints, contacts=contacts)
    s = standing(facts, NOW)
    assert 0 <= s.health <= 100
    for score in (s.recency, s.frequency, s.monetary):
        assert score is None if not ages else 1 <= score <= 5
    # more contact never lowers health; another complaint never raises it
    assert standing(bought(*ages, amount=str(amount), complaints=complaints, contacts=contacts + 1), NOW).health >= (
        s.health
    )
    assert standing(bought(*ages, amount=str(amount), complaints=complaints + 1, contacts=contacts), NOW).health <= (
        s.health
    )
    if s.next_purchase_on is not None:
        assert s.next_purchase_on >= facts.last_order_at.date()
    assert not s.win_back or s.group in (Group.DORMANT, Group.LOST)


# --- the nightly scoring, the card and the report, on a store of this module's own -----------------------


@pytest.fixture(scope="module")
async def world(rules_world):  # noqa: F811
    try:
        yield rules_world
    finally:
        if rules_world.store_ids:
            await CustomerStanding.delete().where(CustomerStanding.store_id.is_in(rules_world.store_ids))


@pytest.fixture(scope="module")
async def shop(world: World):
    """A store whose customers cover every segment: name → (customer, the segment expected)."""
    shop = await world.shop()
    sofa = world.categories["sofa"]
    people = {}

    async def person(name: str, orders: list[tuple[int, str]], group: Group, contacts: int = 0, complaints: int = 0):
        customer = await shop.customer()
        for days_ago, amount in orders:
            await shop.order(customer, NOW - days_ago * DAY, amount, sofa)
        for n in range(contacts):
            await shop.interaction(customer, "visit", NOW - (n + 1) * DAY)
        for n in range(complaints):
            await shop.complaint(customer, NOW - (n + 2) * DAY)
        people[name] = (customer, group)

    await person("prospect", [], Group.NEW, contacts=1)
    await person("first", [(12, "800")], Group.NEW)
    await person("repeat", [(15, "900"), (200, "1200")], Group.REPEAT, contacts=3)
    await person("vip", [(3, "8000"), (60, "4000")], Group.HIGH_VALUE, contacts=2, complaints=1)
    await person("dormant", [(250, "6000")], Group.DORMANT)
    await person("lost", [(500, "3000"), (700, "2500")], Group.LOST)
    await person("gone", [(800, "900")], Group.LOST)
    shop.people = people
    return shop


async def test_the_nightly_scoring_puts_each_customer_in_its_segment(shop):
    assert await segments.score_store(shop.id, NOW) == len(shop.people)
    rows = {r["customer_id"]: r for r in await CustomerStanding.select().where(CustomerStanding.store_id == shop.id)}
    assert len(rows) == len(shop.people)
    for name, (customer, group) in shop.people.items():
        assert rows[customer.id]["segment"] == group, name
    assert {name for name, (c, _) in shop.people.items() if rows[c.id]["win_back"]} == {"dormant", "lost"}
    vip = rows[shop.people["vip"][0].id]
    assert (vip["recency"], vip["frequency"], vip["monetary"]) == (5, 3, 4)  # 3 days; 2 orders; 12,000
    assert vip["health"] == 30 + 15 + 20 and vip["amount_12m"] == Decimal("12000")
    repeat = rows[shop.people["repeat"][0].id]
    assert repeat["next_purchase_on"] == (NOW - 15 * DAY + 185 * DAY).date()

    # a second run replaces the rows, it does not add to them
    assert await segments.score_store(shop.id, NOW + DAY) == len(shop.people)
    assert await CustomerStanding.count().where(CustomerStanding.store_id == shop.id) == len(shop.people)


async def test_the_card_says_what_the_scoring_wrote(shop):
    await segments.score_store(shop.id, NOW)
    manager = Caller(
        user_id=shop.manager.id,
        username="m",
        display_name=shop.manager.name,
        role=Role.STORE_MANAGER,
        store_id=shop.id,
        region_id=None,
        language="zh-CN",
        store_ids=frozenset({shop.id}),
    )
    for name, (customer, group) in shop.people.items():
        card = await customers.card(caller=manager, customer_id=customer.id, now=NOW)
        row = await CustomerStanding.select().where(CustomerStanding.customer_id == customer.id).first()
        s = card.value.standing
        assert s.group == group == row["segment"], name
        assert (s.health, s.recency, s.frequency, s.monetary, s.win_back) == (
            row["health"],
            row["recency"],
            row["frequency"],
            row["monetary"],
            row["win_back"],
        ), name


async def test_the_segment_report_adds_up_and_drills_down(shop):
    await segments.score_store(shop.id, NOW)
    f = Filters(start=NOW.date() - 29 * DAY, end=NOW.date(), store_ids=frozenset({shop.id}))
    table = await service.run("segments", f, NOW)
    keys = [c.key for c in table.columns]
    rows = [dict(zip(keys, r, strict=True)) for r in table.rows]
    by = {r["segment_code"]: r for r in rows}
    expected = {g: sum(1 for _, group in shop.people.values() if group == g) for g in Group}
    for group in Group:
        assert by[group.value]["customers"] == expected[group], group
    total = rows[-1]
    assert total["segment_code"] is None and total["segment"] == "合计" and total["customers"] == len(shop.people)
    # in twelve months: first 800, repeat 900 + 1,200, vip 8,000 + 4,000, dormant 6,000
    assert total["win_back"] == 2 and total["sales_12m"] == "20900.00"
    assert by["high_value"]["sales_pct"] == round(100 * 12000 / 20900, 1)
    # four bought in twelve months; the top fifth of them (one: vip) brought 12,000 of 20,900
    assert "近12个月有消费的 4 位客户" in table.notes_zh and "57.4% 的消费（门槛 ¥12000.00）" in table.notes_zh
    assert "评分时间 2026-11-20 20:00" in table.notes_zh
    for row, drill in zip(rows, table.drill, strict=True):
        if drill is None:
            assert row["customers"] == 0 or row["win_back"] == 0
            continue
        listed = await service.drill(drill.kind, drill.params, f, NOW)
        if "segment" in drill.params:
            assert listed.total == row["customers"]
            named = service.SEGMENT_NAMES[Group(row["segment_code"])][0]
            assert {r[7] for r in listed.rows} == {row["segment"]} == {named}
        else:  # the total row: who is worth winning back, most spent first
            assert listed.total == row["win_back"]
            spent = [Decimal(r[11]) for r in listed.rows]
            assert spent == sorted(spent, reverse=True) == [Decimal("6000.00"), Decimal("5500.00")]


async def test_a_report_before_any_scoring_says_so(world):
    empty = await world.shop()
    f = Filters(start=NOW.date(), end=NOW.date(), store_ids=frozenset({empty.id}))
    table = await service.run("segments", f, NOW)
    assert table.rows[-1][3] == 0 and "尚未评分" in table.notes_zh


async def test_a_bad_segment_is_refused(shop):
    f = Filters(start=NOW.date(), end=NOW.date(), store_ids=frozenset({shop.id}))
    with pytest.raises(Exception, match="segment must be one of new, repeat, high_value, dormant, lost"):
        await service.drill("customers", {"segment": "vip"}, f, NOW)


async def test_the_nightly_check_scores_once_a_night(world):
    fresh, other = await world.shop(), await world.shop()
    for shop in (fresh, other):
        customer = await shop.customer()
        await shop.order(customer, NOW - 3 * DAY, "700", world.categories["sofa"])
    night = dt.datetime(2026, 11, 20, 3, 0, tzinfo=SH)  # NOW is 20:00 in Shanghai that day
    assert segments.due_since(NOW) == night
    assert segments.due_since(night.astimezone(dt.UTC) - dt.timedelta(minutes=1)) == night - DAY
    ours = [fresh.id, other.id]
    # a store scored by hand during the day does not hold the other back, nor is scored twice
    assert await segments.score_all(NOW, [other.id]) == 1
    assert await segments.score_if_due(NOW, stores=ours) == 1  # fresh, never scored: at once
    assert await segments.score_if_due(NOW + dt.timedelta(hours=6), stores=ours) == 0  # 02:00 next day
    assert await segments.last_scored([fresh.id]) == NOW
    next_night = (night + DAY).astimezone(dt.UTC)
    assert await segments.score_if_due(next_night + dt.timedelta(minutes=1), stores=ours) == 2
    done = await segments.scored_at()
    assert done[fresh.id] == done[other.id] == next_night + dt.timedelta(minutes=1)


async def test_a_customer_deleted_since_the_scoring_leaves_the_report_at_once(world):
    from server.customers.tables import Customer

    store = await world.shop()
    kept, gone = await store.customer(), await store.customer()
    for person in (kept, gone):
        await store.order(person, NOW - 10 * DAY, "900", world.categories["sofa"])
    assert await segments.score_store(store.id, NOW) == 2
    f = Filters(start=NOW.date(), end=NOW.date(), store_ids=frozenset({store.id}))
    assert (await service.run("segments", f, NOW)).rows[-1][3] == 2
    await Customer.update({Customer.deleted: True}).where(Customer.id == gone.id)  # merged away, say
    table = await service.run("segments", f, NOW)
    assert table.rows[-1][3] == 1 and "近12个月有消费的 1 位客户" in table.notes_zh
