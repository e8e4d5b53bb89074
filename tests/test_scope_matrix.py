"""Authorisation matrix: every endpoint that takes an id, each demo role, objects of its own and
of foreign stores and regions. Foreign answers 404 and changes nothing; own is allowed; no listing
ever holds a row outside the caller's scope, and none misses one inside it."""

from __future__ import annotations

import datetime as dt

import pytest

from server.complaints.tables import Complaint
from server.customers.tables import Customer
from server.opportunities.tables import Opportunity
from server.stores.tables import Region, Store
from server.tasks.tables import Task

ROLES = ["admin", "region.north", "manager.bjcy", "rep.bjcy", "rep.shpd"]
STORES = ["BJ-CY", "BJ-HD", "SH-PD"]  # own pilot store, same region other store, other region


async def _visible_codes(username: str) -> set[str]:
    if username == "admin":
        return {r["code"] for r in await Store.select(Store.code)}
    if username.startswith("region."):
        region = await Region.select(Region.id).where(Region.code == username.split(".")[1]).first()
        return {r["code"] for r in await Store.select(Store.code).where(Store.region_id == region["id"])}
    code = username.split(".")[1].upper()
    return {f"{code[:2]}-{code[2:]}"}


async def _customer_in(store_id):
    return (
        await Customer.select(Customer.id)
        .where((Customer.store_id == store_id) & Customer.deleted.eq(False))
        .order_by(Customer.name)
        .first()
    )["id"]


async def _rep_of(client, login, store_id) -> str:
    users = (await client.get("/api/users", headers=await login("admin"))).json()
    return next(u["id"] for u in users if u["store_id"] == str(store_id) and u["role"] == "rep")


async def _fresh_opportunity(client, login, store_id) -> str:
    response = await client.post(
        "/api/opportunities",
        headers=await login("admin"),
        json={"customer_id": str(await _customer_in(store_id)), "title": "矩阵测试 沙发", "amount": "8800.00"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _fresh_task(client, login, store_id) -> str:
    response = await client.post(
        "/api/tasks",
        headers=await login("admin"),
        json={
            "customer_id": str(await _customer_in(store_id)),
            "title": "矩阵测试 回访",
            "due_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat(),
            "owner_id": await _rep_of(client, login, store_id),
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _fresh_complaint(client, login, store_id) -> str:
    customer_id = str(await _customer_in(store_id))
    body = {"customer_id": customer_id, "category": "delivery", "description": "矩阵测试 送货晚了"}
    response = await client.post("/api/complaints", headers=await login("admin"), json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _later() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()


# Each case: (name, how to make the target, how to call it, how to read its state as admin).
async def _case(name, client, login, store_id):
    customer_id = str(await _customer_in(store_id))
    if name == "customer card":
        return ("GET", f"/api/customers/{customer_id}", None), None
    if name == "interaction timeline":
        return ("GET", f"/api/interactions?customer_id={customer_id}", None), None
    if name == "log interaction":
        state = f"/api/interactions?customer_id={customer_id}&limit=200"
        return ("POST", "/api/interactions", {"customer_id": customer_id, "kind": "note", "body": "矩阵"}), state
    if name == "create opportunity":
        state = f"/api/opportunities?customer_id={customer_id}&open_only=false&limit=200"
        return ("POST", "/api/opportunities", {"customer_id": customer_id, "title": "矩阵", "amount": "1.00"}), state
    if name == "create task":
        owner = await _rep_of(client, login, store_id)
        body = {"customer_id": customer_id, "title": "矩阵", "due_at": _later(), "owner_id": owner}
        return ("POST", "/api/tasks", body), "/api/tasks?view=store&limit=200"
    if name == "open complaint":
        state = f"/api/complaints?customer_id={customer_id}&limit=200"
        body = {"customer_id": customer_id, "category": "quality", "description": "矩阵 沙发起球"}
        return ("POST", "/api/complaints", body), state
    if name.startswith("complaint"):
        complaint = await _fresh_complaint(client, login, store_id)
        state = f"/api/complaints/{complaint}"
        call = {
            "complaint read": ("GET", state, None),
            "complaint history": ("POST", f"{state}/steps", {"step": "history"}),
            "complaint respond": ("POST", f"{state}/steps", {"step": "respond", "text": "上门更换"}),
        }[name]
        return call, state
    if name.startswith("opportunity"):
        opp = await _fresh_opportunity(client, login, store_id)
        state = f"/api/opportunities/{opp}"
        call = {
            "opportunity read": ("GET", state, None),
            "opportunity update": ("PATCH", state, {"amount": "9900.00"}),
            "opportunity stage move": ("POST", f"{state}/stage", {"stage": "needs_confirmed"}),
        }[name]
        return call, state
    task = await _fresh_task(client, login, store_id)
    state = f"/api/tasks/{task}"
    other_owner = (await client.get("/api/users", headers=await login("admin"))).json()
    other = next(u["id"] for u in other_owner if u["store_id"] == str(store_id) and u["role"] == "store_manager")
    call = {
        "task read": ("GET", state, None),
        "task complete": ("POST", f"{state}/complete", None),
        "task snooze": ("POST", f"{state}/snooze", {"until": _later()}),
        "task reassign": ("POST", f"{state}/reassign", {"owner_id": other}),
    }[name]
    return call, state


CASES = [
    "customer card",
    "interaction timeline",
    "log interaction",
    "create opportunity",
    "create task",
    "opportunity read",
    "opportunity update",
    "opportunity stage move",
    "task read",
    "task complete",
    "task snooze",
    "task reassign",
    "open complaint",
    "complaint read",
    "complaint history",
    "complaint respond",
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("store_code", STORES)
@pytest.mark.parametrize("username", ROLES)
async def test_id_endpoints_answer_own_and_hide_foreign(client, login, stores, username, store_code, case):
    (method, path, body), state_path = await _case(case, client, login, stores[store_code])
    admin = await login("admin")
    before = (await client.get(state_path, headers=admin)).json() if state_path else None
    response = await client.request(method, path, json=body, headers=await login(username))
    if store_code in await _visible_codes(username):
        assert response.status_code in (200, 201), f"{username} on own {store_code}: {response.text}"
    else:
        assert response.status_code == 404, f"{username} on foreign {store_code}: {response.status_code}"
        assert "not found" in response.json()["detail"]
        if state_path:
            assert (await client.get(state_path, headers=admin)).json() == before


async def _all_pages(client, headers, path):
    items, cursor = [], None
    while True:
        url = path + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


@pytest.mark.parametrize("username", ROLES)
async def test_listings_hold_exactly_the_rows_in_scope(client, login, stores, username):
    headers = await login(username)
    visible = {str(stores[c]) for c in await _visible_codes(username)}
    visible_ids = [stores[c] for c in await _visible_codes(username)]

    customers = await _all_pages(client, headers, "/api/customers?limit=200")
    assert {c["store_id"] for c in customers} <= visible
    expected = await Customer.count().where(Customer.store_id.is_in(visible_ids) & Customer.deleted.eq(False))
    assert len(customers) == expected
    assert len({c["id"] for c in customers}) == expected  # keyset pages neither repeat nor skip

    tasks = await _all_pages(client, headers, "/api/tasks?view=store&limit=200")
    assert {t["store_id"] for t in tasks} <= visible
    open_tasks = Task.store_id.is_in(visible_ids) & (Task.status == "open") & Task.deleted.eq(False)
    assert len(tasks) == await Task.count().where(open_tasks)

    opportunities = await _all_pages(client, headers, "/api/opportunities?open_only=false&limit=200")
    assert {o["store_id"] for o in opportunities} <= visible
    in_scope = Opportunity.store_id.is_in(visible_ids) & Opportunity.deleted.eq(False)
    assert len(opportunities) == await Opportunity.count().where(in_scope)

    complaints = await _all_pages(client, headers, "/api/complaints?limit=200")
    assert {c["store_id"] for c in complaints} <= visible
    in_scope = Complaint.store_id.is_in(visible_ids) & Complaint.deleted.eq(False)
    assert len(complaints) == await Complaint.count().where(in_scope)

    listed_stores = (await client.get("/api/stores", headers=headers)).json()
    assert {s["id"] for s in listed_stores} == visible
    users = (await client.get("/api/users", headers=headers)).json()
    assert {u["store_id"] for u in users} - {None} <= visible
    if username != "admin":  # staff without a store (admin, regional managers) are listed to admin only
        assert None not in {u["store_id"] for u in users}


@pytest.mark.parametrize("username", ["rep.bjcy", "rep.shpd"])
async def test_search_never_crosses_stores(client, login, stores, username):
    """A fragment that matches customers everywhere returns only the caller's store's."""
    headers = await login(username)
    own = str(stores["BJ-CY" if username == "rep.bjcy" else "SH-PD"])
    for q in ["王", "李", "138", "139"]:
        page = (await client.get(f"/api/customers?q={q}&limit=200", headers=headers)).json()
        assert all(c["store_id"] == own for c in page["items"])
