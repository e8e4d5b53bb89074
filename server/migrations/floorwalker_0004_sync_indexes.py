"""Indexes of the sync tables (plain SQL both engines accept; a separate migration because Piccolo
runs a migration's raw steps before its table creation)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique mutation answers per client; conflict log by scope and version"

INDEXES = [
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_sync_mutations_client_mutation ON sync_mutations (client_id, mutation_id)",
    "CREATE INDEX IF NOT EXISTS ix_sync_conflicts_store_version ON sync_conflicts (store_id, version)",
    "CREATE INDEX IF NOT EXISTS ix_regions_version ON regions (version)",
    "CREATE INDEX IF NOT EXISTS ix_stores_version ON stores (version)",
    "CREATE INDEX IF NOT EXISTS ix_users_version ON users (version)",
    "CREATE INDEX IF NOT EXISTS ix_categories_version ON categories (version)",
    "CREATE INDEX IF NOT EXISTS ix_products_version ON products (version)",
    "CREATE INDEX IF NOT EXISTS ix_pipeline_stages_version ON pipeline_stages (version)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="floorwalker", description=DESCRIPTION)

    async def create_indexes():
        from server.db import engine

        for sql in INDEXES:
            await engine().run_ddl(sql)

    async def drop_indexes():
        from server.db import engine

        for sql in INDEXES:
            await engine().run_ddl(f"DROP INDEX IF EXISTS {sql.split(' IF NOT EXISTS ')[1].split(' ON ')[0]}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
