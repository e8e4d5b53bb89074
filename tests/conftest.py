"""Test session: a fresh database (SQLite file or PostgreSQL database), migrated and seeded with
the demo chain, and the real app behind an in-process HTTP client.

FLOORWALKER_TEST_DB=sqlite (default) or postgres picks the engine; the test command runs both.
Without a reachable PostgreSQL the postgres run skips with the reason, except under CI=true,
where it fails.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

BACKEND = os.environ.get("FLOORWALKER_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get("FLOORWALKER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
TMP = Path(tempfile.mkdtemp(prefix="floorwalker-tests-"))
PG_SKIP_REASON = ""


def _pg(sql: str) -> None:
    subprocess.run(["psql", PG_ADMIN_URL, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)


if BACKEND == "postgres":
    test_db = f"floorwalker_test_{os.getpid()}"
    try:
        _pg(f"DROP DATABASE IF EXISTS {test_db}")
        _pg(f"CREATE DATABASE {test_db}")
        DATABASE_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{test_db}"
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.decode() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        if IN_CI:
            raise RuntimeError(f"CI=true needs PostgreSQL at {PG_ADMIN_URL}: {detail}") from exc
        PG_SKIP_REASON = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {detail.strip()}"
        DATABASE_URL = f"sqlite:///{TMP}/unused.sqlite3"
else:
    DATABASE_URL = f"sqlite:///{TMP}/test.sqlite3"

os.environ["FLOORWALKER_DATABASE_URL"] = DATABASE_URL
os.environ["FLOORWALKER_MODE"] = "dev"
os.environ["PICCOLO_CONF"] = "server.piccolo_conf"


def pytest_report_header(config):
    return f"floorwalker backend: {BACKEND} ({DATABASE_URL})"


def pytest_collection_modifyitems(config, items):
    if PG_SKIP_REASON:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=PG_SKIP_REASON))


def pytest_sessionfinish(session, exitstatus):
    if BACKEND == "postgres" and not PG_SKIP_REASON:
        try:
            _pg(f"DROP DATABASE IF EXISTS floorwalker_test_{os.getpid()} WITH (FORCE)")
        except (OSError, subprocess.CalledProcessError):
            pass


@pytest.fixture(scope="session")
def settings():
    from server.settings import Settings

    return Settings.from_env()


@pytest.fixture(scope="session")
async def demo(settings):
    """Migrate and seed the demo chain once per session; returns the seed's row counts."""
    from server.migrate import migrate
    from server.seed import seed_demo

    await migrate(settings)
    return await seed_demo(progress=False)


@pytest.fixture(scope="session")
async def client(settings, demo):
    """The real app over httpx's ASGI transport, in the test's own event loop (so the database
    pool the app starts is the one the tests' own queries use), with its startup and shutdown."""
    import httpx

    from server.app import create_app

    app = create_app(settings)
    # The app's startup and shutdown hooks, called directly: Litestar's lifespan() runs in an anyio
    # task group that a session fixture cannot close from its teardown task.
    for hook in app.on_startup:
        await hook()
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as test_client:
        yield test_client
    for hook in app.on_shutdown:
        await hook()


class Logins:
    """Access-token headers per demo user, logged in once per session."""

    def __init__(self, client) -> None:
        self.client = client
        self.cache: dict[str, dict] = {}

    async def __call__(self, username: str) -> dict[str, str]:
        if username not in self.cache:
            response = await self.client.post("/api/auth/login", json={"username": username, "password": "floorwalker"})
            assert response.status_code == 200, response.text
            self.cache[username] = response.json()
        return {"Authorization": f"Bearer {self.cache[username]['access_token']}"}

    async def user(self, username: str) -> dict:
        await self(username)
        return self.cache[username]["user"]


@pytest.fixture(scope="session")
async def login(client) -> Logins:
    return Logins(client)


@pytest.fixture(scope="session")
async def stores(demo) -> dict[str, uuid.UUID]:
    """Store code → id."""
    from server.stores.tables import Store

    return {r["code"]: r["id"] for r in await Store.select(Store.code, Store.id)}


@pytest.fixture(scope="session")
def live_server(demo):
    """`floorwalker serve` on the session's seeded database (same data the in-process client sees);
    tests may stop and restart it. Stopped by PID at the end; its log must hold no traceback."""
    from tests.live import LiveServer

    server = LiveServer(DATABASE_URL, TMP).start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.tracebacks(), server.tracebacks()[-4000:]


async def open_deals(store_id: uuid.UUID) -> list[dict]:
    """The store's open deals straight from the tables (id, owner, stage entered, stage code, limit)."""
    from server.opportunities.tables import Opportunity

    return await Opportunity.raw(
        "SELECT o.id, o.owner_id, o.stage_entered_at, s.code, s.idle_days FROM opportunities o "
        "JOIN pipeline_stages s ON s.id = o.stage_id WHERE o.store_id = {} AND o.deleted = false AND s.kind = 'open'",
        store_id,
    )


@pytest.fixture
async def stalled_deal(stores, login, client):
    """An open BJ-CY deal of rep.bjcy made stalled: its stage entered 60 days ago (put back after,
    and the nudge tasks made on it and the store's notifications made meanwhile removed)."""
    import datetime as dt

    from server.notifications.tables import Notification
    from server.opportunities.tables import Opportunity
    from server.sync.service import allocate_versions, store_scope
    from server.tasks.tables import Task

    started = dt.datetime.now(dt.UTC)
    rep = await login.user("rep.bjcy")
    rows = [r for r in await open_deals(stores["BJ-CY"]) if str(r["owner_id"]) == rep["id"] and r["idle_days"]]
    deal = rows[0]
    before = deal["stage_entered_at"]
    entered = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    version = await allocate_versions(store_scope(stores["BJ-CY"]))
    await Opportunity.update({Opportunity.stage_entered_at: entered, Opportunity.version: version}).where(
        Opportunity.id == deal["id"]
    )
    yield deal
    version = await allocate_versions(store_scope(stores["BJ-CY"]))
    await Opportunity.update({Opportunity.stage_entered_at: before, Opportunity.version: version}).where(
        Opportunity.id == deal["id"]
    )
    await Task.delete().where(Task.dedupe_key.like(f"nudge:{deal['id']}:%"))
    # What the feed told the store's people meanwhile (the nudge): other tests expect a quiet inbox.
    await Notification.delete().where((Notification.store_id == stores["BJ-CY"]) & (Notification.created_at >= started))
