"""Benchmark: what the phone's screens read from a replica filled by a real first sync.

    python -m bench.app_reads [--runs 200] [--replica PATH]

The replica is the one bench/sync.py makes: the demo chain on PostgreSQL with store BJ-CY at 5,000
customers topped up to 50,000 interactions (bench.sync's preparation), a real server process, and
a first sync over loopback HTTP as rep.bjcy into an empty SQLite file. The server then stops and
each query runs ``--runs`` times (random arguments, fixed seed) straight on the replica:
search by a 1-character surname, a 2-character name fragment, 4 phone digits, a full number, each
list filter on empty text; the customer card for random customers and for the 20 heaviest ones
(most interactions + orders); the rep's tasks for today. Then the same as the app does it: the
app's state (``mobile.state.AppState`` on this replica) reads the card and the card screen's
component is rendered into its control tree (everything but drawing), and the customer list
re-rendered for a typed fragment.

With ``--replica PATH`` an existing replica file is measured as is (no PostgreSQL, no server);
a missing one is built there and kept. Without it the replica is rebuilt in a temporary folder.

Target (the issue): every read ≤ 100 ms; a row passes when its p95 is within the target.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench.sync import Server, _login, _prepare, _q

TARGET_MS = 100.0
USERNAME = "rep.bjcy"
HEAVY = 20


async def build_replica(path: Path, customers: int, interactions: int) -> float:
    """Prepare the PostgreSQL chain (as bench/sync.py does) and first-sync ``path`` from a real
    server as rep.bjcy. Returns the seconds the first sync took."""
    from mobile.engine import SyncEngine
    from mobile.replica import Replica
    from shared import sync as proto

    await _prepare(customers, interactions)
    with Server() as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            session = await _login(http, USERNAME)
        user = session["user"]
        replica = Replica(path)
        replica.set_identity(user["id"], store_id=user["store_id"], role=user["role"])

        async def token_provider(refresh: bool = False) -> str:
            return session["access_token"]

        engine = SyncEngine(replica, server.url, token_provider, pull_limit=proto.MAX_PULL_LIMIT)
        started = time.perf_counter()
        status = await engine.sync()
        seconds = time.perf_counter() - started
        await engine.aclose()
        replica.close()
        if status.state != "synced":
            raise RuntimeError(f"the first sync did not finish: {status}")
    return seconds


def _size(result: Any) -> int:
    """How many items a screen shows: search hits, today's tasks, the card's lists, or the controls
    of a rendered screen."""
    if isinstance(result, list):
        return len(result)
    if isinstance(result, dict):
        return sum(len(v) for v in result.values())
    if result is None:
        raise AssertionError("a card of a synced customer was not found")
    if not hasattr(result, "phones"):  # a rendered screen: how many controls it holds
        from tests.flet_tree import walk

        return sum(1 for _ in walk(result))
    lists = (result.phones, result.tags, result.orders, result.interactions, result.opportunities, result.tasks)
    return sum(len(x) for x in (*lists, result.complaints))


def _measure(runs: int, call: Callable[[], Any]) -> tuple[list[float], float]:
    """Milliseconds of each call, and the mean number of items they returned."""
    timings, sizes = [], []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        timings.append((time.perf_counter() - started) * 1000)
        sizes.append(_size(result))
    return timings, sum(sizes) / len(sizes)


def measure_reads(path: Path, runs: int, seed: int) -> tuple[list[tuple], dict[str, int]]:
    from mobile import queries
    from mobile.replica import Replica
    from shared import sync as proto

    replica = Replica(path)
    db = replica.db
    try:
        counts = {spec.name: db.execute(f"SELECT count(*) FROM {spec.name}").fetchone()[0] for spec in proto.TABLES}
        rng = random.Random(seed)
        user_id = replica.user_id
        names = [r[0] for r in db.execute("SELECT name FROM customers WHERE name != ''")]
        ids = [r[0] for r in db.execute("SELECT id FROM customers")]
        surnames = [s for s, _ in Counter(n[0] for n in names).most_common(5)]  # 王, 李, 张 ...
        pairs = [n[i : i + 2] for n in names for i in range(len(n) - 1)]
        numbers = [r[0] for r in db.execute("SELECT digits FROM customer_phones WHERE length(digits) = 11")]
        heavy = [
            r[0]
            for r in db.execute(
                "SELECT c.id FROM customers c ORDER BY "
                "(SELECT count(*) FROM interactions i WHERE i.customer_id = c.id) + "
                "(SELECT count(*) FROM orders o WHERE o.customer_id = c.id) DESC LIMIT ?",
                (HEAVY,),
            )
        ]
        heaviest = db.execute(
            "SELECT (SELECT count(*) FROM interactions WHERE customer_id = ?), "
            "(SELECT count(*) FROM orders WHERE customer_id = ?)",
            (heavy[0], heavy[0]),
        ).fetchone()

        def search(text: Callable[[], str], **filters: Any) -> Callable[[], Any]:
            return lambda: queries.search_customers(replica, text(), **filters)

        def four_digits() -> str:
            number = rng.choice(numbers)
            start = rng.randrange(len(number) - 3)
            return number[start : start + 4]

        def empty() -> str:
            return ""

        cases: list[tuple[str, Callable[[], Any]]] = [
            (f"search: 1-char surname ({'/'.join(surnames)})", search(lambda: rng.choice(surnames))),
            ("search: 2-char name fragment", search(lambda: rng.choice(pairs))),
            ("search: 4 phone digits", search(four_digits)),
            ("search: full 11-digit number", search(lambda: rng.choice(numbers))),
            ("search: '' + mine", search(empty, mine=True)),
            ("search: '' + high value", search(empty, high_value=True)),
            ("search: '' + open opportunity", search(empty, open_opportunity=True)),
            ("search: '' + not contacted 30 days", search(empty, not_contacted_days=30)),
            ("card: random customer", lambda: queries.customer_card(replica, rng.choice(ids))),
            (
                f"card: {HEAVY} heaviest (top: {heaviest[0]} interactions, {heaviest[1]} orders)",
                lambda: queries.customer_card(replica, rng.choice(heavy)),
            ),
            ("today's tasks (rep.bjcy)", lambda: queries.today_tasks(replica, user_id)),
        ]
        queries.search_customers(replica, "")  # warm the connection's statement cache once
        rows = []
        for label, call in cases:
            timings, size = _measure(runs, call)
            if label.startswith("search") and not size:
                raise AssertionError(f"{label}: found nothing")
            p95 = _q(timings, 95)
            rows.append((label, size, _q(timings, 50), p95, max(timings), p95 <= TARGET_MS))
        rows.extend(_screens(path, runs, rng, ids, surnames, pairs))
    finally:
        replica.close()
    return rows, counts


def _screens(path: Path, runs: int, rng: random.Random, ids: list[str], surnames: list[str], pairs: list[str]):
    """Open a card and type a search the way the app does: AppState's cached reads (cleared each run,
    as after a change) plus the screen component rendered into controls without a renderer."""
    import uuid

    from mobile.session import Credentials, FileCredentials, Session
    from mobile.state import AppState, Device
    from mobile.ui.card import CardScreen
    from mobile.ui.screens import CustomersScreen
    from shared import wire
    from shared.enums import Role
    from tests.flet_tree import render

    with tempfile.TemporaryDirectory(prefix="floorwalker-bench-app-") as tmp:
        store = FileCredentials(Path(tmp) / "credentials.json")
        probe = _replica_meta(path)
        user = wire.UserOut(
            id=uuid.UUID(probe["user_id"]),
            username=USERNAME,
            display_name=USERNAME,
            role=Role(probe.get("role") or "rep"),
            store_id=uuid.UUID(probe["store_id"]) if probe.get("store_id") else None,
            region_id=None,
            language="zh",
        )
        session = Session(store, Credentials(server_url="http://127.0.0.1:9", user=user, refresh_token="unused"))
        state = AppState().attach(store, live=False)
        device = Device(path, session)
        state._device, state.user = device, user
        try:

            def open_card() -> Any:
                state._cache.clear()
                return render(CardScreen, state, rng.choice(ids))

            def type_search() -> Any:
                state._cache.clear()
                state.search(rng.choice(surnames + pairs))
                return render(CustomersScreen, state)

            rows = []
            for label, call in (
                ("app: open a card (state + CardScreen controls)", open_card),
                ("app: type a search (state + CustomersScreen controls)", type_search),
            ):
                timings, size = _measure(runs, call)
                p95 = _q(timings, 95)
                rows.append((label, size, _q(timings, 50), p95, max(timings), p95 <= TARGET_MS))
            return rows
        finally:
            device.replica.close()


def _replica_meta(path: Path) -> dict[str, str]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())
    finally:
        db.close()


def _print(rows: list[tuple], counts: dict[str, int], sync_seconds: float | None, runs: int) -> None:
    console = Console(width=None if sys.stdout.isatty() else 120)
    sizes = Table(title="replica rows (rep.bjcy)")
    sizes.add_column("table")
    sizes.add_column("rows", justify="right")
    for name, n in counts.items():
        sizes.add_row(name, f"{n:,}")
    sizes.add_row("[b]total[/b]", f"[b]{sum(counts.values()):,}[/b]")
    console.print(sizes)
    if sync_seconds is not None:
        console.print(f"first sync (server → HTTP → replica): {sync_seconds:.1f} s")
    table = Table(title=f"phone reads on the replica ({counts['customers']:,} customers, {runs} runs each)")
    table.add_column("measure", no_wrap=True)
    table.add_column("items/run", justify="right")
    for header in ("p50 ms", "p95 ms", "max ms", "target"):
        table.add_column(header, justify="right")
    table.add_column("p95 result")
    for label, size, p50, p95, worst, ok in rows:
        verdict = "[green]PASS[/green]" if ok else "[red]FAIL[/red]"
        table.add_row(
            label, f"{size:.1f}", f"{p50:.2f}", f"{p95:.2f}", f"{worst:.2f}", f"≤ {TARGET_MS:.0f} ms", verdict
        )
    console.print(table)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--interactions", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--replica", type=Path, help="measure this replica file (built there when missing)")
    args = parser.parse_args()
    started = time.perf_counter()
    sync_seconds = None
    with tempfile.TemporaryDirectory(prefix="floorwalker-bench-") as tmp:
        path = args.replica or Path(tmp) / "phone.sqlite3"
        if not path.exists():
            sync_seconds = await build_replica(path, args.customers, args.interactions)
        rows, counts = measure_reads(path, args.runs, args.seed)
    _print(rows, counts, sync_seconds, args.runs)
    print(f"total: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
