"""The import endpoints: a file previewed (headers, suggested mapping, sample), a mapping template
saved and used, an import started and polled to the end, its rejected rows downloaded; the review
queue decided; and the permissions — a rep may not import (403), a store manager only into their
own store (another store's code answers 404). Imports go into this module's own store."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid

import pytest

from server.customers.tables import Customer, CustomerIdentity, CustomerPhone, CustomerTag
from server.imports.tables import CustomerMerge, ImportJob, ImportMapping, ImportRejection, MergeCandidate
from shared.import_reasons import zh
from tests.test_rules import World
from tests.test_rules import world as rules_world  # noqa: F401 — the fixture, used through `world`

FILE = (
    "客户姓名,联系电话,电子邮件,备注\n林晓,139 3172 0864,linxiao@qq.com,老客户\n周航,无,,\n林 晓,13931720864,,\n"
).encode("gb18030")


@pytest.fixture(scope="module")
async def world(rules_world):  # noqa: F811
    yield rules_world
    ids = rules_world.store_ids
    await ImportMapping.delete().where(ImportMapping.name.like("api-test-%"))
    if ids:
        jobs = [r["id"] for r in await ImportJob.select(ImportJob.id).where(ImportJob.store_id.is_in(ids))]
        if jobs:
            await ImportRejection.delete().where(ImportRejection.job_id.is_in(jobs))
            await ImportJob.delete().where(ImportJob.id.is_in(jobs))
        await MergeCandidate.delete().where(MergeCandidate.store_id.is_in(ids))
        await CustomerMerge.delete().where(CustomerMerge.store_id.is_in(ids))
        for table in (CustomerPhone, CustomerTag, CustomerIdentity):
            await table.delete().where(table.store_id.is_in(ids))


async def until_done(client, headers, job_id: str) -> dict:
    for _ in range(1200):  # up to a minute: CI runs the browser tests beside this on two cores
        job = (await client.get(f"/api/imports/{job_id}", headers=headers)).json()
        if job["status"] != "running":
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"import {job_id} still running: {job}")


async def test_preview_mapping_import_and_rejected_rows(client, login, world: World):
    shop = await world.shop()
    code = (await ImportJob.raw("SELECT code FROM stores WHERE id = {}", shop.id))[0]["code"]
    admin, rep, manager = await login("admin"), await login("rep.bjcy"), await login("manager.bjcy")
    body = {"content": FILE}

    assert (await client.post("/api/imports/preview?file_name=a.csv", headers=rep, **body)).status_code == 403
    preview = (await client.post("/api/imports/preview?file_name=a.csv", headers=admin, **body)).json()
    assert preview["headers"] == ["客户姓名", "联系电话", "电子邮件", "备注"] and preview["encoding"] == "gb18030"
    assert preview["suggested"] == {"客户姓名": "name", "联系电话": "phone", "电子邮件": "email", "备注": "notes"}
    assert preview["rows"] == 3 and preview["sample"][0][0] == "林晓"

    name = f"api-test-{uuid.uuid4().hex[:6]}"
    bad = await client.put(
        f"/api/imports/mappings/{name}",
        headers=admin,
        json={"kind": "customers", "columns": {"客户姓名": "name", "联系电话": "fax"}},
    )
    assert bad.status_code in (400, 422) and "fax" in bad.text
    good = await client.put(
        f"/api/imports/mappings/{name}",
        headers=admin,
        json={
            "kind": "customers",
            "source": "excel",
            "columns": {"客户姓名": "name", "联系电话": "phone", "电子邮件": "email"},
        },
    )
    assert good.status_code == 200, good.text

    far = await client.post(f"/api/imports/?file_name=a.csv&store={code}", headers=manager, **body)
    assert far.status_code == 404  # not the manager's store
    started = await client.post(f"/api/imports/?file_name=a.csv&store={code}&mapping={name}", headers=admin, **body)
    assert started.status_code == 202, started.text
    job = await until_done(client, admin, started.json()["id"])
    assert job["status"] == "done" and job["mapping_name"] == name
    assert {k: job[k] for k in ("created", "updated", "unchanged", "merged", "rejected")} == {
        "created": 1,
        "updated": 0,
        "unchanged": 1,
        "merged": 0,
        "rejected": 1,
    }
    assert await Customer.count().where(Customer.store_id == shop.id) == 1
    assert (await client.get(f"/api/imports/{job['id']}", headers=manager)).status_code == 404
    answer = await client.get(f"/api/imports/{job['id']}/rejected.csv", headers=admin)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["行号 row", "字段 field", "原因 reason", "原因（中文）"]
    assert rows[1][:2] == ["2", "phone"] and rows[1][4:6] == ["周航", "无"]
    assert rows[1][3] == zh(rows[1][2]) and rows[1][3].startswith("电话为空")  # the reason in Chinese


async def test_the_review_queue_and_undo(client, login, world: World):
    admin = await login("admin")
    listed = await client.get("/api/merges/candidates", headers=admin)
    assert listed.status_code == 200 and isinstance(listed.json(), list)
    assert (await client.get("/api/merges/candidates", headers=await login("rep.bjcy"))).status_code == 403
    missing = uuid.uuid4()
    assert (await client.post(f"/api/merges/{missing}/undo", headers=admin)).status_code == 404
    answer = await client.post(f"/api/merges/candidates/{missing}", headers=admin, json={"decision": "merge"})
    assert answer.status_code == 404
    answer = await client.post(f"/api/merges/candidates/{missing}", headers=admin, json={"decision": "maybe"})
    assert answer.status_code in (400, 422)


ORDERS = (
    "订单编号,下单日期,客户,手机,商品,金额,支付方式\n"
    "SO-1,2026-03-01 10:00,林晓,13931720864,羊绒围巾,399,微信\n"
    "SO-2,2026-03-02 11:30,周航,13931720865,真丝衬衫,,现金\n"
).encode()


async def test_an_ad_hoc_mapping_the_kind_and_the_first_rejected_rows(client, login, world: World):
    """``columns`` (JSON header → field) instead of a template, ``kind=orders``, and the rejected
    rows as JSON; every bad parameter a 4xx that names it."""
    shop = await world.shop()
    code = (await ImportJob.raw("SELECT code FROM stores WHERE id = {}", shop.id))[0]["code"]
    admin, rep, manager = await login("admin"), await login("rep.bjcy"), await login("manager.bjcy")
    body = {"content": FILE}
    start = {"file_name": "a.csv", "store": code, "dry_run": "true"}

    columns = json.dumps(
        {"客户姓名": "name", "联系电话": "phone", "电子邮件": None, "备注": "tags"}, ensure_ascii=False
    )
    started = await client.post("/api/imports/", params={**start, "columns": columns}, headers=admin, **body)
    assert started.status_code == 202, started.text
    assert started.json()["columns"] == {"客户姓名": "name", "联系电话": "phone", "电子邮件": None, "备注": "tags"}
    job = await until_done(client, admin, started.json()["id"])
    assert job["status"] == "done" and job["dry_run"] and job["kind"] == "customers" and job["mapping_name"] == ""
    assert job["created"] + job["updated"] + job["unchanged"] + job["merged"] + job["rejected"] == 3
    assert await Customer.count().where(Customer.store_id == shop.id) == 0  # a dry run writes no customer

    rejected = await client.get(f"/api/imports/{job['id']}/rejections", headers=admin)
    assert rejected.status_code == 200, rejected.text
    assert rejected.json() == [
        {
            "row_number": 2,
            "field": "phone",
            "reason": rejected.json()[0]["reason"],
            "reason_zh": rejected.json()[0]["reason_zh"],
            "raw": {"客户姓名": "周航", "联系电话": "无", "电子邮件": "", "备注": ""},
        }
    ]
    assert "phone" in rejected.json()[0]["reason"]
    assert rejected.json()[0]["reason_zh"] == zh(rejected.json()[0]["reason"]) != rejected.json()[0]["reason"]
    assert rejected.json()[0]["reason_zh"].startswith("电话为空")
    assert (await client.get(f"/api/imports/{job['id']}/rejections?limit=0", headers=admin)).status_code == 400
    assert (await client.get(f"/api/imports/{job['id']}/rejections", headers=rep)).status_code == 403
    assert (await client.get(f"/api/imports/{job['id']}/rejections", headers=manager)).status_code == 404
    assert (await client.get(f"/api/imports/{uuid.uuid4()}/rejections", headers=admin)).status_code == 404

    async def refused(params: dict, status: tuple[int, ...], *words: str, content: bytes = FILE) -> None:
        answer = await client.post("/api/imports/", params={**start, **params}, headers=admin, content=content)
        assert answer.status_code in status, (params, answer.status_code, answer.text)
        for word in words:
            assert word in answer.text, (params, answer.text)

    await refused({"columns": "{姓名: name"}, (422,), "columns", "not valid JSON")
    await refused({"columns": "[]"}, (422,), "columns", "JSON object")
    await refused({"columns": '{"客户姓名": 3}'}, (422,), "columns", "客户姓名")
    await refused({"columns": '{"客户姓名": "name", "联系电话": "fax"}'}, (422,), "fax")
    await refused({"columns": '{"客户姓名": "name", "联系电话": "name"}'}, (422,), "two columns", "name")
    await refused({"columns": '{"联系电话": "phone"}'}, (422,), "customer's name")
    await refused({"columns": columns, "mapping": "api-test-any"}, (422,), "not both")
    await refused({"kind": "suppliers"}, (400,), "kind")
    await refused({"kind": "orders"}, (422,), "order_ref")  # the suggested customer mapping lacks the order fields
    await refused({}, (422,), "file", "encoding", content=bytes(range(128, 256)) * 40)
    answer = await client.post("/api/imports/", params={**start, "columns": columns}, headers=rep, **body)
    assert answer.status_code == 403
    answer = await client.post("/api/imports/", params={**start, "columns": columns}, headers=manager, **body)
    assert answer.status_code == 404  # not the manager's store
    assert (
        await client.post("/api/imports/preview?file_name=a.csv&kind=orders", headers=rep, **body)
    ).status_code == 403

    # An order file, its own mapping, as a dry run: the order fields are what it is checked against.
    preview = (
        await client.post("/api/imports/preview?file_name=o.csv&kind=orders", headers=admin, content=ORDERS)
    ).json()
    assert preview["suggested"]["订单编号"] == "order_ref" and "order_ref" in preview["fields"]
    mapping = {**preview["suggested"], "支付方式": None}
    started = await client.post(
        "/api/imports/",
        params={**start, "file_name": "o.csv", "kind": "orders", "columns": json.dumps(mapping, ensure_ascii=False)},
        headers=admin,
        content=ORDERS,
    )
    assert started.status_code == 202, started.text
    job = await until_done(client, admin, started.json()["id"])
    assert job["kind"] == "orders" and job["columns"]["支付方式"] is None and job["status"] == "done", job
    assert job["created"] + job["unchanged"] + job["rejected"] == 2 and job["rejected"] == 1  # SO-2 has no amount
    rows = (await client.get(f"/api/imports/{job['id']}/rejections?limit=5", headers=admin)).json()
    assert [(r["row_number"], r["field"]) for r in rows] == [(2, "amount")] and rows[0]["raw"]["订单编号"] == "SO-2"
    assert rows[0]["reason_zh"] == "既没有金额也没有单价"
