"""The complaint loop: a complaint keeps what the customer was offered (``resolution``) and what
the call-back heard (``callback_note``). Plain SQL both engines accept."""

from server.migrate import raw_statements

ID = "2026-12-01T23:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "complaints: resolution and call-back note"

FORWARDS = [
    "ALTER TABLE complaints ADD COLUMN resolution TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE complaints ADD COLUMN callback_note TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX IF NOT EXISTS ix_complaints_store_status ON complaints (store_id, status, opened_at)",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS ix_complaints_store_status",
    "ALTER TABLE complaints DROP COLUMN callback_note",
    "ALTER TABLE complaints DROP COLUMN resolution",
]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
