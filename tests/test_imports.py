"""Customer imports on messy files written here: a UTF-8-with-BOM CSV and the same people again as a
GBK CSV, an XLSX with numbers typed as numbers; full-width digits, spaced names, duplicate people
with different phones, landlines and Hong Kong numbers, bad rows. Every input row is accounted for
(created + updated + unchanged + merged + rejected = rows), rejected rows come back as a file with
their reasons, a dry run changes nothing, a second import of the same people changes nothing, a run
that stops resumes where it stopped, and a row that proves two customers are one person merges
them (reversibly). Each test imports into its own store."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal

import pytest

from server.customers.tables import Customer, CustomerIdentity, CustomerPhone, CustomerTag
from server.imports import merging, service
from server.imports.tables import CustomerAlias, CustomerMerge, ImportJob, ImportRejection, MergeCandidate
from server.orders.tables import Order, OrderLine
from shared.import_reasons import zh
from tests.test_rules import Shop, World
from tests.test_rules import world as rules_world  # noqa: F401 — the fixture, used through `world`

HEADER = ["姓名", "手机号", "备用电话", "邮箱", "地址", "会员号", "标签"]
ROWS = [
    ["张晓明", "199 3172 5864", "", "xiaoming.zhang@qq.com", "北京市朝阳区建国路88号", "M-0001", "VIP"],  # created
    ["张晓明", "１９９３１７２５８６４", "", "", "", "", ""],  # the same number in full-width: unchanged
    ["张 晓明", "19987650000", "", "xiaoming.zhang@qq.com", "", "", "沙发"],  # same e-mail, a new phone: updated
    ["李四", "无", "", "", "", "", ""],  # rejected: no phone
    ["测试", "19911112222", "", "", "", "", ""],  # rejected: a test name
    ["王五", "19922223333", "", "wangwu@", "", "", ""],  # rejected: bad e-mail
    ["赵六", "010-6512 3456", "", "", "上海浦东新区世纪大道100号", "", ""],  # created, a Beijing landline
    ["陈七", "+852 9123 4567", "", "", "", "", ""],  # created, Hong Kong
    ["张晓明", "19955556666", "", "", "", "M-0001", ""],  # the same member id: updated
    ["", "19933334444", "", "", "", "", ""],  # rejected: no name
]
SURNAMES, GIVEN1, GIVEN2 = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐",
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉",
    "兰梅红云飞鹏宇辉婷雪琳健斌浩凯俊波峰晨阳帆欣怡然博",
)
NAMES = [s + a + b for s, a, b in zip(SURNAMES, GIVEN1, GIVEN2, strict=True)]
EXPECTED = {"created": 3, "updated": 2, "unchanged": 1, "merged": 0, "rejected": 4}


@pytest.fixture(scope="module")
async def world(rules_world):  # noqa: F811
    yield rules_world
    ids = rules_world.store_ids
    if ids:
        jobs = [r["id"] for r in await ImportJob.select(ImportJob.id).where(ImportJob.store_id.is_in(ids))]
        if jobs:
            await ImportRejection.delete().where(ImportRejection.job_id.is_in(jobs))
            await ImportJob.delete().where(ImportJob.id.is_in(jobs))
        await MergeCandidate.delete().where(MergeCandidate.store_id.is_in(ids))
        await CustomerMerge.delete().where(CustomerMerge.store_id.is_in(ids))
        await CustomerAlias.delete().where(CustomerAlias.store_id.is_in(ids))
        for table in (OrderLine, Order, CustomerPhone, CustomerTag, CustomerIdentity):
            await table.delete().where(table.store_id.is_in(ids))


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])
    return out.getvalue().encode(encoding)


async def code_of(shop: Shop) -> str:
    return (await service.ImportJob.raw("SELECT code FROM stores WHERE id = {}", shop.id))[0]["code"]


async def snapshot(shop: Shop) -> dict:
    out = {}
    for table in ("customers", "customer_phones", "customer_identities", "customer_tags"):
        rows = await ImportJob.raw(f"SELECT * FROM {table} WHERE store_id = {{}} ORDER BY id", shop.id)
        out[table] = rows
    return out


def counts(job: dict) -> dict:
    return {k: job[k] for k in EXPECTED}


async def test_a_messy_csv_accounts_for_every_row_and_a_second_import_changes_nothing(world: World):
    shop = await world.shop()
    code = await code_of(shop)
    data = csv_bytes(ROWS, "utf-8-sig")

    dry, _ = await service.import_bytes(data, "客户.csv", store_code=code, dry_run=True)
    assert counts(dry) == EXPECTED and dry["encoding"].replace("_", "-").startswith("utf-8")
    assert await Customer.count().where(Customer.store_id == shop.id) == 0  # a dry run changes nothing

    job, _ = await service.import_bytes(data, "客户.csv", store_code=code)
    assert counts(job) == EXPECTED and sum(counts(job).values()) == len(ROWS)
    assert job["status"] == "done" and job["total_rows"] == len(ROWS)
    people = {r["name"]: r for r in await Customer.select().where(Customer.store_id == shop.id)}
    assert sorted(people) == ["张晓明", "赵六", "陈七"]
    zhang = people["张晓明"]
    assert (zhang["email"], zhang["province"], zhang["city"], zhang["district"], zhang["address"]) == (
        "xiaoming.zhang@qq.com",
        "北京市",
        "北京市",
        "朝阳区",
        "建国路88号",
    )
    phones = {r["digits"]: r for r in await CustomerPhone.select().where(CustomerPhone.store_id == shop.id)}
    assert sorted(p["digits"] for p in phones.values() if p["customer_id"] == zhang["id"]) == [
        "19931725864",
        "19955556666",
        "19987650000",
    ]
    assert phones["1065123456"]["kind"] == "landline" and phones["1065123456"]["number"] == "+861065123456"
    assert phones["91234567"]["number"] == "+85291234567"
    assert people["赵六"]["district"] == "浦东新区"
    tags = await CustomerTag.select(CustomerTag.tag).where(CustomerTag.customer_id == zhang["id"])
    assert sorted(t["tag"] for t in tags) == ["VIP", "沙发"]
    [member] = await CustomerIdentity.select().where(CustomerIdentity.customer_id == zhang["id"])
    assert (member["kind"], member["value"]) == ("pos_member", "M-0001")

    rejected = list(csv.reader(io.StringIO((await service.rejections_csv(job["id"])).lstrip("\ufeff"))))
    assert rejected[0][:4] == ["行号 row", "字段 field", "原因 reason", "原因（中文）"] and rejected[0][4:] == HEADER
    by_row = {int(r[0]): r for r in rejected[1:]}
    assert sorted(by_row) == [4, 5, 6, 10]
    assert by_row[4][1] == "phone" and by_row[4][4:] == ROWS[3]  # the row as it was in the file
    assert by_row[5][1] == "name" and by_row[6][1] == "email" and by_row[10][1] == "name"
    assert all(r[2] for r in by_row.values())  # each with its reason
    assert all(r[3] == zh(r[2]) != r[2] for r in by_row.values())  # and the reason in Chinese
    assert by_row[6][3].startswith("邮箱")

    before = await snapshot(shop)
    again, _ = await service.import_bytes(csv_bytes(ROWS, "gb18030"), "客户-gbk.csv", store_code=code)
    assert again["encoding"] in ("gb18030", "gbk")
    assert counts(again) == {"created": 0, "updated": 0, "unchanged": 6, "merged": 0, "rejected": 4}
    assert await snapshot(shop) == before  # nothing changed, not even a version


async def test_an_xlsx_with_numbers_typed_as_numbers(world: World):
    import openpyxl

    shop = await world.shop()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Name", "Mobile", "E-mail", "City"])
    sheet.append(["刘洋", 19877776666, "liuyang@163.com", "杭州"])
    sheet.append(["Alex Wong", "+886 937 518 264", None, None])
    sheet.append(["刘洋", 19877776666.0, None, None])
    out = io.BytesIO()
    book.save(out)
    job, _ = await service.import_bytes(out.getvalue(), "customers.xlsx", store_code=await code_of(shop))
    assert counts(job) == {"created": 2, "updated": 0, "unchanged": 1, "merged": 0, "rejected": 0}
    numbers = sorted(r["number"] for r in await CustomerPhone.select().where(CustomerPhone.store_id == shop.id))
    assert numbers == ["+8619877776666", "+886937518264"]


async def test_a_run_that_stops_resumes_where_it_stopped(world: World, monkeypatch):
    shop = await world.shop()
    code = await code_of(shop)
    rows = [[NAMES[n], f"1993{n:03d}{(n * 7919 + 1234) % 10000:04d}", "", "", "", "", ""] for n in range(25)]
    data = csv_bytes(rows, "utf-8")
    monkeypatch.setattr(service, "BATCH", 10)
    calls = []

    def crash_after_first(done, total, c):
        calls.append(done)
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C after the first batch committed

    with pytest.raises(KeyboardInterrupt):
        await service.import_bytes(data, "big.csv", store_code=code, progress=crash_after_first)
    [stopped] = await ImportJob.select().where(ImportJob.store_id == shop.id)
    assert (stopped["status"], stopped["next_row"], stopped["created"]) == ("failed", 10, 10)
    assert await Customer.count().where(Customer.store_id == shop.id) == 10
    await service.resume(stopped["id"], data, "big.csv")
    done = await service.job(stopped["id"])
    assert counts(done) == {"created": 25, "updated": 0, "unchanged": 0, "merged": 0, "rejected": 0}
    assert await Customer.count().where(Customer.store_id == shop.id) == 25  # nothing twice
    with pytest.raises(service.Invalid):
        await service.resume(stopped["id"], data, "big.csv")  # finished
    with pytest.raises(service.Invalid):
        await service.resume(stopped["id"], data + b"x", "big.csv")


async def test_a_row_that_proves_two_customers_are_one_merges_them_reversibly(world: World):
    shop = await world.shop()
    code = await code_of(shop)
    unionid = f"oUn-{uuid.uuid4().hex[:12]}"
    first, _ = await service.import_bytes(
        b"\xef\xbb\xbf" + "姓名,手机,微信unionid\n周航,19944445555,\n周航,,%s\n".encode() % unionid.encode(),
        "two.csv",
        store_code=code,
    )
    assert first["created"] == 2, first
    both = {r["id"] for r in await Customer.select(Customer.id).where(Customer.store_id == shop.id)}
    job, _ = await service.import_bytes(
        "姓名,手机,微信unionid\n周航,19944445555,%s\n".replace("%s", unionid).encode(), "link.csv", store_code=code
    )
    assert counts(job) == {"created": 0, "updated": 0, "unchanged": 0, "merged": 1, "rejected": 0}
    live = await Customer.select(Customer.id).where((Customer.store_id == shop.id) & Customer.deleted.eq(False))
    assert len(live) == 1
    [merge] = await CustomerMerge.select().where(CustomerMerge.store_id == shop.id)
    assert merge["decided_by"] == f"import:{job['id']}" and {merge["survivor_id"], merge["merged_id"]} == both
    await merging.undo(merge["id"], by="user:test")
    assert await Customer.count().where((Customer.store_id == shop.id) & Customer.deleted.eq(False)) == 2


async def test_bad_mappings_and_files_are_refused_with_the_reason(world: World):
    shop = await world.shop()
    code = await code_of(shop)
    for data, name, says in (
        (b"", "empty.csv", "header"),
        ("备注\n你好\n".encode(), "nomap.csv", "name"),
        ("姓名\n王芳\n".encode(), "nophone.csv", "phone"),
        (b"PK\x03\x04not really", "broken.xlsx", "XLSX"),
    ):
        with pytest.raises(service.Invalid, match=says):
            await service.import_bytes(data, name, store_code=code)
    with pytest.raises(service.Invalid, match="store"):
        await service.import_bytes("姓名,手机\n王芳,19900001111\n".encode(), "x.csv", store_code="NO-SUCH")
    with pytest.raises(service.NotFound):
        await service.import_bytes("姓名,手机\n王芳,19900001111\n".encode(), "x.csv", mapping="no-such-template")
    assert await Customer.count().where(Customer.store_id == shop.id) == 0


ORDER_HEADER = ["订单号", "下单时间", "手机号", "姓名", "渠道", "支付方式", "商品名称", "SKU", "品类", "数量", "单价"]
ORDER_ROWS = [
    ["SO-1001", "2026-11-20 14:30", "197 3172 5864", "张晓明", "门店", "微信", "布艺沙发", "", "沙发", "1", "¥3,999"],
    ["SO-1001", "2026-11-20 14:30", "19731725864", "张晓明", "门店", "微信", "靠垫", "", "靠垫", "2", "99"],
    ["WEB-77", "2026/11/21 09:05", "19811112233", "钱多多", "天猫", "支付宝", "乳胶床垫", "", "床垫", "1", "2,599.00"],
    ["WEB-78", "2026-11-21", "19822223344", "", "网店", "支付宝", "枕头", "", "枕头", "1", "199"],  # nobody has it
    ["SO-1002", "明天", "19731725864", "张晓明", "门店", "现金", "床单", "", "床单", "1", "299"],  # bad date
    ["SO-1003", "2026-11-22 10:00", "19731725864", "张晓明", "门店", "比特币", "床单", "", "床单", "1", "299"],
]


async def test_an_order_file_makes_orders_with_lines_on_the_right_cards_once(world: World):
    shop = await world.shop()
    code = await code_of(shop)
    people, _ = await service.import_bytes(
        csv_bytes([["张晓明", "19731725864", "", "", "", "", ""]], "utf-8-sig"), "客户.csv", store_code=code
    )
    zhang = (await Customer.select(Customer.id).where(
        (Customer.store_id == shop.id) & (Customer.name == "张晓明")).first())["id"]  # fmt: skip
    out = io.StringIO()
    csv.writer(out).writerows([ORDER_HEADER, *ORDER_ROWS])
    data = out.getvalue().encode("utf-8")

    job, _ = await service.import_bytes(data, "订单.csv", kind="orders", store_code=code, source="pos")
    assert counts(job) == {"created": 3, "updated": 0, "unchanged": 0, "merged": 0, "rejected": 3}
    orders = {r["external_ref"]: r for r in await Order.select().where(Order.store_id == shop.id)}
    assert sorted(orders) == ["pos:SO-1001", "pos:WEB-77"]
    sofa = orders["pos:SO-1001"]
    assert (
        sofa["customer_id"] == zhang and sofa["amount"] == Decimal("4197.00") and sofa["payment_method"] == "wechat_pay"
    )
    lines = await OrderLine.select().where(OrderLine.order_id == sofa["id"]).order_by(OrderLine.amount)
    assert [(r["product_name"], r["quantity"], r["amount"]) for r in lines] == [
        ("靠垫", 2, Decimal("198.00")),
        ("布艺沙发", 1, Decimal("3999.00")),
    ]
    web = orders["pos:WEB-77"]
    assert web["channel"] == "online" and web["payment_method"] == "alipay"
    qian = await Customer.select().where(Customer.id == web["customer_id"]).first()
    assert qian["name"] == "钱多多"  # a new customer, made from the order
    rejected = {r["row_number"]: r["field"] for r in await ImportRejection.select().where(
        ImportRejection.job_id == job["id"])}  # fmt: skip
    assert rejected == {4: "name", 5: "ordered_at", 6: "payment"}

    again, _ = await service.import_bytes(data, "订单.csv", kind="orders", store_code=code, source="pos")
    assert counts(again) == {"created": 0, "updated": 0, "unchanged": 3, "merged": 0, "rejected": 3}
    assert await Order.count().where(Order.store_id == shop.id) == 2
    assert await OrderLine.count().where(OrderLine.store_id == shop.id) == 3
    assert people["created"] == 1


async def test_a_customer_known_by_a_placeholder_takes_the_real_name_and_is_not_a_conflicting_one(world: World):
    shop = await world.shop()
    code = await code_of(shop)
    header = "姓名,手机,会员号\n"
    first, _ = await service.import_bytes(
        (header + "周航,19944440001,M-PH-77\n孙丽,19944440003,\n").encode(), "a.csv", store_code=code
    )
    assert first["created"] == 2
    # As an order file (or a till) leaves them: known by a placeholder only.
    await Customer.update({Customer.name: "待补充姓名"}).where(Customer.store_id == shop.id)
    [by_member] = await CustomerIdentity.select(CustomerIdentity.customer_id).where(CustomerIdentity.value == "M-PH-77")
    job, _ = await service.import_bytes(
        (header + "周杰,19944440002,M-PH-77\n李雷,19944440003,\n").encode(), "b.csv", store_code=code
    )
    # The member id is the same person: the row fills the name (and adds its phone).
    named = await Customer.select(Customer.name).where(Customer.id == by_member["customer_id"]).first()
    assert named["name"] == "周杰"
    # A shared phone and a placeholder: not "another name" (which would call them two people and
    # move on): a new customer, and the pair goes to a person to decide.
    assert counts(job) == {"created": 1, "updated": 1, "unchanged": 0, "merged": 0, "rejected": 0}
    assert job["review"] == 1
    [pair] = await MergeCandidate.select().where(
        (MergeCandidate.store_id == shop.id) & (MergeCandidate.job_id == job["id"])
    )
    names = {
        r["name"]
        for r in await Customer.select(Customer.name).where(Customer.id.is_in([pair["customer_a"], pair["customer_b"]]))
    }
    assert names == {"待补充姓名", "李雷"}


async def test_a_row_that_joins_a_customer_and_resembles_another_queues_that_pair_once(world: World):
    # 周航 (a phone, nothing else) and a namesake in the next building's flat are two customers
    # nobody has compared. A row with the first one's phone and an address one room from the
    # namesake's joins the first and, resembling the namesake, puts the two to a person.
    shop = await world.shop()
    code = await code_of(shop)
    home = "上海市徐汇区枫丹路33号望江里3号楼1单元"
    header = "姓名,手机,地址,标签\n"
    first, _ = await service.import_bytes(
        (header + f"周航,19944446601,,\n周航,19944446602,{home}1203室,\n").encode(), "a.csv", store_code=code
    )
    assert first["created"] == 2 and first["review"] == 0
    people = {
        r["id"]: r for r in await Customer.select(Customer.id, Customer.address).where(Customer.store_id == shop.id)
    }
    [plain] = [i for i, r in people.items() if not r["address"]]
    [namesake] = [i for i, r in people.items() if r["address"]]
    row = f"周航,19944446601,{home}502室,\n"
    joined, _ = await service.import_bytes((header + row).encode(), "b.csv", store_code=code)
    assert counts(joined)["updated"] == 1 and joined["review"] == 1
    [pair] = await MergeCandidate.select().where(MergeCandidate.store_id == shop.id)
    assert {pair["customer_a"], pair["customer_b"]} == {plain, namesake} and pair["status"] == "open"
    # The same file again brings nothing: nothing is queued (and the job says so).
    again, _ = await service.import_bytes((header + row).encode(), "b.csv", store_code=code)
    assert counts(again)["unchanged"] == 1 and again["review"] == 0
    # A pair a person has decided is not asked again, whichever way round it was written.
    await MergeCandidate.update({MergeCandidate.status: "distinct"}).where(MergeCandidate.id == pair["id"])
    tagged, _ = await service.import_bytes(
        (header + f"周航,19944446601,{home}502室,VIP\n").encode(), "c.csv", store_code=code
    )
    assert counts(tagged)["updated"] == 1 and tagged["review"] == 0
    assert await MergeCandidate.count().where(MergeCandidate.store_id == shop.id) == 1
