"""What a rep and a manager do with the API: find a customer, read the card, work the pipeline and
the task list, log interactions — and every write takes the next number in its store's change order."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from server.customers.tables import Customer, CustomerPhone
from server.opportunities.tables import StageHistory
from server.orders.tables import Order
from server.sync.service import current_version


async def _bjcy_customer_with_orders(stores):
    rows = await Order.raw(
        "SELECT o.customer_id, count(*) AS n FROM orders o WHERE o.store_id = {} AND o.deleted = false "
        "GROUP BY o.customer_id ORDER BY count(*) DESC LIMIT 1",
        stores["BJ-CY"],
    )
    return rows[0]["customer_id"]


async def test_search_by_name_fragment_and_phone_fragment(client, login, stores):
    rep = await login("rep.bjcy")
    customer = await Customer.select(Customer.id, Customer.name).where(Customer.store_id == stores["BJ-CY"]).first()
    fragment = customer["name"][1:]
    page = (await client.get(f"/api/customers?q={fragment}", headers=rep)).json()
    assert str(customer["id"]) in [c["id"] for c in page["items"]]
    assert all(fragment in c["name"] for c in page["items"])

    phone = await CustomerPhone.select(CustomerPhone.digits).where(CustomerPhone.customer_id == customer["id"]).first()
    tail = phone["digits"][-6:]
    page = (await client.get(f"/api/customers?q={tail}", headers=rep)).json()
    assert str(customer["id"]) in [c["id"] for c in page["items"]]
    # A rep sees full numbers of the store's customers; with spaces or dashes the search still works.
    spaced = f"{tail[:3]} {tail[3:]}"
    page = (await client.get(f"/api/customers?q={spaced}", headers=rep)).json()
    assert str(customer["id"]) in [c["id"] for c in page["items"]]


async def test_wildcards_in_the_query_are_literal(client, login):
    rep = await login("rep.bjcy")
    for q in ["%", "_", "%%%"]:
        page = (await client.get("/api/customers", params={"q": q}, headers=rep)).json()
        assert page["items"] == []


async def test_keyset_pages_are_ordered_and_complete(client, login, stores):
    rep = await login("rep.bjcy")
    seen, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/customers", params=params, headers=rep)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    keys = [(c["name"], c["id"]) for c in seen]
    assert keys == sorted(keys)
    assert len(seen) == await Customer.count().where(Customer.store_id == stores["BJ-CY"])


async def test_card_shows_everything_in_one_call(client, login, stores):
    rep = await login("rep.bjcy")
    customer_id = await _bjcy_customer_with_orders(stores)
    response = await client.get(f"/api/customers/{customer_id}", headers=rep)
    assert response.status_code == 200, response.text
    card = response.json()
    assert card["profile"]["id"] == str(customer_id)
    assert card["profile"]["store_code"] == "BJ-CY"
    assert card["phones"] and card["phones"][0]["number"].startswith("+86")
    assert card["orders"], "the customer with most orders has orders"
    for order in card["orders"]:
        assert order["lines"]
        assert sum(Decimal(line["amount"]) for line in order["lines"]) == Decimal(order["amount"])
    value = card["value"]
    db_total = await Order.raw(
        "SELECT sum(amount) AS s, count(*) AS n FROM orders WHERE customer_id = {} AND deleted = false", customer_id
    )
    assert Decimal(value["amount_total"]) == Decimal(str(db_total[0]["s"])).quantize(Decimal("0.01"))
    assert value["order_count"] == db_total[0]["n"]
    assert Decimal(value["store_amount"]) + Decimal(value["online_amount"]) == Decimal(value["amount_total"])
    assert value["tier"] == ("high" if Decimal(value["amount_12m"]) > 5000 else "regular")
    for key in ("interactions", "opportunities", "tasks", "complaints", "identities", "tags"):
        assert isinstance(card[key], list)


async def test_head_office_sees_masked_phones_and_no_street_address(client, login, stores):
    customer_id = await _bjcy_customer_with_orders(stores)
    for username in ("region.north", "admin"):
        card = (await client.get(f"/api/customers/{customer_id}", headers=await login(username))).json()
        assert all("****" in p["number"] for p in card["phones"])
        assert card["profile"]["address"] == ""
    card = (await client.get(f"/api/customers/{customer_id}", headers=await login("manager.bjcy"))).json()
    assert all("*" not in p["number"] for p in card["phones"])


async def test_opportunity_lifecycle_writes_stage_history(client, login, stores):
    rep = await login("rep.bjcy")
    me = await login.user("rep.bjcy")
    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).first()
    created = await client.post(
        "/api/opportunities",
        headers=rep,
        json={
            "customer_id": str(customer["id"]),
            "title": "主卧床垫+床架",
            "amount": "12999.50",
            "expected_close_date": "2026-12-20",
        },
    )
    assert created.status_code == 201, created.text
    opp = created.json()
    assert (opp["stage"], opp["owner_id"], opp["amount"]) == ("initial_contact", me["id"], "12999.50")
    path = f"/api/opportunities/{opp['id']}"
    for stage in ("needs_confirmed", "proposal", "negotiation"):
        moved = await client.post(f"{path}/stage", headers=rep, json={"stage": stage})
        assert moved.status_code == 200, moved.text
        assert moved.json()["stage"] == stage
    updated = await client.patch(path, headers=rep, json={"amount": "11800.00", "contract_end_date": None})
    assert updated.json()["amount"] == "11800.00"
    lost = await client.post(f"{path}/stage", headers=rep, json={"stage": "lost", "lost_reason": "选了别家"})
    assert lost.status_code == 200
    detail = (await client.get(path, headers=rep)).json()
    assert detail["stage_kind"] == "lost" and detail["lost_reason"] == "选了别家"
    history = detail["history"]
    assert [h["stage"] for h in history] == ["initial_contact", "needs_confirmed", "proposal", "negotiation", "lost"]
    assert all(h["left_at"] for h in history[:-1]) and history[-1]["left_at"] is None
    for earlier, later in itertools.pairwise(history):
        assert earlier["left_at"] == later["entered_at"]
    assert await StageHistory.count().where(StageHistory.opportunity_id == opp["id"]) == 5
    stages = (await client.get("/api/pipeline/stages", headers=rep)).json()
    assert [s["code"] for s in stages][:4] == ["initial_contact", "needs_confirmed", "proposal", "negotiation"]


async def test_task_views_and_commands(client, login, stores):
    rep = await login("rep.bjcy")
    me = await login.user("rep.bjcy")
    now = dt.datetime.now(dt.UTC)
    today = (await client.get("/api/tasks?view=today&limit=200", headers=rep)).json()["items"]
    overdue = (await client.get("/api/tasks?view=overdue&limit=200", headers=rep)).json()["items"]
    mine = (await client.get("/api/tasks?view=mine&limit=200", headers=rep)).json()["items"]
    assert overdue, "the demo gives rep.bjcy overdue tasks"
    assert {t["id"] for t in overdue} <= {t["id"] for t in today} <= {t["id"] for t in mine}
    assert all(t["overdue"] and dt.datetime.fromisoformat(t["due_at"]) < now for t in overdue)
    assert all(t["owner_id"] == me["id"] and t["status"] == "open" for t in mine)
    assert [t["due_at"] for t in mine] == sorted(t["due_at"] for t in mine)

    task = today[0]
    later = (now + dt.timedelta(days=2)).isoformat()
    snoozed = await client.post(f"/api/tasks/{task['id']}/snooze", headers=rep, json={"until": later})
    assert snoozed.status_code == 200
    assert dt.datetime.fromisoformat(snoozed.json()["due_at"]) > now + dt.timedelta(days=1)
    after = (await client.get("/api/tasks?view=today&limit=200", headers=rep)).json()["items"]
    assert task["id"] not in {t["id"] for t in after}

    rep2 = await login.user("rep2.bjcy")
    moved = await client.post(f"/api/tasks/{task['id']}/reassign", headers=rep, json={"owner_id": rep2["id"]})
    assert moved.json()["owner_id"] == rep2["id"]
    theirs = (await client.get("/api/tasks?view=mine&limit=200", headers=await login("rep2.bjcy"))).json()["items"]
    assert task["id"] in {t["id"] for t in theirs}
    done = await client.post(f"/api/tasks/{task['id']}/complete", headers=await login("rep2.bjcy"))
    assert done.json()["status"] == "done" and done.json()["completed_at"]


async def test_logged_interactions_appear_on_the_card(client, login, stores):
    rep = await login("rep.bjcy")
    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).first()
    customer_id = str(customer["id"])
    for kind, extra in [("visit", {"duration_seconds": 900}), ("call", {}), ("note", {"body": "想要灰色布艺沙发"})]:
        response = await client.post(
            "/api/interactions", headers=rep, json={"customer_id": customer_id, "kind": kind, **extra}
        )
        assert response.status_code == 201, response.text
    logged = response.json()
    assert logged["channel"] == "store" and logged["body"] == "想要灰色布艺沙发"
    card = (await client.get(f"/api/customers/{customer_id}", headers=rep)).json()
    kinds = [i["kind"] for i in card["interactions"][:3]]
    assert kinds == ["note", "call", "visit"]


async def test_every_write_takes_the_next_version_of_its_store(client, login, stores):
    rep = await login("rep.bjcy")
    scope = str(stores["BJ-CY"])
    other = str(stores["SH-PD"])
    before, other_before = await current_version(scope), await current_version(other)
    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).first()
    logged = await client.post(
        "/api/interactions", headers=rep, json={"customer_id": str(customer["id"]), "kind": "call"}
    )
    assert logged.status_code == 201
    assert await current_version(scope) == before + 1
    created = await client.post(
        "/api/opportunities", headers=rep, json={"customer_id": str(customer["id"]), "title": "版本", "amount": "1.00"}
    )
    assert await current_version(scope) == before + 3  # the opportunity and its first history row
    rows = await Order.raw("SELECT version FROM opportunities WHERE id = {}", created.json()["id"])
    assert rows[0]["version"] == before + 2
    assert await current_version(other) == other_before


async def test_health_and_openapi(client):
    health = await client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    spec = (await client.get("/schema/openapi.json")).json()
    for path in ("/api/auth/login", "/api/customers", "/api/customers/{customer_id}", "/api/tasks"):
        assert path in spec["paths"]
