"""Notifications in the phone app (``AppState``, no renderer) against a real `floorwalker serve`:
a notification the server makes reaches the phone's message centre and raises a banner; reading it
on the phone reads it on the server (and so on the rep's other devices); a task that comes due on
the phone's own clock raises a banner with no network; follows and push settings travel through
the outbox like every edit; a notification of someone else's cannot be touched.

Notifications are made in this process by the same feed the worker runs (restricted to BJ-CY);
everything made here is removed at the end.
"""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from mobile import queries, times
from server.notifications import service
from server.notifications.tables import CustomerFollow, FeedCursor, Notification, NotificationPrefs
from server.tasks.tables import Task
from shared.sync import follow_id, prefs_id
from tests.test_app_state import PASSWORD, no_device_left, sign_in


@pytest.fixture(scope="module")
async def bjcy(stores):
    store = stores["BJ-CY"]
    await service.feed(stores=[store])  # the feed's first look starts at the head
    made_before = {r["id"] for r in await Notification.select(Notification.id)}
    yield store
    fresh = [r["id"] for r in await Notification.select(Notification.id) if r["id"] not in made_before]
    if fresh:
        await Notification.delete().where(Notification.id.is_in(fresh))
    await FeedCursor.delete().where(FeedCursor.scope == str(store))


@pytest.fixture(scope="module")
async def rep(live_server, tmp_path_factory, bjcy):
    folder = tmp_path_factory.mktemp("notify-phone")
    phone = await sign_in(live_server.url, folder)
    try:
        yield phone
    finally:
        await phone.state.close()
        no_device_left(folder)


async def api(url: str, username: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=url, timeout=30)
    answer = await http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return http


async def test_a_task_from_the_manager_arrives_as_a_banner_and_reading_it_reads_it_everywhere(rep, live_server, bjcy):
    state = rep.state
    manager = await api(live_server.url, "manager.bjcy")
    mine = await api(live_server.url, "rep.bjcy")
    title = f"经理交办：量尺寸 {uuid.uuid4().hex[:4]}"
    customer = (await mine.get("/api/customers", params={"limit": 1})).json()["items"][0]
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    task = (
        await manager.post(
            "/api/tasks",
            json={"title": title, "due_at": due, "customer_id": customer["id"], "owner_id": str(state.user.id)},
        )
    ).json()
    try:
        assert await service.feed(stores=[bjcy]) >= 1
        await state.sync_now()
        assert state.banner is not None and state.banner["title"] == f"新任务：{title}"
        assert "分配给你 · " in state.banner["body"]
        [message] = [m for m in state.messages() if m.title == f"新任务：{title}"]
        assert message.unread and message.notice_kind == "task_assigned" and message.task_id == task["id"]
        unread = state.unread()
        assert unread >= 1

        state.open_banner()  # 查看: opens the customer and reads the notification
        assert state.route == f"/customers/{customer['id']}" and state.banner is None
        assert state.unread() == unread - 1
        await state.sync_now()
        listed = (await mine.get("/api/notifications")).json()
        [server_copy] = [n for n in listed["items"] if n["title"] == f"新任务：{title}"]
        assert server_copy["read_at"] is not None  # read on every device of the rep

        # Somebody else's notification cannot be read from this phone (the server refuses it).
        other = (await manager.get("/api/notifications")).json()["items"]
        if other:
            answer = await mine.post("/api/notifications/read", json={"ids": [other[0]["id"]]})
            assert answer.status_code == 404
        state.mark_messages_read()
        await state.sync_now()
        assert (await mine.get("/api/notifications", params={"unread": True})).json()["unread"] == 0
    finally:
        await Task.delete().where(Task.id == uuid.UUID(task["id"]))
        await manager.aclose()
        await mine.aclose()


async def test_a_task_coming_due_raises_a_banner_on_the_phones_own_clock(rep):
    state = rep.state
    now = dt.datetime.now(dt.UTC)
    customer = queries.search_customers(state.replica, "", unmask=True)[0]
    title = f"到点提醒 {uuid.uuid4().hex[:4]}"
    task_id = str(uuid.uuid4())
    state.replica.mutate(
        "task.create",
        {
            "id": task_id,
            "title": title,
            "due_at": times.utc_text(now + dt.timedelta(minutes=30)),
            "customer_id": customer.id,
        },
    )
    try:
        state.check_reminders()
        assert state.banner is None or state.banner.get("kind") != "due"
        later = now + dt.timedelta(minutes=31)
        state._clock = lambda: later  # the phone's clock moves on; no network involved
        state.check_reminders()
        assert state.banner is not None and state.banner["kind"] == "due"
        assert state.banner["title"] == f"到期：{title}" and customer.name in state.banner["body"]
        state.dismiss_banner()
        state.check_reminders()  # told once
        assert state.banner is None
    finally:
        state._clock = lambda: dt.datetime.now(dt.UTC)
        state.replica.complete_task(task_id)
        await state.sync_now()
        await Task.delete().where(Task.id == uuid.UUID(task_id))


async def test_follow_and_push_settings_go_through_the_outbox(rep, live_server):
    state = rep.state
    user_id = state.user.id
    customer = next(h for h in queries.search_customers(state.replica, "", unmask=True) if h.owner_id != str(user_id))
    try:
        assert not state.is_following(customer.id)
        state.toggle_follow(customer.id)
        assert state.is_following(customer.id) and state.toast == "已关注：有新订单、投诉或商机变化会通知你"
        state.set_quiet_hours(False)
        state.set_budget(5)
        state.toggle_muted("order")
        assert state.prefs()["daily_budget"] == 5 and state.prefs()["muted_kinds"] == ["order"]
        await state.sync_now()
        assert state.pending == 0
        row = await CustomerFollow.select().where(CustomerFollow.id == follow_id(user_id, customer.id)).first()
        assert row is not None and row["following"] and str(row["customer_id"]) == customer.id
        prefs = await NotificationPrefs.select().where(NotificationPrefs.id == prefs_id(user_id)).first()
        assert (prefs["quiet_start"], prefs["daily_budget"]) == ("", 5)
        state.toggle_follow(customer.id)
        await state.sync_now()
        row = await CustomerFollow.select().where(CustomerFollow.id == follow_id(user_id, customer.id)).first()
        assert not row["following"] and not state.is_following(customer.id)
    finally:
        await CustomerFollow.delete().where(CustomerFollow.user_id == user_id)
        await NotificationPrefs.delete().where(NotificationPrefs.user_id == user_id)


class RecordingScheduler:
    """The phone's notification scheduler (the Android plugin): a double at the platform's edge that
    records what the app asked for."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple] = {}
        self.calls: list[str] = []

    async def schedule_notification(self, notification_id, title, body, scheduled_time, **options) -> None:
        assert scheduled_time.tzinfo is not None and options["payload"].startswith("/")
        self.pending[notification_id] = (title, body, scheduled_time)
        self.calls.append(f"schedule {notification_id}")

    async def cancel(self, notification_id) -> None:
        self.pending.pop(notification_id, None)
        self.calls.append(f"cancel {notification_id}")


async def test_upcoming_tasks_become_local_alarms_that_follow_snoozes_and_completions(rep):
    from mobile.alarms import TaskAlarms, alarm_id

    state = rep.state
    scheduler = RecordingScheduler()
    state._alarms = TaskAlarms(scheduler)
    now = dt.datetime.now(dt.UTC)
    customer = queries.search_customers(state.replica, "", unmask=True)[0]
    soon, later, past = (str(uuid.uuid4()) for _ in range(3))
    try:
        for ident, title, due in (
            (soon, "量尺寸", now + dt.timedelta(hours=2)),
            (later, "送货回访", now + dt.timedelta(days=2)),
            (past, "昨天的事", now - dt.timedelta(hours=1)),
        ):
            state.replica.mutate(
                "task.create",
                {"id": ident, "title": title, "due_at": times.utc_text(due), "customer_id": customer.id},
            )
        await state.update_alarms()
        mine = {alarm_id(soon), alarm_id(later)}
        assert mine <= set(scheduler.pending) and alarm_id(past) not in scheduler.pending
        title, body, at = scheduler.pending[alarm_id(soon)]
        assert title == "到期：量尺寸" and body == customer.name
        assert abs((at - (now + dt.timedelta(hours=2))).total_seconds()) < 1

        state.replica.snooze_task(soon, times.utc_text(now + dt.timedelta(hours=5)))
        state.replica.complete_task(later)
        scheduler.calls.clear()
        await state.update_alarms()
        assert f"cancel {alarm_id(later)}" in scheduler.calls and alarm_id(later) not in scheduler.pending
        assert scheduler.calls.count(f"schedule {alarm_id(soon)}") == 1  # moved to the new due time
        assert abs((scheduler.pending[alarm_id(soon)][2] - (now + dt.timedelta(hours=5))).total_seconds()) < 1
        scheduler.calls.clear()
        await state.update_alarms()
        assert scheduler.calls == []  # nothing changed, nothing asked
    finally:
        state._alarms = None
        for ident in (soon, past):
            state.replica.complete_task(ident)
        await state.sync_now()
        await Task.delete().where(Task.id.is_in([uuid.UUID(i) for i in (soon, later, past)]))
