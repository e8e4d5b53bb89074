"""Composite indexes the reads and the sync pull need (plain SQL both engines accept)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-22T09:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite indexes for scoped reads, keyset pages and sync pulls"

SYNCED_STORE_TABLES = [
    "customers",
    "customer_phones",
    "customer_tags",
    "customer_identities",
    "orders",
    "order_lines",
    "interactions",
    "opportunities",
    "stage_history",
    "tasks",
    "complaints",
]

INDEXES = [
    # Unique pairs as unique indexes: SQLite cannot ALTER TABLE ... ADD CONSTRAINT.
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_customer_tags_customer_tag ON customer_tags (customer_id, tag)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_customer_identities_kind_value ON customer_identities (kind, value)",
    *(f"CREATE INDEX IF NOT EXISTS ix_{t}_store_version ON {t} (store_id, version)" for t in SYNCED_STORE_TABLES),
    "CREATE INDEX IF NOT EXISTS ix_customers_store_name_id ON customers (store_id, name, id)",
    "CREATE INDEX IF NOT EXISTS ix_customer_phones_customer_primary ON customer_phones (customer_id, is_primary)",
    "CREATE INDEX IF NOT EXISTS ix_orders_customer_ordered ON orders (customer_id, ordered_at)",
    "CREATE INDEX IF NOT EXISTS ix_interactions_customer_occurred ON interactions (customer_id, occurred_at)",
    "CREATE INDEX IF NOT EXISTS ix_tasks_owner_status_due ON tasks (owner_id, status, due_at)",
    "CREATE INDEX IF NOT EXISTS ix_tasks_store_status_due ON tasks (store_id, status, due_at)",
    "CREATE INDEX IF NOT EXISTS ix_opportunities_customer ON opportunities (customer_id, stage_id)",
    "CREATE INDEX IF NOT EXISTS ix_login_attempts_username_at ON login_attempts (username, at)",
    "CREATE INDEX IF NOT EXISTS ix_login_attempts_address_at ON login_attempts (address, at)",
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
            name = sql.split(" IF NOT EXISTS ")[1].split(" ON ")[0]
            await engine().run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
