"""The import screen of the managers' desk against a real server: manager.bjcy picks a messy CSV
(UTF-8 with a BOM, Chinese headers, a blank line, one row whose phone is short), gets the suggested
mapping, maps one more column, saves the mapping as a template, tries a dry run (nothing written:
the store's customers are counted before and after), sees the bad row's reason (in Chinese, or
in English in English), imports for real
(the counts add up to the file's rows) and saves the rejected rows' CSV through the save callback.
A rep has no way in. The customers, jobs and template made here are removed afterwards."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import re
import uuid

import httpx
import pytest
from openpyxl import Workbook

from mobile import desktop
from mobile.ui.screens import DeskScreen
from mobile.ui.shell import Shell
from server.customers.tables import Customer, CustomerIdentity, CustomerPhone, CustomerTag
from server.imports import cleaning
from server.imports.tables import ImportJob, ImportMapping, ImportRejection, MergeCandidate
from tests.flet_tree import change, click, find, has, pick, render, text
from tests.test_app_state import no_device_left, sign_in

FILE_NAME = "会员名单 2026.csv"


async def unused_mobiles(n: int) -> list[str]:
    """Chinese mobile numbers no customer has (random, checked), so every good row is a new customer."""
    found: list[str] = []
    while len(found) < n:
        digits = f"139{random.randrange(10**8):08d}"
        try:
            cleaning.clean_phone(digits)
        except cleaning.Rejected:
            continue  # e.g. a made-up-looking number
        if digits not in found and not await CustomerPhone.exists().where(CustomerPhone.digits == digits):
            found.append(digits)
    return found


def messy_csv(phones: list[str], tag: str) -> bytes:
    """What a shop's Excel gives: a BOM, Chinese headers, spaces and dashes in numbers, Windows line
    ends, a blank line, and row 3 with a phone three digits short."""
    a, b, c = phones
    rows = [
        "客户姓名,手机号码,所在城市,会员等级,顾客备注",
        f"导入测{tag}甲,{a[:3]} {a[3:7]} {a[7:]},北京市,金卡,老客户",
        f"导入测{tag}乙,{b},北京市,银卡,",
        f"导入测{tag}丙,1390000,北京市,,电话少了几位",
        "",
        f"导入测{tag}丁,+86 {c[:3]}-{c[3:7]}-{c[7:]},北京市,金卡,",
    ]
    return "\ufeff".encode() + "\r\n".join(rows).encode() + b"\r\n"


@pytest.fixture
async def made(stores):
    """Everything a test here makes: the template's name, and the phones its customers have."""
    things: dict[str, list[str]] = {"templates": [], "phones": []}
    yield things
    ids = [
        r["customer_id"]
        for r in await CustomerPhone.select(CustomerPhone.customer_id).where(
            CustomerPhone.digits.is_in(things["phones"] or ["-"])
        )
    ]
    jobs = [
        r["id"]
        for r in await ImportJob.select(ImportJob.id).where(
            (ImportJob.store_id == stores["BJ-CY"]) & (ImportJob.file_name == FILE_NAME)
        )
    ]
    if jobs:
        await MergeCandidate.delete().where(MergeCandidate.job_id.is_in(jobs))
        await ImportRejection.delete().where(ImportRejection.job_id.is_in(jobs))
        await ImportJob.delete().where(ImportJob.id.is_in(jobs))
    if ids:
        for table in (CustomerPhone, CustomerTag, CustomerIdentity):
            await table.delete().where(table.customer_id.is_in(ids))
        await Customer.delete().where(Customer.id.is_in(ids))
    if things["templates"]:
        await ImportMapping.delete().where(ImportMapping.name.is_in(things["templates"]))


async def test_a_manager_maps_tries_and_imports_a_messy_file(live_server, tmp_path, stores, made, monkeypatch):
    monkeypatch.setattr(desktop, "IMPORT_POLL_SECONDS", 0.2)
    tag = uuid.uuid4().hex[:4]
    phones = await unused_mobiles(3)
    made["phones"] += phones
    data = messy_csv(phones, tag)
    manager = (await sign_in(live_server.url, tmp_path / "manager", "manager.bjcy")).state
    saved: dict[str, bytes] = {}

    async def save(name: str, body: bytes) -> None:
        saved[name] = body

    async def choose_file() -> tuple[str, bytes]:
        return FILE_NAME, data

    manager._save, manager._pick = save, choose_file
    bjcy = Customer.count().where((Customer.store_id == stores["BJ-CY"]) & (Customer.deleted == False))  # noqa: E712
    try:
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        store = find(tree, key="import-store")
        assert store.value == "BJ-CY" and store.disabled  # a store manager imports into their own store
        assert has(tree, key="import-pick") and not has(tree, key="import-dry-run")

        # 选择文件: the server reads it and suggests a field for each column.
        await click(find(tree, key="import-pick"))
        assert manager.import_error is None, manager.import_error
        preview = manager.import_preview
        assert preview["encoding"] == "utf-8-sig" and preview["rows"] == 4
        assert preview["headers"] == ["客户姓名", "手机号码", "所在城市", "会员等级", "顾客备注"]
        assert manager.import_columns == {
            "客户姓名": "name",
            "手机号码": "phone",
            "所在城市": "city",
            "会员等级": None,
            "顾客备注": "notes",
        }
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        assert f"{FILE_NAME} · 编码 UTF-8 (BOM) · 4 行 · 5 列" in text(tree)
        assert find(tree, key="map-0").value == "name" and find(tree, key="map-3").value == ""
        assert has(tree, key="import-sample") and f"导入测{tag}甲" in text(tree)
        assert find(tree, key="import-run").disabled  # no dry run yet

        # The membership level becomes a tag; without a name column the screen says so itself.
        await pick(find(tree, key="map-3"), "tags")
        assert manager.import_columns["会员等级"] == "tags"
        await pick(find(tree, key="map-0"), "")
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        assert find(tree, key="import-problem").value == "还没有列对应到“客户姓名”"
        assert find(tree, key="import-dry-run").disabled
        await pick(find(tree, key="map-0"), "name")
        await pick(find(tree, key="map-1"), "city")
        assert manager.import_problem() == "有两列都对应到“城市”"
        await pick(find(tree, key="map-1"), "phone")
        assert manager.import_problem() is None

        # 保存为模板; the server's own refusal is what the screen shows.
        await change(find(tree, key="import-template-name"), "x" * 65)
        await click(find(tree, key="import-save-template"))
        assert manager.import_error == "服务器拒绝：a template name has 1 to 64 characters"
        name = f"app-test-{tag}"
        made["templates"].append(name)
        await change(find(tree, key="import-template-name"), name)
        await click(find(tree, key="import-save-template"))
        assert manager.toast == f"模板已保存：{name}" and manager.import_error is None
        row = await ImportMapping.select().where(ImportMapping.name == name).first()
        assert row is not None and row["kind"] == "customers" and row["source"] == "excel"
        columns = row["columns"] if isinstance(row["columns"], dict) else json.loads(row["columns"])
        assert columns == manager.import_columns
        manager.set_import_column("顾客备注", None)
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        await pick(find(tree, key="import-template"), name)  # the template puts the mapping back
        assert manager.import_columns["顾客备注"] == "notes" and manager.toast == f"已套用模板：{name}"
        assert manager.import_error is None

        # 试运行: what would happen, and nothing written.
        before = await bjcy
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        await click(find(tree, key="import-dry-run"))
        job = manager.import_job
        assert job["dry_run"] and job["status"] == "done", job
        counts = {k: job[k] for k in ("created", "updated", "unchanged", "merged", "rejected")}
        assert counts == {"created": 3, "updated": 0, "unchanged": 0, "merged": 0, "rejected": 1}
        assert await bjcy == before
        assert await Customer.count().where(Customer.name.like(f"导入测{tag}%")) == 0
        (rejection,) = manager.import_rejections
        assert rejection["row_number"] == 3 and rejection["field"] == "phone"
        assert rejection["raw"]["客户姓名"] == f"导入测{tag}丙" and "11 digits" in rejection["reason"]
        assert rejection["reason_zh"] == "手机号应为 11 位，这里是 7 位：'1390000'"  # the server's translation
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        assert find(tree, key="import-status").value == "试运行结果（没有写入任何数据）"
        assert find(tree, key="import-result").value == (
            "将新建 3 · 将更新 0 · 不变 0 · 将合并 0 · 拒绝 1 · 待确认重复 0"
        )
        assert "第 3 行 · 手机或电话（主号码）：手机号应为 11 位，这里是 7 位：'1390000'" in text(tree)
        assert rejection["reason"] not in text(tree)  # in zh-CN the reason is in Chinese …
        del rejection["reason_zh"]  # … the app's own translation when the server sends none
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        assert "第 3 行 · 手机或电话（主号码）：手机号应为 11 位，这里是 7 位：'1390000'" in text(tree)
        manager.set_locale("en")  # and in English as the server wrote it
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        assert f"Row 3 · Phone, mobile or landline (the main one): {rejection['reason']}" in text(tree)
        assert "手机号应为" not in text(tree)
        manager.set_locale("zh")
        assert has(tree, key="rejection-3") and not has(tree, key="import-steps")
        manager.set_wide(1440)  # at a desk: the steps and results beside the columns, in sight
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        assert has(find(tree, key="import-steps"), key="rejection-3")
        manager.set_wide(400)

        # A changed mapping needs a new dry run.
        manager.set_import_column("顾客备注", None)
        assert not manager.import_ready()
        await manager.start_import(dry_run=False)
        assert manager.import_error == "请先试运行，看过结果再正式导入" and manager.import_job["dry_run"]
        manager.set_import_column("顾客备注", "notes")
        assert manager.import_ready()

        # 正式导入: a progress bar while it runs (seen as the screen asks for progress), then the
        # counts (they add up to the file's rows).
        seen: list[tuple[str, float]] = []
        api = manager._api

        async def watching(method: str, path: str, **options):
            if method == "GET" and re.fullmatch(r"/api/imports/[0-9a-f-]{36}", path):  # the job's progress
                running = render(lambda: Shell(manager, DeskScreen(manager)))
                seen.append((find(running, key="import-status").value, find(running, key="import-progress").value))
            return await api(method, path, **options)

        manager._api = watching
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        await click(find(tree, key="import-run"))
        manager._api = api
        assert seen and seen[0] == ("正在导入 · 0/4 行", 0.0)
        job = manager.import_job
        assert not job["dry_run"] and job["status"] == "done", job
        assert job["created"] == 3 and job["rejected"] == 1
        assert sum(job[k] for k in ("created", "updated", "unchanged", "merged", "rejected")) == preview["rows"]
        assert job["columns"]["会员等级"] == "tags"
        assert await bjcy == before + 3
        gold = await CustomerTag.select(CustomerTag.customer_id).where(CustomerTag.tag == "金卡")
        made_here = await Customer.select(Customer.id, Customer.name).where(Customer.name.like(f"导入测{tag}%"))
        assert {r["name"] for r in made_here} == {f"导入测{tag}{n}" for n in "甲乙丁"}
        assert {r["id"] for r in made_here if r["name"][-1] in "甲丁"} <= {r["customer_id"] for r in gold}
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        assert find(tree, key="import-status").value == "导入完成"
        assert find(tree, key="import-run").disabled  # one import per dry run
        assert has(tree, key=f"job-{job['id']}")  # and the recent imports list it

        # 下载被拒绝的行: saved as the report exports are, the bad row in it as it was in the file.
        await click(find(tree, key="import-download-rejected"))
        assert list(saved) == ["会员名单 2026-rejected.csv"] and manager.toast == "已保存 会员名单 2026-rejected.csv"
        body = saved["会员名单 2026-rejected.csv"]
        assert body.startswith(b"\xef\xbb\xbf")
        lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert lines[0][:4] == ["行号 row", "字段 field", "原因 reason", "原因（中文）"]
        assert len(lines) == 2 and lines[1][:2] == ["3", "phone"] and "11 digits" in lines[1][2]
        assert lines[1][3] == "手机号应为 11 位，这里是 7 位：'1390000'"
        assert lines[1][4:] == [f"导入测{tag}丙", "1390000", "北京市", "", "电话少了几位"]
    finally:
        await manager.close()
        no_device_left(tmp_path / "manager")


async def test_a_file_the_app_or_the_server_cannot_take(live_server, tmp_path, made):
    """A wrong type or an empty file is refused on the phone; an order file under the customers'
    fields, and a file with no header row, by the server — in its words."""
    manager = (await sign_in(live_server.url, tmp_path / "manager", "manager.bjcy")).state
    try:
        await manager.open_import_file("客户.pdf", b"%PDF-1.7")
        assert manager.import_error == "只能导入 CSV 或 XLSX 文件：客户.pdf" and manager.import_preview is None
        await manager.open_import_file("空.csv", b"")
        assert manager.import_error == "文件是空的：空.csv"
        await manager.open_import_file("空行.csv", b"\n\n")
        assert manager.import_error == "服务器拒绝：the file has no header row (the first row names the columns)"
        await manager.open_import_file("表.xlsx", b"PK\x03\x04 not really a workbook")
        assert manager.import_error.startswith("服务器拒绝：not a readable XLSX workbook")

        book = Workbook()
        book.active.append(["姓名", "手机", "生日"])
        book.active.append(["表格客户", 13931720864, dt.datetime(1990, 5, 1)])  # a phone typed as a number
        sheet = io.BytesIO()
        book.save(sheet)
        await manager.open_import_file("/home/店长/下载/会员.xlsx", sheet.getvalue())
        assert manager.import_error is None and manager.import_file == "会员.xlsx"
        assert manager.import_preview["encoding"] == "xlsx" and manager.import_preview["rows"] == 1
        assert manager.import_preview["sample"] == [["表格客户", "13931720864", "1990-05-01 00:00:00"]]
        assert manager.import_columns == {"姓名": "name", "手机": "phone", "生日": "birthday"}
        tree = render(lambda: Shell(manager, DeskScreen(manager)))
        assert "会员.xlsx · 编码 Excel XLSX · 1 行 · 3 列" in text(tree)

        orders = "订单号,下单时间,手机,金额\nSO-9,2026-03-01,13931720864,99\n".encode()
        await manager.open_import_file("订单.csv", orders)
        assert manager.import_problem() == "还没有列对应到“客户姓名”"  # read as a customer file
        await manager.set_import_kind("orders")  # read again, with the order fields
        assert manager.import_columns["订单号"] == "order_ref" and manager.import_columns["金额"] == "amount"
        assert manager.import_problem() is None
        manager.set_import_column("金额", None)
        assert manager.import_problem() == "还没有列对应到订单金额、商品小计或单价"
        await manager.start_import(dry_run=True)  # refused here, before the server is asked
        assert manager.import_error == "还没有列对应到订单金额、商品小计或单价" and manager.import_job is None
        manager.set_locale("en")
        assert manager.import_problem() == "No column is mapped to the order total, a line total or a unit price"
    finally:
        await manager.close()
        no_device_left(tmp_path / "manager")


async def test_a_rep_cannot_import(live_server, tmp_path):
    rep = (await sign_in(live_server.url, tmp_path / "rep")).state
    picked: list[bool] = []

    async def choose_file() -> tuple[str, bytes]:
        picked.append(True)
        return FILE_NAME, messy_csv(["13900000001", "13900000002", "13900000003"], "x")

    rep._pick = choose_file
    try:
        tree = render(lambda: Shell(rep, DeskScreen(rep)))
        assert "导入" not in [d.label for d in find(tree, key="nav").destinations]
        await rep.pick_import_file()
        await rep.open_import_file(*await choose_file())
        picked.clear()
        await rep.start_import(dry_run=True)
        assert picked == [] and rep.import_preview is None and rep.import_job is None
        with pytest.raises(httpx.HTTPStatusError) as refused:  # and the server would not have it
            await rep._api("POST", "/api/imports/preview", params={"file_name": FILE_NAME}, content=b"a,b\n1,2\n")
        assert refused.value.response.status_code == 403
    finally:
        await rep.close()
        no_device_left(tmp_path / "rep")
