"""Bad input answers 4xx with a message naming the problem, and the database is unchanged."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from server.customers.tables import Customer
from server.interactions.tables import Interaction
from server.opportunities.tables import Opportunity, StageHistory
from server.sync.tables import ScopeVersion
from server.tasks.tables import Task


async def _snapshot() -> dict:
    return {
        "opportunities": await Opportunity.select().order_by(Opportunity.id),
        "stage_history": await StageHistory.count(),
        "tasks": await Task.select(Task.id, Task.status, Task.due_at, Task.owner_id).order_by(Task.id),
        "interactions": await Interaction.count(),
        "customers": await Customer.count(),
        "versions": await ScopeVersion.select().order_by(ScopeVersion.scope),
    }


@pytest.fixture
async def rep(login):
    return await login("rep.bjcy")


@pytest.fixture
async def customer_id(stores):
    row = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).first()
    return str(row["id"])


@pytest.fixture
async def open_opportunity(client, rep, customer_id):
    response = await client.post(
        "/api/opportunities", headers=rep, json={"customer_id": customer_id, "title": "坏输入测试", "amount": "100.00"}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _assert_refused(client, method, path, headers, *, status, says, **kwargs):
    before = await _snapshot()
    response = await client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    message = json.dumps(body, ensure_ascii=False)
    for word in says if isinstance(says, list) else [says]:
        assert word in message, f"{word!r} not in {message}"
    assert await _snapshot() == before, "a refused request changed the database"


@pytest.mark.parametrize(
    ("raw", "says"), [(b'{"customer_id": ', "truncated"), (b"{bad json}", "malformed"), (b"[1, 2", "truncated")]
)
async def test_malformed_json(client, rep, raw, says):
    headers = {**rep, "content-type": "application/json"}
    await _assert_refused(client, "POST", "/api/opportunities", headers, status=400, says=says, content=raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [("customer_id", 123), ("customer_id", "not-a-uuid"), ("amount", "abc"), ("amount", [1]), ("title", 5)],
)
async def test_wrong_types_name_the_field(client, rep, customer_id, field, value):
    body = {"customer_id": customer_id, "title": "x", "amount": "1.00", field: value}
    await _assert_refused(client, "POST", "/api/opportunities", rep, status=400, says=field, json=body)


@pytest.mark.parametrize("field", ["id", "store_id", "owner_id", "created_at", "version", "stage_entered_at", "colour"])
async def test_unknown_and_server_owned_fields_are_refused(client, rep, customer_id, field):
    body = {"customer_id": customer_id, "title": "x", "amount": "1.00", field: "x"}
    await _assert_refused(
        client, "POST", "/api/opportunities", rep, status=400, says=["unknown field", field], json=body
    )


@pytest.mark.parametrize("field", ["id", "status", "store_id", "source"])
async def test_task_and_interaction_writes_refuse_server_fields(client, rep, customer_id, field):
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    await _assert_refused(
        client,
        "POST",
        "/api/tasks",
        rep,
        status=400,
        says=field,
        json={"title": "x", "due_at": due, "customer_id": customer_id, field: "x"},
    )
    await _assert_refused(
        client,
        "POST",
        "/api/interactions",
        rep,
        status=400,
        says=field,
        json={"customer_id": customer_id, "kind": "visit", field: "x"},
    )


async def test_oversized_body_answers_413(client, rep, customer_id, settings):
    huge = {"customer_id": customer_id, "kind": "note", "body": "很" * settings.max_body_bytes}
    await _assert_refused(client, "POST", "/api/interactions", rep, status=413, says="", json=huge)


async def test_long_text_fields_are_bounded(client, rep, customer_id):
    await _assert_refused(
        client,
        "POST",
        "/api/interactions",
        rep,
        status=400,
        says="body",
        json={"customer_id": customer_id, "kind": "note", "body": "字" * 5000},
    )


@pytest.mark.parametrize("path", ["/api/customers", "/api/tasks", "/api/opportunities"])
@pytest.mark.parametrize("limit", ["100000", "0", "-5", "many"])
async def test_page_sizes_are_bounded(client, rep, path, limit):
    response = await client.get(f"{path}?limit={limit}", headers=rep)
    assert response.status_code == 400
    assert "limit" in response.text


@pytest.mark.parametrize("cursor", ["garbage", "eyJhIjoxfQ", "W10"])
async def test_bad_cursors_are_refused(client, rep, cursor):
    response = await client.get(f"/api/customers?cursor={cursor}", headers=rep)
    assert response.status_code in (400, 422)
    assert "cursor" in response.text


async def test_overlong_search_is_refused(client, rep):
    response = await client.get("/api/customers?q=" + "王" * 101, headers=rep)
    assert response.status_code == 400
    assert "q" in response.json()["extra"][0]["key"]


async def test_unknown_task_view(client, rep):
    response = await client.get("/api/tasks?view=everything", headers=rep)
    assert response.status_code == 422
    assert "view" in response.text


@pytest.mark.parametrize("path", ["/api/customers/not-a-uuid", "/api/opportunities/123", "/api/tasks/x"])
async def test_malformed_ids_are_4xx(client, rep, path):
    response = await client.get(path, headers=rep)
    assert 400 <= response.status_code < 500


async def test_unknown_stage(client, rep, open_opportunity):
    await _assert_refused(
        client,
        "POST",
        f"/api/opportunities/{open_opportunity['id']}/stage",
        rep,
        status=422,
        says=["unknown stage", "teleported", "negotiation"],
        json={"stage": "teleported"},
    )


async def test_moving_a_closed_deal(client, rep, open_opportunity):
    path = f"/api/opportunities/{open_opportunity['id']}/stage"
    won = await client.post(path, headers=rep, json={"stage": "won"})
    assert won.status_code == 200, won.text
    await _assert_refused(client, "POST", path, rep, status=422, says="closed", json={"stage": "negotiation"})
    await _assert_refused(
        client,
        "PATCH",
        f"/api/opportunities/{open_opportunity['id']}",
        rep,
        status=422,
        says="closed",
        json={"amount": "5.00"},
    )


async def test_lost_needs_a_reason_and_same_stage_is_refused(client, rep, open_opportunity):
    path = f"/api/opportunities/{open_opportunity['id']}/stage"
    await _assert_refused(client, "POST", path, rep, status=422, says="lost_reason", json={"stage": "lost"})
    await _assert_refused(
        client, "POST", path, rep, status=422, says="already in stage", json={"stage": open_opportunity["stage"]}
    )


@pytest.mark.parametrize("amount", ["-1.00", "-0.01", "1e12", "1.005", "NaN"])
async def test_bad_amounts(client, rep, customer_id, open_opportunity, amount):
    await _assert_refused(
        client,
        "POST",
        "/api/opportunities",
        rep,
        status=422,
        says="amount",
        json={"customer_id": customer_id, "title": "负数", "amount": amount},
    )
    await _assert_refused(
        client,
        "PATCH",
        f"/api/opportunities/{open_opportunity['id']}",
        rep,
        status=422,
        says="amount",
        json={"amount": amount},
    )


async def test_starting_in_a_closed_stage_is_refused(client, rep, customer_id):
    await _assert_refused(
        client,
        "POST",
        "/api/opportunities",
        rep,
        status=422,
        says="closed stage",
        json={"customer_id": customer_id, "title": "x", "stage": "won"},
    )


async def test_empty_update_is_refused(client, rep, open_opportunity):
    await _assert_refused(
        client,
        "PATCH",
        f"/api/opportunities/{open_opportunity['id']}",
        rep,
        status=422,
        says="nothing to change",
        json={},
    )


async def test_task_commands_validate(client, rep, login, customer_id):
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    task = await client.post(
        "/api/tasks", headers=rep, json={"title": "验证", "due_at": due, "customer_id": customer_id}
    )
    assert task.status_code == 201, task.text
    path = f"/api/tasks/{task.json()['id']}"
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=400)).isoformat()
    await _assert_refused(client, "POST", f"{path}/snooze", rep, status=422, says="future", json={"until": past})
    await _assert_refused(client, "POST", f"{path}/snooze", rep, status=422, says="at most", json={"until": far})
    await _assert_refused(
        client, "POST", f"{path}/snooze", rep, status=422, says="time zone", json={"until": "2030-01-01T10:00:00"}
    )
    shpd = await login.user("rep.shpd")
    await _assert_refused(
        client, "POST", f"{path}/reassign", rep, status=422, says="store", json={"owner_id": shpd["id"]}
    )
    assert (await client.post(f"{path}/complete", headers=rep)).status_code == 200
    await _assert_refused(client, "POST", f"{path}/complete", rep, status=422, says="not open")


async def test_interaction_validation(client, rep, customer_id):
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    cases = [
        ({"customer_id": customer_id, "kind": "browse"}, "shop systems"),
        ({"customer_id": customer_id, "kind": "visit", "occurred_at": future}, "future"),
        ({"customer_id": customer_id, "kind": "note", "body": "  "}, "body"),
        ({"customer_id": customer_id, "kind": "call", "duration_seconds": -3}, "duration_seconds"),
    ]
    for body, says in cases:
        before = await _snapshot()
        response = await client.post("/api/interactions", headers=rep, json=body)
        assert response.status_code in (400, 422), response.text
        assert says in response.text
        assert await _snapshot() == before


async def test_nul_characters_are_refused_everywhere(client, rep, customer_id, open_opportunity):
    """PostgreSQL cannot store NUL; it must be a 400 naming the field, not a 500 (found by the fuzzer)."""
    for path in ("/api/customers?q=%00abc", "/api/tasks?view=mine%00", "/api/opportunities?stage=%00"):
        response = await client.get(path, headers=rep)
        assert response.status_code == 400, (path, response.text)
    await _assert_refused(
        client,
        "POST",
        "/api/opportunities",
        rep,
        status=400,
        says="title",
        json={"customer_id": customer_id, "title": "沙发\u0000"},
    )
    await _assert_refused(
        client,
        "POST",
        f"/api/opportunities/{open_opportunity['id']}/stage",
        rep,
        status=400,
        says="stage",
        json={"stage": "\u0000"},
    )
    await _assert_refused(
        client,
        "POST",
        "/api/interactions",
        rep,
        status=400,
        says="body",
        json={"customer_id": customer_id, "kind": "note", "body": "a\u0000b"},
    )
    login = await client.post("/api/auth/login", json={"username": "rep\u0000.bjcy", "password": "floorwalker"})
    assert login.status_code == 400 and "username" in login.text


@pytest.mark.parametrize("moment", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:59:00-05:00", "1970-01-01T00:00:00Z"])
async def test_timestamps_outside_the_sane_range(client, rep, customer_id, moment):
    await _assert_refused(
        client,
        "POST",
        "/api/tasks",
        rep,
        status=422,
        says="due_at",
        json={"title": "x", "due_at": moment, "customer_id": customer_id},
    )
    await _assert_refused(
        client,
        "POST",
        "/api/interactions",
        rep,
        status=422,
        says="occurred_at",
        json={"customer_id": customer_id, "kind": "visit", "occurred_at": moment},
    )
