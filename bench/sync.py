"""Benchmark: sync on PostgreSQL against a real server process over loopback HTTP.

    python -m bench.sync [--customers 5000] [--interactions 50000] [--rounds 20] [--seconds 8]

1. First sync of one store (BJ-CY topped up to --customers customers and --interactions
   interactions) into an empty phone replica, end to end (server query, encoding, HTTP, decoding,
   SQLite upserts), next to the raw limit measured in the same run: decoding the very same payload
   bytes and inserting the same rows into an empty SQLite file directly.
2. Incremental pull of 100 changes made by another device: round trip in ms (p50, p95).
3. Push throughput: devices in several stores pushing batches of 10 mutations at once:
   mutations/s and the latency of a push (p50, p99).

Budget (DESIGN.md): first sync >= 40,000 rows/s and >= 0.5x the raw limit; incremental pull of
100 changes <= 50 ms; push >= 4,000 mutations/s with p99 <= 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import msgspec

os.environ.setdefault("PICCOLO_CONF", "server.piccolo_conf")
PG = os.environ.get("FLOORWALKER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
DB_NAME = "floorwalker_bench_sync"
DATABASE_URL = f"{PG}/{DB_NAME}"
os.environ["FLOORWALKER_DATABASE_URL"] = DATABASE_URL

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "floorwalker"


def _psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True)


async def _prepare(customers: int, interactions: int) -> None:
    """A demo chain whose BJ-CY store has ``customers`` customers, topped up to ``interactions``."""
    from server.db import start, stop
    from server.migrate import migrate
    from server.seed import STORES, seed_demo
    from server.settings import Settings

    _psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    _psql(f"CREATE DATABASE {DB_NAME}")
    settings = Settings.from_env()
    await migrate(settings)
    await start(settings)
    try:
        weights = sum(s.weight for s in STORES)
        bj = next(s for s in STORES if s.code == "BJ-CY")
        total = customers * weights // bj.weight
        started = time.perf_counter()
        await seed_demo(customers=total, progress=False)
        await _top_up_interactions(interactions)
        print(f"prepared: demo chain of {total:,} customers, BJ-CY topped up ({time.perf_counter() - started:.0f} s)")
    finally:
        await stop()


async def _top_up_interactions(target: int) -> None:
    from server.db import transaction
    from server.interactions.tables import Interaction
    from server.stores.tables import Store
    from server.sync.service import allocate_versions, store_scope
    from shared.ids import uuid7

    store = await Store.select(Store.id).where(Store.code == "BJ-CY").first()
    store_id = store["id"]
    have = await Interaction.count().where(Interaction.store_id == store_id)
    missing = target - have
    if missing <= 0:
        return
    customers = [r["id"] for r in await Interaction.raw("SELECT id FROM customers WHERE store_id = {}", store_id)]
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    bodies = ["看了沙发，想要浅灰色", "电话回访，下周来店", "询问床垫保修", "发了新品图册", "到店看餐桌"]
    kinds = [("visit", "store"), ("call", "phone"), ("note", "store"), ("message", "wechat")]
    async with transaction() as txn:
        first = await allocate_versions(store_scope(store_id), missing) - missing + 1
        records = []
        for i in range(missing):
            kind, channel = rng.choice(kinds)
            at = now - dt.timedelta(minutes=rng.randrange(1, 60 * 24 * 700))
            records.append(
                (uuid7(), first + i, False, now, store_id, rng.choice(customers), None, kind, channel, at, None,
                 rng.choice(bodies), None, None, None, at)
            )  # fmt: skip
        columns = (
            "id", "version", "deleted", "updated_at", "store_id", "customer_id", "user_id", "kind", "channel",
            "occurred_at", "duration_seconds", "body", "product_id", "category_id", "source_event_id", "created_at",
        )  # fmt: skip
        await txn.connection.copy_records_to_table("interactions", records=records, columns=columns)


class Server:
    """``floorwalker serve`` in its own process on a free loopback port, stopped by PID."""

    def __init__(self, database_url: str = DATABASE_URL, env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.extra_env = env or {}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        env = {
            **os.environ,
            "FLOORWALKER_DATABASE_URL": self.database_url,
            "FLOORWALKER_MODE": "dev",
            **self.extra_env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def _login(http: httpx.AsyncClient, username: str) -> dict:
    reply = await http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    reply.raise_for_status()
    return reply.json()


def _hlc(node: str) -> str:
    from shared import sync as proto

    return proto.hlc_format(int(time.time() * 1000), 0, node)


def _q(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100)[pct - 1] if len(values) > 1 else values[0]


async def first_sync(url: str, work: Path) -> list[tuple]:
    from mobile.engine import SyncEngine
    from mobile.replica import Replica
    from shared import sync as proto

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        session = await _login(http, "rep.bjcy")
        token = session["access_token"]
        user = session["user"]

        # The payload, fetched once untimed: the raw limit decodes and inserts exactly these bytes.
        payloads: list[bytes] = []
        cursor = None
        client_id = str(uuid.uuid4())
        while True:
            reply = await http.post(
                "/api/sync/pull",
                json={"client_id": client_id, "schema_version": proto.SCHEMA_VERSION, "cursor": cursor,
                      "limit": proto.MAX_PULL_LIMIT},
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
            reply.raise_for_status()
            payloads.append(reply.content)
            page = msgspec.json.decode(reply.content, type=proto.PullResponse)
            cursor = page.cursor
            if not page.has_more:
                break

    rows_total = sum(len(t.rows) for p in payloads for t in msgspec.json.decode(p, type=proto.PullResponse).changes)

    # End to end: an empty replica, the engine pulling every page from the server.
    replica = Replica(work / "phone.sqlite3")
    replica.set_identity(user["id"], store_id=user["store_id"], role=user["role"])

    async def token_provider(refresh: bool = False) -> str:
        return token

    engine = SyncEngine(replica, url, token_provider, pull_limit=proto.MAX_PULL_LIMIT)
    started = time.perf_counter()
    await engine.sync()
    e2e = time.perf_counter() - started
    await engine.aclose()
    counts = {t: replica.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("customers", "interactions")}
    replica.close()

    # Raw limit: decode the same bytes and insert the same rows into an empty SQLite file directly.
    raw_db = sqlite3.connect(work / "raw.sqlite3", isolation_level=None)
    raw_db.execute("PRAGMA journal_mode=WAL")
    raw_db.execute("PRAGMA synchronous=NORMAL")
    for spec in proto.TABLES:
        raw_db.execute(f"CREATE TABLE {spec.name} ({', '.join(spec.column_names)}, PRIMARY KEY (id))")
        for n, cols in enumerate(spec.indexes):
            raw_db.execute(f"CREATE INDEX ix_{spec.name}_{n} ON {spec.name} ({', '.join(cols)})")
    decoder = msgspec.json.Decoder(proto.PullResponse)
    started = time.perf_counter()
    for payload in payloads:
        page = decoder.decode(payload)
        raw_db.execute("BEGIN")
        for table in page.changes:
            marks = ", ".join("?" * len(table.columns))
            raw_db.executemany(f"INSERT OR REPLACE INTO {table.table} VALUES ({marks})", table.rows)
        raw_db.execute("COMMIT")
    raw = time.perf_counter() - started
    raw_db.close()
    print(f"first sync: {len(payloads)} pages, {rows_total:,} rows "
          f"({counts['customers']:,} customers, {counts['interactions']:,} interactions in the replica)")  # fmt: skip
    return [
        ("first sync, raw limit (decode + SQLite insert)", f"{rows_total / raw:,.0f} rows/s", f"{raw * 1000:,.0f} ms",
         "1.00"),
        ("first sync, end to end (server → HTTP → replica)", f"{rows_total / e2e:,.0f} rows/s",
         f"{e2e * 1000:,.0f} ms", f"{raw / e2e:.2f} (budget ≥ 0.5; ≥ 40,000 rows/s)"),
    ]  # fmt: skip


def local_reads(work: Path, reads: int = 200) -> list[tuple]:
    """Search and card straight from the phone's replica of the first sync (5,000 customers)."""
    from mobile import queries
    from mobile.replica import Replica

    replica = Replica(work / "phone.sqlite3")
    rng = random.Random(3)
    customers = replica.db.execute("SELECT id, name FROM customers").fetchall()
    digits = [r[0] for r in replica.db.execute("SELECT digits FROM customer_phones WHERE digits != ''").fetchall()]
    timings: dict[str, list[float]] = {"name": [], "phone": [], "card": [], "today": []}
    for _ in range(reads):
        cid, name = rng.choice(customers)
        started = time.perf_counter()
        hits = queries.search_customers(replica, name[1:] or name)
        timings["name"].append(time.perf_counter() - started)
        assert hits, "the name search found nothing"
        number = rng.choice(digits)
        started = time.perf_counter()
        queries.search_customers(replica, number[-5:])
        timings["phone"].append(time.perf_counter() - started)
        started = time.perf_counter()
        card = queries.customer_card(replica, cid)
        timings["card"].append(time.perf_counter() - started)
        assert card is not None
    user = replica.user_id
    for _ in range(50):
        started = time.perf_counter()
        queries.today_tasks(replica, user)
        timings["today"].append(time.perf_counter() - started)
    replica.close()
    labels = {
        "name": "replica: search by name fragment",
        "phone": "replica: search by 5 phone digits",
        "card": "replica: open the 360° card",
        "today": "replica: today's tasks",
    }
    return [
        (labels[k], f"p50 {_q(v, 50) * 1000:.1f} ms", f"p95 {_q(v, 95) * 1000:.1f} ms", "target ≤ 100 ms")
        for k, v in timings.items()
    ]


async def incremental(url: str, work: Path, rounds: int) -> list[tuple]:
    from mobile.engine import SyncEngine
    from mobile.replica import Replica
    from shared import sync as proto
    from shared.ids import uuid7

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        reader = await _login(http, "rep.bjcy")
        writer = await _login(http, "rep2.bjcy")
        customers = [
            c["id"]
            for c in (
                await http.get(
                    "/api/customers?limit=200", headers={"Authorization": f"Bearer {writer['access_token']}"}
                )
            ).json()["items"]
        ]
        replica = Replica(work / "phone.sqlite3")  # the replica of the first sync, up to date

        async def token_provider(refresh: bool = False) -> str:
            return reader["access_token"]

        engine = SyncEngine(replica, url, token_provider)
        await engine.sync()
        writer_id = str(uuid.uuid4())
        next_id = 1
        round_trips, applied = [], []
        for _ in range(rounds):
            for _batch in range(10):
                mutations = []
                for _ in range(10):
                    mutations.append(
                        {"id": next_id, "name": "interaction.log", "hlc": _hlc("w"),
                         "args": {"id": str(uuid7()), "customer_id": random.choice(customers), "kind": "call",
                                  "body": "回访"}}
                    )  # fmt: skip
                    next_id += 1
                reply = await http.post(
                    "/api/sync/push",
                    json={"client_id": writer_id, "schema_version": proto.SCHEMA_VERSION, "mutations": mutations},
                    headers={"Authorization": f"Bearer {writer['access_token']}"},
                )
                reply.raise_for_status()
            # The bare round trip of the pull request carrying the 100 changes ...
            started = time.perf_counter()
            reply = await http.post(
                "/api/sync/pull",
                json={"client_id": str(replica.client_id), "schema_version": proto.SCHEMA_VERSION,
                      "cursor": replica.cursor},
                headers={"Authorization": f"Bearer {reader['access_token']}"},
            )  # fmt: skip
            round_trips.append(time.perf_counter() - started)
            page = msgspec.json.decode(reply.content, type=proto.PullResponse)
            assert sum(len(t.rows) for t in page.changes) == 100, "expected exactly the 100 new changes"
            # ... and the engine's whole pull, applied to the replica.
            started = time.perf_counter()
            await engine.sync()
            applied.append(time.perf_counter() - started)
        await engine.aclose()
        replica.close()
    return [
        ("incremental pull of 100 changes, HTTP round trip", f"p50 {_q(round_trips, 50) * 1000:.1f} ms",
         f"p95 {_q(round_trips, 95) * 1000:.1f} ms", "budget ≤ 50 ms"),
        ("incremental pull of 100 changes, applied to replica", f"p50 {_q(applied, 50) * 1000:.1f} ms",
         f"p95 {_q(applied, 95) * 1000:.1f} ms", ""),
    ]  # fmt: skip


async def push_throughput(url: str, seconds: float, devices_per_store: int) -> list[tuple]:
    from shared import sync as proto
    from shared.ids import uuid7

    users = ["rep.bjcy", "rep2.bjcy", "rep.shpd", "manager.bjcy"]
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=64)) as http:
        sessions = [await _login(http, u) for u in users]
        targets = []
        for s in sessions:
            headers = {"Authorization": f"Bearer {s['access_token']}"}
            items = (await http.get("/api/customers?limit=200", headers=headers)).json()["items"]
            targets.append((headers, [c["id"] for c in items]))
        latencies: list[float] = []
        done = 0
        stop_at = time.perf_counter() + seconds

        async def device(headers: dict, customers: list[str]) -> None:
            nonlocal done
            client_id = str(uuid.uuid4())
            next_id = 1
            while time.perf_counter() < stop_at:
                mutations = []
                for _ in range(10):
                    mutations.append(
                        {"id": next_id, "name": "interaction.log", "hlc": _hlc("d"),
                         "args": {"id": str(uuid7()), "customer_id": random.choice(customers), "kind": "visit",
                                  "body": "到店看沙发"}}
                    )  # fmt: skip
                    next_id += 1
                started = time.perf_counter()
                reply = await http.post(
                    "/api/sync/push",
                    json={"client_id": client_id, "schema_version": proto.SCHEMA_VERSION, "mutations": mutations},
                    headers=headers,
                )
                latencies.append(time.perf_counter() - started)
                body = reply.json()
                assert reply.status_code == 200 and all(r["status"] == "applied" for r in body["results"]), body
                done += len(mutations)

        started = time.perf_counter()
        await asyncio.gather(*(device(h, c) for h, c in targets for _ in range(devices_per_store)))
        elapsed = time.perf_counter() - started
    return [
        (f"push, {len(targets) * devices_per_store} devices, batches of 10", f"{done / elapsed:,.0f} mutations/s",
         f"p50 {_q(latencies, 50) * 1000:.0f} ms, p99 {_q(latencies, 99) * 1000:.0f} ms",
         "budget ≥ 4,000/s, p99 ≤ 200 ms"),
    ]  # fmt: skip


def _table(rows: list[tuple]) -> None:
    headers = ("measure", "rate", "time", "ratio / budget")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    line = " | ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--interactions", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--devices-per-user", type=int, default=4)
    args = parser.parse_args()
    await _prepare(args.customers, args.interactions)
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="floorwalker-bench-") as tmp, Server() as server:
        work = Path(tmp)
        rows += await first_sync(server.url, work)
        rows += local_reads(work)
        rows += await incremental(server.url, work, args.rounds)
        rows += await push_throughput(server.url, args.seconds, args.devices_per_user)
    _table(rows)


if __name__ == "__main__":
    asyncio.run(main())
