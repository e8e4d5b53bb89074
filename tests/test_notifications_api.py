"""The notification endpoints and the user's own sync scope: each user pulls their own notifications
(never a colleague's), reads them through the outbox or over HTTP, and keeps follows and push
settings; push subscriptions are checked (a real P-256 key, an https push service) and bad input
answers 4xx naming the field and changes nothing. Rows made here are removed at the end."""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server import db
from server.customers.tables import Customer
from server.notifications import service
from server.notifications.tables import CustomerFollow, Notification, NotificationPrefs, PushSubscription
from tests.test_sync_protocol import _hlc, _pull_all, _push


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def browser_keys() -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": b64(point), "auth": b64(os.urandom(16))}


@pytest.fixture(scope="module")
async def users(demo, login):
    ids = {name: uuid.UUID((await login.user(name))["id"]) for name in ("rep.bjcy", "rep2.bjcy", "rep.shpd")}
    yield ids
    everyone = list(ids.values())
    await Notification.delete().where(Notification.cause.like("api-test:%"))
    await CustomerFollow.delete().where(CustomerFollow.user_id.is_in(everyone))
    await NotificationPrefs.delete().where(NotificationPrefs.user_id.is_in(everyone))
    await PushSubscription.delete().where(PushSubscription.user_id.is_in(everyone))


async def make(user_id: uuid.UUID, title: str) -> uuid.UUID:
    draft = service.Draft(user_id=str(user_id), cause=f"api-test:{uuid.uuid4()}", kind="nudge", values={"task": title})
    async with db.transaction():
        [ident] = await service.write([draft], dt.datetime.now(dt.UTC))
    return ident


async def test_each_user_pulls_only_their_own_notifications_and_reads_them_through_the_outbox(client, login, users):
    mine = await make(users["rep.bjcy"], "回访王芳")
    theirs = await make(users["rep2.bjcy"], "别人的事")
    rep = await login("rep.bjcy")
    device = uuid.uuid4()
    tables, cursor, _, _ = await _pull_all(client, rep, device)
    held = tables["notifications"]
    assert str(mine) in held and str(theirs) not in held
    assert {n["user_id"] for n in held.values()} == {str(users["rep.bjcy"])}
    assert held[str(mine)]["title"] == "提醒你跟进：回访王芳"  # a nudge with no sender named
    assert held[str(mine)]["read_at"] is None

    answer = await _push(
        client,
        rep,
        device,
        [
            {"id": 1, "name": "notification.read", "hlc": _hlc(), "args": {"notification_id": str(mine)}},
            {"id": 2, "name": "notification.read", "hlc": _hlc(), "args": {"notification_id": str(theirs)}},
            {"id": 3, "name": "notification.read_all", "hlc": _hlc(), "args": {"upto": "2026-01-01T00:00:00"}},
        ],
    )
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected"]
    assert "not found" in results[1]["reason"] and results[2]["field"] == "upto"
    assert (await Notification.select().where(Notification.id == theirs).first())["read_at"] is None
    again, _, _, _ = await _pull_all(client, rep, device, cursor=cursor)
    assert again["notifications"][str(mine)]["read_at"] is not None  # the read travels to every device

    listed = (await client.get("/api/notifications", headers=rep)).json()
    assert all(n["id"] != str(theirs) for n in listed["items"])
    assert (await client.post("/api/notifications/read", headers=rep, json={"ids": [str(theirs)]})).status_code == 404
    assert (await client.post("/api/notifications/read", headers=rep, json={})).status_code == 422
    answer = await client.post("/api/notifications/read", headers=rep, json={"all": True})
    assert answer.status_code == 200
    assert (await client.get("/api/notifications", headers=rep, params={"unread": True})).json()["unread"] == 0
    assert (await Notification.select().where(Notification.id == theirs).first())["read_at"] is None


async def test_preferences_and_follows(client, login, users, stores):
    rep = await login("rep.bjcy")
    before = (await client.get("/api/notifications/preferences", headers=rep)).json()
    assert before == {
        "quiet_start": "22:00",
        "quiet_end": "08:00",
        "daily_budget": 20,
        "muted_kinds": [],
        "language": "zh-CN",
    }
    for bad, field in (
        ({"muted_kinds": ["spam"]}, "muted_kinds"),
        ({"quiet_start": "", "quiet_end": "08:00"}, "quiet_end"),
        ({"quiet_start": "25:00"}, "quiet_start"),
        ({"daily_budget": -1}, "daily_budget"),
        ({"owner": "x"}, "owner"),
    ):
        answer = await client.put("/api/notifications/preferences", headers=rep, json=bad)
        assert answer.status_code in (400, 422), (bad, answer.text)
        assert field in answer.text
    assert (await client.get("/api/notifications/preferences", headers=rep)).json() == before
    answer = await client.put(
        "/api/notifications/preferences", headers=rep, json={"daily_budget": 8, "muted_kinds": ["order"]}
    )
    assert (
        answer.status_code == 200 and answer.json()["daily_budget"] == 8 and answer.json()["muted_kinds"] == ["order"]
    )

    own = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).first()
    far = await Customer.select(Customer.id).where(Customer.store_id == stores["SH-PD"]).first()
    url = "/api/notifications/follows/{}"
    assert (await client.put(url.format(far["id"]), headers=rep, json={"following": True})).status_code == 404
    answer = await client.put(url.format(own["id"]), headers=rep, json={"following": True})
    assert answer.status_code == 200 and answer.json()["following"] is True
    row = await CustomerFollow.select().where(CustomerFollow.user_id == users["rep.bjcy"]).first()
    assert row["customer_id"] == own["id"] and row["following"]


async def test_push_subscriptions_are_checked_and_owned(client, login, users):
    rep, other = await login("rep.bjcy"), await login("rep.shpd")
    key = (await client.get("/api/push/vapid-key", headers=rep)).json()["public_key"]
    assert len(base64.urlsafe_b64decode(key + "=")) == 65
    endpoint = f"https://push.example.com/send/{uuid.uuid4().hex}"
    keys = browser_keys()
    for bad, field in (
        ({"channel": "webpush", "endpoint": "http://push.example.com/x", "keys": keys}, "endpoint"),
        ({"channel": "webpush", "endpoint": endpoint}, "endpoint"),
        ({"channel": "webpush", "endpoint": endpoint, "keys": {**keys, "p256dh": b64(os.urandom(65))}}, "p256dh"),
        ({"channel": "webpush", "endpoint": endpoint, "keys": {**keys, "auth": b64(os.urandom(20))}}, "auth"),
        ({"channel": "fcm"}, "token"),
        ({"channel": "fcm", "token": "short"}, "token"),
        ({"channel": "sms", "token": "x" * 40}, "channel"),
        ({"channel": "fcm", "token": "x" * 40, "user_id": str(users["rep2.bjcy"])}, "user_id"),
    ):
        answer = await client.post("/api/push/subscriptions", headers=rep, json=bad)
        assert answer.status_code in (400, 422), (bad, answer.text)
        assert field in answer.text, answer.text
    assert await PushSubscription.count().where(PushSubscription.user_id == users["rep.bjcy"]) == 0

    body = {"channel": "webpush", "endpoint": endpoint, "keys": keys, "expirationTime": None, "label": "Chrome"}
    first = await client.post("/api/push/subscriptions", headers=rep, json=body)
    assert first.status_code == 201, first.text
    again = await client.post("/api/push/subscriptions", headers=rep, json=body)
    assert again.json()["id"] == first.json()["id"]  # the same browser re-subscribing: one row
    listed = (await client.get("/api/push/subscriptions", headers=rep)).json()
    assert [(s["channel"], s["label"]) for s in listed] == [("webpush", "Chrome")]
    ident = first.json()["id"]
    assert (await client.delete(f"/api/push/subscriptions/{ident}", headers=other)).status_code == 404
    assert (await client.delete(f"/api/push/subscriptions/{ident}", headers=rep)).status_code == 204
    assert (await client.delete(f"/api/push/subscriptions/{ident}", headers=rep)).status_code == 404
    assert (await client.get("/api/push/subscriptions", headers=rep)).json() == []
