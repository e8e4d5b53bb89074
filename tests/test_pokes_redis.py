"""Live pokes across API processes through Redis (Litestar channels): two `floorwalker serve` on the
session's database, each polling the change counters only every 30 s, so within a second only
Redis can carry a poke — a task made through one reaches a phone listening on the other, each
version once; without Redis the same poke does not come; a third process announces through Redis
too, and so does the rule sweep (the worker's, or the embedded one of `serve` on SQLite); Redis
unreachable or cut off never breaks a commit, the database poll takes over and the subscription
comes back.

Needs Redis at FLOORWALKER_TEST_REDIS_URL (default redis://127.0.0.1:6379/0): without it these
tests skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
import redis

from shared import sync as proto
from shared.ids import uuid7
from tests.conftest import BACKEND, DATABASE_URL, IN_CI, PG_ADMIN_URL, TMP, _pg
from tests.live import ROOT, LiveServer, free_port

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("FLOORWALKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SLOW_POLL = {"FLOORWALKER_POKE_POLL_MS": "30000"}  # the database poll cannot deliver within a second
PASSWORD = "floorwalker"


@pytest.fixture(scope="module")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"CI=true needs Redis at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL} (set FLOORWALKER_TEST_REDIS_URL): {exc}")
    finally:
        client.close()
    return REDIS_URL


@contextlib.contextmanager
def serving(count: int, database_url: str = DATABASE_URL, **env: str):
    """``count`` `floorwalker serve` processes (the session's database unless told); stopped by PID
    after, their logs free of tracebacks."""
    servers = [LiveServer(database_url, TMP, extra_env=env) for _ in range(count)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert not server.tracebacks(), server.tracebacks()[-4000:]


@pytest.fixture(scope="module")
def pair(demo, redis_url):
    """A and B, pokes through Redis, the database poll every 30 s."""
    with serving(2, FLOORWALKER_REDIS_URL=redis_url, **SLOW_POLL) as servers:
        yield servers


@dataclasses.dataclass(frozen=True)
class Poke:
    at: float  # time.monotonic() when the line arrived
    wall: float  # time.time(), to compare with a time another process printed
    scope: str
    version: int


class PokeStream:
    """A phone's poke stream (GET /api/sync/events), read in the background."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.pokes: list[Poke] = []
        self._arrived = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> PokeStream:
        http = await self._stack.enter_async_context(
            httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(10, read=60))
        )
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        response = await self._stack.enter_async_context(http.stream("GET", "/api/sync/events", headers=headers))
        assert response.status_code == 200, await response.aread()
        reader = asyncio.create_task(self._read(response))

        async def stop_reading() -> None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader

        self._stack.push_async_callback(stop_reading)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._stack.aclose()

    async def _read(self, response: httpx.Response) -> None:
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "poke":
                data = json.loads(line[5:].strip())
                self.pokes.append(Poke(time.monotonic(), time.time(), data["scope"], data["version"]))
                self._arrived.set()

    async def wait(self, found: Callable[[], Poke | None], seconds: float) -> Poke | None:
        deadline = time.monotonic() + seconds
        while (poke := found()) is None:
            if (remaining := deadline - time.monotonic()) <= 0:
                return None
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return poke

    async def latest(self, scope: str) -> int:
        """The scope's version, from the first pokes (every scope's version)."""
        first = await self.wait(lambda: next((p for p in self.pokes if p.scope == scope), None), 5.0)
        assert first is not None, f"no first poke for {scope}: {self.pokes}"
        return max(p.version for p in self.pokes if p.scope == scope)

    async def newer(self, scope: str, than: int, seconds: float) -> Poke | None:
        return await self.wait(
            lambda: next((p for p in self.pokes if p.scope == scope and p.version > than), None), seconds
        )

    def assert_each_version_once(self) -> None:
        seen = [(p.scope, p.version) for p in self.pokes]
        assert len(seen) == len(set(seen)), f"a version forwarded twice: {seen}"


async def _login(base_url: str, username: str = "rep.bjcy") -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        reply = await http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return reply.json()["access_token"]


async def _push(base_url: str, token: str, name: str, args: dict) -> float:
    """One mutation through POST /api/sync/push; returns time.monotonic() when it was answered."""
    mutation = {"id": 1, "name": name, "hlc": proto.hlc_format(int(time.time() * 1000), 0, "direct"), "args": args}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        reply = await http.post(
            "/api/sync/push",
            json={"client_id": str(uuid7()), "schema_version": proto.SCHEMA_VERSION, "mutations": [mutation]},
            headers={"Authorization": f"Bearer {token}"},
        )
        answered = time.monotonic()
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"][0]["status"] == "applied", reply.text
    return answered


def _new_task(task_id: str, title: str) -> dict:
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    return {"id": task_id, "title": title, "due_at": due}


async def test_a_task_made_through_one_process_pokes_a_phone_on_another_within_a_second(pair, stores):
    a, b = pair
    token = await _login(a.url)
    scope = str(stores["BJ-CY"])
    latencies = []
    async with PokeStream(b.url, token) as on_b, PokeStream(a.url, token) as on_a:
        start = version = await on_b.latest(scope)
        await on_a.latest(scope)
        for n in range(3):  # each round: a task made, then done (the demo's task lists stay as they were)
            task_id = str(uuid7())
            for name, args in (
                ("task.create", _new_task(task_id, f"跨进程提醒 {n}")),
                ("task.complete", {"task_id": task_id}),
            ):
                answered = await _push(a.url, token, name, args)
                poke = await on_b.newer(scope, version, 3.0)
                assert poke is not None, f"no poke on B for {name}: {on_b.pokes}"
                latencies.append(poke.at - answered)
                assert poke.at - answered < 1.0, f"{name}: B poked {poke.at - answered:.3f} s after A answered"
                version = poke.version
        # A's own listener got the same from A's local fan-out, and A dropped its echo from Redis.
        assert await on_a.newer(scope, version - 1, 1.0) is not None, on_a.pokes
        await asyncio.sleep(0.2)  # room for a late duplicate
    news = {
        stream: [p.version for p in stream.pokes if p.scope == scope and p.version > start] for stream in (on_a, on_b)
    }
    assert news[on_a] == news[on_b] and len(news[on_b]) == 6, news
    on_a.assert_each_version_once()
    on_b.assert_each_version_once()
    print(f"\npoke latency A→B after A answered: {', '.join(f'{1000 * s:.1f} ms' for s in latencies)}")


async def test_without_redis_the_same_poke_does_not_come_within_a_second(demo, stores):
    """The control: the same two processes and poll, no Redis — what the test above sees is Redis."""
    with serving(2, **SLOW_POLL) as (a, b):
        token = await _login(a.url)
        scope = str(stores["BJ-CY"])
        task_id = str(uuid7())
        async with PokeStream(b.url, token) as on_b:
            version = await on_b.latest(scope)
            await _push(a.url, token, "task.create", _new_task(task_id, "无 Redis 的对照"))
            try:
                assert await on_b.newer(scope, version, 1.5) is None, on_b.pokes
            finally:
                await _push(a.url, token, "task.complete", {"task_id": task_id})


ANNOUNCE = """
import asyncio, datetime as dt, os, time
from server import db
from server.auth.service import caller_for_token
from server.settings import Settings
from server.sync.pokes import announce
from server.tasks import service as tasks
from shared.wire import TaskCreate

async def main():
    settings = Settings.from_env()
    await db.start(settings)
    try:
        caller = await caller_for_token(os.environ["TOKEN"], settings=settings)
        due = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        task = await tasks.create(caller=caller, data=TaskCreate(title="另一个进程做的任务", due_at=due))
        await announce(settings)
        print(task.id, time.time(), flush=True)
    finally:
        await db.stop()

asyncio.run(main())
"""


def _third_process(token: str, redis_url: str) -> tuple[str, float, str]:
    """A process without a poke hub (like the scheduler's worker) makes a task and announces it;
    returns the task id, the wall time announce() returned, and what it logged."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOORWALKER_")}
    env.update(
        FLOORWALKER_DATABASE_URL=DATABASE_URL,
        FLOORWALKER_MODE="dev",
        FLOORWALKER_REDIS_URL=redis_url,
        PICCOLO_CONF="server.piccolo_conf",
        TOKEN=token,
    )
    done = subprocess.run(
        [sys.executable, "-c", ANNOUNCE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    task_id, announced = done.stdout.split()
    return task_id, float(announced), done.stderr


async def test_a_process_without_a_hub_announces_through_redis(pair, stores, redis_url):
    a, b = pair
    token = await _login(a.url)
    scope = str(stores["BJ-CY"])
    async with PokeStream(b.url, token) as on_b:
        version = await on_b.latest(scope)
        task_id, announced, _ = await asyncio.to_thread(_third_process, token, redis_url)
        try:
            poke = await on_b.newer(scope, version, 3.0)
            assert poke is not None, f"no poke on B for the third process's task: {on_b.pokes}"
            assert poke.wall - announced < 1.0, f"B poked {poke.wall - announced:.3f} s after announce()"
            await asyncio.sleep(0.2)
            # Every scope's version was announced; B forwarded only what was new to it.
            assert [(p.scope, p.version) for p in on_b.pokes if p.at >= poke.at] == [(scope, poke.version)]
        finally:
            await _push(a.url, token, "task.complete", {"task_id": task_id})
    on_b.assert_each_version_once()


async def test_redis_unreachable_never_breaks_a_commit_and_the_poll_takes_over(demo, stores):
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with serving(2, FLOORWALKER_REDIS_URL=nobody, **SLOW_POLL) as (a, b):
        token = await _login(a.url)
        scope = str(stores["BJ-CY"])
        task_id = str(uuid7())
        async with PokeStream(b.url, token) as on_b:
            version = await on_b.latest(scope)
            answered = await _push(a.url, token, "task.create", _new_task(task_id, "Redis 不在时"))
            try:
                poke = await on_b.newer(scope, version, 3.0)
                assert poke is not None and poke.at - answered < 1.5, on_b.pokes  # polled every 0.5 s meanwhile
                _, _, logged = await asyncio.to_thread(_third_process, token, nobody)
                assert "pokes not announced: Redis" in logged, logged
                poke = await on_b.newer(scope, poke.version, 3.0)  # the third process's task, by the poll
                assert poke is not None, on_b.pokes
            finally:
                await _push(a.url, token, "task.complete", {"task_id": task_id})
    for server in (a, b):
        assert "unreachable" in server.log_path.read_text()


def _connections(url: str, pid: int) -> list[int]:
    """Redis client ids of a process's poke connections."""
    client = redis.Redis.from_url(url)
    try:
        return [c["id"] for c in client.client_list() if c.get("name") == f"floorwalker-pokes-{pid}"]
    finally:
        client.close()


async def test_a_subscription_cut_off_comes_back_and_catches_up(pair, stores, redis_url):
    a, b = pair
    token = await _login(a.url)
    scope = str(stores["BJ-CY"])
    assert b.proc is not None
    killer = redis.Redis.from_url(redis_url)
    try:
        ids = _connections(redis_url, b.proc.pid)
        assert ids, "B holds no named Redis connection"
        async with PokeStream(b.url, token) as on_b:
            version = await on_b.latest(scope)
            for client_id in ids:
                killer.client_kill_filter(_id=client_id)
            task_id = str(uuid7())
            await _push(a.url, token, "task.create", _new_task(task_id, "订阅断开时"))
            completed = False
            try:
                # Missed on the channel: the poll (0.5 s while cut off) or the catch-up brings it.
                poke = await on_b.newer(scope, version, 3.0)
                assert poke is not None, on_b.pokes
                for _ in range(100):  # subscribed again (the first retry is after 1 s)
                    if set(_connections(redis_url, b.proc.pid)) - set(ids):
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("B did not subscribe again")
                await asyncio.sleep(0.3)  # the catch-up read after subscribing
                answered = await _push(a.url, token, "task.complete", {"task_id": task_id})
                completed = True
                again = await on_b.newer(scope, poke.version, 3.0)
                assert again is not None and again.at - answered < 1.0, on_b.pokes
            finally:
                if not completed:
                    await _push(a.url, token, "task.complete", {"task_id": task_id})
        on_b.assert_each_version_once()
    finally:
        killer.close()
    log = b.log_path.read_text()
    assert "lost (" in log and log.count("live pokes through Redis") >= 2, log[-3000:]


@pytest.fixture
def own_database_url():
    """A database of this test's own, with a small demo chain (the sweep would change the shared one)."""
    if BACKEND == "postgres":
        name = f"floorwalker_pokes_{os.getpid()}"
        _pg(f"DROP DATABASE IF EXISTS {name}")
        _pg(f"CREATE DATABASE {name}")
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite:///{TMP}/pokes-sweep-{time.monotonic_ns()}.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOORWALKER_")}
    seeded = subprocess.run(
        [sys.executable, "-m", "server.cli", "seed", "--demo", "--customers", "300", "--no-progress"],
        cwd=ROOT,
        env={**env, "FLOORWALKER_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    yield url
    if BACKEND == "postgres":
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def worker_running(env: dict, log_path):
    """`floorwalker worker` (the scheduler's process on PostgreSQL), stopped by PID after."""
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield worker
        finally:
            worker.terminate()
            worker.wait(timeout=20)


async def test_the_rule_sweep_pokes_at_once_not_at_the_next_poll(own_database_url, redis_url):
    """On PostgreSQL the worker sweeps and announces through Redis; on SQLite `serve` sweeps in its
    own process and wakes its hub. Either way the phone hears of the new tasks long before the
    30 s poll could tell it."""
    sweep = {"FLOORWALKER_RULES_SWEEP_SECONDS": "2"}
    embedded = BACKEND != "postgres"
    env = {"FLOORWALKER_REDIS_URL": redis_url, **SLOW_POLL, **(sweep if embedded else {})}
    worker_log = TMP / f"worker-{time.monotonic_ns()}.log"
    with serving(1, database_url=own_database_url, **env) as (server,):
        token = await _login(server.url)
        async with PokeStream(server.url, token) as stream:
            store = await _store_of(server.url, token)
            version = await stream.latest(store)
            started = time.monotonic()
            with contextlib.nullcontext() if embedded else worker_running({**server.env, **sweep}, worker_log):
                poke = await stream.newer(store, version, 15.0)
                if not embedded:  # a SIGTERM in the middle of a job cancels it, with a traceback
                    await _job_done(worker_log, "sweep")
            assert poke is not None, f"no poke after the sweep: {stream.pokes}"
            print(
                f"\nsweep poke {poke.at - started:.2f} s after the stream opened ({'serve' if embedded else 'worker'})"
            )
    logs = server.log_path.read_text() + ("" if embedded else worker_log.read_text())
    assert "rules: sweep done" in logs and "Traceback" not in logs, logs[-4000:]


async def _job_done(log_path, job: str, seconds: float = 10.0) -> None:
    """Until APScheduler logs that ``job`` ran to its end."""
    deadline = time.monotonic() + seconds
    while not any(
        f'Job "{job} (' in line and "executed successfully" in line for line in log_path.read_text().splitlines()
    ):
        assert time.monotonic() < deadline, f"the {job} job did not finish: {log_path.read_text()[-3000:]}"
        await asyncio.sleep(0.05)


async def _store_of(base_url: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    return me.json()["store_id"]
