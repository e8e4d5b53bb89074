"""The phone app's state (``mobile.state.AppState``) driven without a renderer, the way its screens
drive it, against a real `floorwalker serve`: sign-in and the remembered session, Today, customer
search and filters, the customer card's quick actions, the opportunity page, messages, sync with
the server down, sign-out, and the store scope of another city's rep.

Each ``AppState`` has its own replica file under the test's temporary folder and no poke stream
(``live=False``); routes and ``tel:`` links are recorded in lists. The server is checked over HTTP
with the rep's own token, and the exactly-once delivery of each queued edit in the server's
per-device answer log (``sync_mutations``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest

from mobile import times
from mobile.mutators import fetch_all, fetch_one
from mobile.replica import Replica
from mobile.session import FileCredentials
from mobile.state import FILTERS, TASK_GROUPS, AppState, Device, replica_path
from shared.enums import LOGGABLE_INTERACTIONS, ValueTier

PASSWORD = "floorwalker"
TZ = ZoneInfo("Asia/Shanghai")  # the demo stores' time zone


# --- an app on a phone ------------------------------------------------------------------------------


@dataclasses.dataclass
class Phone:
    """One app: its state, the credentials file, where its replicas live, and what it asked the
    platform to do (routes navigated to, ``tel:`` links launched)."""

    state: AppState
    credentials: Path
    root: Path
    routes: list[str]
    launched: list[str]

    @property
    def replica_file(self) -> Path:
        assert self.state.user is not None
        return replica_path(self.state.server_url, self.state.user.username, self.root)


def make_phone(
    server_url: str, folder: Path, credentials: Path | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> Phone:
    routes: list[str] = []
    launched: list[str] = []
    credentials = credentials or folder / "cred.json"
    state = AppState(server_url=server_url).attach(
        FileCredentials(credentials),
        root=folder / "app",
        live=False,
        navigate=routes.append,
        launch=launched.append,
        transport=transport,
    )
    return Phone(state, credentials, folder / "app", routes, launched)


async def sign_in(server_url: str, folder: Path, username: str = "rep.bjcy") -> Phone:
    phone = make_phone(server_url, folder)
    await phone.state.start()
    assert phone.state.phase == "login"
    phone.state.username, phone.state.password = username, PASSWORD
    await phone.state.login()
    assert phone.state.phase == "ready", phone.state.login_error
    return phone


async def settle(state: AppState) -> None:
    """Let the edits of the last test reach the server, and put the screens back at rest."""
    await state.sync_now()
    assert state.sync_state == "synced" and state.pending == 0, (state.sync_state, state.sync_error)
    state.set_locale("zh")
    state.search("")
    state.filters = []
    state.go("/")
    state.draft_text = state.draft_amount = ""
    state.draft_due, state.draft_stage = "tomorrow", None


async def until(condition, rounds: int = 500) -> None:
    """Let the event loop run until ``condition()`` holds (a bounded wait, not a timing check)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition()


def no_device_left(root: Path) -> None:
    left = [path for path in Device._open if root in path.parents]
    assert not left, f"devices left open: {left}"


@pytest.fixture
async def phones(live_server, tmp_path):
    """``await phones(username)`` → a Phone signed in on the live server in its own folder;
    ``phones.new(url)`` → one not signed in. All closed afterwards."""
    made: list[Phone] = []

    class Factory:
        async def __call__(self, username: str = "rep.bjcy", url: str | None = None) -> Phone:
            phone = await sign_in(url or live_server.url, tmp_path / f"phone-{len(made)}", username)
            made.append(phone)
            return phone

        def new(self, url: str | None = None, credentials: Path | None = None) -> Phone:
            phone = make_phone(url or live_server.url, tmp_path / f"phone-{len(made)}", credentials)
            made.append(phone)
            return phone

    yield Factory()
    for phone in made:
        await phone.state.close()
    no_device_left(tmp_path)


@pytest.fixture(scope="module")
async def rep_phone(live_server, tmp_path_factory):
    """rep.bjcy signed in once for this module (the first sync is the expensive part)."""
    folder = tmp_path_factory.mktemp("rep-phone")
    phone = await sign_in(live_server.url, folder)
    try:
        yield phone
    finally:
        await phone.state.close()
        no_device_left(folder)


@pytest.fixture
async def rep(rep_phone) -> Phone:
    await settle(rep_phone.state)
    rep_phone.routes.clear()
    rep_phone.launched.clear()
    return rep_phone


# --- the server, as the rep sees it over HTTP ----------------------------------------------------------


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self.tokens: dict[str, str] = {}

    async def headers(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
                reply = await http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            assert reply.status_code == 200, reply.text
            self.tokens[username] = reply.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def request(self, method: str, path: str, username: str = "rep.bjcy", **kw: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            reply = await http.request(method, path, headers=await self.headers(username), **kw)
        assert reply.status_code == 200, f"{method} {path}: {reply.status_code} {reply.text}"
        return reply.json()

    async def get(self, path: str, username: str = "rep.bjcy", **kw: Any) -> Any:
        return await self.request("GET", path, username, **kw)

    async def interaction_ids(self, customer_id: str) -> list[str]:
        items = await self.get("/api/interactions", params={"customer_id": customer_id, "limit": 200})
        return [i["id"] for i in items]


@pytest.fixture(scope="module")
def api(live_server) -> Api:
    return Api(live_server.url)


async def applied_once(state: AppState, mutation_ids: list[int]) -> None:
    """The server answered each of these mutations of this phone exactly once, and applied it."""
    from server.sync.tables import SyncMutation

    rows = await SyncMutation.select(SyncMutation.mutation_id, SyncMutation.status).where(
        (SyncMutation.client_id == state.replica.client_id) & SyncMutation.mutation_id.is_in(mutation_ids)
    )
    assert sorted((r["mutation_id"], r["status"]) for r in rows) == [(i, "applied") for i in sorted(mutation_ids)]


# --- the replica, read without the app's queries -----------------------------------------------------


def own_customer(state: AppState, slot: int) -> str:
    """The rep's ``slot``-th own demo customer (one with a phone and a purchase: not one another
    test made), newest id first: each test that changes a customer takes its own slot (other test
    modules pick store customers from the oldest ids)."""
    assert state.user is not None
    row = fetch_one(
        state.replica.db,
        "SELECT c.id FROM customers c WHERE c.owner_id = ? "
        "AND EXISTS (SELECT 1 FROM customer_phones p WHERE p.customer_id = c.id) "
        "AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id) "
        "ORDER BY c.id DESC LIMIT 1 OFFSET ?",
        (str(state.user.id), slot),
    )
    assert row is not None, f"rep has fewer than {slot + 1} customers"
    return row["id"]


def queued(state: AppState, before: set[int]) -> list[Any]:
    """Outbox entries queued since ``before`` (a set of entry ids)."""
    return [e for e in state.replica.pending() if e.id not in before]


def outbox_ids(state: AppState) -> set[int]:
    return {e.id for e in state.replica.pending()}


def work_list(state: AppState) -> list[Any]:
    """Today's tasks from the end of the list (the last group first): the tests complete and
    snooze from this end, so the first groups (stage reminders) stay for the screens' checks."""
    return [t for _, tasks in reversed(state.today()) for t in reversed(tasks)]


def today_ids(state: AppState) -> list[str]:
    return [t.id for _, tasks in state.today() for t in tasks]


def today_task(state: AppState, task_id: str):
    return next((t for _, tasks in state.today() for t in tasks if t.id == task_id), None)


def all_by_name(state: AppState) -> list[str]:
    return [r["id"] for r in fetch_all(state.replica.db, "SELECT id FROM customers ORDER BY name, id")]


LIMIT = 50  # the customer list shows at most this many


# --- 1. sign in ------------------------------------------------------------------------------------------


async def test_login_needs_both_fields_and_says_what_the_server_said(phones):
    phone = phones.new()
    state = phone.state
    await state.start()
    assert state.phase == "login" and state.user is None
    state.username = "rep.bjcy"
    await state.login()
    assert state.login_error == state.tr("login.missing") and state.phase == "login"
    state.password = "not-the-password"
    await state.login()
    assert state.phase == "login" and not state.busy
    assert state.login_error == state.tr("login.failed", message="wrong username or password")
    assert not phone.credentials.exists() and phone.routes == []


async def test_login_to_an_unreachable_server_says_it_cannot_connect(phones):
    from tests.live import free_port

    phone = phones.new(url=f"http://127.0.0.1:{free_port()}")
    await phone.state.start()
    phone.state.username, phone.state.password = "rep.bjcy", PASSWORD
    await phone.state.login()
    assert phone.state.phase == "login"
    assert phone.state.login_error.startswith(phone.state.tr("login.offline", message=""))
    assert not phone.credentials.exists()


async def test_login_downloads_the_store_and_remembers_the_user(phones, live_server, stores):
    phone = await phones("rep.bjcy")
    state = phone.state
    assert state.phase == "ready" and state.route == "/" and phone.routes == ["/"]
    assert state.password == "" and state.login_error is None and not state.busy
    assert state.user.username == "rep.bjcy" and state.user.display_name == "李娜"
    assert state.sync_state == "synced" and state.pending == 0 and state.last_synced_at
    assert state.hits() and state.today() and state.stages()
    assert {h.store_id for h in state.hits()} == {str(stores["BJ-CY"])}
    saved = await FileCredentials(phone.credentials).load()
    assert saved is not None and saved.user.username == "rep.bjcy" and saved.server_url == live_server.url
    assert saved.refresh_token
    assert phone.replica_file.exists() and phone.replica_file.parent.parent == phone.root

    # The app opened again (same credentials, same folder): straight into 'ready', nothing typed.
    await state.close()
    again = make_phone(live_server.url, phone.root.parent)
    try:
        await again.state.start()
        assert again.state.phase == "ready" and again.state.username == "rep.bjcy"
        assert again.state.user.id == saved.user.id
        assert {h.id for h in again.state.hits()} == {h.id for h in state.hits()}
        await again.state.sync_now()
        assert again.state.sync_state == "synced"
    finally:
        await again.state.close()


@pytest.fixture(scope="module")
def own_server(demo, tmp_path_factory):
    """A second `floorwalker serve` on the session's database, for tests that stop the server
    (the shared one stays up for everyone else)."""
    from tests.conftest import DATABASE_URL
    from tests.live import LiveServer

    server = LiveServer(DATABASE_URL, tmp_path_factory.mktemp("own-server")).start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.tracebacks(), server.tracebacks()[-4000:]


async def test_a_remembered_user_opens_the_app_offline(own_server, tmp_path):
    phone = await sign_in(own_server.url, tmp_path)
    shown = today_ids(phone.state)
    card_id = phone.state.hits()[0].id
    await phone.state.close()
    own_server.stop()
    again = make_phone(own_server.url, tmp_path)
    try:
        await again.state.start()
        assert again.state.phase == "ready" and again.state.user.username == "rep.bjcy"
        # The replica is on the phone: today's work and the cards read without the server.
        assert shown and today_ids(again.state) == shown
        assert again.state.card(card_id) is not None
        await again.state.sync_now()
        assert again.state.sync_state == "offline" and again.state.sync_error
        assert again.state.phase == "ready"
    finally:
        await again.state.close()
        own_server.start()


async def test_a_session_the_server_refuses_signs_the_phone_out_and_forgets_it(phones, live_server):
    """The stored refresh token no longer works (revoked, expired): the phone wipes its replica,
    goes back to the login screen — and does not open as signed in next time."""
    phone = await phones("rep.bjcy")
    await phone.state.close()
    store = FileCredentials(phone.credentials)
    saved = await store.load()
    await store.save(msgspec.structs.replace(saved, refresh_token="revoked-" + saved.refresh_token[:8]))

    again = make_phone(live_server.url, phone.root.parent)
    try:
        await again.state.start()
        assert again.state.phase == "ready"  # offline-first: opened before the server was asked
        await again.state.sync_now()
        await until(lambda: again.state._device is None)  # it lets go of the device in a task of its own
        assert again.state.phase == "login" and again.state.user is None
        assert again.state.sync_state == "signed_out"
        assert again.state.login_error.startswith(again.state.tr("sync.signed_out"))
        replica = Replica(replica_path(live_server.url, "rep.bjcy", again.root))
        try:
            assert replica.user_id is None and replica.pending_count() == 0
            assert fetch_one(replica.db, "SELECT count(*) AS n FROM customers")["n"] == 0
        finally:
            replica.close()
    finally:
        await again.state.close()
    # Opened once more: the refused session must not come back as a signed-in (empty) phone.
    third = make_phone(live_server.url, phone.root.parent)
    try:
        await third.state.start()
        assert third.state.phase == "login", "the refused session was still stored and opened again"
    finally:
        await third.state.close()


# --- 2. today ------------------------------------------------------------------------------------------


async def test_today_shows_the_reps_open_tasks_due_by_the_end_of_the_local_day(rep):
    state = rep.state
    groups = state.today()
    kinds = [kind for kind, _ in groups]
    assert kinds and kinds == [k for k in TASK_GROUPS if k in kinds], "groups in the screen's order"
    now = state.now()
    end_of_day = dt.datetime.combine(now.astimezone(TZ).date() + dt.timedelta(days=1), dt.time(), TZ)
    rows = fetch_all(
        state.replica.db,
        "SELECT id, due_at FROM tasks WHERE owner_id = ? AND status = 'open'",
        (str(state.user.id),),
    )
    expected = {r["id"] for r in rows if times.parse(r["due_at"]) < end_of_day}
    assert set(today_ids(state)) == expected and len(today_ids(state)) == len(expected)
    assert any(t.overdue for _, tasks in groups for t in tasks)
    for kind, tasks in groups:
        assert tasks and all(t.kind == kind and t.status == "open" for t in tasks)
        assert [t.due_at for t in tasks] == sorted(t.due_at for t in tasks)
        for t in tasks:
            assert t.overdue == (times.parse(t.due_at) < now), t


async def test_completing_a_task_takes_it_off_today_and_reaches_the_server_once(rep, api):
    state = rep.state
    task = work_list(state)[0]
    before = outbox_ids(state)
    assert state.complete_task(task) is True
    assert task.id not in today_ids(state)
    assert state.pending == 1 and state.sync_state == "pending"
    assert state.toast == state.tr("today.done", title=task.title)
    [entry] = queued(state, before)
    assert entry.name == "task.complete" and entry.args["task_id"] == task.id
    # Completing it again is refused: it is no longer open.
    assert state.complete_task(task) is False and state.sheet_error and queued(state, before) == [entry]

    await state.sync_now()
    assert state.pending == 0 and state.sync_state == "synced"
    assert task.id not in today_ids(state)
    server = await api.get(f"/api/tasks/{task.id}")
    assert server["status"] == "done" and server["completed_at"]
    await applied_once(state, [entry.id])


async def test_snoozing_an_hour_keeps_the_task_today_unless_that_crosses_midnight(rep, api):
    state = rep.state
    task = next(t for t in work_list(state) if t.overdue)
    before = outbox_ids(state)
    earliest = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert state.snooze_task(task, "1h") is True
    latest = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert state.pending == 1 and state.toast == state.tr("today.snoozed", title=task.title)
    [entry] = queued(state, before)
    assert entry.name == "task.snooze" and entry.args["task_id"] == task.id
    due = times.parse(fetch_one(state.replica.db, "SELECT due_at FROM tasks WHERE id = ?", (task.id,))["due_at"])
    assert earliest.replace(microsecond=0) <= due <= latest
    shown = today_task(state, task.id)
    if due.astimezone(TZ).date() == state.now().astimezone(TZ).date():
        assert shown is not None and not shown.overdue and shown.due_at != task.due_at
    else:
        assert shown is None

    await state.sync_now()
    assert state.pending == 0
    server = await api.get(f"/api/tasks/{task.id}")
    assert server["status"] == "open" and times.parse(server["due_at"]) == due
    await applied_once(state, [entry.id])


async def test_snoozing_until_tomorrow_takes_the_task_off_today(rep, api):
    state = rep.state
    task = next(t for t in work_list(state) if t.overdue)
    before = outbox_ids(state)
    day = state.now().astimezone(TZ).date()
    assert state.snooze_task(task, "tomorrow") is True
    assert task.id not in today_ids(state) and state.pending == 1
    [entry] = queued(state, before)
    due = times.parse(entry.args["until"])
    if state.now().astimezone(TZ).date() == day:  # not across midnight while the test ran
        assert due == dt.datetime.combine(day + dt.timedelta(days=1), dt.time(10), TZ)

    await state.sync_now()
    assert task.id not in today_ids(state)
    server = await api.get(f"/api/tasks/{task.id}")
    assert server["status"] == "open" and times.parse(server["due_at"]) == due
    await applied_once(state, [entry.id])


# --- 3. customers ----------------------------------------------------------------------------------------


async def test_search_by_a_name_fragment_finds_exactly_the_names_containing_it(rep):
    state = rep.state
    names = {r["id"]: r["name"] for r in fetch_all(state.replica.db, "SELECT id, name FROM customers")}
    fragment = names[own_customer(state, 0)][-1]  # a given name's last character
    state.search(fragment)
    hits = state.hits()
    expected = [cid for cid in all_by_name(state) if fragment in names[cid]][:LIMIT]
    assert hits and [h.id for h in hits] == expected
    assert all(fragment in h.name for h in hits)
    state.search("")
    assert len(state.hits()) == min(LIMIT, len(names))


async def test_search_by_four_phone_digits_finds_the_customers_with_such_a_number(rep):
    state = rep.state
    phones = fetch_all(state.replica.db, "SELECT customer_id, number, digits FROM customer_phones")
    target = own_customer(state, 1)
    number = next(p for p in phones if p["customer_id"] == target)
    fragment = number["digits"][-4:]
    state.search(fragment)
    hits = state.hits()
    having = {p["customer_id"] for p in phones if fragment in p["digits"]}
    assert target in {h.id for h in hits}
    assert [h.id for h in hits] == [cid for cid in all_by_name(state) if cid in having][:LIMIT]
    # A rep's list shows the full primary number.
    shown = next(h for h in hits if h.id == target)
    assert shown.phone and shown.phone.startswith("+") and "*" not in shown.phone
    # Typed with spaces, as people read numbers out.
    state.search(f"{fragment[:2]} {fragment[2:]}")
    assert [h.id for h in state.hits()] == [h.id for h in hits]


def _filter_predicates(state: AppState) -> dict[str, Any]:
    now = state.now()
    month_ago = now - dt.timedelta(days=30)

    def contacted(card) -> bool:
        return any(
            i.kind in LOGGABLE_INTERACTIONS and times.parse(i.occurred_at) >= month_ago for i in card.interactions
        )

    return {
        "mine": lambda card: card.profile["owner_id"] == str(state.user.id),
        "high_value": lambda card: card.value.tier == ValueTier.HIGH,
        "open_opportunity": lambda card: any(o.stage_kind == "open" for o in card.opportunities),
        "not_contacted": lambda card: not contacted(card),
        # the list's SQL and the card's standing (shared/segments.py) name the same customers
        "win_back": lambda card: card.value.standing.win_back,
    }


@pytest.mark.parametrize("name", FILTERS)
async def test_each_customer_filter_keeps_exactly_the_customers_it_names(rep, name):
    state = rep.state
    everyone = [h.id for h in state.hits()]
    keep = _filter_predicates(state)[name]
    expected = [cid for cid in all_by_name(state) if keep(state.card(cid))]
    state.toggle_filter(name)
    assert list(state.filters) == [name]
    hits = [h.id for h in state.hits()]
    assert hits == expected[:LIMIT], name
    assert 0 < len(expected) < len(all_by_name(state)), f"the demo data does not exercise {name!r}"
    state.toggle_filter(name)
    assert list(state.filters) == [] and [h.id for h in state.hits()] == everyone


async def test_filters_combine_and_an_unknown_filter_is_refused(rep):
    state = rep.state
    keep = _filter_predicates(state)
    expected = [
        cid for cid in all_by_name(state) if keep["mine"](state.card(cid)) and keep["open_opportunity"](state.card(cid))
    ]
    state.toggle_filter("mine")
    state.toggle_filter("open_opportunity")
    assert [h.id for h in state.hits()] == expected[:LIMIT] and expected
    state.toggle_filter("mine")
    assert list(state.filters) == ["open_opportunity"]
    with pytest.raises(ValueError):
        state.toggle_filter("vip")


async def test_opening_a_customer_and_calling_them(rep):
    state = rep.state
    cid = own_customer(state, 2)
    state.open_customer(cid)
    assert state.route == f"/customers/{cid}" and rep.routes == [f"/customers/{cid}"]
    card = state.card(cid)
    number = card.phones[0].number
    await state.call(number)
    assert rep.launched == [f"tel:{re.sub(r'[^0-9+]', '', number)}"] and rep.launched[0].startswith("tel:+86")


# --- 4. the card -----------------------------------------------------------------------------------------


async def test_the_card_shows_the_customer_with_full_numbers_for_a_rep(rep, api, stores):
    state = rep.state
    cid = next(
        cid
        for cid in (own_customer(state, n) for n in range(40))
        if state.card(cid).orders and state.card(cid).interactions
    )
    card = state.card(cid)
    server = await api.get(f"/api/customers/{cid}")
    assert card.profile["name"] == server["profile"]["name"]
    assert card.profile["store_code"] == "BJ-CY" and card.profile["owner_name"] == "李娜"
    assert state.unmask and card.phones
    for phone in card.phones:
        assert not phone.masked and phone.number.startswith("+") and "*" not in phone.number
    assert card.value.order_count == len(card.orders) and card.value.amount_total == sum(o.amount for o in card.orders)
    assert card.value.store_amount + card.value.online_amount == card.value.amount_total
    value = server["value"]
    assert card.value.tier == value["tier"] and card.value.order_count == value["order_count"]
    for name in ("amount_12m", "amount_total", "store_amount", "online_amount"):
        assert getattr(card.value, name) == Decimal(value[name]), name
    # the standing is worked out on the phone by the server's own function, from the same facts
    assert msgspec.to_builtins(card.value.standing) == value["standing"]
    for order in card.orders:
        assert order.lines and sum(line.amount for line in order.lines) == order.amount
    bought = {line.category for o in card.orders for line in o.lines}
    for suggestion in state.cross_sell(cid):
        assert suggestion["code"] not in bought and suggestion["name_zh"]


async def test_head_office_sees_masked_numbers(phones):
    phone = await phones("region.north")
    state = phone.state
    assert not state.unmask
    hit = state.hits()[0]
    assert hit.phone and "*" in hit.phone
    card = state.card(hit.id)
    assert card.phones and all(p.masked and "*" in p.number for p in card.phones)


async def test_logging_a_visit_and_a_call_shows_at_once_and_reaches_the_server_once(rep, api):
    state = rep.state
    cid = own_customer(state, 3)
    on_server = set(await api.interaction_ids(cid))
    before = outbox_ids(state)
    assert state.log_visit(cid) is True
    [visit] = queued(state, before)
    assert visit.name == "interaction.log" and visit.args["kind"] == "visit"
    shown = next(i for i in state.card(cid).interactions if i.id == visit.args["id"])
    assert shown.pending and shown.kind == "visit" and shown.user_name == "李娜"
    assert state.pending == 1 and state.toast == state.tr("action.visit_logged")

    assert state.log_call(cid) is True
    [call] = queued(state, before | {visit.id})
    assert call.args["kind"] == "call" and call.args["channel"] == "phone"
    assert state.card(cid).interactions[0].id == call.args["id"] and state.card(cid).interactions[0].pending
    assert state.pending == 2 and state.toast == state.tr("action.call_logged")

    await state.sync_now()
    assert state.pending == 0
    card = state.card(cid)
    assert not any(i.pending for i in card.interactions if i.id in (visit.args["id"], call.args["id"]))
    assert set(await api.interaction_ids(cid)) - on_server == {visit.args["id"], call.args["id"]}
    await applied_once(state, [visit.id, call.id])


async def test_a_note_needs_text_and_then_shows_at_once(rep, api):
    state = rep.state
    cid = own_customer(state, 4)
    on_server = set(await api.interaction_ids(cid))
    before = outbox_ids(state)
    state.open_sheet("note")
    assert state.sheet == "note" and state.draft_text == ""
    state.draft_text = "   "
    assert state.save_note(cid) is False
    assert state.sheet_error == state.tr("action.note_hint") and state.sheet == "note"
    assert queued(state, before) == [] and state.pending == 0

    state.draft_text = "  客户想看布艺沙发的新颜色  "
    assert state.save_note(cid) is True
    assert state.sheet is None and state.sheet_error is None and state.draft_text == ""
    [note] = queued(state, before)
    shown = state.card(cid).interactions[0]
    assert shown.id == note.args["id"] and shown.kind == "note" and shown.pending
    assert shown.body == "客户想看布艺沙发的新颜色"

    await state.sync_now()
    assert set(await api.interaction_ids(cid)) - on_server == {note.args["id"]}
    await applied_once(state, [note.id])


@pytest.mark.parametrize("due", ["today", "tomorrow", "week"])
async def test_a_task_for_the_customer_is_due_when_chosen(rep, api, due):
    state = rep.state
    cid = own_customer(state, 5 + ["today", "tomorrow", "week"].index(due))
    before = outbox_ids(state)
    state.open_sheet("task")
    assert state.draft_due == "tomorrow"  # the default choice
    assert state.save_task(cid) is False and state.sheet_error == state.tr("action.task_title")
    assert queued(state, before) == []
    state.draft_due = due
    state.draft_text = f"回电确认 {due}"
    day = state.now().astimezone(TZ)
    assert state.save_task(cid) is True
    [entry] = queued(state, before)
    task = next(t for t in state.card(cid).tasks if t.id == entry.args["id"])
    assert task.pending and task.title == f"回电确认 {due}" and task.kind == "follow_up"
    local = times.parse(task.due_at).astimezone(TZ)
    if due == "today":  # by 18:00, or in an hour when that is later
        assert local >= max(day.replace(hour=18, minute=0, second=0, microsecond=0), day + dt.timedelta(minutes=59))
        if day.hour < 23:
            assert local.date() == day.date() and task.id in today_ids(state)
    elif due == "tomorrow":
        assert (local.date(), local.hour, local.minute) == (day.date() + dt.timedelta(days=1), 10, 0)
        assert task.id not in today_ids(state)
    else:
        assert (local.date(), local.hour) == (day.date() + dt.timedelta(days=7), 10)

    await state.sync_now()
    server = await api.get(f"/api/tasks/{task.id}")
    assert server["customer_id"] == cid and server["title"] == task.title and server["status"] == "open"
    assert times.parse(server["due_at"]) == times.parse(task.due_at)
    await applied_once(state, [entry.id])


@pytest.mark.parametrize("amount", ["abc", "-5", "1,200"])
async def test_an_opportunity_with_a_bad_amount_is_refused_and_nothing_is_queued(rep, amount):
    state = rep.state
    cid = own_customer(state, 8)
    opportunities = len(state.card(cid).opportunities)
    before = outbox_ids(state)
    state.open_sheet("opportunity")
    state.draft_text, state.draft_amount = "整套卧室家具", amount
    assert state.save_opportunity(cid) is False
    assert state.sheet == "opportunity" and state.sheet_error == state.tr("refused.amount")
    assert state.sheet_error.startswith("金额不对")
    assert state.toast.startswith(state.tr("action.failed", message=""))
    assert queued(state, before) == [] and state.pending == 0
    assert len(state.card(cid).opportunities) == opportunities
    # The draft is kept so the rep can fix the amount.
    assert state.draft_text == "整套卧室家具" and state.draft_amount == amount


async def test_a_new_opportunity_shows_at_once_and_reaches_the_server_once(rep, api):
    state = rep.state
    cid = own_customer(state, 9)
    before = outbox_ids(state)
    state.open_sheet("opportunity")
    state.draft_text = ""
    assert state.save_opportunity(cid) is False and state.sheet_error == state.tr("action.opportunity_title")
    state.draft_text, state.draft_amount = "整套卧室家具", " 12800 "
    assert state.save_opportunity(cid) is True and state.sheet is None
    [entry] = queued(state, before)
    shown = next(o for o in state.card(cid).opportunities if o.id == entry.args["id"])
    first_open = next(s for s in state.stages() if s.kind == "open")
    assert shown.pending and shown.title == "整套卧室家具" and str(shown.amount) == "12800.00"
    assert shown.stage == first_open.code and shown.owner_id == str(state.user.id)
    assert state.toast == state.tr("action.opportunity_created")

    await state.sync_now()
    server = await api.get(f"/api/opportunities/{shown.id}")
    assert server["customer_id"] == cid and server["stage"] == first_open.code and server["amount"] == "12800.00"
    assert not state.card(cid).opportunities[0].pending
    await applied_once(state, [entry.id])


# --- 5. the opportunity -------------------------------------------------------------------------------------


async def _new_opportunity(state: AppState, cid: str, title: str) -> str:
    state.open_sheet("opportunity")
    state.draft_text, state.draft_amount = title, "9800"
    assert state.save_opportunity(cid)
    oid = state.card(cid).opportunities[0].id
    await state.sync_now()
    assert state.pending == 0
    return oid


async def test_moving_an_opportunity_through_the_stages_and_losing_it_with_a_reason(rep, api):
    state = rep.state
    oid = await _new_opportunity(state, own_customer(state, 10), "客厅整体软装")
    open_stages = [s for s in state.stages() if s.kind == "open"]
    detail = state.opportunity(oid)
    assert detail.opportunity.stage == open_stages[0].code and detail.customer_name
    history = len(detail.history)
    assert history >= 1 and detail.history[-1].stage == open_stages[0].code

    state.open_opportunity(oid)
    assert state.route == f"/opportunities/{oid}"
    before = outbox_ids(state)
    assert state.move_stage(oid, open_stages[1].code) is True
    [move] = queued(state, before)
    assert move.name == "opportunity.move" and move.args["stage"] == open_stages[1].code
    assert state.opportunity(oid).opportunity.stage == open_stages[1].code
    assert state.toast == state.tr("action.moved", stage=open_stages[1].name_zh)
    await state.sync_now()
    detail = state.opportunity(oid)
    assert len(detail.history) == history + 1 and detail.history[-1].stage == open_stages[1].code
    assert detail.history[-2].left_at is not None

    # Lost needs a reason: the sheet opens for it, nothing is queued.
    before = outbox_ids(state)
    assert state.move_stage(oid, "lost") is False
    assert state.sheet == "move" and state.draft_stage == "lost"
    assert state.sheet_error == state.tr("opp.lost_reason_needed") and queued(state, before) == []
    state.draft_text = "客户预算不足"
    assert state.move_stage(oid, state.draft_stage) is True and state.sheet is None
    [lost] = queued(state, before)
    assert lost.args == {"opportunity_id": oid, "stage": "lost", "lost_reason": "客户预算不足"}
    assert state.opportunity(oid).opportunity.stage_kind == "lost"
    await state.sync_now()
    server = await api.get(f"/api/opportunities/{oid}")
    assert server["stage"] == "lost" and server["lost_reason"] == "客户预算不足"
    assert [h["stage"] for h in server["history"]][-3:] == [open_stages[0].code, open_stages[1].code, "lost"]
    assert len(state.opportunity(oid).history) == history + 2
    await applied_once(state, [move.id, lost.id])

    # A closed deal does not move again.
    before = outbox_ids(state)
    assert state.move_stage(oid, "won") is False
    assert state.sheet_error == state.tr("refused.stage") and queued(state, before) == []
    assert state.move_stage(oid, "no-such-stage") is False and queued(state, before) == []


# --- 6. messages ---------------------------------------------------------------------------------------------


async def test_reading_the_messages_clears_unread_news_and_conflicts(rep, api):
    state = rep.state
    items = state.messages()
    assert items, "the demo rep has news from the last seven days"
    assert [m.at for m in items] == sorted((m.at for m in items), reverse=True)
    assert {m.kind for m in items} <= {"new_task", "reminder", "interaction", "complaint", "order", "opportunity"}

    # A conflict: the deal is closed on the server while this phone, not yet told, moves it.
    oid = await _new_opportunity(state, own_customer(state, 11), "餐厅桌椅")
    await api.request("POST", f"/api/opportunities/{oid}/stage", json={"stage": "lost", "lost_reason": "已在别家购买"})
    next_open = [s for s in state.stages() if s.kind == "open"][1]
    assert state.move_stage(oid, next_open.code) is True
    await state.sync_now()
    refused = [c for c in state.conflicts() if c.row_id == oid]
    assert len(refused) == 1 and refused[0].kind == "rejected" and not refused[0].seen
    assert state.opportunity(oid).opportunity.stage == "lost"
    unread_news = sum(1 for m in state.messages() if m.unread)
    assert state.unread() == unread_news + len(state.replica.conflicts(unseen_only=True)) >= 1

    state.mark_messages_read()
    assert state.unread() == 0
    assert not any(m.unread for m in state.messages()) and len(state.messages()) >= len(items)
    assert all(c.seen for c in state.conflicts())
    assert state.replica.get_meta("messages_seen_at") == state.messages_seen_at


# --- 7. sync with the server down ----------------------------------------------------------------------------


async def test_edits_made_while_the_server_is_down_go_up_once_when_it_is_back(own_server, tmp_path, api):
    phone = await sign_in(own_server.url, tmp_path)
    state = phone.state
    try:
        cid = own_customer(state, 12)
        task = work_list(state)[0]
        on_server = set(await api.interaction_ids(cid))
        own_server.stop()
        try:
            assert state.log_visit(cid) and state.complete_task(task)
            assert state.pending == 2
            await state.sync_now()
            assert state.sync_state == "offline" and state.pending == 2 and state.sync_error
            # Shown on the phone while they wait.
            assert state.card(cid).interactions[0].pending and task.id not in today_ids(state)
            entries = state.replica.pending()
            assert [e.name for e in entries] == ["interaction.log", "task.complete"]
        finally:
            own_server.start()
        await state.sync_now()
        assert state.sync_state == "synced" and state.pending == 0 and state.sync_error is None
        visit = entries[0].args["id"]
        assert set(await api.interaction_ids(cid)) - on_server == {visit}
        assert (await api.get(f"/api/tasks/{task.id}"))["status"] == "done"
        await applied_once(state, [e.id for e in entries])
        await state.sync_now()  # another round sends nothing again
        assert set(await api.interaction_ids(cid)) - on_server == {visit}
    finally:
        await state.close()
    no_device_left(tmp_path)


# --- 8. sign out -----------------------------------------------------------------------------------------------


async def test_sign_out_is_refused_while_edits_wait(phones):
    phone = await phones("rep.bjcy")
    state = phone.state
    assert state.log_visit(own_customer(state, 13))
    await state.logout()
    assert state.phase == "ready" and state.user is not None and state.pending == 1
    assert state.toast == state.tr("sync.logout_pending", count=1)
    assert phone.credentials.exists() and state.replica.pending_count() == 1
    await state.sync_now()
    assert state.pending == 0


def leftovers(path: Path) -> dict[str, Any]:
    """What a replica file still holds of its user: {} when wiped."""
    replica = Replica(path)
    try:
        left: dict[str, Any] = {
            "user_id": replica.user_id,
            "cursor": replica.cursor,
            "last_synced_at": replica.last_synced_at,
            "outbox": replica.pending_count(),
            "conflicts": len(replica.conflicts()),
        }
        for table in ("customers", "customer_phones", "tasks", "interactions", "opportunities"):
            left[table] = fetch_one(replica.db, f"SELECT count(*) AS n FROM {table}")["n"]
    finally:
        replica.close()
    return {k: v for k, v in left.items() if v}


def assert_wiped(path: Path) -> None:
    assert leftovers(path) == {}


async def test_sign_out_forgets_the_session_and_wipes_the_replica(phones, live_server):
    phone = await phones("rep.bjcy")
    state = phone.state
    path = phone.replica_file
    shown = [h.id for h in state.hits()]
    await state.sync_now()  # no round under way (that case: the next test)
    await state.logout()
    assert state.phase == "login" and state.user is None and state.password == ""
    assert phone.routes[-1] == "/" and state.route == "/"
    assert not phone.credentials.exists()
    assert_wiped(path)
    # Signed out: the next start asks for the password (the user is remembered); signing in
    # again downloads the store afresh.
    again = make_phone(live_server.url, phone.root.parent)
    try:
        await again.state.start()
        assert again.state.phase == "login" and again.state.user is None
        assert (again.state.username, again.state.password) == ("rep.bjcy", "")
        assert again.state.server_url == live_server.url
    finally:
        await again.state.close()
    back = await phones("rep.bjcy")
    assert [h.id for h in back.state.hits()] == shown


class HeldPulls(httpx.AsyncBaseTransport):
    """The real wire, except that a pull's answer (already given by the server) reaches the
    phone only once ``hold()`` turns false: a round that is under way at a chosen moment."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hold: Any = None
        self.waiting = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != "/api/sync/pull" or self.hold is None:
            return response
        content = await response.aread()
        await response.aclose()
        self.waiting = True
        # Checked on every turn of the loop (an Event has no one to set it): the answer must come
        # in the very turn the condition turns, before the phone's next step.
        while self.hold():  # noqa: ASYNC110
            await asyncio.sleep(0)
        self.waiting = False
        headers = [
            (k, v) for k, v in response.headers.items() if k.lower() not in ("content-length", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=content, request=request)

    async def aclose(self) -> None:
        """Each client the app makes closes its transport when done; this one is shared."""

    async def close(self) -> None:
        await self.inner.aclose()


def wiped(replica: Replica) -> bool:
    try:
        return replica.get_meta("user_id") is None
    except sqlite3.ProgrammingError:  # closed: it will not be written any more
        return True


async def test_signing_out_during_a_sync_round_leaves_nothing_behind(live_server, tmp_path):
    """The rep taps 退出登录 while a round is under way (e.g. the one an edit just started): its
    page must not land in the wiped replica — a cursor left there would make the next sign-in
    on this phone pull only changes, onto an empty file: no customers, no tasks, 'synced'."""
    wire = HeldPulls()
    phone = make_phone(live_server.url, tmp_path, transport=wire)
    state = phone.state
    try:
        await state.start()
        state.username, state.password = "rep.bjcy", PASSWORD
        await state.login()
        assert state.phase == "ready"
        shown = [h.id for h in state.hits()]
        path = phone.replica_file
        replica = state.replica
        wire.hold = lambda: not wiped(replica)  # the answer arrives once the sign-out has wiped
        round_ = asyncio.ensure_future(state.engine.sync())
        await until(lambda: wire.waiting)
        await state.logout()
        await asyncio.gather(round_, return_exceptions=True)
        assert state.phase == "login" and not phone.credentials.exists()
    finally:
        await state.close()
        await wire.close()
    left = leftovers(path)
    again = await sign_in(live_server.url, tmp_path)
    try:
        hits, today = [h.id for h in again.state.hits()], again.state.today()
    finally:
        await again.state.close()
    no_device_left(tmp_path)
    assert hits == shown and today, f"signed in again on this phone, the store is empty; the wiped file held {left}"
    assert left == {}


# --- 9. another store --------------------------------------------------------------------------------------------


async def test_a_shanghai_rep_sees_no_beijing_customer(phones, stores):
    phone = await phones("rep.shpd")
    state = phone.state
    shpd, bjcy = str(stores["SH-PD"]), str(stores["BJ-CY"])
    codes = {r["id"]: r["code"] for r in fetch_all(state.replica.db, "SELECT id, code FROM stores")}
    assert codes[shpd] == "SH-PD" and codes[bjcy] == "BJ-CY"
    hits = state.hits()
    assert hits and {h.store_id for h in hits} == {shpd}
    assert fetch_one(state.replica.db, "SELECT count(*) AS n FROM customers WHERE store_id != ?", (shpd,))["n"] == 0
    state.search("138")
    assert all(h.store_id == shpd for h in state.hits())
    for _, tasks in state.today():
        assert all(t.customer_id is None or state.card(t.customer_id).profile["store_id"] == shpd for t in tasks)
