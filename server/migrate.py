"""Bring the database schema up to date (the one Piccolo migration set, both engines)."""

from __future__ import annotations

import contextlib
import io
import sqlite3

from server.settings import Settings


async def migrate(settings: Settings, *, quiet: bool = True) -> None:
    if settings.is_sqlite:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        # WAL lets readers go on while one writer commits; the mode sticks to the file.
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    from piccolo.apps.migrations.commands.forwards import run_forwards

    out = io.StringIO()
    with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
        result = await run_forwards(app_name="floorwalker")
    if not result.success:
        raise RuntimeError(f"migration failed: {result.message}\n{out.getvalue()}")


def raw_statements(migration_id: str, description: str, forwards: list[str], backwards: list[str]):
    """A migration's ``forwards()`` made of plain SQL statements both engines accept (run in order;
    ``backwards`` undoes them): ``forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)``."""
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager

    async def run(statements: list[str]) -> None:
        from server.db import engine

        for sql in statements:
            await engine().run_ddl(sql)

    async def migration() -> MigrationManager:
        manager = MigrationManager(migration_id=migration_id, app_name="floorwalker", description=description)

        async def up() -> None:
            await run(forwards)

        async def down() -> None:
            await run(backwards)

        manager.add_raw(up)
        manager.add_raw_backwards(down)
        return manager

    return migration
