"""Each live customer's standing as the nightly scoring found it (shared/segments.py): segment,
RFM scores, health, predicted next purchase, worth winning back. Read by the segment report and
its drill-downs. Plain SQL both engines accept (SQLite keeps the declared types Piccolo reads)."""

from server.migrate import raw_statements

ID = "2026-12-01T22:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer standings: segment, RFM, health, next purchase, win back"

FORWARDS = [
    "CREATE TABLE IF NOT EXISTS customer_standings ("
    "customer_id UUID PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE, "
    "store_id UUID NOT NULL, owner_id UUID NULL, segment VARCHAR(16) NOT NULL, health INTEGER NOT NULL, "
    "recency INTEGER NULL, frequency INTEGER NULL, monetary INTEGER NULL, days_since_order INTEGER NULL, "
    "next_purchase_on DATE NULL, win_back BOOLEAN NOT NULL DEFAULT false, "
    "amount_total NUMERIC(12, 2) NOT NULL, amount_12m NUMERIC(12, 2) NOT NULL, computed_at TIMESTAMPTZ NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_customer_standings_store_segment ON customer_standings (store_id, segment)",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS ix_customer_standings_store_segment",
    "DROP TABLE IF EXISTS customer_standings",
]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
