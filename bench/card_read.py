"""Benchmark: the scoped customer-card read (service layer, Piccolo) against raw asyncpg queries
fetching the same data, in one run on PostgreSQL. Prints a table with reads/s, p50/p95 and the ratio.

    scripts/bench [--customers N] [--reads N]

Budget (DESIGN.md): the scoped card read reaches at least 0.65x the raw asyncpg rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import time

os.environ.setdefault("PICCOLO_CONF", "server.piccolo_conf")

PG = os.environ.get("FLOORWALKER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
DB_NAME = "floorwalker_bench"
os.environ["FLOORWALKER_DATABASE_URL"] = f"{PG}/{DB_NAME}"

RAW_QUERIES = [
    (
        "SELECT c.id, c.name, c.gender, c.birthday, c.email, c.province, c.city, c.district, c.address, c.consents, "
        "c.store_id, c.owner_id, c.created_at, s.code, u.display_name "
        "FROM customers c JOIN stores s ON s.id = c.store_id LEFT JOIN users u ON u.id = c.owner_id "
        "WHERE c.id = $1 AND c.deleted = false AND c.store_id = $2"
    ),
    "SELECT id, number, kind, is_primary FROM customer_phones WHERE customer_id = $1 AND deleted = false "
    "ORDER BY is_primary DESC, created_at",
    "SELECT kind, value FROM customer_identities WHERE customer_id = $1 AND deleted = false ORDER BY kind",
    "SELECT tag FROM customer_tags WHERE customer_id = $1 AND deleted = false ORDER BY created_at, tag",
    # the value line and the standing's facts (shared/segments.py)
    "SELECT count(*), sum(amount), sum(CASE WHEN ordered_at >= now() - interval '365 days' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN ordered_at >= now() - interval '365 days' THEN amount ELSE 0 END), min(ordered_at), "
    "max(ordered_at), sum(CASE WHEN channel = 'store' THEN amount ELSE 0 END), "
    "(SELECT count(*) FROM complaints WHERE customer_id = $1 AND deleted = false "
    "AND opened_at >= now() - interval '365 days'), "
    "(SELECT count(*) FROM interactions WHERE customer_id = $1 AND deleted = false "
    "AND occurred_at >= now() - interval '90 days') "
    "FROM orders WHERE customer_id = $1 AND deleted = false",
    "SELECT o.id, o.channel, o.ordered_at, o.amount, o.payment_method, s.code FROM orders o "
    "LEFT JOIN stores s ON s.id = o.sold_by_store_id WHERE o.customer_id = $1 AND o.deleted = false "
    "ORDER BY o.ordered_at DESC LIMIT 20",
    "SELECT l.order_id, l.product_id, l.product_name, g.code, l.quantity, l.unit_price, l.amount FROM order_lines l "
    "JOIN orders o ON o.id = l.order_id LEFT JOIN categories g ON g.id = l.category_id "
    "WHERE o.customer_id = $1 AND l.deleted = false",
    "SELECT i.id, i.kind, i.channel, i.occurred_at, i.duration_seconds, i.body, i.user_id, p.name_zh, g.code "
    "FROM interactions i LEFT JOIN products p ON p.id = i.product_id LEFT JOIN categories g ON g.id = i.category_id "
    "WHERE i.customer_id = $1 AND i.deleted = false ORDER BY i.occurred_at DESC, i.id DESC LIMIT 50",
    "SELECT o.id, o.title, s.code, s.kind, o.amount, o.expected_close_date, o.contract_end_date, o.stage_entered_at "
    "FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id WHERE o.customer_id = $1 AND o.deleted = false "
    "ORDER BY CASE WHEN s.kind = 'open' THEN 0 ELSE 1 END, o.stage_entered_at DESC LIMIT 50",
    "SELECT t.id, t.kind, t.title, t.due_at, t.status FROM tasks t WHERE t.customer_id = $1 AND t.deleted = false "
    "AND t.status = 'open' ORDER BY t.due_at LIMIT 50",
    "SELECT id, category, status, description, opened_at, solved_at, satisfaction FROM complaints "
    "WHERE customer_id = $1 AND deleted = false ORDER BY opened_at DESC LIMIT 50",
]


def _psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True)


async def _prepare(customers: int) -> None:
    from server.migrate import migrate
    from server.seed import seed_demo
    from server.settings import Settings

    _psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    _psql(f"CREATE DATABASE {DB_NAME}")
    await migrate(Settings.from_env())
    started = time.perf_counter()
    counts = await seed_demo(customers=customers, progress=True)
    seconds = time.perf_counter() - started
    rows = sum(counts.values())
    print(f"seeded {customers} customers ({rows} rows) in {seconds:.1f} s: {rows / seconds:,.0f} rows/s")


def _summary(name: str, timings: list[float]) -> tuple[str, float, float, float]:
    total = sum(timings)
    q = statistics.quantiles(timings, n=100)
    return name, len(timings) / total, q[49] * 1000, q[94] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    await _prepare(args.customers)

    import asyncpg

    from server import db
    from server.auth import service as auth_service
    from server.auth.scope import Caller
    from server.auth.tables import User
    from server.customers import service as customers
    from server.customers.tables import Customer
    from server.settings import Settings
    from shared.enums import Role

    settings = Settings.from_env()
    await db.start(settings)
    user = await User.select().where(User.username == "rep.bjcy").first()
    caller = Caller(
        user_id=user["id"],
        username=user["username"],
        display_name=user["display_name"],
        role=Role.REP,
        store_id=user["store_id"],
        region_id=None,
        language="zh-CN",
        store_ids=await auth_service.store_ids_for(role=Role.REP, store_id=user["store_id"], region_id=None),
    )
    ids = [r["id"] for r in await Customer.select(Customer.id).where(Customer.store_id == user["store_id"])]
    rng = random.Random(7)
    sample = [rng.choice(ids) for _ in range(args.reads)]
    conn = await asyncpg.connect(settings.database_url)

    async def raw_card(customer_id):
        rows = [await conn.fetch(RAW_QUERIES[0], customer_id, user["store_id"])]
        for sql in RAW_QUERIES[1:]:
            rows.append(await conn.fetch(sql, customer_id))
        return rows

    async def service_card(customer_id):
        return await customers.card(caller=caller, customer_id=customer_id)

    results = []
    for name, fn in (("raw asyncpg (baseline)", raw_card), ("scoped card (service)", service_card)):
        for customer_id in sample[:100]:  # warm up caches and prepared statements
            await fn(customer_id)
        timings = []
        for customer_id in sample:
            started = time.perf_counter()
            await fn(customer_id)
            timings.append(time.perf_counter() - started)
        results.append(_summary(name, timings))
    await conn.close()
    await db.stop()

    baseline = results[0][1]
    print(f"\ncustomer-card read, PostgreSQL, {len(ids)} customers in BJ-CY, {args.reads} reads each, sequential")
    print(f"{'measure':<26} {'reads/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'ratio':>7}")
    for name, rate, p50, p95 in results:
        print(f"{name:<26} {rate:>10,.0f} {p50:>8.2f} {p95:>8.2f} {rate / baseline:>7.2f}")
    print("budget: scoped card >= 0.65x raw asyncpg")


if __name__ == "__main__":
    asyncio.run(main())
