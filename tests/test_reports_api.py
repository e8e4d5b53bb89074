"""The reports over HTTP: who sees what (a store manager their store, a regional manager their
region, a rep nothing), the answers to bad input, every number's drill-down adding up to it, and
the CSV and XLSX downloads (BOM, headers in the reader's language, the same rows as the JSON)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from server.analytics import service
from server.customers.tables import Customer
from server.opportunities.tables import Opportunity
from shared.ids import uuid7
from tests.test_reports import MINE, NOW
from tests.test_reports import world as reports_world  # noqa: F401 — the fixture, used through `world`

SH = ZoneInfo("Asia/Shanghai")
PERIOD = {"from": "2026-11-01", "to": "2026-11-25"}  # the world's period


@pytest.fixture(scope="module")
async def world(reports_world):  # noqa: F811
    return reports_world


async def fetch(client, login, username: str, path: str, **params) -> dict:
    response = await client.get(f"/api/reports/{path}", params=params, headers=await login(username))
    assert response.status_code == 200, response.text
    return response.json()


def keyed(table: dict) -> list[dict]:
    keys = [c["key"] for c in table["columns"]]
    return [dict(zip(keys, row, strict=True)) for row in table["rows"]]


async def codes_of_region(region: str) -> list[str]:
    rows = await Opportunity.raw(
        "SELECT s.code FROM stores s JOIN regions r ON r.id = s.region_id WHERE r.code = {} AND s.deleted = false",
        region,
    )
    return sorted(r["code"] for r in rows)


async def test_the_list_of_reports(client, login):
    answer = await client.get("/api/reports/", headers=await login("manager.bjcy"))
    assert answer.status_code == 200
    listed = {r["name"]: (r["title_zh"], r["title_en"]) for r in answer.json()}
    assert set(MINE) <= set(listed)
    assert listed["pipeline"] == ("销售管道", "Pipeline")
    refused = await client.get("/api/reports/", headers=await login("rep.bjcy"))
    assert refused.status_code == 403
    if "adoption" in listed:  # server/rollout's report, run through the same endpoint
        adoption = await fetch(client, login, "region.north", "adoption")
        assert adoption["report"] == "adoption"


async def test_a_store_manager_sees_their_store_only(client, login, stores):
    bjcy = str(stores["BJ-CY"])
    compare = await fetch(client, login, "manager.bjcy", "stores")
    assert [r["code"] for r in keyed(compare)] == ["BJ-CY"]

    pipeline = await fetch(client, login, "manager.bjcy", "pipeline")
    own = await Opportunity.raw(
        "SELECT COUNT(*) AS n, SUM(o.amount) AS amount FROM opportunities o "
        "JOIN pipeline_stages s ON s.id = o.stage_id WHERE s.kind = 'open' AND o.deleted = false AND o.store_id = {}",
        stores["BJ-CY"],
    )
    rows = keyed(pipeline)
    assert sum(r["deals"] for r in rows) == own[0]["n"] > 0
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal(str(own[0]["amount"])).quantize(Decimal("0.01"))

    for name, column in (("stalled", "store"), ("rep_activity", "store")):
        table = await fetch(client, login, "manager.bjcy", name)
        assert {r[column] for r in keyed(table)} <= {"BJ-CY"}, name
    reps = await Opportunity.raw(
        "SELECT id FROM users WHERE role = 'rep' AND active = true AND deleted = false AND store_id = {}",
        stores["BJ-CY"],
    )
    activity = await fetch(client, login, "manager.bjcy", "rep_activity")
    assert {r["rep_id"] for r in keyed(activity)} == {str(r["id"]) for r in reps}

    deals = await fetch(client, login, "manager.bjcy", "drill/deals", status="open", limit=10000)
    assert {r["store"] for r in keyed(deals)} == {"BJ-CY"} and deals["total"] == own[0]["n"]

    # The manager's default is the admin's view of their store.
    for name in ("pipeline", "funnel", "win_rate", "trend", "targets"):
        mine = await fetch(client, login, "manager.bjcy", name)
        admin = await fetch(client, login, "admin", name, store="BJ-CY")
        assert mine["rows"] == admin["rows"], name
        assert admin["filters"]["store"] == "BJ-CY" and mine["filters"]["store"] is None
    by_id = await fetch(client, login, "admin", "stores", store=bjcy)
    assert [r["code"] for r in keyed(by_id)] == ["BJ-CY"]


async def test_a_regional_manager_sees_their_region(client, login):
    north = await codes_of_region("north")
    assert "BJ-CY" in north and "SH-PD" not in north
    compare = await fetch(client, login, "region.north", "stores")
    assert [r["code"] for r in keyed(compare)] == north
    admin = await fetch(client, login, "admin", "stores", region="north")
    assert admin["rows"] == compare["rows"]
    activity = await fetch(client, login, "region.north", "rep_activity")
    assert {r["store"] for r in keyed(activity)} <= set(north)
    stalled = await fetch(client, login, "region.north", "stalled")
    assert {r["store"] for r in keyed(stalled)} <= set(north)
    one = await fetch(client, login, "region.north", "stores", store="BJ-HD")
    assert [r["code"] for r in keyed(one)] == ["BJ-HD"]


@pytest.mark.parametrize(
    ("username", "params", "status"),
    [
        ("manager.bjcy", {"store": "SH-PD"}, 404),
        ("manager.bjcy", {"region": "east"}, 404),
        ("manager.bjcy", {"rep": "rep.shpd"}, 404),
        ("region.north", {"store": "SH-PD"}, 404),
        ("region.north", {"region": "east"}, 404),
        ("admin", {"store": "XX-NONE"}, 404),
        ("rep.bjcy", {}, 403),
        ("rep.shpd", {"store": "SH-PD"}, 403),
    ],
)
async def test_out_of_scope_answers_404_and_reps_403(client, login, username, params, status):
    headers = await login(username)
    for path in ("pipeline", "drill/deals"):
        answer = await client.get(f"/api/reports/{path}", params=params, headers=headers)
        assert answer.status_code == status, (path, answer.text)
        assert answer.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("pipeline", {"from": "2026-13-01"}, 422, "from must be a date"),
        ("pipeline", {"to": "yesterday"}, 422, "to must be a date"),
        ("pipeline", {"from": "2026-11-30", "to": "2026-11-01"}, 422, "is after to"),
        ("pipeline", {"from": "2024-01-01", "to": "2026-11-01"}, 422, "at most 366"),
        ("sales", {}, 404, "report 'sales' not found"),
        ("pipeline", {"format": "pdf"}, 400, "format"),
        ("drill/orders", {}, 404, "drill-down 'orders' not found"),
        ("drill/deals", {"colour": "red"}, 400, "takes no parameter 'colour'"),
        ("drill/deals", {"status": "asleep"}, 422, "status must be one of"),
        ("drill/deals", {"close_month": "12/2026"}, 422, "close_month"),
        ("drill/tasks", {"owner": "nobody"}, 422, "owner must be an id"),
        ("drill/customers", {"no_follow_up": "maybe"}, 422, "no_follow_up must be 1 or 0"),
        ("drill/deals", {"limit": "0"}, 400, "limit"),
        ("drill/deals", {"format": "doc"}, 400, "format"),
    ],
)
async def test_bad_input_is_refused_with_its_reason(client, login, path, params, status, words):
    answer = await client.get(f"/api/reports/{path}", params=params, headers=await login("manager.bjcy"))
    assert answer.status_code == status, answer.text
    assert words in answer.text


async def test_a_drill_parameter_given_twice_is_refused(client, login):
    answer = await client.get("/api/reports/drill/deals?status=open&status=won", headers=await login("manager.bjcy"))
    assert answer.status_code == 400 and "status once" in answer.text


async def test_every_drill_down_adds_up_to_its_number(client, login):
    pipeline = await fetch(client, login, "manager.bjcy", "pipeline")
    for row, drill in zip(keyed(pipeline), pipeline["drill"], strict=True):
        listed = await fetch(client, login, "manager.bjcy", "drill/deals", **drill["params"])
        assert listed["total"] == row["deals"], drill
        assert {r["stage"] for r in keyed(listed)} <= {row["stage"]}
    activity = await fetch(client, login, "region.north", "rep_activity")
    for row, drill in zip(keyed(activity), activity["drill"], strict=True):
        listed = await fetch(client, login, "region.north", f"drill/{drill['kind']}", **drill["params"])
        assert listed["total"] == row["follow_ups"], row["username"]
        tasks = await fetch(client, login, "region.north", "drill/tasks", owner=row["rep_id"], state="overdue")
        assert tasks["total"] == row["overdue"], row["username"]
        customers = await fetch(client, login, "region.north", "drill/customers", owner=row["rep_id"], no_follow_up="1")
        assert customers["total"] == row["no_follow_up"], row["username"]
    compare = await fetch(client, login, "region.north", "stores")
    for row, drill in zip(keyed(compare), compare["drill"], strict=True):
        listed = await fetch(client, login, "region.north", "drill/deals", **drill["params"])
        assert listed["total"] == row["open_deals"] and {r["store"] for r in keyed(listed)} <= {row["code"]}
    forecast = await fetch(client, login, "admin", "forecast")
    for row, drill in zip(keyed(forecast), forecast["drill"], strict=True):
        listed = await fetch(client, login, "admin", "drill/deals", **drill["params"])
        assert listed["total"] == row["deals"]
        assert sum(Decimal(r["amount"]) for r in keyed(listed)) == Decimal(row["amount"])


async def test_json_over_http_is_the_service_s_table(client, login, world):
    # Funnel and win rate do not move with the clock: the API's answer is the service's, to the cell.
    for name in ("funnel", "win_rate"):
        table = await fetch(client, login, "admin", name, store=world.code, **PERIOD)
        expected = await service.run(name, world.filters, NOW)
        assert table["rows"] == [[_wire(v) for v in row] for row in expected.rows]
        assert table["filters"] == {**PERIOD, "store": world.code, "region": None, "rep": None}
        assert [c["key"] for c in table["columns"]] == [c.key for c in expected.columns]


def _wire(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _local_text(value: str | None) -> str:
    if value is None:
        return ""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(SH)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


async def test_csv_download(client, login, world):
    headers = await login("manager.bjcy")
    answer = await client.get("/api/reports/targets", params={**PERIOD, "format": "csv"}, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="targets-2026-11-01-2026-11-25.csv"'
    assert answer.content.startswith(b"\xef\xbb\xbf")
    table = await fetch(client, login, "manager.bjcy", "targets", **PERIOD)
    lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert lines[0] == [c["label_zh"] for c in table["columns"]]
    assert lines[0][:2] == ["指标代码", "指标"]
    assert lines[1:] == [["" if v is None else str(v) for v in row] for row in table["rows"]]

    # A reader whose language is English gets English headers; timestamps read in China time.
    english = await login(f"{world.code.lower()}-e")
    answer = await client.get(
        "/api/reports/drill/deals", params={**PERIOD, "status": "won", "format": "csv"}, headers=english
    )
    assert answer.headers["content-disposition"] == 'attachment; filename="drill-deals-2026-11-01-2026-11-25.csv"'
    lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    table = await fetch(client, login, f"{world.code.lower()}-e", "drill/deals", status="won", **PERIOD)
    assert lines[0] == [c["label_en"] for c in table["columns"]] and lines[0][1] == "Deal"
    closed = [c["key"] for c in table["columns"]].index("closed_at")
    assert sorted(line[closed] for line in lines[1:]) == [
        "2026-11-03 10:00:00",
        "2026-11-10 10:00:00",
        "2026-11-15 10:00:00",
    ]
    assert [line[closed] for line in lines[1:]] == [_local_text(r[closed]) for r in table["rows"]]


async def test_a_name_that_looks_like_a_formula_stays_text(client, login, world):
    ident = uuid7()
    await Customer.insert(
        Customer(id=ident, version=0, store_id=world.store_id, owner_id=world.users["B"], name="=1+2")
    )
    try:
        headers = await login(f"{world.code.lower()}-e")
        params = {**PERIOD, "owner": str(world.users["B"])}
        answer = await client.get("/api/reports/drill/customers", params={**params, "format": "csv"}, headers=headers)
        assert "'=1+2" in answer.content.decode("utf-8-sig")
        answer = await client.get("/api/reports/drill/customers", params={**params, "format": "xlsx"}, headers=headers)
        sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).worksheets[0]
        cells = [c for row in sheet.iter_rows(min_row=2) for c in row if c.value == "=1+2"]
        assert cells and all(c.data_type == "s" for c in cells)
    finally:
        await Customer.delete().where(Customer.id == ident)


async def test_xlsx_download_matches_the_json(client, login, world):
    username = f"{world.code.lower()}-e"
    for path, params in (("win_rate", {}), ("stores", {}), ("trend", {}), ("drill/deals", {"status": "won"})):
        answer = await client.get(
            f"/api/reports/{path}", params={**PERIOD, **params, "format": "xlsx"}, headers=await login(username)
        )
        assert answer.status_code == 200, answer.text
        stem = path.replace("/", "-")
        assert answer.headers["content-disposition"] == f'attachment; filename="{stem}-2026-11-01-2026-11-25.xlsx"'
        assert answer.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        table = await fetch(client, login, username, path, **PERIOD, **params)
        book = openpyxl.load_workbook(io.BytesIO(answer.content))
        sheet = book.worksheets[0]
        rows = list(sheet.iter_rows())
        assert [c.value for c in rows[0]] == [c["label_en"] for c in table["columns"]]
        assert all(c.font.bold for c in rows[0])
        assert len(rows) - 1 == len(table["rows"]) > 0
        for cells, row in zip(rows[1:], table["rows"], strict=True):
            for cell, value, column in zip(cells, row, table["columns"], strict=True):
                kind = column["kind"]
                if value is None:
                    assert cell.value is None, column["key"]
                elif kind == "money":
                    assert cell.data_type == "n" and Decimal(str(cell.value)) == Decimal(value), column["key"]
                elif kind == "ts":
                    local = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(SH)
                    assert abs(cell.value - local.replace(tzinfo=None)) < dt.timedelta(milliseconds=1)
                elif kind == "date":
                    assert cell.value.date() == dt.date.fromisoformat(value)
                else:
                    assert cell.value == value, column["key"]
        about = book.worksheets[1]
        assert about.title == "About" and about["A1"].value == table["title_en"]


async def test_rep_filter_narrows_to_one_rep(client, login, stores):
    rep = await Opportunity.raw("SELECT id FROM users WHERE username = 'rep.bjcy'")
    rep_id = str(rep[0]["id"])
    activity = await fetch(client, login, "manager.bjcy", "rep_activity", rep="rep.bjcy")
    assert [r["rep_id"] for r in keyed(activity)] == [rep_id]
    assert activity["filters"]["rep"] == "rep.bjcy"
    deals = await fetch(client, login, "manager.bjcy", "drill/deals", rep=rep_id, status="open", limit=10000)
    assert {r["owner_id"] for r in keyed(deals)} == {rep_id}
    pipeline = await fetch(client, login, "manager.bjcy", "pipeline", rep=rep_id)
    assert sum(r["deals"] for r in keyed(pipeline)) == deals["total"]


async def test_the_segment_report_over_http_keeps_to_the_callers_scope(client, login, stores):
    from server.analytics import segments

    await segments.score_all()  # the nightly job, now: every store of the demo chain
    live = {
        r["code"]: r["n"]
        for r in await Customer.raw(
            "SELECT s.code, COUNT(*) AS n FROM customers c JOIN stores s ON s.id = c.store_id "
            "WHERE c.deleted = false GROUP BY s.code"
        )
    }
    mine = await fetch(client, login, "manager.bjcy", "segments")
    assert keyed(mine)[-1]["customers"] == live["BJ-CY"] > 0
    assert mine["rows"] == (await fetch(client, login, "admin", "segments", store="BJ-CY"))["rows"]
    north = await fetch(client, login, "region.north", "segments")
    assert keyed(north)[-1]["customers"] == sum(live.get(code, 0) for code in await codes_of_region("north"))
    for row, drill in zip(keyed(mine), mine["drill"], strict=True):
        if drill is None:
            continue
        listed = await fetch(client, login, "manager.bjcy", f"drill/{drill['kind']}", **drill["params"], limit=10000)
        assert {r["store"] for r in keyed(listed)} == {"BJ-CY"}
        # the total row's drill: those worth winning back
        behind = row["win_back"] if row["segment_code"] is None else row["customers"]
        assert listed["total"] == len(listed["rows"]) == behind
    headers = await login("rep.bjcy")
    assert (await client.get("/api/reports/segments", headers=headers)).status_code == 403
    other = await client.get("/api/reports/segments", params={"store": "SH-PD"}, headers=await login("manager.bjcy"))
    assert other.status_code == 404
    for params, words in (({"segment": "vip"}, "segment must be one of"), ({"win_back": "maybe"}, "win_back must be")):
        answer = await client.get("/api/reports/drill/customers", params=params, headers=await login("manager.bjcy"))
        assert answer.status_code == 422 and words in answer.text, answer.text
    headers = await login("manager.bjcy")
    csv_answer = await client.get("/api/reports/segments", params={"format": "csv"}, headers=headers)
    assert csv_answer.status_code == 200 and "分群" in csv_answer.content.decode("utf-8-sig").splitlines()[0]
