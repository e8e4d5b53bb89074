"""Behaviour events in: a batch with duplicates, a bad signature, malformed rows and good rows —
the good ones stored once, each bad one reported; a replay changes nothing; a long browse makes
its follow-up task at once, for the next store day, assigned to the customer's rep."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from server.auth.tables import User
from server.customers.tables import Customer, CustomerIdentity, CustomerPhone
from server.events.service import sign
from server.interactions.tables import Interaction
from server.stores.tables import Region, Store
from server.sync.service import store_scope
from server.sync.tables import ScopeVersion
from server.tasks.tables import Task
from shared.ids import uuid7

KEYS = {s: f"{s}-demo-key".encode() for s in ("pos", "online_shop", "wechat", "call_centre")}


@pytest.fixture(scope="module")
async def shop(demo):
    """A store of this module's own (the demo stores stay untouched), its rep and two customers."""
    region = await Region.select(Region.id).first()
    store = Store(
        id=uuid7(),
        code=f"EV-{uuid.uuid4().hex[:6]}",
        name="事件测试店",
        city="北京",
        region_id=region["id"],
        time_zone="Asia/Shanghai",
        opening_hours=json.dumps({d: [["10:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}),
    )
    await store.save()
    rep = User(
        id=uuid7(),
        username=f"rep.{store.code.lower()}",
        display_name="事件导购",
        password_hash="-",
        role="rep",
        store_id=store.id,
        region_id=region["id"],
    )
    await rep.save()
    customers = []
    for name, phone, openid in (("林晓", "13911112222", "wx-openid-ev-1"), ("周航", "13933334444", None)):
        customer = Customer(id=uuid7(), store_id=store.id, owner_id=rep.id, name=name)
        await customer.save()
        await CustomerPhone(
            id=uuid7(), store_id=store.id, customer_id=customer.id, number=f"+86{phone}", digits=phone, kind="mobile"
        ).save()
        if openid:
            await CustomerIdentity(
                id=uuid7(), store_id=store.id, customer_id=customer.id, kind="wechat_openid", value=openid
            ).save()
        customers.append(customer)
    yield {"store": store, "rep": rep, "customers": customers}
    # leave the shared demo database as it was (other modules count stores and rows)
    await Task.delete().where(Task.store_id == store.id)
    await Interaction.delete().where(Interaction.store_id == store.id)
    await Customer.delete().where(Customer.store_id == store.id)  # phones and identities cascade
    await User.delete().where(User.id == rep.id)
    await ScopeVersion.delete().where(ScopeVersion.scope == store_scope(store.id))
    await Store.delete().where(Store.id == store.id)


def _event(source: str, event_id: str, **fields) -> dict:
    event = {"source": source, "event_id": event_id, **fields}
    event["signature"] = sign(event, KEYS[source])
    return event


async def _counts(store_id):
    interactions = await Interaction.count().where(Interaction.store_id == store_id)
    tasks = await Task.count().where(Task.store_id == store_id)
    return interactions, tasks


async def test_a_mixed_batch_stores_the_good_events_once_and_reports_each_bad_one(client, shop):
    store, (linxiao, zhouhang) = shop["store"], shop["customers"]
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)).isoformat()
    tampered = _event("pos", "pos-9", type="visit", occurred_at=at, phone="13911112222")
    tampered["type"] = "call"  # changed after signing
    forged = {**_event("online_shop", "web-7", type="cart", occurred_at=at, phone="13911112222")}
    forged["signature"] = sign(forged, b"someone-elses-key")
    batch = [
        _event(
            "online_shop",
            "web-1",
            type="browse",
            occurred_at=at,
            phone="139 1111 2222",
            category="mattress",
            duration_seconds=420,
        ),
        _event(
            "wechat",
            "wx-1",
            type="message",
            occurred_at=at,
            identity={"kind": "wechat_openid", "value": "wx-openid-ev-1"},
            body="想看看新款床垫",
        ),
        _event("call_centre", "cc-1", type="call", occurred_at=at, customer_id=str(zhouhang.id), duration_seconds=95),
        _event(
            "online_shop",
            "web-1",
            type="browse",
            occurred_at=at,
            phone="13911112222",
            category="mattress",
            duration_seconds=420,
        ),  # the same event again, in the same batch
        tampered,
        forged,
        _event("pos", "pos-2", type="visit", occurred_at="yesterday", phone="13911112222"),
        _event("pos", "pos-3", type="visit", occurred_at=at, phone="13900000000"),  # nobody has this number
        _event("pos", "pos-4", type="teleport", occurred_at=at, phone="13911112222"),
        _event("online_shop", "web-5", type="browse", occurred_at=at, phone="13911112222"),  # no duration
        _event(
            "online_shop",
            "web-6",
            type="browse",
            occurred_at=at,
            phone="13911112222",
            duration_seconds=60,
            category="spaceship",
        ),
        {"source": "fax", "event_id": "f-1"},
        "not an object",
    ]
    before = await _counts(store.id)
    response = await client.post("/api/events", json={"events": batch})
    assert response.status_code == 200, response.text
    answer = response.json()
    statuses = [(r["index"], r["status"], r.get("field")) for r in answer["results"]]
    assert statuses == [
        (0, "stored", None),
        (1, "stored", None),
        (2, "stored", None),
        (3, "duplicate", None),
        (4, "rejected", "signature"),
        (5, "rejected", "signature"),
        (6, "rejected", "occurred_at"),
        (7, "rejected", "phone"),
        (8, "rejected", "type"),
        (9, "rejected", "duration_seconds"),
        (10, "rejected", "category"),
        (11, "rejected", "source"),
        (12, "rejected", None),
    ], answer["results"]
    assert all(r["reason"] for r in answer["results"] if r["status"] == "rejected")
    assert (answer["stored"], answer["duplicates"], answer["rejected"]) == (3, 1, 9)
    after = await _counts(store.id)
    assert after[0] == before[0] + 3

    stored = {r["source_event_id"]: r for r in await Interaction.select().where(Interaction.store_id == store.id)}
    assert stored["online_shop:web-1"]["customer_id"] == linxiao.id and stored["online_shop:web-1"]["kind"] == "browse"
    assert stored["online_shop:web-1"]["channel"] == "online" and stored["online_shop:web-1"]["duration_seconds"] == 420
    assert stored["wechat:wx-1"]["customer_id"] == linxiao.id and stored["wechat:wx-1"]["body"] == "想看看新款床垫"
    assert stored["call_centre:cc-1"]["customer_id"] == zhouhang.id
    assert all(r["version"] > 0 for r in stored.values())

    # the long browse made its follow-up at once: for the customer's rep, due at the next store day's opening
    follow_ups = await Task.select().where((Task.store_id == store.id) & (Task.customer_id == linxiao.id))
    assert answer["tasks_created"] == 1 and len(follow_ups) == 1
    task = follow_ups[0]
    assert task["owner_id"] == shop["rep"].id and task["source"] == "rule" and task["kind"] == "follow_up"
    assert task["title"] == "跟进：林晓浏览床垫超过5分钟"
    due = task["due_at"].astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert (due.hour, due.minute) == (10, 0) and due.date() > dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()

    # the whole batch again: every good event is a duplicate, nothing changes
    replay = (await client.post("/api/events", json={"events": batch})).json()
    assert replay["stored"] == 0 and replay["duplicates"] == 4 and replay["tasks_created"] == 0
    assert await _counts(store.id) == after


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "events"),
        (b'{"events": []}', "no events"),
        (b'{"events": {}}', "events"),
        (b'{"rows": []}', "events"),
    ],
)
async def test_a_batch_that_is_not_a_batch_is_refused_whole(client, body, says):
    response = await client.post("/api/events", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert says in response.text


async def test_more_than_500_events_are_refused_whole(client, shop):
    at = dt.datetime.now(dt.UTC).isoformat()
    events = [_event("pos", f"bulk-{n}", type="visit", occurred_at=at, phone="13933334444") for n in range(501)]
    before = await _counts(shop["store"].id)
    response = await client.post("/api/events", json={"events": events})
    assert response.status_code in (400, 413, 422) and "500" in response.text
    assert await _counts(shop["store"].id) == before
