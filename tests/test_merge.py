"""Merging two customers keeps everything of both on the survivor, reaches phones through sync
(the merged-away id resolves to the survivor), and undoing it restores the exact previous state —
every row of both customers compared field by field, children, follows, review pairs and
notifications naming them included (only the change order, ``version`` and ``updated_at``, moves
on). Each test uses its own store."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from server import db
from server.auth.scope import Caller
from server.auth.tables import User
from server.complaints.tables import Complaint
from server.customers.tables import Customer, CustomerIdentity, CustomerPhone, CustomerTag
from server.errors import Conflict
from server.imports import merging
from server.imports.tables import CustomerAlias, CustomerMerge, MergeCandidate
from server.interactions.tables import Interaction
from server.notifications import service as notifications
from server.notifications.tables import CustomerFollow, Notification
from server.opportunities.tables import Opportunity
from server.orders.tables import Order
from server.rules.service import dedupe_key
from server.sync.tables import ScopeVersion
from server.tasks.tables import Task
from shared.enums import Role
from shared.ids import uuid7
from shared.sync import follow_id
from tests.test_rules import BASE, MIN, Person, Shop, World
from tests.test_rules import world as rules_world  # noqa: F401 — the fixture, used through `world`

TABLES = ("customers", *merging.CHILDREN, "customer_follows", "notifications", "merge_candidates", "customer_aliases")
MOVING = {"version", "updated_at"}


@pytest.fixture(scope="module")
async def world(rules_world):  # noqa: F811
    yield rules_world
    ids = rules_world.store_ids
    if ids:
        await CustomerMerge.delete().where(CustomerMerge.store_id.is_in(ids))
        await CustomerAlias.delete().where(CustomerAlias.store_id.is_in(ids))
        for table in (CustomerPhone, CustomerTag, CustomerIdentity, CustomerFollow, Notification, MergeCandidate):
            await table.delete().where(table.store_id.is_in(ids))
        users = [r["id"] for r in await User.select(User.id).where(User.store_id.is_in(ids))]
        if users:
            await ScopeVersion.delete().where(ScopeVersion.scope.is_in([f"u:{u}" for u in users]))


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
    """Every row of these customers (and their aliases, follows, notifications and review pairs),
    by table and id, without the change order."""
    out: dict[str, dict[str, dict]] = {}
    marks = ", ".join("{}" for _ in customers)
    for table in TABLES:
        if table == "merge_candidates":
            where, params = f"customer_a IN ({marks}) OR customer_b IN ({marks})", [*customers, *customers]
        else:
            column = "id" if table in ("customers", "customer_aliases") else "customer_id"
            where, params = f"{column} IN ({marks})", list(customers)
        rows = await CustomerMerge.raw(f"SELECT * FROM {table} WHERE {where}", *params)
        out[table] = {str(r["id"]): {k: v for k, v in r.items() if k not in MOVING} for r in rows}
    return out


async def follow(shop: Shop, user: Person, customer: uuid.UUID, following: bool = True) -> uuid.UUID:
    ident = follow_id(user.id, customer)
    await CustomerFollow.insert(
        CustomerFollow(
            id=ident, version=0, user_id=user.id, customer_id=customer, store_id=shop.id, following=following
        )
    )
    return ident


async def pair(shop: Shop, a: uuid.UUID, b: uuid.UUID, status: str = "open") -> uuid.UUID:
    ident = uuid7()
    await MergeCandidate.insert(
        MergeCandidate(
            id=ident, store_id=shop.id, customer_a=a, customer_b=b, score=0.8, reasons=json.dumps(["same_name"]),
            status=status,
        )
    )  # fmt: skip
    return ident


async def followers(customer: uuid.UUID) -> set[str]:
    """Who is told of this customer's news (its owner unless they unfollowed, and explicit followers)."""
    return (await notifications._followers([str(customer)])).get(str(customer), set())


def caller(shop: Shop, person: Person) -> Caller:
    return Caller(
        user_id=person.id, username=f"u-{person.id}", display_name=person.name, role=Role.REP, store_id=shop.id,
        region_id=None, language="zh-CN", store_ids=frozenset({shop.id}),
    )  # fmt: skip


async def rule_task(shop: Shop, customer: uuid.UUID, key: str, *, deleted: bool = False) -> uuid.UUID:
    ident = uuid7()
    await Task.insert(
        Task(
            id=ident, version=0, deleted=deleted, store_id=shop.id, owner_id=shop.rep.id, customer_id=customer,
            kind="follow_up", title="规则任务", due_at=BASE, source="rule", dedupe_key=key,
        )
    )  # fmt: skip
    return ident


async def test_merge_keeps_everything_and_undo_restores_the_exact_state(world: World):
    shop = await world.shop()
    # A survivor without a real name yet (the orders import's placeholder): the other's name fills it.
    survivor = await person(shop, "待补充姓名", phones=["13911112222"], tags=["VIP"], email=None, city="上海市")
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
    third, fourth = await person(shop, "王芳芳"), await person(shop, "汪芳")
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
    silent = await rule_task(shop, other, dedupe_key("vip_silent", f"{other}:4242"))
    removed = await rule_task(shop, other, dedupe_key("abandoned_cart", f"{other}:{uuid7()}"), deleted=True)
    # Follows: the manager follows both, rep_en only the other; the rep owns both (no rows).
    await follow(shop, shop.manager, survivor)
    await follow(shop, shop.manager, other)
    await follow(shop, shop.rep_en, other)
    # A notification that names the other customer (the rep_en's news of its order).
    note = uuid7()
    await Notification.insert(
        Notification(
            id=note, version=0, user_id=shop.rep_en.id, store_id=shop.id, kind="order", cause=f"order:{uuid7()}",
            title="新订单：王 芳", customer_id=other, link=f"/customers/{other}",
        )
    )  # fmt: skip
    # Review pairs: the two themselves, the other with a third, the other with a fourth who is
    # already paired with the survivor, and a pair a person decided.
    both = await pair(shop, survivor, other)
    with_third = await pair(shop, other, third)
    with_fourth = await pair(shop, fourth, other)
    fourth_already = await pair(shop, survivor, fourth)
    decided = await pair(shop, third, other, status="distinct")
    assert await followers(survivor) == {str(shop.rep.id), str(shop.manager.id)}
    before = await state_of(survivor, other, third, fourth)
    version_before = (await Customer.select(Customer.version).where(Customer.id == survivor).first())["version"]

    merge_id = await merging.merge(survivor, other, decided_by="user:test", score=0.97, reasons=["same_phone"])

    after = await state_of(survivor, other, third, fourth)
    kept = after["customers"][str(survivor)]
    assert after["customers"][str(other)]["deleted"] is True
    assert (kept["name"], kept["email"], kept["district"], kept["birthday"], kept["city"]) == (
        "王 芳",
        "wangfang@qq.com",
        "浦东新区",
        dt.date(1990, 5, 1),
        "上海市",
    )  # the placeholder name and empty fields filled; the survivor's own values kept
    live_phones = sorted(p["digits"] for p in after["customer_phones"].values() if not p["deleted"])
    assert live_phones == ["13633334444", "13911112222"]  # the shared number once, the other moved
    assert sorted(t["tag"] for t in after["customer_tags"].values() if not t["deleted"]) == ["VIP", "沙发"]
    for table in ("customer_identities", "orders", "interactions", "complaints", "opportunities", "tasks"):
        live = [r for r in after[table].values() if not r["deleted"]]
        assert live and all(str(r["customer_id"]) == str(survivor) for r in live), table
    assert await Order.count().where(Order.customer_id == other) == 0
    assert await Interaction.count().where(Interaction.customer_id == survivor) == 1
    assert await Complaint.count().where(Complaint.customer_id == survivor) == 1
    assert await Opportunity.count().where(Opportunity.customer_id == survivor) == 1
    # Rule keys name the survivor now (a sweep finds its own work); the removed task's too.
    assert after["tasks"][str(silent)]["dedupe_key"] == dedupe_key("vip_silent", f"{survivor}:4242")
    assert after["tasks"][str(removed)]["dedupe_key"].startswith(f"abandoned_cart:{survivor}:")
    assert str(after["tasks"][str(removed)]["customer_id"]) == str(other)  # a tombstone stays where it was
    # Follows: the other's rows are tombstones; rep_en follows the survivor by the row devices expect.
    follows = after["customer_follows"]
    assert all(r["deleted"] for r in follows.values() if str(r["customer_id"]) == str(other))
    made = follows[str(follow_id(shop.rep_en.id, survivor))]
    assert (str(made["customer_id"]), made["following"], made["deleted"]) == (str(survivor), True, False)
    manager_row = str(follow_id(shop.manager.id, survivor))
    assert follows[manager_row] == before["customer_follows"][manager_row]  # not doubled, not touched
    assert len([r for r in follows.values() if not r["deleted"]]) == 2
    assert await followers(survivor) == {str(shop.rep.id), str(shop.manager.id), str(shop.rep_en.id)}
    # The notification is what happened: left as it was, its customer resolves to the survivor.
    assert after["notifications"][str(note)] == before["notifications"][str(note)]
    assert await merging.survivor_of(after["notifications"][str(note)]["customer_id"]) == survivor
    # Review pairs.
    pairs = after["merge_candidates"]
    assert (pairs[str(both)]["status"], str(pairs[str(both)]["merge_id"])) == ("merged", str(merge_id))
    assert pairs[str(with_third)]["status"] == "open"
    assert (str(pairs[str(with_third)]["customer_a"]), str(pairs[str(with_third)]["customer_b"])) == (
        str(survivor),
        str(third),
    )
    assert (pairs[str(with_fourth)]["status"], str(pairs[str(with_fourth)]["customer_b"])) == ("superseded", str(other))
    assert pairs[str(fourth_already)] == before["merge_candidates"][str(fourth_already)]
    assert pairs[str(decided)] == before["merge_candidates"][str(decided)]
    assert not [
        p
        for p in pairs.values()
        if p["status"] == "open" and str(other) in (str(p["customer_a"]), str(p["customer_b"]))
    ]
    alias = after["customer_aliases"][str(other)]
    assert str(alias["survivor_id"]) == str(survivor) and alias["deleted"] is False
    assert await merging.survivor_of(other) == survivor
    row = await CustomerMerge.select().where(CustomerMerge.id == merge_id).first()
    assert row["decided_by"] == "user:test" and row["score"] == pytest.approx(0.97)
    assert (await Customer.select(Customer.version).where(Customer.id == survivor).first())["version"] > version_before
    # The review queue's decision lands on the pair the merge closed (as the merges API does).
    await MergeCandidate.update({MergeCandidate.decided_by_id: shop.manager.id, MergeCandidate.decided_at: BASE}).where(
        MergeCandidate.id == both
    )

    await merging.undo(merge_id, by="user:test")

    restored = await state_of(survivor, other, third, fourth)
    alias = restored.pop("customer_aliases")
    before.pop("customer_aliases")
    # The survivor's follow row the merge made stays a tombstone (devices must drop it).
    made = restored["customer_follows"].pop(str(follow_id(shop.rep_en.id, survivor)))
    assert made["deleted"] is True
    assert restored == before  # every row of all four, field by field
    assert alias[str(other)]["deleted"] is True  # phones drop the alias
    assert await merging.survivor_of(other) is None
    assert await followers(survivor) == {str(shop.rep.id), str(shop.manager.id)}
    assert await followers(other) == {str(shop.rep.id), str(shop.manager.id), str(shop.rep_en.id)}
    with pytest.raises(Conflict):
        await merging.undo(merge_id, by="user:test")
    # Following the survivor later brings that row back to life.
    async with db.transaction():
        await notifications.set_follow(caller=caller(shop, shop.rep_en), customer_id=survivor, following=True)
    assert await followers(survivor) == {str(shop.rep.id), str(shop.manager.id), str(shop.rep_en.id)}


async def test_whoever_followed_either_follows_the_survivor(world: World):
    """The merged-away customer's owner followed it without a row; an explicit unfollow of the
    survivor gives way to a follow of the other; an unfollow of the other does not undo owning the
    survivor. Each user's rows move in that user's own change order."""
    shop = await world.shop()
    survivor = await person(shop, "陈静")  # the rep's
    other = await person(shop, "陈 静", owner_id=shop.rep_en.id)
    await follow(shop, shop.rep, other, following=False)
    manager_s = await follow(shop, shop.manager, survivor, following=False)
    await follow(shop, shop.manager, other)
    assert await followers(survivor) == {str(shop.rep.id)}
    assert await followers(other) == {str(shop.rep_en.id), str(shop.manager.id)}
    before = await state_of(survivor, other)

    merge_id = await merging.merge(survivor, other, decided_by="user:test")

    after = await state_of(survivor, other)
    assert await followers(survivor) == {str(shop.rep.id), str(shop.manager.id), str(shop.rep_en.id)}
    made = after["customer_follows"][str(follow_id(shop.rep_en.id, survivor))]
    assert (made["following"], made["deleted"]) == (True, False)
    assert after["customer_follows"][str(manager_s)]["following"] is True
    assert all(r["deleted"] for r in after["customer_follows"].values() if str(r["customer_id"]) == str(other))
    rows = await CustomerFollow.select(CustomerFollow.user_id, CustomerFollow.version).where(
        CustomerFollow.customer_id.is_in([survivor, other])
    )
    for user in (shop.rep, shop.manager, shop.rep_en):  # each one's newest change: the merge, in their own order
        scope = await ScopeVersion.select(ScopeVersion.version).where(ScopeVersion.scope == f"u:{user.id}").first()
        assert max(r["version"] for r in rows if r["user_id"] == user.id) == scope["version"] > 0

    await merging.undo(merge_id, by="user:test")

    restored = await state_of(survivor, other)
    assert restored["customer_follows"].pop(str(follow_id(shop.rep_en.id, survivor)))["deleted"] is True
    restored.pop("customer_aliases"), before.pop("customer_aliases")
    assert restored == before
    assert await followers(survivor) == {str(shop.rep.id)}
    assert await followers(other) == {str(shop.rep_en.id), str(shop.manager.id)}


async def test_the_rules_make_nothing_twice_for_what_a_merge_moved(world: World):
    """A long browse made its task on the other customer; after the merge the browse is the
    survivor's, and the sweep finds the task under the survivor's key (not a second one)."""
    shop = await world.shop()
    sofa = world.categories["sofa"]
    survivor, other = await shop.customer(), await shop.customer()
    browse = await shop.browse(other, sofa, BASE - 10 * MIN, seconds=300)
    assert await shop.sweep(BASE, "browse_interest") == {"browse_interest": 1}

    merge_id = await merging.merge(survivor.id, other.id, decided_by="user:test")

    assert await shop.sweep(BASE + MIN, "browse_interest") == {"browse_interest": 0}
    (task,) = await Task.select().where(Task.customer_id == survivor.id)
    assert task["dedupe_key"] == dedupe_key("browse_interest", f"{survivor.id}:{sofa.id}:{browse}")

    await merging.undo(merge_id, by="user:test")

    assert await shop.sweep(BASE + 2 * MIN, "browse_interest") == {"browse_interest": 0}
    (task,) = await Task.select().where(Task.customer_id == other.id)
    assert task["dedupe_key"] == dedupe_key("browse_interest", f"{other.id}:{sofa.id}:{browse}")


def test_what_counts_as_no_name():
    for name in ("", "  ", None, "待补充姓名", "客户", "测试3", "无", "-", "13812345678", "先生"):
        assert merging.nameless(name), name
    for name in ("王芳", "王 芳", "Alex Li", "王先生", "欧阳娜娜"):
        assert not merging.nameless(name), name


async def test_a_nameless_survivor_takes_the_others_real_name(world: World):
    shop = await world.shop()
    survivor, other = await person(shop, "客户"), await person(shop, "李雷")
    merge_id = await merging.merge(survivor, other, decided_by="user:test")
    assert (await Customer.select(Customer.name).where(Customer.id == survivor).first())["name"] == "李雷"
    await merging.undo(merge_id, by="user:test")
    assert (await Customer.select(Customer.name).where(Customer.id == survivor).first())["name"] == "客户"
    # Two placeholders: nothing to take; a real name is never replaced.
    blank, placeholder, named = await person(shop, ""), await person(shop, "待补充姓名"), await person(shop, "韩梅梅")
    await merging.merge(blank, placeholder, decided_by="user:test")
    assert (await Customer.select(Customer.name).where(Customer.id == blank).first())["name"] == ""
    other_named = await person(shop, "韩 梅梅")
    await merging.merge(named, other_named, decided_by="user:test")
    assert (await Customer.select(Customer.name).where(Customer.id == named).first())["name"] == "韩梅梅"


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
    second = await merging.merge(c, b, decided_by="user:test")
    assert await merging.survivor_of(a) == c and await merging.survivor_of(b) == c
    with pytest.raises(Conflict, match="undo that merge first"):
        await merging.undo(first, by="user:test")
    # Undone in turn: A means B again, then itself.
    await merging.undo(second, by="user:test")
    assert await merging.survivor_of(a) == b and await merging.survivor_of(b) is None
    await merging.undo(first, by="user:test")
    assert await merging.survivor_of(a) is None


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
