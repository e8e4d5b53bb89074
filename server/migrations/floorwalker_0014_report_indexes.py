"""Reports: the indexes the managers' reports read by period — orders by date (retention), deals by
close, and live customers per store and owner (counts, and a few stores' customers, without reading
the table). The rest are in 0015."""

from server.migrate import raw_statements

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


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
