"""Benchmark: importing a big customer file with cleaning and duplicate detection (PostgreSQL).

    python -m bench.imports [--rows 500000] [--seed 7]

1. A new database ``floorwalker_bench_import`` with the demo chain (600 customers, by the command
   line as an operator would).
2. A CSV written the way shops export them (UTF-8 with BOM, Chinese headers): ``--rows`` rows of
   about 0.8 × rows distinct people in the chain's stores — names, mobiles (some with spaces or
   full-width digits, some +86), e-mails on a third, addresses on half, POS member ids on a fifth —
   where about 12 % of rows repeat a person (the same phone, or the same member id with a new
   phone, or the same e-mail with a spaced name) and about 2 % are bad (no phone, test numbers,
   broken e-mails, placeholder names).
3. ``floorwalker import`` of that file in process (the same code path, no progress bar), timed end
   to end: reading and decoding, mapping, cleaning, candidate search in the database, scoring,
   the batched writes; then a second import of the same file (must create nothing).

Budget (DESIGN.md): ≥ 20,000 rows/s. Two in-run baselines: the cleaning alone (rows/s, the same
rows, no database, one process), and the raw write — the rows the import wrote, COPYed into a
copy of the database as it was before the import, in as many transactions, nothing else: the
most any import of this file can do on this machine with this schema (and the same COPY with
the foreign-key checks off, to show what they cost). The table also shows every count, which
must add up to the rows, and where the import's time went: the event loop's wall time by stage (waiting for the
cleaning worker, reading candidates, resolving, waiting for the previous batch's write), the
peak memory of the process, and the CPU seconds of the importing process with its cleaning
worker (PostgreSQL's own CPU is the rest of the machine's two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import io
import os
import random
import resource
import sys
import time

from rich.console import Console
from rich.table import Table

from bench.sync import PG, ROOT, _psql

DB_NAME = "floorwalker_bench_import"
DATABASE_URL = f"{PG}/{DB_NAME}"
RAW_DB = f"{DB_NAME}_raw"  # the raw write limit: the same rows, COPY alone
RAW_DB_NO_FK = f"{DB_NAME}_raw_nofk"  # … with the foreign-key checks off
os.environ["FLOORWALKER_DATABASE_URL"] = DATABASE_URL
BUDGET = 20_000

console = Console(width=None if sys.stdout.isatty() else 130)
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰梅红云飞鹏宇辉婷雪琳健斌浩凯俊波峰晨阳帆欣怡然博文思佳嘉子雨萱"
)
DISTRICTS = [
    ("北京市", "朝阳区"), ("北京市", "海淀区"), ("上海市", "浦东新区"), ("上海市", "徐汇区"), ("天津市", "和平区"),
    ("广东省深圳市", "南山区"), ("浙江省杭州市", "西湖区"), ("江苏省南京市", "鼓楼区"),
]  # fmt: skip
HEADER = ["姓名", "手机号", "邮箱", "地址", "会员号", "门店编码", "标签"]


PREFIXES = [*(f"13{d}" for d in "0123456789"), "150", "151", "152", "153", "155", "156", "157", "158", "159",
            *(f"18{d}" for d in "0123456789"), "166", "177", "199"]  # fmt: skip


def _mobile(rng: random.Random) -> str:
    while True:
        digits = f"{rng.choice(PREFIXES)}{rng.randrange(10**8):08d}"
        if len(set(digits[3:])) > 3:
            return digits


def write_file(rows: int, stores: list[str], seed: int) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    people: list[list[str]] = []
    for n in range(rows):
        roll = rng.random()
        if people and roll < 0.12:  # a person seen before, written another way
            base = list(rng.choice(people))
            kind = rng.random()
            if kind < 0.4:
                base[1] = " ".join((base[1][:3], base[1][3:7], base[1][7:]))  # the same phone, spaced
                base[6] = rng.choice(["VIP", "老客户", ""])
            elif kind < 0.7 and base[4]:
                base[1] = _mobile(rng)  # the same member id, a new phone
            elif base[2]:
                base[0] = base[0][0] + " " + base[0][1:]  # the same e-mail, a spaced name, a new phone
                base[1] = _mobile(rng)
            writer.writerow(base)
            continue
        if roll > 0.98:  # bad rows
            writer.writerow(rng.choice([
                ["王芳", "无", "", "", "", stores[0], ""], ["测试", _mobile(rng), "", "", "", stores[0], ""],
                ["李娜", _mobile(rng), "lina@", "", "", stores[0], ""], ["", _mobile(rng), "", "", "", stores[0], ""],
            ]))  # fmt: skip
            continue
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
        phone = _mobile(rng)
        if rng.random() < 0.1:
            phone = "+86 " + phone
        email = (
            f"u{n}.{rng.randrange(10**6)}@{rng.choice(['qq.com', '163.com', 'sina.com'])}"
            if rng.random() < 0.33
            else ""
        )
        city, district = rng.choice(DISTRICTS)
        address = (
            f"{city}{district}{rng.choice(['建国路', '世纪大道', '中山路', '人民路'])}{rng.randrange(1, 999)}号"
            if rng.random() < 0.5
            else ""
        )
        member = f"M{n:08d}" if rng.random() < 0.2 else ""
        row = [name, phone, email, address, member, rng.choice(stores), rng.choice(["", "", "VIP", "沙发", "床垫"])]
        people.append(row)
        writer.writerow(row)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def _fresh_database() -> None:
    import subprocess

    _psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    for copy in (RAW_DB, RAW_DB_NO_FK):
        _psql(f"DROP DATABASE IF EXISTS {copy} WITH (FORCE)")
    _psql(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(
        [sys.executable, "-m", "server.cli", "seed", "--demo", "--no-progress"],
        cwd=ROOT, env={**os.environ, "FLOORWALKER_DATABASE_URL": DATABASE_URL}, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for copy in (RAW_DB, RAW_DB_NO_FK):
        _psql(f"CREATE DATABASE {copy} TEMPLATE {DB_NAME}")  # the same chain, the same ids


# What the import writes, parents first (import_jobs only so the rejections have their job).
WRITTEN = ("import_jobs", "customers", "customer_phones", "customer_identities", "customer_tags", "import_rejections")


async def raw_write(since: float, batches: int, *, foreign_keys: bool = True) -> float:
    """Seconds to COPY the rows the import wrote (made after ``since``, a time.time()) into a copy of
    the database as it was before the import, ``batches`` transactions as the import has, with
    its commit settings: the write alone, no cleaning or resolving — this machine's limit for
    the import, measured in the same run. ``foreign_keys=False``: with the foreign-key checks
    off as well (session_replication_role = replica, a superuser's setting: what no import in
    production may do; it shows what the checks cost), into a copy of its own."""
    import datetime as dt

    import asyncpg

    source = await asyncpg.connect(DATABASE_URL)
    try:
        after = dt.datetime.fromtimestamp(since, dt.UTC)
        job_ids = [r["id"] for r in await source.fetch("SELECT id FROM import_jobs WHERE created_at >= $1", after)]
        columns: dict[str, list[str]] = {}
        rows: dict[str, list] = {}
        for table in WRITTEN:
            columns[table] = [
                r["column_name"]
                for r in await source.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
                    "ORDER BY ordinal_position",
                    table,
                )
            ]
            where = "created_at >= $1" if table != "import_rejections" else "job_id = ANY($1::uuid[])"
            rows[table] = [
                tuple(r)
                for r in await source.fetch(
                    f"SELECT {', '.join(columns[table])} FROM {table} WHERE {where} ORDER BY id",
                    after if table != "import_rejections" else job_ids,
                )
            ]
    finally:
        await source.close()
    # Batch k holds the k-th share of the customers, and every row of a child table goes with its
    # customer's batch (children of customers the import found go by their own order).
    customers = rows["customers"]
    share = max(1, -(-len(customers) // batches))
    batch_of = {c[0]: n // share for n, c in enumerate(customers)}
    plan: list[dict[str, list]] = [collections.defaultdict(list) for _ in range(batches)]
    for table in WRITTEN[1:]:
        table_rows = rows[table]
        at = columns[table].index("customer_id") if "customer_id" in columns[table] else None
        for n, row in enumerate(table_rows):
            if table == "customers":
                k = batch_of[row[0]]
            elif at is not None and row[at] in batch_of:
                k = batch_of[row[at]]
            else:
                k = min(batches - 1, n * batches // max(1, len(table_rows)))
            plan[k][table].append(row)
    target = await asyncpg.connect(f"{PG}/{RAW_DB if foreign_keys else RAW_DB_NO_FK}")
    try:
        for row in rows["import_jobs"]:
            await target.copy_records_to_table("import_jobs", records=[row], columns=columns["import_jobs"])
        started = time.perf_counter()
        for batch in plan:
            async with target.transaction():
                await target.execute("SET LOCAL synchronous_commit = off")
                if not foreign_keys:
                    await target.execute("SET LOCAL session_replication_role = replica")
                for table in WRITTEN[1:]:
                    if batch[table]:
                        await target.copy_records_to_table(table, records=batch[table], columns=columns[table])
        return time.perf_counter() - started
    finally:
        await target.close()


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its children that ended (the worker's counts
    when the pool is shut down: see main) plus the live cleaning workers' own, from /proc."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    for pid in _worker_pids():
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def _worker_pids() -> list[int]:
    from server.imports import service

    return [pid for pool in service._pools.values() for pid in (pool._processes or {})]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    await asyncio.to_thread(_fresh_database)
    from server import db
    from server.imports import cleaning, service
    from server.settings import Settings

    settings = Settings.from_env()
    await db.start(settings)
    try:
        stores = [r["code"] for r in await service.ImportJob.raw("SELECT code FROM stores ORDER BY code")]
        started = time.perf_counter()
        data = write_file(args.rows, stores, args.seed)
        written = time.perf_counter() - started

        table = service.read_table(data, "customers.csv")
        columns = cleaning.suggest_mapping(table.headers, "customers")
        mapped = [columns.get(h) for h in table.headers]
        started = time.perf_counter()
        cleaned = 0
        for n, values in enumerate(table.rows, start=1):
            try:
                service.clean_row(n, {f: v for f, v in zip(mapped, values, strict=False) if f})
                cleaned += 1
            except cleaning.Rejected:
                pass
        clean_s = time.perf_counter() - started

        timings: collections.Counter[str] = collections.Counter()
        cpu = _cpu_seconds()
        wall = time.time()
        started = time.perf_counter()
        job, _ = await service.import_bytes(data, "customers.csv", timings=timings)
        first_s = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu
        raw_s = await raw_write(wall - 1, -(-args.rows // service.BATCH))
        raw_no_fk_s = await raw_write(wall - 1, -(-args.rows // service.BATCH), foreign_keys=False)
        started = time.perf_counter()
        again, _ = await service.import_bytes(data, "customers.csv")
        second_s = time.perf_counter() - started
        customers = (await service.ImportJob.raw("SELECT count(*) AS n FROM customers WHERE deleted = false"))[0]["n"]
    finally:
        await db.stop()

    rows = args.rows
    result = Table(
        title=f"Customer import on PostgreSQL: {rows:,} rows ({len(data) / 1e6:.1f} MB CSV, written in {written:.1f} s)"
    )
    for column in ("measure", "result", "budget"):
        result.add_column(column)
    rate = rows / first_s
    result.add_row("cleaning alone (no database), the in-run baseline", f"{rows / clean_s:,.0f} rows/s", "")
    result.add_row(
        "import with duplicate detection, first run",
        f"{first_s:.1f} s · {rate:,.0f} rows/s",
        f"≥ {BUDGET:,} rows/s {'✔' if rate >= BUDGET else '✘'}",
    )
    result.add_row("  ratio to cleaning alone", f"{rate / (rows / clean_s):.2f}", "")
    result.add_row(
        "raw write of the same rows (COPY alone, same batches), the write's limit",
        f"{raw_s:.1f} s · {rows / raw_s:,.0f} rows/s",
        "",
    )
    result.add_row("  import / raw write", f"{rate / (rows / raw_s):.2f}", "")
    result.add_row(
        "  the same COPY with the foreign-key checks off (not for production: what they cost)",
        f"{raw_no_fk_s:.1f} s · {rows / raw_no_fk_s:,.0f} rows/s",
        "",
    )
    counts = {k: job[k] for k in ("created", "updated", "unchanged", "merged", "rejected")}
    result.add_row(
        "  rows by outcome",
        " · ".join(f"{k} {v:,}" for k, v in counts.items()),
        f"sum = rows {'✔' if sum(counts.values()) == rows else '✘'}",
    )
    result.add_row("  possible duplicates queued for review", f"{job['review']:,}", "")
    for stage, seconds in timings.most_common():
        result.add_row(f"  {stage}", f"{seconds:.1f} s ({seconds / first_s:.0%} of the run)", "")
    result.add_row(
        "  CPU of the importer and its cleaning worker",
        f"{cpu:.1f} s in {first_s:.1f} s (cores: {os.cpu_count()}) · peak RSS {_peak_rss_mb():,.0f} MB",
        "",
    )
    result.add_row(
        "second import of the same file",
        f"{second_s:.1f} s · {rows / second_s:,.0f} rows/s · "
        f"created {again['created']} updated {again['updated']} merged {again['merged']}",
        f"creates nothing {'✔' if again['created'] == again['updated'] == again['merged'] == 0 else '✘'}",
    )
    result.add_row("customers in the database after", f"{customers:,}", "")
    console.print(result)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
