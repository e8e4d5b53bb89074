"""A customer's tag is unique among live rows only: a tag removed (a tombstone, kept until the
purge) and added again is a new row under the id the device made, so no device is left holding
an id the server replaced."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T14:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer tags unique per customer among live rows"

FORWARDS = [
    "DROP INDEX IF EXISTS ux_customer_tags_customer_tag",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_customer_tags_live ON customer_tags (customer_id, tag) WHERE deleted = false",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS ux_customer_tags_live",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_customer_tags_customer_tag ON customer_tags (customer_id, tag)",
]


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
