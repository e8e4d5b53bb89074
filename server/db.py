"""The database engine of this process (Piccolo), chosen from FLOORWALKER_DATABASE_URL."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from server.settings import Settings

_engines: dict[str, Engine] = {}


def engine_for(database_url: str) -> Engine:
    """One engine per URL per process (Piccolo tables find it through server.piccolo_conf)."""
    engine = _engines.get(database_url)
    if engine is None:
        if database_url.startswith("sqlite:///"):
            path = database_url.removeprefix("sqlite:///")
            # timeout: how long a writer waits for the lock before SQLite says 'database is locked'.
            engine = SQLiteEngine(path=path, timeout=30)
        else:
            # jit off: compiling a plan costs ~1 s once its estimate passes jit_above_cost, far
            # more than the reports' big but simple scans and aggregates ever save by it.
            engine = PostgresEngine(
                config={
                    "dsn": database_url.replace("postgres://", "postgresql://", 1),
                    "server_settings": {"jit": "off"},
                }
            )
        _engines[database_url] = engine
    return engine


def engine() -> Engine:
    from piccolo.engine.finder import engine_finder

    found = engine_finder()
    assert found is not None, "server.piccolo_conf defines DB"
    return found


def is_postgres() -> bool:
    return isinstance(engine(), PostgresEngine)


@contextlib.asynccontextmanager
async def transaction() -> AsyncIterator[Any]:
    """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE), so two
    writers queue instead of failing half-way with 'database is locked'."""
    eng = engine()
    if isinstance(eng, SQLiteEngine):
        async with eng.transaction(transaction_type=TransactionType.immediate) as txn:
            yield txn
    else:
        async with eng.transaction() as txn:
            yield txn


async def _keep_session(connection: Any) -> None:
    """Pool release hook. asyncpg rolls back an open transaction itself; its default reset also
    runs 'RESET ALL; UNLISTEN *; pg_advisory_unlock_all()...', one more round trip per query.
    Pooled connections never SET, LISTEN or take advisory locks here (the scheduler's leader lock
    lives on its own connection), so there is nothing else to reset."""


async def start(settings: Settings) -> None:
    eng = engine()
    if isinstance(eng, PostgresEngine):
        await eng.start_connection_pool(min_size=1, max_size=settings.db_pool_size, reset=_keep_session)


async def stop() -> None:
    eng = engine()
    if isinstance(eng, PostgresEngine):
        await eng.close_connection_pool()


async def insert_many(
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str | Sequence[str] | None = None,
    copy: bool = False,
) -> None:
    """Insert ``rows`` inside the current transaction straight through the driver (asyncpg's
    pipelined executemany, sqlite3's executemany): no ORM objects on a hot path. ``on_conflict``:
    the unique column (or columns) whose clashes are skipped (ON CONFLICT … DO NOTHING, both engines). ``copy``:
    COPY on PostgreSQL (values must already be of the columns' types: UUID, datetime, Decimal)."""
    if not rows:
        return
    txn = engine().current_transaction.get()
    if txn is None:
        raise RuntimeError("insert_many runs inside transaction()")
    quoted = ", ".join(f'"{c}"' for c in columns)
    if isinstance(engine(), PostgresEngine):
        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    else:
        marks = ", ".join("?" * len(columns))
    if copy and on_conflict is None and isinstance(engine(), PostgresEngine):
        # COPY: several times faster than an INSERT per row for big batches (imports).
        await txn.connection.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    target = [on_conflict] if isinstance(on_conflict, str) else list(on_conflict or ())
    tail = " ON CONFLICT ({}) DO NOTHING".format(", ".join(f'"{c}"' for c in target)) if target else ""
    await txn.connection.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({marks}){tail}', rows)


def _numbered(sql: str) -> str:
    """Piccolo's ``{}`` placeholders as asyncpg's $1, $2, ..."""
    parts = sql.split("{}")
    return "".join(f"{part}${n}" if n < len(parts) else part for n, part in enumerate(parts, start=1))


# Every report query plans for the parameters at hand (asyncpg prepares each statement, and after
# five runs PostgreSQL may switch to a generic plan that guesses at the period and the stores;
# planning costs a millisecond, a wrong guess hundreds), and prices index probes as reads from
# memory, where the reports' tables and indexes live (the default 4 assumes a disk seek and
# prefers reading a whole table to looking up a few thousand rows in it).
REPORT_SETTINGS = {"plan_cache_mode": "force_custom_plan", "random_page_cost": "1.1"}
# For a query that sorts or hashes 100,000+ rows: room to do it in memory (the default work_mem,
# 4 MB, spills to temporary files at about 100,000 rows). Not for every query: with more memory the
# planner also hashes whole tables where a few index probes are cheaper.
LARGE_SORTS = {"work_mem": "64MB"}
# For a query joining or deduplicating 100,000+ ids that an index can hand over in order: sort and
# merge rather than hash. Hash tables of that size are probed at random, and measured up to three
# times slower than a sort and a merge over the same rows (the planner prices them the other way).
MERGE_NOT_HASH = {**LARGE_SORTS, "enable_hashjoin": "off", "enable_hashagg": "off"}


# For many index probes in a row (an import looking up 2,000 phones at once): priced as reads from
# memory, and no parallel workers (which only pay off for scans the probes replace).
PROBES = {"random_page_cost": "1.1", "max_parallel_workers_per_gather": "0"}


@contextlib.asynccontextmanager
async def reading(set_local: Mapping[str, str]) -> AsyncIterator[None]:
    """A transaction for a run of reads with ``set_local`` settings (PostgreSQL: SET LOCAL, so they
    end with it). Inside a transaction already, or on SQLite, the reads just run."""
    eng = engine()
    if not isinstance(eng, PostgresEngine) or eng.current_transaction.get() is not None:
        yield
        return
    async with eng.transaction() as txn:
        await txn.connection.execute("; ".join(f"SET LOCAL {name} = '{value}'" for name, value in set_local.items()))
        yield


async def fetch_report(
    sql: str, params: Sequence[Any], set_local: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Rows of one report query as dicts. On PostgreSQL each runs on a pooled connection of its own
    (a report's independent queries run side by side), in a read-only transaction with
    ``REPORT_SETTINGS`` and any other ``set_local`` ones for it alone (SET LOCAL: they end with the
    transaction). ``sql`` uses Piccolo's ``{}`` placeholders."""
    eng = engine()
    if not isinstance(eng, PostgresEngine) or eng.pool is None or eng.current_transaction.get() is not None:
        from server.sync.tables import ScopeVersion

        return await ScopeVersion.raw(sql, *params)
    settings = {**REPORT_SETTINGS, **(set_local or {})}
    sets = "; ".join(f"SET LOCAL {name} = '{value}'" for name, value in settings.items())
    async with eng.pool.acquire() as connection, connection.transaction(readonly=True):
        await connection.execute(sets)
        records = await connection.fetch(_numbered(sql), *params)
    return [dict(r) for r in records]


# How many ways a report's heaviest queries are split, each part over its own range of customers
# (or deals) on a connection of its own: PostgreSQL sorts, hashes and merges a query's rows in one
# process, so an unsplit query keeps one core busy however many there are.
REPORT_PARTS = 2


async def id_ranges(table: str, column: str, parts: int = REPORT_PARTS) -> list[Callable[[str], str]]:
    """Conditions splitting rows by an id (UUID) into ``parts`` ranges of about the same number of
    ``table``'s rows: each a function of the column to restrict, giving SQL. The cuts come from
    PostgreSQL's statistics of ``table.column`` (its histogram); they only decide how even the
    parts are, every id falls in exactly one range. One range, no condition, on SQLite or before
    the table's first ANALYZE."""
    everything: list[Callable[[str], str]] = [lambda column: "1=1"]
    if parts < 2 or not is_postgres():
        return everything
    rows = await fetch_report(
        "SELECT histogram_bounds::text AS bounds FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = {} AND attname = {}",
        [table, column],
    )
    if not rows or not rows[0]["bounds"]:
        return everything
    bounds = [uuid.UUID(b) for b in rows[0]["bounds"].strip("{}").split(",")]
    cuts = [bounds[len(bounds) * n // parts] for n in range(1, parts)]
    edges: list[uuid.UUID | None] = [None, *cuts, None]

    def within(low: uuid.UUID | None, high: uuid.UUID | None) -> Callable[[str], str]:
        # UUIDs written out (parsed above, so nothing but hex digits and dashes).
        return lambda column: " AND ".join(
            ([f"{column} >= '{low}'"] if low else []) + ([f"{column} < '{high}'"] if high else [])
        )

    return [within(low, high) for low, high in itertools.pairwise(edges)]


def add_up(parts: Sequence[Sequence[dict[str, Any]]], by: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of a split query's parts as one result: rows with the same ``by`` values merged,
    their other columns (counts, sums) added up; a missing sum (NULL) adds nothing."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rows in parts:
        for row in rows:
            key = tuple(row[k] for k in by)
            have = merged.get(key)
            if have is None:
                merged[key] = dict(row)
                continue
            for name, value in row.items():
                if name not in by and value is not None:
                    have[name] = value if have[name] is None else have[name] + value
    return list(merged.values())


async def fetch_records(sql: str, params: Sequence[Any]) -> list[Any]:
    """PostgreSQL only: the driver's records (read by column name or position, no dict per row),
    inside a transaction on its connection, else on a pooled one. ``{}`` placeholders."""
    eng = engine()
    assert isinstance(eng, PostgresEngine)
    txn = eng.current_transaction.get()
    if txn is not None:
        return await txn.connection.fetch(_numbered(sql), *params)
    if eng.pool is not None:
        async with eng.pool.acquire() as connection:
            return await connection.fetch(_numbered(sql), *params)
    connection = await eng.get_new_connection()
    try:
        return await connection.fetch(_numbered(sql), *params)
    finally:
        await connection.close()


async def fetch_lists(sql: str, params: Sequence[Any]) -> list[list[Any]]:
    """Rows as lists, straight from the driver on PostgreSQL (sync pages are large: no dict per
    row); inside a transaction on its connection. ``sql`` uses Piccolo's ``{}`` placeholders."""
    if isinstance(engine(), PostgresEngine):
        return [list(r) for r in await fetch_records(sql, params)]
    from server.sync.tables import ScopeVersion

    return [list(r.values()) for r in await ScopeVersion.raw(sql, *params)]
