"""The database engine of this process (Piccolo), chosen from FLOORWALKER_DATABASE_URL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
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
            engine = PostgresEngine(config={"dsn": database_url.replace("postgres://", "postgresql://", 1)})
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
    on_conflict: str | None = None,
    copy: bool = False,
) -> None:
    """Insert ``rows`` inside the current transaction straight through the driver (asyncpg's
    pipelined executemany, sqlite3's executemany): no ORM objects on a hot path. ``on_conflict``:
    a unique column whose clashes are skipped (ON CONFLICT … DO NOTHING, both engines). ``copy``:
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
    tail = f' ON CONFLICT ("{on_conflict}") DO NOTHING' if on_conflict else ""
    await txn.connection.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({marks}){tail}', rows)


def _numbered(sql: str) -> str:
    """Piccolo's ``{}`` placeholders as asyncpg's $1, $2, ..."""
    parts = sql.split("{}")
    return "".join(f"{part}${n}" if n < len(parts) else part for n, part in enumerate(parts, start=1))


async def fetch_lists(sql: str, params: Sequence[Any]) -> list[list[Any]]:
    """Rows as lists, straight from the driver on PostgreSQL (sync pages are large: no dict per
    row); inside a transaction on its connection. ``sql`` uses Piccolo's ``{}`` placeholders."""
    eng = engine()
    if isinstance(eng, PostgresEngine):
        txn = eng.current_transaction.get()
        if txn is not None:
            records = await txn.connection.fetch(_numbered(sql), *params)
        elif eng.pool is not None:
            async with eng.pool.acquire() as connection:
                records = await connection.fetch(_numbered(sql), *params)
        else:
            connection = await eng.get_new_connection()
            try:
                records = await connection.fetch(_numbered(sql), *params)
            finally:
                await connection.close()
        return [list(r) for r in records]
    from server.sync.tables import ScopeVersion

    return [list(r.values()) for r in await ScopeVersion.raw(sql, *params)]
