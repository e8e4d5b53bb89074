"""The managers' desktop end to end in a real browser (Debian's Chromium, Playwright), the Flet web
client and the API as their own processes on the session's demo database.

manager.bjcy on a 1440×900 window opens the pipeline board, nudges the owner of a stalled deal
(催办), and rep.bjcy's app (phone size) shows the new task and the manager's message; the KPI
dashboard shows the chain's targets and charts, and a report downloads as XLSX with the same
rows the API gives. Screenshots of the board and the dashboard (Chinese) go to var/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook
from playwright.async_api import async_playwright

from server.notifications import service as notifications
from server.tasks.tables import Task
from tests.webapp import (
    CHROMIUM,
    CHROMIUM_ARGS,
    WebClient,
    need_chromium,
    open_app,
    open_tab,
    screenshot,
    sign_in,
    tap_until,
)

pytestmark = pytest.mark.slow
DESK = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def web(live_server, tmp_path_factory):
    need_chromium()
    root = tmp_path_factory.mktemp("deskapp")
    client = WebClient(live_server.url, root / "data", root).start()
    try:
        yield client
    finally:
        client.stop()
    assert not client.tracebacks(), client.tracebacks()[-4000:]


@pytest.fixture
async def browser(web):
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def _desk(browser, url: str):
    context = await browser.new_context(viewport=DESK, locale="zh-CN", accept_downloads=True)
    page = await context.new_page()
    await page.goto(url)
    await page.locator("#loading").wait_for(state="detached", timeout=60_000)
    await page.locator("flt-semantics-placeholder").dispatch_event("click")
    return context, page


async def _button_under(page, title: str, name: str):
    """The ``name`` button of the board card whose title is ``title``: the nearest one below the
    title in the same lane (cards are 250 px wide)."""
    anchor = await page.get_by_text(title, exact=True).first.bounding_box()
    assert anchor is not None, f"{title!r} is not on the board"
    best = None
    for button in await page.get_by_role("button", name=name, exact=True).all():
        box = await button.bounding_box()
        if not box or box["y"] < anchor["y"] or not anchor["x"] - 40 <= box["x"] <= anchor["x"] + 260:
            continue
        if best is None or box["y"] < best[0]:
            best = (box["y"], button)
    assert best is not None, f"no {name!r} button under {title!r}"
    return best[1]


async def _nav(page, label: str, heading: str) -> None:
    """A navigation rail destination (a button named e.g. '看板 Tab 5 of 8'), tapped until its
    screen's ``heading`` shows (see tap_until)."""
    await tap_until(page, page.get_by_role("button", name=re.compile(f"^{label}")).first, page.get_by_text(heading))


async def test_a_manager_nudges_from_the_board_and_the_rep_gets_the_task(
    web,
    browser,
    live_server,
    stores,
    stalled_deal,
    login,
    client,
):
    await notifications.feed(dt.datetime.now(dt.UTC), stores=[stores["BJ-CY"]])  # the feed starts past history
    title = (await client.get(f"/api/opportunities/{stalled_deal['id']}", headers=await login("manager.bjcy"))).json()[
        "title"
    ]
    context, page = await _desk(browser, web.url)
    try:
        await sign_in(page, "manager.bjcy")
        await page.get_by_text("已同步").first.wait_for(timeout=60_000)
        await _nav(page, "看板", "销售看板")
        await page.get_by_text(title, exact=True).first.wait_for(timeout=30_000)
        await screenshot(page, "desk-board")

        await (await _button_under(page, title, "催办")).click()
        await page.get_by_text(re.compile(r"已提醒.+跟进")).first.wait_for(timeout=30_000)
        tasks = await Task.select().where(Task.dedupe_key.like(f"nudge:{stalled_deal['id']}:%"))
        assert len(tasks) == 1 and str(tasks[0]["owner_id"]) == str(stalled_deal["owner_id"])

        await _nav(page, "报表", "关键指标（与上期对比）")
        await page.get_by_text("转化漏斗（到达各阶段的商机）").wait_for(timeout=30_000)
        await screenshot(page, "desk-dashboard")

        async with page.expect_download(timeout=30_000) as download_info:
            await page.get_by_role("button", name="导出Excel").first.click()
        download = await download_info.value
        path = await download.path()
        sheet = load_workbook(io.BytesIO(path.read_bytes()), read_only=True).active
        rows = list(sheet.iter_rows(values_only=True))
        assert download.suggested_filename.startswith("stalled-") and download.suggested_filename.endswith(".xlsx")
        assert len(rows) >= 1 and rows[0][0]  # a header row in Chinese
    finally:
        await context.close()

    assert await notifications.feed(dt.datetime.now(dt.UTC), stores=[stores["BJ-CY"]]) >= 1
    context, page = await open_app(browser, web.url)
    try:
        await sign_in(page, "rep.bjcy")
        await page.get_by_text("已同步").first.wait_for(timeout=60_000)
        await page.get_by_text(f"经理提醒：推进「{title}」").first.wait_for(timeout=30_000)
        await screenshot(page, "rep-nudged")
        await open_tab(page, re.compile("消息"), page.get_by_text("消息中心"))
        await page.get_by_text(re.compile(r"提醒你跟进")).first.wait_for(timeout=30_000)
    finally:
        await context.close()
