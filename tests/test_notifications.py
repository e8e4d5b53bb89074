"""Notifications under a controlled clock: who is told what (the feed, due tasks), in their
language, exactly once; the push plan (quiet hours, daily budget and digest, critical bypass,
opt-outs); and dispatch through the real Web Push adapter to a loopback push service that decrypts
each message — exactly once per notification and device, across a dispatcher that dies mid-batch.

Each test uses its own store (the rules tests' ``World``); everything is removed at the end.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from server import db
from server.auth.scope import Caller
from server.complaints.tables import Complaint
from server.notifications import dispatch, service
from server.notifications.tables import (
    CustomerFollow,
    FeedCursor,
    Notification,
    NotificationPrefs,
    PushSend,
    PushSubscription,
)
from server.notifications.webpush import WebPushSender, generate_vapid_key
from server.opportunities import service as opportunities
from server.orders.tables import Order
from server.sync.service import allocate_versions, store_scope
from server.tasks import service as tasks
from shared.enums import Role
from shared.ids import uuid7
from shared.wire import OpportunityCreate, StageMove, TaskCreate
from tests.test_rules import SH, Person, Shop, World, sh
from tests.test_rules import world as rules_world  # noqa: F401 — the fixture, used through `world`
from tests.webpush_receiver import PushReceiver, make_subscription

MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
async def world(rules_world):  # noqa: F811
    try:
        yield rules_world
    finally:
        ids = rules_world.store_ids
        if ids:
            users = [
                r["id"]
                for r in await Notification.raw(
                    f"SELECT id FROM users WHERE store_id IN ({', '.join('{}' for _ in ids)})", *ids
                )
            ]
            if users:
                subs = [
                    r["id"]
                    for r in await PushSubscription.select(PushSubscription.id).where(
                        PushSubscription.user_id.is_in(users)
                    )
                ]
                if subs:
                    await PushSend.delete().where(PushSend.subscription_id.is_in(subs))
                await PushSubscription.delete().where(PushSubscription.user_id.is_in(users))
                await Notification.delete().where(Notification.user_id.is_in(users))
                await NotificationPrefs.delete().where(NotificationPrefs.user_id.is_in(users))
                await CustomerFollow.delete().where(CustomerFollow.user_id.is_in(users))
                from server.sync.tables import ScopeVersion

                await ScopeVersion.delete().where(ScopeVersion.scope.is_in([f"u:{u}" for u in users]))
            await FeedCursor.delete().where(FeedCursor.scope.is_in([str(i) for i in ids]))


def caller(shop: Shop, person: Person, role: Role = Role.REP, language: str = "zh-CN") -> Caller:
    return Caller(
        user_id=person.id,
        username=f"u-{person.id}",
        display_name=person.name,
        role=role,
        store_id=shop.id,
        region_id=None,
        language=language,
        store_ids=frozenset({shop.id}),
    )


async def mine(person: Person) -> list[dict]:
    return await Notification.select().where(Notification.user_id == person.id).order_by(Notification.created_at)


async def versioned_order(shop: Shop, customer: Person, at: dt.datetime, amount: str = "4999") -> uuid.UUID:
    """An order as a store feed writes it: numbered in the store's change order."""
    order_id = uuid7()
    async with db.transaction():
        version = await allocate_versions(store_scope(shop.id))
        await Order.insert(
            Order(
                id=order_id,
                version=version,
                store_id=shop.id,
                customer_id=customer.id,
                channel="online",
                ordered_at=at,
                amount=Decimal(amount),
                payment_method="wechat_pay",
            )
        )
    return order_id


async def versioned_complaint(shop: Shop, customer: Person, at: dt.datetime) -> uuid.UUID:
    row_id = uuid7()
    async with db.transaction():
        version = await allocate_versions(store_scope(shop.id))
        await Complaint.insert(
            Complaint(
                id=row_id,
                version=version,
                store_id=shop.id,
                customer_id=customer.id,
                owner_id=shop.rep.id,
                category="delivery",
                status="open",
                description="送货迟到两天",
                opened_at=at,
            )
        )
    return row_id


async def feed(shop: Shop, now: dt.datetime) -> int:
    return await service.feed(now, stores=[shop.id])


# --- who is told what ----------------------------------------------------------------------------------


async def test_the_feed_tells_owners_and_followers_once_in_their_language(world: World):
    shop = await world.shop()
    now = dt.datetime.now(dt.UTC)
    assert await feed(shop, now) == 0  # the first look starts at the store's head: history tells nobody
    customer = await shop.customer()
    manager, rep, rep_en = (
        caller(shop, shop.manager, Role.STORE_MANAGER),
        caller(shop, shop.rep),
        caller(shop, shop.rep_en, language="en"),
    )

    # A task the manager gives the rep; the rep's own task tells nobody.
    given = await tasks.create(
        caller=manager,
        data=TaskCreate(title="回访沙发客户", due_at=now + 2 * HOUR, customer_id=customer.id, owner_id=shop.rep.id),
    )
    await tasks.create(caller=rep, data=TaskCreate(title="自己的待办", due_at=now + HOUR, customer_id=customer.id))
    assert await feed(shop, now) == 1
    [note] = await mine(shop.rep)
    assert note["id"] == service.notification_id(shop.rep.id, f"task:{given.id}")
    assert (note["kind"], note["title"]) == ("task_assigned", "新任务：回访沙发客户")
    assert note["body"].startswith("规测店长分配给你 · ")
    assert note["body"].endswith((now + 2 * HOUR).astimezone(SH).strftime("%m-%d %H:%M"))
    assert note["link"] == f"/customers/{customer.id}" and note["task_id"] == given.id
    assert note["read_at"] is None and note["push_state"] == "pending" and note["version"] > 0
    assert await feed(shop, now) == 0  # nothing new, nothing twice

    # rep_en follows the customer (not theirs); the rep unfollows nothing yet.
    async with db.transaction():
        await service.set_follow(caller=rep_en, customer_id=customer.id, following=True)
    deal = await opportunities.create(caller=rep, data=OpportunityCreate(customer_id=customer.id, title="岩板餐桌"))
    await opportunities.move_stage(caller=manager, opportunity_id=deal.id, data=StageMove(stage="proposal"))
    await versioned_order(shop, customer, now - MIN, "4999.50")
    await versioned_complaint(shop, customer, now - MIN)
    await versioned_order(shop, customer, now - 3 * 24 * HOUR)  # an old order imported late: no news
    assert await feed(shop, now) == 6  # rep and rep_en: the move, the order, the complaint
    rep_kinds = [(n["kind"], n["title"], n["body"]) for n in (await mine(shop.rep))[1:]]
    assert sorted(rep_kinds) == sorted(
        [
            ("stage_moved", f"商机推进：{customer.name}", "岩板餐桌 → 方案报价（规测店长）"),
            ("order", f"新订单：{customer.name}", "网店 · ¥5000"),
            ("complaint", f"新投诉：{customer.name}", "delivery · 送货迟到两天"),
        ]
    )
    en_titles = sorted(n["title"] for n in await mine(shop.rep_en))
    assert en_titles == sorted(
        [f"Deal moved: {customer.name}", f"New order: {customer.name}", f"New complaint: {customer.name}"]
    )
    assert not await mine(shop.manager)  # not a follower; and a mover is never told of their own move

    # The rep's own move tells the rep nothing, the follower everything; an unfollow is respected.
    await opportunities.move_stage(caller=rep, opportunity_id=deal.id, data=StageMove(stage="negotiation"))
    async with db.transaction():
        await service.set_follow(caller=rep, customer_id=customer.id, following=False)
    await versioned_order(shop, customer, now)
    before = len(await mine(shop.rep))
    assert await feed(shop, now) == 2
    assert len(await mine(shop.rep)) == before
    kinds = sorted(n["kind"] for n in await mine(shop.rep_en))
    assert kinds == ["complaint", "order", "order", "stage_moved", "stage_moved"]


async def test_a_due_task_is_told_once_per_due_time(world: World):
    shop = await world.shop()
    rep = caller(shop, shop.rep)
    customer = await shop.customer()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    task = await tasks.create(
        caller=rep, data=TaskCreate(title="上门量尺寸", due_at=now + HOUR, customer_id=customer.id)
    )
    at_once = await tasks.create(caller=rep, data=TaskCreate(title="马上回电", due_at=now, customer_id=customer.id))

    async def made(at: dt.datetime) -> list[str]:
        await service.due(at, stores=[shop.id])
        return [n["title"] for n in await mine(shop.rep) if n["kind"] == "task_due"]

    assert await made(now + HOUR - MIN) == []
    assert await made(now + HOUR + MIN) == ["到期：上门量尺寸"]
    assert await made(now + HOUR + 2 * MIN) == ["到期：上门量尺寸"]  # once
    assert at_once.id not in {n["task_id"] for n in await mine(shop.rep)}  # due when made: no second word
    await tasks.snooze(caller=rep, task_id=task.id, until=now + 3 * HOUR)
    assert await made(now + 3 * HOUR + MIN) == ["到期：上门量尺寸", "到期：上门量尺寸"]  # a new due time
    await tasks.complete(caller=rep, task_id=task.id)
    assert len(await made(now + 10 * HOUR)) == 2


# --- the push plan ---------------------------------------------------------------------------------------


async def make(person: Person, kind: str, at: dt.datetime, n: int = 1, critical: bool = False) -> list[uuid.UUID]:
    drafts = [
        service.Draft(
            user_id=str(person.id),
            cause=f"test:{uuid.uuid4()}",
            kind=kind,
            values={"task": f"事项{i}"},
            critical=critical,
            created_at=at + i * dt.timedelta(milliseconds=1),
        )
        for i in range(n)
    ]
    async with db.transaction():
        return await service.write(drafts, at)


async def states(ids: list[uuid.UUID]) -> list[str]:
    rows = {r["id"]: r["push_state"] for r in await Notification.select().where(Notification.id.is_in(ids))}
    return [rows[i] for i in ids]


_devices: list[uuid.UUID] = []


@pytest.fixture(autouse=True)
async def _unplug_devices():
    """A test's devices go when it ends, so its queued sends never reach another test's push service."""
    yield
    while _devices:
        await dispatch.remove_subscription(_devices.pop(), "test over", dt.datetime.now(dt.UTC))


async def device(shop: Shop, person: Person) -> uuid.UUID:
    async with db.transaction():
        ident = await service.subscribe(
            caller=caller(shop, person), channel="fcm", address=f"test-token-{uuid.uuid4().hex}", label="测试手机"
        )
    _devices.append(ident)
    return ident


async def test_quiet_hours_hold_the_budget_digests_critical_bypasses(world: World):
    shop = await world.shop()
    rep = shop.rep
    await device(shop, rep)
    async with db.transaction():
        await service.update_prefs(caller=caller(shop, rep), values={"daily_budget": 3, "muted_kinds": ["order"]})

    night = sh(23, 23, 10)  # 23:10 in Shanghai: quiet
    held = await make(rep, "reminder", night, 2)
    alarm = await make(rep, "complaint_sla", night)
    muted = await make(rep, "order", night)
    plan = await service.plan_pushes(night)
    assert (plan.held, plan.pushed, plan.muted) == (2, 1, 1)
    assert await states(held + alarm + muted) == ["held", "held", "sent", "muted"]
    row = await Notification.select().where(Notification.id == held[0]).first()
    assert row["deliver_after"] == sh(24, 8, 0)  # quiet hours end at 08:00 the next morning
    assert (
        row["critical"] is False
        and (await Notification.select().where(Notification.id == alarm[0]).first())["critical"]
    )
    assert (await service.plan_pushes(sh(24, 7, 59))).pushed == 0  # still quiet

    morning = sh(24, 8, 1)
    assert (await service.plan_pushes(morning)).pushed == 2  # the held two, first thing
    more = await make(rep, "task_assigned", morning + MIN, 3)
    plan = await service.plan_pushes(morning + MIN)
    assert (plan.pushed, plan.digest) == (1, 2)  # budget 3: two held + one; the rest waits for a digest
    late_alarm = await make(rep, "complaint_sla", morning + MIN)
    assert (await service.plan_pushes(morning + MIN)).pushed == 1  # critical: over budget, still pushed
    assert await states(more + late_alarm) == ["sent", "digest", "digest", "sent"]

    assert (await service.plan_pushes(morning + 20 * MIN)).digests == 0  # the oldest waited under 30 min
    plan = await service.plan_pushes(morning + 32 * MIN)
    assert plan.digests == 1
    digest = (
        await Notification.select().where((Notification.user_id == rep.id) & (Notification.kind == "digest")).first()
    )
    assert digest["title"] == "还有2条提醒" and digest["body"] == "新任务：事项1；新任务：事项2"
    assert digest["push_state"] == "sent" and digest["link"] == "/messages"
    assert await states(more) == ["sent", "digested", "digested"]
    assert await PushSend.count().where(PushSend.notification_id == digest["id"]) == 1

    again = await make(rep, "reminder", morning + HOUR, 2)
    await service.plan_pushes(morning + HOUR)
    assert (await service.plan_pushes(morning + 2 * HOUR)).digests == 0  # one digest per 3 hours
    assert (await service.plan_pushes(morning + 32 * MIN + 3 * HOUR)).digests == 1
    assert await states(again) == ["digested", "digested"]

    tomorrow = sh(25, 9, 0)  # a new day, a new budget
    fresh = await make(rep, "reminder", tomorrow, 3)
    assert (await service.plan_pushes(tomorrow)).pushed == 3 and await states(fresh) == ["sent"] * 3


async def test_without_a_device_nothing_is_queued_and_quiet_hours_follow_the_store_zone(world: World):
    shop = await world.shop(time_zone="America/New_York")
    rep = shop.rep
    ids = await make(rep, "reminder", dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.UTC))
    await service.plan_pushes(dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.UTC))
    assert await states(ids) == ["none"]
    await device(shop, rep)
    # 04:00 UTC is 23:00 in New York (quiet) but noon in Shanghai.
    ids = await make(rep, "reminder", dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.UTC))
    await service.plan_pushes(dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.UTC))
    assert await states(ids) == ["held"]
    row = await Notification.select().where(Notification.id == ids[0]).first()
    assert row["deliver_after"] == dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC)  # 08:00 in New York


# --- dispatch: real Web Push to a loopback push service ------------------------------------------------


@pytest.fixture
def receiver():
    with PushReceiver() as the_receiver:
        yield the_receiver


async def browser(shop: Shop, person: Person, receiver: PushReceiver) -> uuid.UUID:
    target, _ = make_subscription(receiver)
    async with db.transaction():
        ident = await service.subscribe(
            caller=caller(shop, person),
            channel="webpush",
            address=target.endpoint,
            p256dh=target.p256dh,
            auth=target.auth,
            label="Chromium",
        )
    _devices.append(ident)
    return ident


async def sends(ids: list[uuid.UUID]) -> list[tuple[str, int]]:
    rows = await PushSend.select().where(PushSend.notification_id.is_in(ids)).order_by(PushSend.id)
    return [(r["state"], r["attempts"]) for r in rows]


async def test_web_push_end_to_end_exactly_once_across_a_dispatcher_that_dies(world: World, receiver):
    shop = await world.shop()
    rep = shop.rep
    await browser(shop, rep, receiver)
    senders = {"webpush": WebPushSender(generate_vapid_key(), "mailto:ops@floorwalker.example")}
    now = sh(24, 14, 0)
    first = await make(rep, "task_assigned", now, 3)
    await service.plan_pushes(now)
    result = await dispatch.dispatch(senders, now)
    assert result.sent == 3
    got = await receiver.arrived(3)
    assert sorted(m.payload["title"] for m in got) == ["新任务：事项0", "新任务：事项1", "新任务：事项2"]
    assert {m.payload["id"] for m in got} == {str(i) for i in first}
    assert (await dispatch.dispatch(senders, now + HOUR)).total == 0  # a second run sends nothing

    # A dispatcher claims a batch and dies before sending (a worker killed mid-run).
    second = await make(rep, "reminder", now + MIN, 2)
    await service.plan_pushes(now + MIN)
    claimed = await dispatch._claim(now + MIN, 100)
    assert len(claimed) == 2
    assert (await dispatch.dispatch(senders, now + 2 * MIN)).total == 0  # leased: nobody else sends them
    result = await dispatch.dispatch(senders, now + MIN + dispatch.LEASE + MIN)  # the lease ran out
    assert result.sent == 2
    await receiver.arrived(5)
    # Two dispatchers at once (a leader change) claim disjoint batches.
    third = await make(rep, "reminder", now + 10 * MIN, 4)
    await service.plan_pushes(now + 10 * MIN)
    import asyncio

    both = await asyncio.gather(
        dispatch.dispatch(senders, now + 10 * MIN, limit=3), dispatch.dispatch(senders, now + 10 * MIN, limit=3)
    )
    assert sum(r.sent for r in both) == 4
    received = await receiver.arrived(9)
    ids = [m.payload["id"] for m in received]
    assert sorted(ids) == sorted(str(i) for i in first + second + third)  # each exactly once
    assert await sends(second) == [("sent", 2), ("sent", 2)]  # claimed twice, sent once


async def test_retry_with_backoff_then_give_up_and_remove_a_gone_subscription(world: World, receiver):
    shop = await world.shop()
    rep = shop.rep
    subscription = await browser(shop, rep, receiver)
    senders = {"webpush": WebPushSender(generate_vapid_key(), "mailto:ops@floorwalker.example")}
    now = sh(24, 9, 0)
    [one] = await make(rep, "reminder", now)
    await service.plan_pushes(now)

    receiver.answer_next(503, retry_after="90")
    assert (await dispatch.dispatch(senders, now)).retried == 1
    row = await PushSend.select().where(PushSend.notification_id == one).first()
    assert (row["state"], row["attempts"], row["last_status"]) == ("queued", 1, 503)
    assert row["next_attempt_at"] == now + dt.timedelta(seconds=90)  # the service's Retry-After wins
    assert (await dispatch.dispatch(senders, now + 60 * dt.timedelta(seconds=1))).total == 0
    receiver.answer_next(500)
    assert (await dispatch.dispatch(senders, now + 91 * dt.timedelta(seconds=1))).retried == 1
    row = await PushSend.select().where(PushSend.notification_id == one).first()
    assert row["next_attempt_at"] == now + 91 * dt.timedelta(seconds=1) + dispatch.backoff(2)
    result = await dispatch.dispatch(senders, now + HOUR)
    assert result.sent == 1 and [m.payload["id"] for m in await receiver.arrived(1)] == [str(one)]

    # A permanent refusal is recorded once, never retried.
    [two] = await make(rep, "reminder", now + HOUR)
    await service.plan_pushes(now + HOUR)
    receiver.answer_next(400, reason="payload refused")
    assert (await dispatch.dispatch(senders, now + HOUR)).failed == 1
    row = await PushSend.select().where(PushSend.notification_id == two).first()
    assert row["state"] == "failed" and "400" in row["last_error"]
    assert (await dispatch.dispatch(senders, now + 5 * HOUR)).total == 0

    # A transient failure that never ends gives up after MAX_ATTEMPTS.
    [three] = await make(rep, "reminder", now + 2 * HOUR)
    await service.plan_pushes(now + 2 * HOUR)
    receiver.answer_next(500, times=dispatch.MAX_ATTEMPTS)
    at = now + 2 * HOUR
    for _ in range(dispatch.MAX_ATTEMPTS):
        await dispatch.dispatch(senders, at)
        at += dispatch.BACKOFF_MAX
    row = await PushSend.select().where(PushSend.notification_id == three).first()
    assert (row["state"], row["attempts"]) == ("failed", dispatch.MAX_ATTEMPTS)
    assert row["last_error"].startswith(f"gave up after {dispatch.MAX_ATTEMPTS} attempts")

    # The browser unsubscribed at its push service: 410 removes the subscription.
    await make(rep, "reminder", at)
    await service.plan_pushes(at)
    receiver.answer_next(410)
    assert (await dispatch.dispatch(senders, at)).gone == 1
    sub = await PushSubscription.select().where(PushSubscription.id == subscription).first()
    assert sub["removed_at"] == at and "410" in sub["removed_reason"]
    [five] = await make(rep, "reminder", at + MIN)
    await service.plan_pushes(at + MIN)
    assert await states([five]) == ["none"]  # no device left


async def test_android_push_through_fcm_configured_by_settings(world: World, tmp_path):
    """The dispatcher with the FCM adapter built from settings (a service-account file) against the
    loopback FCM: a critical alert goes out at high priority, a 5xx is retried later, a 4xx is given
    up at once, and a token FCM calls unregistered removes the device."""
    import json

    from server.settings import Settings
    from tests.fcm_standin import FcmStandin

    shop = await world.shop()
    rep = shop.rep
    with FcmStandin() as fcm:
        account = tmp_path / "service-account.json"
        account.write_text(json.dumps(fcm.service_account()))
        settings = Settings(
            fcm_credentials_file=str(account), fcm_endpoint=fcm.url, vapid_private_key=generate_vapid_key()
        )
        senders = dispatch.senders_from(settings)
        assert sorted(senders) == ["fcm", "webpush"]
        token = f"fcm-token-{uuid.uuid4().hex}"
        async with db.transaction():
            phone = await service.subscribe(caller=caller(shop, rep), channel="fcm", address=token, label="Mate 60")
        _devices.append(phone)
        now = sh(25, 11, 0)
        [alarm] = await make(rep, "complaint_sla", now)
        await service.plan_pushes(now)
        fcm.fail_next_sends(503, retry_after=20)
        assert (await dispatch.dispatch(senders, now)).retried == 1
        assert fcm.messages == []
        assert (await dispatch.dispatch(senders, now + dt.timedelta(seconds=10))).total == 0  # Retry-After
        assert (await dispatch.dispatch(senders, now + dt.timedelta(seconds=31))).sent == 1
        [message] = fcm.messages
        assert message["token"] == token and message["android"]["priority"] == "HIGH"
        assert message["data"]["notification_id"] == str(alarm) and message["notification"]["title"].startswith(
            "投诉超时："
        )

        [refused] = await make(rep, "reminder", now + HOUR)
        await service.plan_pushes(now + HOUR)
        fcm.fail_next_sends(400)
        assert (await dispatch.dispatch(senders, now + HOUR)).failed == 1
        assert (await dispatch.dispatch(senders, now + 5 * HOUR)).total == 0
        assert await sends([refused]) == [("failed", 1)]

        fcm.unregister(token)
        [_gone] = await make(rep, "reminder", now + 2 * HOUR)
        await service.plan_pushes(now + 2 * HOUR)
        assert (await dispatch.dispatch(senders, now + 2 * HOUR)).gone == 1
        row = await PushSubscription.select().where(PushSubscription.id == phone).first()
        assert row["removed_at"] is not None
        assert row["removed_reason"].startswith("push service: 404")
        await senders["fcm"].aclose()
