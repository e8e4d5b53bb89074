"""Reports: the indexes the managers' reports read by period — orders by date (retention), deals by
close, and live customers per store and owner (counts, and a few stores' customers, without reading
the table). The rest are in 0015."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-01T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "report indexes"

FORWARDS = [
    "CREATE INDEX IF NOT EXISTS ix_orders_live_ordered ON orders (ordered_at, store_id, customer_id) "
    "WHERE deleted = false",
    "CREATE INDEX IF NOT EXISTS ix_opportunities_closed ON opportunities (closed_at) WHERE closed_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ix_customers_live_store_owner ON customers (store_id, owner_id, id) "
    "WHERE deleted = false",
]
BACKWARDS = [f"DROP INDEX IF EXISTS {s.split(' ON ')[0].split()[-1]}" for s in FORWARDS]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="floorwalker", description=DESCRIPTION)

    async def run(statements: list[str]) -> None:
        from server.db import engine

        for sql in statements:
            await engine().run_ddl(sql)

    async def up():
        await run(FORWARDS)

    async def down():
        await run(BACKWARDS)

    manager.add_raw(up)
    manager.add_raw_backwards(down)
    return manager
