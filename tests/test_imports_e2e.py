"""The import screen end to end in a real browser (Debian's Chromium, Playwright): the Flet web
client and the API as their own processes on the session's demo database.

manager.bjcy on a 1440×900 window opens 导入, picks a CSV through the browser's own file chooser
(Flet's FilePicker: the bytes come back from the browser), sees the file read and its columns
matched, tries a dry run (nothing written), imports for real and downloads the rejected rows.
Screenshots (Chinese) go to var/screenshots/. The customers and jobs made are removed afterwards.
"""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from playwright.async_api import async_playwright

from server.customers.tables import Customer, CustomerTag
from tests.test_app_imports import FILE_NAME, made, messy_csv, unused_mobiles  # noqa: F401 — `made` is a fixture
from tests.webapp import CHROMIUM, CHROMIUM_ARGS, WebClient, need_chromium, screenshot, sign_in, tap_until

pytestmark = pytest.mark.slow
DESK = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def web(live_server, tmp_path_factory):
    need_chromium()
    root = tmp_path_factory.mktemp("importapp")
    client = WebClient(live_server.url, root / "data", root).start()
    try:
        yield client
    finally:
        client.stop()
    assert not client.tracebacks(), client.tracebacks()[-4000:]


async def test_a_manager_imports_a_file_picked_in_the_browser(web, live_server, stores, made, tmp_path):  # noqa: F811
    tag = uuid.uuid4().hex[:4]
    phones = await unused_mobiles(3)
    made["phones"] += phones
    path = tmp_path / FILE_NAME
    path.write_bytes(messy_csv(phones, tag))
    bjcy = Customer.count().where((Customer.store_id == stores["BJ-CY"]) & (Customer.deleted == False))  # noqa: E712

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport=DESK, locale="zh-CN", accept_downloads=True)
        page = await context.new_page()
        try:
            await page.goto(web.url)
            await page.locator("#loading").wait_for(state="detached", timeout=60_000)
            await page.locator("flt-semantics-placeholder").dispatch_event("click")
            await sign_in(page, "manager.bjcy")
            await page.get_by_text("已同步").first.wait_for(timeout=60_000)
            await tap_until(
                page, page.get_by_role("button", name=re.compile("^导入")).first, page.get_by_text("导入客户或订单")
            )

            # The browser's own file chooser opens from 选择文件; the file goes back to the app.
            async with page.expect_file_chooser(timeout=30_000) as chooser_info:
                await page.get_by_role("button", name="选择文件").click()
            chooser = await chooser_info.value
            await chooser.set_files(str(path))
            await page.get_by_text(f"{FILE_NAME} · 编码 UTF-8 (BOM) · 4 行 · 5 列").wait_for(timeout=30_000)
            await page.get_by_text(f"导入测{tag}甲").first.wait_for(timeout=10_000)  # the sample
            # 会员等级 (membership level), not matched by its name, becomes the customers' tags: its
            # dropdown is the unnamed button on that column's line.
            level = await page.get_by_text("会员等级", exact=True).first.bounding_box()
            for button in await page.get_by_role("button").all():
                box = await button.bounding_box()
                if box and not await button.get_attribute("aria-label") and abs(box["y"] - level["y"]) < 30:
                    await button.click()
                    break
            await page.get_by_role("button", name="标签（逗号分隔）", exact=True).click()
            await page.get_by_role("button", name="标签（逗号分隔）", exact=True).wait_for(state="detached")
            await screenshot(page, "import-mapping")

            before = await bjcy
            await page.get_by_role("button", name="试运行").click()
            await page.get_by_text("试运行结果（没有写入任何数据）").wait_for(timeout=60_000)
            await page.get_by_text("将新建 3 · 将更新 0 · 不变 0 · 将合并 0 · 拒绝 1 · 待确认重复 0").wait_for()
            await page.get_by_text(re.compile("^第 3 行 · 手机或电话")).wait_for()
            assert await bjcy == before
            await screenshot(page, "import-dry-run")

            await page.get_by_role("button", name="正式导入").click()
            await page.get_by_text("导入完成").wait_for(timeout=60_000)
            assert await bjcy == before + 3
            gold = {r["customer_id"] for r in await CustomerTag.select().where(CustomerTag.tag == "金卡")}
            named = await Customer.select(Customer.id, Customer.name).where(Customer.name.like(f"导入测{tag}%"))
            assert {r["name"][-1] for r in named if r["id"] in gold} == {"甲", "丁"}  # the column mapped here
            await screenshot(page, "import-done")

            async with page.expect_download(timeout=30_000) as download_info:
                await page.get_by_role("button", name="下载被拒绝的行").click()
            download = await download_info.value
            assert download.suggested_filename == "会员名单 2026-rejected.csv"
            body = (await download.path()).read_bytes()
            lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
            # 行号, 字段, the reason in English and in Chinese, then the row as it was in the file
            assert body.startswith(b"\xef\xbb\xbf") and len(lines) == 2 and lines[1][4] == f"导入测{tag}丙"
            assert lines[1][3].startswith("手机号应为 11 位")
        finally:
            await context.close()
            await browser.close()
