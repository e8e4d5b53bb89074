"""Merging two customers keeps everything of both on the survivor, reaches phones through sync
(the merged-away id resolves to the survivor), and undoing it restores the exact previous state —
every row of both customers compared field by field, children included (only the change order,
``version`` and ``updated_at``, moves on). Each test uses its own store."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from server.complaints.tables import Complaint
from server.customers.tables import Customer, CustomerIdentity, CustomerPhone, CustomerTag
from server.errors import Conflict
from server.imports import merging
from server.imports.tables import CustomerAlias, CustomerMerge
from server.interactions.tables import Interaction
from server.opportunities.tables import Opportunity
from server.orders.tables import Order
from server.tasks.tables import Task
from shared.ids import uuid7
from tests.test_rules import BASE, Person, Shop, World
from tests.test_rules import world as rules_world  # noqa: F401 — the fixture, used through `world`

TABLES = ("customers", *merging.CHILDREN, "customer_aliases")
MOVING = {"version", "updated_at"}


@pytest.fixture(scope="module")
async def world(rules_world):  # noqa: F811
    yield rules_world
    ids = rules_world.store_ids
    if ids:
        await CustomerMerge.delete().where(CustomerMerge.store_id.is_in(ids))
        await CustomerAlias.delete().where(CustomerAlias.store_id.is_in(ids))
        for table in (CustomerPhone, CustomerTag, CustomerIdentity):
            await table.delete().where(table.store_id.is_in(ids))


async def person(shop: Shop, name: str, *, phones=(), tags=(), identity=None, **fields) -> uuid.UUID:
    customer = await shop.customer()
    await Customer.update({Customer.name: name, **{getattr(Customer, k): v for k, v in fields.items()}}).where(
        Customer.id == customer.id
    )
    for n, digits in enumerate(phones):
        await CustomerPhone.insert(
            CustomerPhone(
                id=uuid7(),
                store_id=shop.id,
                customer_id=customer.id,
                number=f"+86{digits}",
                digits=digits,
                kind="mobile",
                is_primary=n == 0,
            )
        )
    for tag in tags:
        await CustomerTag.insert(CustomerTag(id=uuid7(), store_id=shop.id, customer_id=customer.id, tag=tag))
    if identity:
        await CustomerIdentity.insert(
            CustomerIdentity(id=uuid7(), store_id=shop.id, customer_id=customer.id, kind=identity[0], value=identity[1])
        )
    return customer.id


async def state_of(*customers: uuid.UUID) -> dict[str, dict[str, dict]]:
    """Every row of these customers (and their aliases), by table and id, without the change order."""
    out: dict[str, dict[str, dict]] = {}
    for table in TABLES:
        column = "id" if table in ("customers", "customer_aliases") else "customer_id"
        marks = ", ".join("{}" for _ in customers)
        rows = await CustomerMerge.raw(f"SELECT * FROM {table} WHERE {column} IN ({marks})", *customers)
        out[table] = {str(r["id"]): {k: v for k, v in r.items() if k not in MOVING} for r in rows}
    return out


async def test_merge_keeps_everything_and_undo_restores_the_exact_state(world: World):
    shop = await world.shop()
    survivor = await person(shop, "王芳", phones=["13911112222"], tags=["VIP"], email=None, city="上海市")
    other = await person(
        shop,
        "王 芳",
        phones=["13911112222", "13633334444"],
        tags=["VIP", "沙发"],
        identity=("wechat_unionid", f"u-{uuid.uuid4().hex}"),
        email="wangfang@qq.com",
        district="浦东新区",
        birthday=dt.date(1990, 5, 1),
    )
    other_person = Person(other, "王 芳")
    await shop.order(other_person, BASE, "3999", world.categories["sofa"])
    await shop.interaction(other_person, "visit", BASE)
    await shop.complaint(other_person, BASE)
    deal = await shop.deal(other_person, "proposal", entered_at=BASE)
    await Task.insert(
        Task(
            id=uuid7(),
            store_id=shop.id,
            owner_id=shop.rep.id,
            customer_id=other,
            opportunity_id=deal.id,
            kind="call",
            title="回访",
            due_at=BASE,
        )
    )
    before = await state_of(survivor, other)
    version_before = (await Customer.select(Customer.version).where(Customer.id == survivor).first())["version"]

    merge_id = await merging.merge(survivor, other, decided_by="user:test", score=0.97, reasons=["same_phone"])

    after = await state_of(survivor, other)
    kept = after["customers"][str(survivor)]
    assert after["customers"][str(other)]["deleted"] is True
    assert (kept["email"], kept["district"], kept["birthday"], kept["city"]) == (
        "wangfang@qq.com",
        "浦东新区",
        dt.date(1990, 5, 1),
        "上海市",
    )  # empty fields filled; the survivor's own values kept
    live_phones = sorted(p["digits"] for p in after["customer_phones"].values() if not p["deleted"])
    assert live_phones == ["13633334444", "13911112222"]  # the shared number once, the other moved
    assert sorted(t["tag"] for t in after["customer_tags"].values() if not t["deleted"]) == ["VIP", "沙发"]
    for table in ("customer_identities", "orders", "interactions", "complaints", "opportunities", "tasks"):
        assert after[table] and all(str(r["customer_id"]) == str(survivor) for r in after[table].values()), table
    assert await Order.count().where(Order.customer_id == other) == 0
    assert await Interaction.count().where(Interaction.customer_id == survivor) == 1
    assert await Complaint.count().where(Complaint.customer_id == survivor) == 1
    assert await Opportunity.count().where(Opportunity.customer_id == survivor) == 1
    alias = after["customer_aliases"][str(other)]
    assert str(alias["survivor_id"]) == str(survivor) and alias["deleted"] is False
    assert await merging.survivor_of(other) == survivor
    row = await CustomerMerge.select().where(CustomerMerge.id == merge_id).first()
    assert row["decided_by"] == "user:test" and row["score"] == pytest.approx(0.97)
    assert (await Customer.select(Customer.version).where(Customer.id == survivor).first())["version"] > version_before

    await merging.undo(merge_id, by="user:test")

    restored = await state_of(survivor, other)
    alias = restored.pop("customer_aliases")
    before.pop("customer_aliases")
    assert restored == before  # every row of both, field by field
    assert alias[str(other)]["deleted"] is True  # phones drop the alias
    assert await merging.survivor_of(other) is None
    with pytest.raises(Conflict):
        await merging.undo(merge_id, by="user:test")


async def test_merges_refuse_what_cannot_be_one_person(world: World):
    shop, far = await world.shop(), await world.shop()
    a = await person(shop, "李娜", phones=["13700001111"])
    b = await person(far, "李娜", phones=["13700001111"])
    with pytest.raises(Conflict, match="different stores"):
        await merging.merge(a, b, decided_by="user:test")
    with pytest.raises(Conflict, match="itself"):
        await merging.merge(a, a, decided_by="user:test")
    c = await person(shop, "李娜", phones=["13700002222"])
    await merging.merge(a, c, decided_by="user:test")
    with pytest.raises(Conflict, match="already merged"):
        await merging.merge(a, c, decided_by="user:test")


async def test_a_chain_of_merges_points_every_alias_at_the_last_survivor(world: World):
    shop = await world.shop()
    a, b, c = [await person(shop, "周航", phones=[f"1380000{n:04d}"]) for n in range(3)]
    first = await merging.merge(b, a, decided_by="user:test")
    await merging.merge(c, b, decided_by="user:test")
    assert await merging.survivor_of(a) == c and await merging.survivor_of(b) == c
    with pytest.raises(Conflict, match="undo that merge first"):
        await merging.undo(first, by="user:test")


async def test_channel_events_for_a_merged_away_customer_land_on_the_survivor(world: World):
    """A store system still sends the old customer id (or a phone that moved with the merge): the
    event joins the survivor's card."""
    import datetime as dt

    from server.events.service import ingest, sign

    keys = {"call_centre": b"call_centre-demo-key", "online_shop": b"online_shop-demo-key"}
    shop = await world.shop()
    survivor = await person(shop, "孔令辉", phones=["13831725864"])
    merged = await person(shop, "孔令辉", phones=["13831726604"])
    await merging.merge(survivor, merged, decided_by="user:test")
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    events = [
        {"source": "call_centre", "event_id": f"cc-{uuid.uuid4().hex[:8]}", "type": "call", "occurred_at": at,
         "customer_id": str(merged), "duration_seconds": 60},
        {"source": "online_shop", "event_id": f"web-{uuid.uuid4().hex[:8]}", "type": "browse", "occurred_at": at,
         "phone": "13831726604", "category": "cushion", "duration_seconds": 30},
    ]  # fmt: skip
    for event in events:
        event["signature"] = sign(event, keys[event["source"]])
    answer = await ingest(events, keys=keys)
    assert [r.status for r in answer.results] == ["stored", "stored"], answer
    stored = await Interaction.select(Interaction.customer_id).where(
        Interaction.id.is_in([r.interaction_id for r in answer.results])
    )
    assert {r["customer_id"] for r in stored} == {survivor}
    await Interaction.delete().where(Interaction.customer_id == survivor)
