"""Imports and identity: one review entry per pair, aliases in their store's change order, and the
lookups identity resolution blocks on (e-mail; phones and identities are indexed already)."""

from server.migrate import raw_statements

ID = "2026-12-01T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "import and merge indexes"

FORWARDS = [
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_merge_candidates_pair ON merge_candidates (customer_a, customer_b)",
    "CREATE INDEX IF NOT EXISTS ix_merge_candidates_open ON merge_candidates (store_id, status)",
    "CREATE INDEX IF NOT EXISTS ix_customer_aliases_store_version ON customer_aliases (store_id, version)",
    "CREATE INDEX IF NOT EXISTS ix_customers_email ON customers (email) WHERE email IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ix_import_rejections_job_row ON import_rejections (job_id, row_number)",
]
BACKWARDS = [f"DROP INDEX IF EXISTS {s.split(' ON ')[0].split()[-1]}" for s in FORWARDS]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
