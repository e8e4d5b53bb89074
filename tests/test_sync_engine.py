"""The phone's sync engine end to end: replicas (SQLite files) and engines talking to a real
`floorwalker serve` over HTTP — merges across devices, a moved rep, a revoked rep, live pokes,
a server outage, a refused stage move, head-office masking."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from mobile.engine import SyncEngine
from mobile.mutators import fetch_all, fetch_one
from mobile.replica import Replica
from shared import sync as proto
from shared.ids import uuid7

PASSWORD = "floorwalker"
STORE_TABLES = [spec.name for spec in proto.TABLES if spec.scope == "store"]


class Device:
    """One phone: a replica file and an engine, signed in as ``username`` against the live server."""

    def __init__(self, base_url: str, username: str, path, **engine_options: Any) -> None:
        self.base_url = base_url
        self.username = username
        self.path = path
        self.engine_options = engine_options
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)
        self.tokens: dict[str, Any] = {}
        self.refreshes = 0

    async def open(self) -> Device:
        reply = await self.http.post("/api/auth/login", json={"username": self.username, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        self.tokens = reply.json()
        self.user = self.tokens["user"]
        self.replica = Replica(self.path)
        self.replica.set_identity(self.user["id"], store_id=self.user["store_id"], role=self.user["role"])
        self.engine = SyncEngine(self.replica, self.base_url, self.token, **self.engine_options)
        return self

    async def token(self, refresh: bool) -> str:
        if refresh:
            self.refreshes += 1
            reply = await self.http.post("/api/auth/refresh", json={"refresh_token": self.tokens["refresh_token"]})
            reply.raise_for_status()  # a 401 here: the session is over (the engine signs out)
            self.tokens.update(reply.json())
        return self.tokens["access_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    async def sync(self, expect: str = "synced") -> None:
        status = await self.engine.sync()
        assert status.state == expect, status

    def one(self, sql: str, params: tuple | list = ()) -> dict[str, Any] | None:
        return fetch_one(self.replica.db, sql, params)

    def all(self, sql: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        return fetch_all(self.replica.db, sql, params)

    def customer(self, cid: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM customers WHERE id = ?", (cid,))

    async def close(self) -> None:
        await self.engine.aclose()
        self.replica.close()
        await self.http.aclose()


@pytest.fixture
async def devices(client, live_server, tmp_path):
    """``await devices("rep.bjcy", **engine_options)`` → an opened Device; all closed afterwards."""
    opened: list[Device] = []

    async def make(username: str, **options: Any) -> Device:
        device = await Device(live_server.url, username, tmp_path / f"{username}-{len(opened)}.db", **options).open()
        opened.append(device)
        return device

    yield make
    for device in opened:
        await device.close()


async def _server_login(base_url: str, username: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        reply = await http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return reply.json()


def _hlc() -> str:
    return proto.hlc_format(int(time.time() * 1000), 0, "direct")


async def _push(base_url: str, access_token: str, mutations: list[dict]) -> dict:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        reply = await http.post(
            "/api/sync/push",
            json={"client_id": str(uuid7()), "schema_version": proto.SCHEMA_VERSION, "mutations": mutations},
            headers={"Authorization": f"Bearer {access_token}"},
        )
    assert reply.status_code == 200, reply.text
    return reply.json()


async def _store_customers(store_id, offset: int) -> str:
    from server.customers.tables import Customer

    row = (
        await Customer.select(Customer.id)
        .where((Customer.store_id == store_id) & Customer.deleted.eq(False))
        .order_by(Customer.id)
        .offset(offset)
        .first()
    )
    return str(row["id"])


async def _fresh_customer(a: Device, b: Device, name: str) -> str:
    """A customer made on A and synced to both (its field clocks are this test's own: a stamp a
    capped fast clock left in the future on a seeded customer would make the order a coin toss)."""
    cid = str(a.replica.create_customer(name, city="北京"))
    await a.sync()
    await b.sync()
    assert a.customer(cid) is not None and b.customer(cid) is not None
    return cid


# --- 1. merges across devices ----------------------------------------------------------------------


async def test_two_devices_merge_fields_and_the_later_clock_wins_a_shared_field(devices, stores):
    from server.customers.tables import Customer
    from server.sync.tables import SyncConflict

    a = await devices("rep.bjcy")
    b = await devices("rep2.bjcy")
    cid = await _fresh_customer(a, b, "合并测试客户")

    # Offline: B edits the district and the address first; A then the e-mail and the address
    # (a later clock). A syncs first, so B's address arrives with an older clock and loses.
    b.replica.update_customer(cid, district="海淀区", address="B 写的地址 1 号")
    await asyncio.sleep(0.005)
    a.replica.update_customer(cid, email="li.na@example.com", address="A 写的地址 2 号")
    assert a.replica.pending_count() == 1 and b.replica.pending_count() == 1
    await a.sync()
    await b.sync()
    await a.sync()

    expected = {"email": "li.na@example.com", "district": "海淀区", "address": "A 写的地址 2 号"}
    server = (
        await Customer.select(Customer.email, Customer.district, Customer.address).where(Customer.id == cid).first()
    )
    assert server == expected
    for device in (a, b):
        row = device.customer(cid)
        assert {k: row[k] for k in expected} == expected, device.username
        assert device.replica.pending_count() == 0

    # The loser's phone shows the loss: the value kept, and who kept it (by name).
    losses = [c for c in b.engine.conflicts() if c.customer_id == cid]
    assert [(c.kind, c.field, c.my_value, c.kept_value) for c in losses] == [
        ("lost_field", "address", "B 写的地址 1 号", "A 写的地址 2 号")
    ]
    assert losses[0].kept_by == a.user["id"]
    assert losses[0].kept_by_name == a.user["display_name"] == "李娜"
    assert "李娜" in losses[0].message
    assert [c for c in a.engine.conflicts() if c.customer_id == cid] == []
    # ...and the store's conflict log (synced) holds it, on the server and on both phones.
    logged = await SyncConflict.select().where(SyncConflict.customer_id == cid)
    assert [(r["field"], r["winner_value"], r["loser_value"]) for r in logged] == [
        ("address", "A 写的地址 2 号", "B 写的地址 1 号")
    ]
    assert str(logged[0]["winner_user_id"]) == a.user["id"] and str(logged[0]["loser_user_id"]) == b.user["id"]
    for device in (a, b):
        rows = device.all("SELECT * FROM sync_conflicts WHERE customer_id = ?", (cid,))
        assert [(r["field"], r["winner_value"], r["loser_value"], r["winner_user_id"]) for r in rows] == [
            ("address", "A 写的地址 2 号", "B 写的地址 1 号", a.user["id"])
        ], device.username


async def test_when_the_loser_pushed_first_the_loss_reaches_it_through_the_synced_log(devices, stores):
    """The other order: the earlier clock reaches the server first and is applied; the later one
    replaces it. The loser's push was answered 'applied' with no loss; what tells it is the
    store's synced ``sync_conflicts`` row, which its conflict log turns into one entry."""
    from server.customers.tables import Customer

    a = await devices("rep.bjcy")
    b = await devices("rep2.bjcy")
    cid = await _fresh_customer(a, b, "先推后输客户")
    b.replica.update_customer(cid, address="B 的早地址")
    await asyncio.sleep(0.005)
    a.replica.update_customer(cid, address="A 的晚地址")
    await b.sync()  # the earlier clock first
    await a.sync()
    await b.sync()
    server = await Customer.select(Customer.address).where(Customer.id == cid).first()
    assert server["address"] == "A 的晚地址"
    assert a.customer(cid)["address"] == b.customer(cid)["address"] == "A 的晚地址"
    rows = b.all("SELECT * FROM sync_conflicts WHERE customer_id = ? AND loser_user_id = ?", (cid, b.user["id"]))
    assert [(r["field"], r["winner_value"], r["loser_value"]) for r in rows] == [
        ("address", "A 的晚地址", "B 的早地址")
    ]
    # The loser's phone shows the loss: the value kept, and who kept it (by name); the winner's not.
    losses = [c for c in b.engine.conflicts() if c.customer_id == cid]
    assert [(c.kind, c.field, c.my_value, c.kept_value, c.kept_by) for c in losses] == [
        ("lost_field", "address", "B 的早地址", "A 的晚地址", a.user["id"])
    ]
    assert losses[0].kept_by_name == a.user["display_name"] == "李娜"
    assert losses[0].kept_at == rows[0]["at"] and "李娜" in losses[0].message
    assert [c for c in a.engine.conflicts() if c.customer_id == cid] == []
    # Once only: later syncs and a fresh snapshot bring the row again, not a second entry.
    await b.sync()
    b.replica.reset()
    await b.sync()
    assert [c.id for c in b.engine.conflicts() if c.customer_id == cid] == [losses[0].id]


# --- 2. a moved rep ----------------------------------------------------------------------------------


async def test_a_moved_rep_drops_the_old_store_and_its_pending_edit_is_refused(devices, stores):
    from server.auth.tables import User
    from server.customers.tables import Customer

    device = await devices("rep2.bjcy")
    await device.sync()
    bjcy, shpd = str(stores["BJ-CY"]), str(stores["SH-PD"])
    assert device.one("SELECT count(*) AS n FROM customers WHERE store_id = ?", (bjcy,))["n"] > 0
    cid = await _store_customers(stores["BJ-CY"], 5)
    visit = device.replica.log_visit(cid, "搬走前的拜访")
    assert device.replica.pending_count() == 1
    try:
        await User.update({User.store_id: stores["SH-PD"]}).where(User.id == device.user["id"])
        await device.sync()  # pushes first (now out of scope: refused), then drops BJ-CY
    finally:
        await User.update({User.store_id: stores["BJ-CY"]}).where(User.id == device.user["id"])

    assert device.replica.pending_count() == 0 and device.engine.status.pending == 0
    for table in STORE_TABLES:
        left = device.one(f"SELECT count(*) AS n FROM {table} WHERE store_id != ?", (shpd,))["n"]
        assert left == 0, f"{table}: {left} rows of another store left on the moved rep's phone"
    expected = await Customer.count().where((Customer.store_id == stores["SH-PD"]) & Customer.deleted.eq(False))
    assert device.one("SELECT count(*) AS n FROM customers")["n"] == expected > 0
    assert device.one("SELECT 1 AS x FROM interactions WHERE id = ?", (str(visit),)) is None
    # The queued visit was pushed before the drop; the server refused it (the customer is out of
    # scope now) and the phone logged the refusal instead of crashing or dropping it silently.
    refused = [c for c in device.engine.conflicts() if c.mutation == "interaction.log"]
    assert len(refused) == 1 and refused[0].kind == "rejected" and "not found" in refused[0].reason
    from server.interactions.tables import Interaction

    assert await Interaction.count().where(Interaction.id == visit) == 0


# --- 3. a revoked rep --------------------------------------------------------------------------------


async def test_a_deactivated_rep_is_signed_out_and_the_phone_keeps_nothing(devices, stores, login, live_server):
    device = await devices("rep2.bjcy")
    await device.sync()
    cid = await _store_customers(stores["BJ-CY"], 6)
    device.replica.log_visit(cid, "停用前的拜访")
    old_client = device.replica.client_id
    number = device.one("SELECT number FROM customer_phones ORDER BY id LIMIT 1")["number"]
    manager = await _server_login(live_server.url, "manager.bjcy")
    auth = {"Authorization": f"Bearer {manager['access_token']}"}
    user_id = device.user["id"]
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        try:
            reply = await http.post(f"/api/users/{user_id}/deactivate", headers=auth)
            assert reply.status_code == 200, reply.text
            status = await device.engine.sync()
        finally:
            reply = await http.post(f"/api/users/{user_id}/activate", headers=auth)
            assert reply.status_code == 200, reply.text
            login.cache.pop("rep2.bjcy", None)  # its sessions were revoked: later tests log in afresh
    # The access token got 401, the refresh got 401 too: signed out, and nothing is left behind.
    assert device.refreshes == 1
    assert status.state == "signed_out" and status.pending == 0 and "sign in again" in status.last_error
    for spec in proto.TABLES:
        assert device.one(f"SELECT count(*) AS n FROM {spec.name}")["n"] == 0, spec.name
    assert device.replica.pending_count() == 0 and device.engine.conflicts() == []
    assert device.replica.cursor is None and device.replica.user_id is None
    assert device.replica.client_id != old_client
    # Not even in the file's free pages or its write-ahead log.
    files = [device.path, device.path.with_name(device.path.name + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert number.encode() not in raw and "停用前的拜访".encode() not in raw
    # Signing in again (reactivated) starts a fresh replica in the same file.
    await device.engine.aclose()
    device.replica.close()
    await device.open()
    await device.sync()
    assert device.one("SELECT count(*) AS n FROM customers")["n"] > 0


# --- 4. pokes ------------------------------------------------------------------------------------------


async def test_a_listening_phone_pulls_on_a_poke_without_calling_sync(devices, stores, live_server):
    device = await devices("rep.bjcy")
    await device.sync()
    listener = asyncio.create_task(device.engine.listen())
    try:
        for _ in range(100):
            if device.engine.connected:
                break
            await asyncio.sleep(0.05)
        assert device.engine.connected
        await asyncio.sleep(0.3)  # the first pokes (every scope's version) come and go
        other = await _server_login(live_server.url, "rep2.bjcy")
        cid = await _store_customers(stores["BJ-CY"], 7)
        visit = str(uuid7())
        mutation = {
            "id": 1,
            "name": "interaction.log",
            "hlc": _hlc(),
            "args": {"id": visit, "customer_id": cid, "kind": "call", "body": "别人记的电话"},
        }
        rounds = device.engine.rounds
        answer = await _push(live_server.url, other["access_token"], [mutation])
        assert answer["results"][0]["status"] == "applied", answer
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            if device.one("SELECT 1 AS x FROM interactions WHERE id = ?", (visit,)):
                break
            await asyncio.sleep(0.02)
        assert device.one("SELECT body FROM interactions WHERE id = ?", (visit,)) == {"body": "别人记的电话"}, (
            "the listening phone did not pull the change within 2 s"
        )
        assert device.engine.rounds > rounds
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def test_the_poke_stream_carries_only_the_callers_scopes(stores, live_server):
    shpd = await _server_login(live_server.url, "rep.shpd")
    bjcy = await _server_login(live_server.url, "rep2.bjcy")
    pokes: list[dict] = []

    async def read(response: httpx.Response) -> None:
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "poke":
                pokes.append(json.loads(line[5:].strip()))

    async def wait_for(predicate, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(0.02)
        return predicate()

    headers = {"Authorization": f"Bearer {shpd['access_token']}", "Accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(base_url=live_server.url, timeout=httpx.Timeout(10, read=60)) as http,
        http.stream("GET", "/api/sync/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(read(response))
        try:
            user = (await http.get("/api/auth/me", headers=headers)).json()
            mine = {proto.ORG_SCOPE, proto.CATALOG_SCOPE, str(stores["SH-PD"]), proto.user_scope(user["id"])}
            assert await wait_for(lambda: {p["scope"] for p in pokes} >= mine, 3.0), pokes
            assert {p["scope"] for p in pokes} == mine  # every scope's version first, and only those
            first = {p["scope"]: p["version"] for p in pokes}
            # A change in BJ-CY: this stream must stay silent.
            cid = await _store_customers(stores["BJ-CY"], 8)
            args = {"id": str(uuid7()), "customer_id": cid, "kind": "note", "body": "北京的备注"}
            await _push(
                live_server.url,
                bjcy["access_token"],
                [{"id": 1, "name": "interaction.log", "hlc": _hlc(), "args": args}],
            )
            await asyncio.sleep(1.5)  # three poll periods of the poke hub
            assert {p["scope"] for p in pokes} == mine, pokes
            # A change in SH-PD (the control): poked, with the scope's new version.
            cid = await _store_customers(stores["SH-PD"], 8)
            args = {"id": str(uuid7()), "customer_id": cid, "kind": "note", "body": "上海的备注"}
            await _push(
                live_server.url,
                shpd["access_token"],
                [{"id": 1, "name": "interaction.log", "hlc": _hlc(), "args": args}],
            )
            shpd_scope = str(stores["SH-PD"])
            assert await wait_for(
                lambda: any(p["scope"] == shpd_scope and p["version"] > first[shpd_scope] for p in pokes), 2.0
            ), pokes
            assert str(stores["BJ-CY"]) not in {p["scope"] for p in pokes}
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader


async def test_a_change_made_by_another_process_pokes_within_a_second(stores, live_server, client, login):
    """The poke hub watches the database's change counters, so a write by any process — here the
    test's own in-process app, standing in for another API worker or the scheduler — reaches a
    phone listening on the live server."""
    bjcy = await _server_login(live_server.url, "rep.bjcy")
    pokes: list[tuple[float, dict]] = []

    async def read(response: httpx.Response) -> None:
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "poke":
                pokes.append((time.monotonic(), json.loads(line[5:].strip())))

    headers = {"Authorization": f"Bearer {bjcy['access_token']}", "Accept": "text/event-stream"}
    scope = str(stores["BJ-CY"])
    async with (
        httpx.AsyncClient(base_url=live_server.url, timeout=httpx.Timeout(10, read=60)) as http,
        http.stream("GET", "/api/sync/events", headers=headers) as response,
    ):
        reader = asyncio.create_task(read(response))
        try:
            for _ in range(150):  # the first pokes: every scope's version
                if any(p["scope"] == scope for _, p in pokes):
                    break
                await asyncio.sleep(0.02)
            before = max(p["version"] for _, p in pokes if p["scope"] == scope)
            cid = await _store_customers(stores["BJ-CY"], 8)
            other_process = await login("rep2.bjcy")
            written = time.monotonic()
            reply = await client.post(
                "/api/interactions",
                json={"customer_id": cid, "kind": "call", "body": "另一个进程写的"},
                headers=other_process,
            )
            assert reply.status_code == 201, reply.text
            while time.monotonic() < written + 2:
                late = [t for t, p in pokes if p["scope"] == scope and p["version"] > before]
                if late:
                    assert late[0] - written < 1.0, f"poke after {late[0] - written:.2f} s"
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(f"no poke for a change made by another process: {pokes}")
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader


# --- 5. server down ------------------------------------------------------------------------------------


async def _no_sleep(seconds: float) -> None:
    return None


async def test_edits_made_while_the_server_is_down_arrive_exactly_once(devices, stores, live_server):
    from server.interactions.tables import Interaction
    from server.sync.tables import SyncMutation
    from server.tasks.tables import Task

    device = await devices("rep.bjcy", max_attempts=2, sleep=_no_sleep)
    await device.sync()
    cid = await _store_customers(stores["BJ-CY"], 9)
    task = device.one(
        "SELECT id FROM tasks WHERE owner_id = ? AND status = 'open' ORDER BY id LIMIT 1", (device.user["id"],)
    )
    assert task is not None
    live_server.stop()
    try:
        visit = device.replica.log_visit(cid, "断网时的拜访")
        device.replica.complete_task(task["id"])
        assert device.engine.status.state == "pending" and device.engine.status.pending == 2
        status = await device.engine.sync()
        assert status.state == "offline" and status.pending == 2, status
        assert "no connection" in status.last_error
        # Still shown on the phone while it waits.
        assert device.one("SELECT 1 AS x FROM interactions WHERE id = ?", (str(visit),))
        assert device.one("SELECT status FROM tasks WHERE id = ?", (task["id"],)) == {"status": "done"}
    finally:
        live_server.start()
    await device.sync()
    assert device.engine.status.pending == 0 and device.replica.pending_count() == 0
    assert await Interaction.count().where(Interaction.id == visit) == 1
    done = await Task.select(Task.status, Task.completed_at).where(Task.id == task["id"]).first()
    assert done["status"] == "done" and done["completed_at"] is not None
    answers = await SyncMutation.select(SyncMutation.mutation_id, SyncMutation.name, SyncMutation.status).where(
        SyncMutation.client_id == device.replica.client_id
    )
    assert sorted((r["mutation_id"], r["name"], r["status"]) for r in answers) == [
        (1, "interaction.log", "applied"),
        (2, "task.complete", "applied"),
    ]
    # Another round sends nothing again.
    await device.sync()
    assert await Interaction.count().where(Interaction.id == visit) == 1
    assert len(await SyncMutation.select().where(SyncMutation.client_id == device.replica.client_id)) == 2


# --- 6. a refused stage move ---------------------------------------------------------------------------


async def test_a_stage_move_refused_by_the_server_shows_the_servers_row_and_reason(devices, stores):
    from server.opportunities.tables import Opportunity

    rep = await devices("rep.bjcy")
    manager = await devices("manager.bjcy")
    await rep.sync()
    cid = await _store_customers(stores["BJ-CY"], 10)
    deal = rep.replica.create_opportunity(cid, "整套沙发", amount="12800")
    await rep.sync()
    await manager.sync()
    assert manager.one("SELECT 1 AS x FROM opportunities WHERE id = ?", (str(deal),))
    # The manager closes it as lost (with a reason) and syncs; the rep, offline, moves it to won.
    manager.replica.move_opportunity(deal, "lost", lost_reason="客户选了别家")
    await manager.sync()
    rep.replica.move_opportunity(deal, "won")
    won = rep.one("SELECT id FROM pipeline_stages WHERE code = 'won'")["id"]
    lost = rep.one("SELECT id FROM pipeline_stages WHERE code = 'lost'")["id"]
    assert rep.one("SELECT stage_id FROM opportunities WHERE id = ?", (str(deal),))["stage_id"] == won
    await rep.sync()
    row = rep.one("SELECT stage_id, lost_reason, closed_at FROM opportunities WHERE id = ?", (str(deal),))
    assert row["stage_id"] == lost and row["lost_reason"] == "客户选了别家" and row["closed_at"]
    server = (
        await Opportunity.select(Opportunity.stage_id, Opportunity.lost_reason).where(Opportunity.id == deal).first()
    )
    assert str(server["stage_id"]) == lost and server["lost_reason"] == "客户选了别家"
    refused = [c for c in rep.engine.conflicts() if c.row_id == str(deal)]
    assert len(refused) == 1
    assert refused[0].kind == "rejected" and refused[0].mutation == "opportunity.move"
    assert "already closed" in refused[0].reason and refused[0].field == "stage"
    assert rep.replica.pending_count() == 0 and rep.engine.status.state == "synced"


# --- 7. head office ------------------------------------------------------------------------------------


async def test_head_office_phones_hold_masked_numbers_and_no_addresses(devices, stores):
    from server.customers.tables import CustomerPhone

    device = await devices("region.north")
    await device.sync()
    north = {str(stores[code]) for code in ("BJ-CY", "BJ-HD", "TJ-HP")}
    seen = {r["store_id"] for r in device.all("SELECT DISTINCT store_id FROM customers")}
    assert seen == north
    phones = device.all("SELECT number, digits FROM customer_phones")
    expected = await CustomerPhone.count().where(
        CustomerPhone.store_id.is_in([uuid.UUID(s) for s in north]) & CustomerPhone.deleted.eq(False)
    )
    assert len(phones) == expected > 0
    for phone in phones:
        assert "*" in phone["number"] and not phone["number"].startswith("+"), phone
        assert phone["digits"] == "", phone
    full = [r["number"] for r in await CustomerPhone.select(CustomerPhone.number).limit(20)]
    held = {p["number"] for p in phones}
    assert not held & set(full)
    addresses = device.all("SELECT DISTINCT address FROM customers")
    assert addresses == [{"address": ""}]


async def test_a_rep_phone_holds_full_numbers_and_addresses(devices, stores):
    """The contrast to head office: frontline staff call their customers."""
    device = await devices("rep.shpd")
    await device.sync()
    phones = device.all("SELECT number, digits FROM customer_phones LIMIT 50")
    assert phones and all(p["number"].startswith("+") and p["digits"] for p in phones)
    assert device.one("SELECT count(*) AS n FROM customers WHERE address != ''")["n"] > 0


async def test_a_merge_reaches_the_phone_and_an_edit_queued_for_the_merged_away_customer_lands_on_the_survivor(
    devices, stores
):
    """Two records of one person on the phone; the server merges them (an import, a manager's
    review) while the phone has a visit queued for the one merged away. After one sync the phone
    holds one customer, the old id opens the survivor's card, and the visit is the survivor's on
    the server too. Undoing the merge brings both back to the phone."""
    from mobile import queries
    from server.customers.tables import Customer
    from server.imports import merging
    from server.imports.tables import CustomerAlias, CustomerMerge
    from server.interactions.tables import Interaction

    phone = await devices("rep.bjcy")
    await phone.sync()
    survivor = str(phone.replica.create_customer("合并测试甲", phone="13931725864", city="北京"))
    merged = str(phone.replica.create_customer("合并测试甲", phone="13931726604", city="北京"))
    await phone.sync()
    visit = str(phone.replica.log_visit(merged, "离线时记的到店"))  # queued, not pushed yet
    merge_id = await merging.merge(uuid.UUID(survivor), uuid.UUID(merged), decided_by="user:test")
    try:
        await phone.sync()
        assert phone.customer(merged) is None and phone.customer(survivor) is not None
        alias = phone.one("SELECT survivor_id FROM customer_aliases WHERE id = ?", (merged,))
        assert alias == {"survivor_id": survivor}
        card = queries.customer_card(phone.replica, merged, unmask=True)
        assert card is not None and card.profile["id"] == survivor  # the old id opens the survivor
        assert sorted(p.number for p in card.phones) == ["+8613931725864", "+8613931726604"]
        row = await Interaction.select().where(Interaction.id == uuid.UUID(visit)).first()
        assert str(row["customer_id"]) == survivor  # the queued visit landed on the survivor
        assert phone.one("SELECT customer_id FROM interactions WHERE id = ?", (visit,)) == {"customer_id": survivor}

        await merging.undo(merge_id, by="user:test")
        await phone.sync()
        assert phone.customer(merged) is not None
        assert phone.one("SELECT id FROM customer_aliases WHERE id = ?", (merged,)) is None
    finally:
        await Interaction.delete().where(Interaction.customer_id.is_in([uuid.UUID(survivor), uuid.UUID(merged)]))
        await CustomerMerge.delete().where(CustomerMerge.id == merge_id)
        await CustomerAlias.delete().where(CustomerAlias.id == uuid.UUID(merged))
        await Customer.delete().where(Customer.id.is_in([uuid.UUID(survivor), uuid.UUID(merged)]))
