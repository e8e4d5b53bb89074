"""Benchmark: the nightly scoring of every customer's standing (shared/segments.py) at chain
scale, and the segment report on what it wrote.

    python -m bench.segments [--fresh] [--customers 500000]

1. Data (PostgreSQL ``floorwalker_bench_segments``): ``floorwalker seed --demo --customers N``,
   reused when it already holds N customers (``--fresh`` rebuilds it), then VACUUM ANALYZE.
2. Baseline, in the same run: the scoring's own aggregate query for every store, read only
   (what the database must do whatever the Python does).
3. The scoring (``segments.score_all``): read, decide in Python, replace each store's rows by COPY,
   one transaction a store — first on an empty table, then again (the nightly case: replacing).
4. The segment report for the whole chain (admin) and for one store.

Prints customers/s for each and the ratio of the scoring to the read alone.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time

from rich.console import Console
from rich.table import Table

from bench.rules import _psql_in, _psql_value, _seed  # (it points the engine at its own database …)
from bench.sync import PG

DB_NAME = "floorwalker_bench_segments"
DATABASE_URL = f"{PG}/{DB_NAME}"
os.environ["FLOORWALKER_DATABASE_URL"] = DATABASE_URL  # … this one's, set after

console = Console(width=None if sys.stdout.isatty() else 130)


async def prepare(customers: int, fresh: bool) -> list[str]:
    from server import db
    from server.migrate import migrate
    from server.settings import Settings

    notes = []
    have = None if fresh else _psql_value(DB_NAME, "SELECT count(*) FROM customers WHERE deleted = false")
    if have is None or int(have) != customers:
        console.print(f"seeding {DB_NAME}: demo chain of {customers:,} customers ...")
        notes.append(f"seeded {customers:,} customers in {_seed(DB_NAME, DATABASE_URL, customers):.0f} s")
    else:
        notes.append(f"reused {DB_NAME} ({customers:,} customers; --fresh rebuilds it)")
    settings = Settings.from_env()
    await migrate(settings)
    await db.start(settings)
    _psql_in(DB_NAME, "TRUNCATE customer_standings")
    _psql_in(DB_NAME, "VACUUM ANALYZE")
    return notes


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true", help="rebuild the database")
    parser.add_argument("--customers", type=int, default=500_000)
    args = parser.parse_args()
    notes = await prepare(args.customers, args.fresh)

    from server.analytics import segments, service
    from server.analytics.filters import Filters
    from server.analytics.tables import CustomerStanding
    from server.stores.tables import Store

    now = dt.datetime.now(dt.UTC)
    stores = [r["id"] for r in await Store.select(Store.id).order_by(Store.code)]
    customers = args.customers

    started = time.perf_counter()
    read = 0
    for store_id in stores:
        sql, params = segments._store_sql(store_id, now)
        read += len(await CustomerStanding.raw(sql, *params))
    baseline = time.perf_counter() - started
    assert read == customers, (read, customers)

    timings = []
    for label in ("scoring, empty table", "scoring again (replacing: the nightly case)"):
        started = time.perf_counter()
        scored = await segments.score_all(now, stores)
        timings.append((label, time.perf_counter() - started))
        assert scored == customers, (scored, customers)

    today = now.date()
    chain = Filters(start=today - dt.timedelta(days=29), end=today, store_ids=None)
    one = Filters(start=chain.start, end=today, store_ids=frozenset({stores[0]}))
    reports = []
    for label, f in (("segment report, whole chain", chain), ("segment report, one store", one)):
        started = time.perf_counter()
        table = await service.run("segments", f, now)
        reports.append((label, time.perf_counter() - started, table.rows[-1][3]))

    out = Table(title=f"nightly scoring, PostgreSQL, {customers:,} customers in {len(stores)} stores")
    for column in ("measure", "seconds", "customers/s", "× read alone"):
        out.add_column(column, justify="left" if column == "measure" else "right")
    out.add_row("read alone (baseline: the scoring's query)", f"{baseline:.1f}", f"{customers / baseline:,.0f}", "1.00")
    for label, seconds in timings:
        out.add_row(label, f"{seconds:.1f}", f"{customers / seconds:,.0f}", f"{baseline / seconds:.2f}")
    for label, seconds, counted in reports:
        out.add_row(f"{label} ({counted:,} customers)", f"{seconds:.2f}", f"{counted / seconds:,.0f}", "")
    console.print(out)
    for note in notes:
        console.print(f"- {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
