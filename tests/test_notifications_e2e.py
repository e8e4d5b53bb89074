"""End to end in a real browser: a store system reports that a BJ-CY customer browsed sofas online
for ten minutes; with nobody touching the phone, rep.bjcy's open app shows the follow-up task the
rules made (in Today's "coming up") and the notification (a banner, and the message centre's count).

The session's API process is restarted with the notification job on (every second) for this
module and put back as it was afterwards; everything the event made is removed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid

import httpx
import pytest
from playwright.async_api import async_playwright

from server.events.service import sign
from server.interactions.tables import Interaction
from server.notifications.tables import FeedCursor, Notification
from server.tasks.tables import Task
from tests.live import LiveWorker
from tests.webapp import CHROMIUM, CHROMIUM_ARGS, WebClient, need_chromium, open_app, open_tab, screenshot, sign_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def notifying_server(live_server, stores):
    """The session's API with the notification job on; what the module made is removed after."""
    from server.rules.service import sweep

    bjcy = stores["BJ-CY"]
    notes_before = {r["id"] for r in await Notification.select(Notification.id)}
    tasks_before = {r["id"] for r in await Task.select(Task.id).where(Task.store_id == bjcy)}
    # The demo's own recent browsing gets its follow-ups first, so the event below makes one task.
    await sweep(codes=["browse_interest"], stores=[bjcy])
    live_server.stop()
    live_server.env["FLOORWALKER_NOTIFY_SECONDS"] = "1"
    live_server.start()
    # On SQLite `serve` runs the scheduler; on PostgreSQL the scheduler is the worker's, as in production.
    worker = None if live_server.database_url.startswith("sqlite") else LiveWorker(live_server).start()
    try:
        yield live_server
    finally:
        if worker is not None:
            worker.stop()
        live_server.stop()
        live_server.env["FLOORWALKER_NOTIFY_SECONDS"] = "0"
        live_server.start()
        made = [r["id"] for r in await Notification.select(Notification.id) if r["id"] not in notes_before]
        if made:
            await Notification.delete().where(Notification.id.is_in(made))
        new_tasks = [
            r["id"] for r in await Task.select(Task.id).where(Task.store_id == bjcy) if r["id"] not in tasks_before
        ]
        if new_tasks:
            await Task.delete().where(Task.id.is_in(new_tasks))
        await FeedCursor.delete(force=True)


@pytest.fixture(scope="module")
def web(notifying_server, tmp_path_factory):
    need_chromium()
    root = tmp_path_factory.mktemp("webapp-notify")
    client = WebClient(notifying_server.url, root / "data", root).start()
    try:
        yield client
    finally:
        client.stop()
    assert not client.tracebacks(), client.tracebacks()[-4000:]


async def _browsing_customer(http: httpx.AsyncClient, rep_id: str) -> tuple[str, str, str]:
    """A customer of rep.bjcy's with a mobile number and no sofa browse follow-up yet."""
    for summary in (await http.get("/api/customers", params={"limit": 100})).json()["items"]:
        card = (await http.get(f"/api/customers/{summary['id']}")).json()
        phones = [p["number"] for p in card["phones"] if p["kind"] == "mobile"]
        profile = card["profile"]
        if profile["owner_id"] == rep_id and phones and not card["tasks"]:
            return profile["id"], profile["name"], phones[0]
    raise AssertionError("no customer of rep.bjcy with a mobile and no open task")


async def test_an_event_makes_a_task_and_a_notification_appear_without_a_tap(web, notifying_server):
    http = httpx.AsyncClient(base_url=notifying_server.url, timeout=10)
    login = (await http.post("/api/auth/login", json={"username": "rep.bjcy", "password": "floorwalker"})).json()
    http.headers["Authorization"] = f"Bearer {login['access_token']}"
    customer_id, name, phone = await _browsing_customer(http, login["user"]["id"])
    event_id = f"e2e-browse-{uuid.uuid4().hex[:8]}"
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context, page = await open_app(browser, web.url)
            await sign_in(page, "rep.bjcy")
            await page.get_by_text("已同步").wait_for(timeout=60_000)
            await page.get_by_text("今日任务").wait_for()

            # The online shop reports ten minutes on the sofa pages (signed with its key).
            event = {
                "source": "online_shop",
                "event_id": event_id,
                "type": "browse",
                "occurred_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat(),
                "phone": phone,
                "category": "sofa",
                "duration_seconds": 600,
            }
            event["signature"] = sign(event, b"online_shop-demo-key")
            answer = await http.post("/api/events", json={"events": [event]})
            assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "stored", answer.text

            # No tap from here: the notification and the task arrive by themselves.
            banner = page.get_by_text(re.compile(rf"^提醒：跟进：{re.escape(name)}浏览沙发超过5分钟"))
            await banner.first.wait_for(timeout=20_000)
            await page.get_by_text("即将到期（3天内）", exact=False).first.wait_for(timeout=10_000)
            await screenshot(page, "notification-banner")
            task = page.get_by_text(f"跟进：{name}浏览沙发超过5分钟", exact=True)
            for _ in range(30):  # Today's "coming up" is below the day's tasks: scroll to it
                if await task.count():
                    break
                await page.mouse.wheel(0, 600)
                await asyncio.sleep(0.2)
            await task.first.wait_for(timeout=5_000)
            await open_tab(page, re.compile("消息"), page.get_by_text("消息中心"))
            await page.get_by_text(re.compile(rf"^提醒：跟进：{re.escape(name)}浏览沙发")).first.wait_for()
            await screenshot(page, "message-centre")
            await context.close()
            await browser.close()
        mine = (await http.get("/api/notifications", params={"unread": True})).json()
        assert any(n["title"].startswith(f"提醒：跟进：{name}浏览沙发") for n in mine["items"])
    finally:
        await http.aclose()
        tasks = await Task.select(Task.id).where(
            (Task.customer_id == customer_id) & Task.dedupe_key.like("browse_interest:%")
        )
        ids = [t["id"] for t in tasks]
        if ids:
            await Notification.delete().where(Notification.task_id.is_in(ids))
            await Task.delete().where(Task.id.is_in(ids))
        await Interaction.delete().where(Interaction.source_event_id.like(f"%{event_id}"))
