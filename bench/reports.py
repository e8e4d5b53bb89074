"""Benchmark: every manager report at chain scale on PostgreSQL.

    python -m bench.reports [--fresh] [--customers 500000] [--open 200000] [--runs 20]

1. Data: the rule bench's database (``floorwalker_bench_rules``: ``seed --demo --customers
   500000`` with open opportunities topped up to 200,000; reused when it is there, ``--fresh``
   rebuilds it). Prints the row counts.
2. Each report of ``server.analytics`` (the same service functions the API calls), for four
   scopes — the whole chain (admin), a region, a store, a rep — over the last 30 days, warmed
   once and then run ``--runs`` times: p50 and p95 in ms, the rows it returned, and p50 as a
   multiple of the baseline measured in the same run: a plain count of the scope's open
   opportunities (the cheapest query over the same rows).

Budget (the issue): each report p95 ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import time
import uuid
from typing import Any

from rich.table import Table

from bench.rules import _q, console, prepare, print_counts

BUDGET_MS = 300.0


async def _scopes() -> list[tuple[str, Any]]:
    from server.analytics.filters import Filters, today
    from server.rules.tables import Rule

    end = today()
    start = end - dt.timedelta(days=29)
    stores = {r["code"]: r["id"] for r in await Rule.raw("SELECT id, code FROM stores WHERE deleted = false")}
    north = await Rule.raw("SELECT s.id FROM stores s JOIN regions r ON r.id = s.region_id WHERE r.code = 'north'")
    rep = (await Rule.raw("SELECT id FROM users WHERE username = 'rep.bjcy'"))[0]["id"]

    def ids(values) -> frozenset[uuid.UUID]:
        return frozenset(uuid.UUID(str(v)) for v in values)

    return [
        ("chain (admin)", Filters(start=start, end=end, store_ids=None)),
        ("region north", Filters(start=start, end=end, store_ids=ids(r["id"] for r in north), region_code="north")),
        ("store BJ-CY", Filters(start=start, end=end, store_ids=ids([stores["BJ-CY"]]), store_code="BJ-CY")),
        (
            "rep rep.bjcy",
            Filters(
                start=start,
                end=end,
                store_ids=ids([stores["BJ-CY"]]),
                owner_id=uuid.UUID(str(rep)),
                store_code="BJ-CY",
                rep_name="rep.bjcy",
            ),
        ),
    ]


async def _baseline(f: Any) -> None:
    from server.rules.tables import Rule

    params: list[object] = []
    where = f.store_filter("o.store_id", params)
    await Rule.raw(
        "SELECT count(*) AS n FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id "
        f"WHERE s.kind = 'open' AND o.deleted = false AND {where}",
        *params,
    )


async def _time(call: Any, runs: int) -> tuple[list[float], Any]:
    result = await call()  # warm: plans cached, pages in memory
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, result


async def measure(runs: int) -> tuple[list[tuple], bool]:
    from server.analytics import service

    rows: list[tuple] = []
    ok = True
    now = dt.datetime.now(dt.UTC)
    for scope, f in await _scopes():
        base, _ = await _time(lambda f=f: _baseline(f), runs)
        base_p50 = statistics.median(base)
        rows.append((scope, "baseline: count open deals", statistics.median(base), _q(base, 95), "", "", ""))
        for name in service.REPORTS:
            timings, table = await _time(lambda name=name, f=f: service.run(name, f, now), runs)
            p50, p95 = statistics.median(timings), _q(timings, 95)
            fits = p95 <= BUDGET_MS
            ok &= fits
            rows.append(
                (scope, name, p50, p95, f"{len(table.rows):,}", f"{p50 / base_p50:.1f}×", "ok" if fits else "OVER")
            )
    return rows, ok


def print_reports(rows: list[tuple], runs: int, ok: bool) -> None:
    title = f"2. reports (last 30 days; {runs} runs each after one warm-up; budget p95 ≤ {BUDGET_MS:.0f} ms)"
    table = Table(title=title)
    for column in ("scope", "report", "p50 ms", "p95 ms", "rows", "p50 / baseline", "budget"):
        table.add_column(column, justify="left" if column in ("scope", "report") else "right")
    for scope, name, p50, p95, count, ratio, verdict in rows:
        table.add_row(scope, name, f"{p50:.1f}", f"{p95:.1f}", count, ratio, verdict)
    console.print(table)
    console.print("every report within budget" if ok else "[bold red]some reports are over budget[/]")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true", help="rebuild the 500,000-customer database")
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--open", type=int, default=200_000, help="open opportunities to top up to")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    from server import db

    started = time.perf_counter()
    counts, notes = await prepare(args.customers, args.open, args.fresh)
    try:
        print_counts(counts, notes)
        rows, ok = await measure(args.runs)
        print_reports(rows, args.runs, ok)
    finally:
        await db.stop()
    console.print(f"total: {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
