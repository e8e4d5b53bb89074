"""The knowledge base (return policy, product care, delivery, warranty, service): chain-wide
articles in the catalog scope, so every phone searches them offline. Plain SQL both engines
accept (SQLite keeps the declared types Piccolo reads)."""

from server.migrate import raw_statements

ID = "2026-12-01T23:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "knowledge base articles"

FORWARDS = [
    "CREATE TABLE IF NOT EXISTS kb_articles (id UUID PRIMARY KEY, version BIGINT NOT NULL DEFAULT 0, "
    "deleted BOOLEAN NOT NULL DEFAULT false, updated_at TIMESTAMPTZ NOT NULL, code VARCHAR(40) NOT NULL UNIQUE, "
    "topic VARCHAR(20) NOT NULL, title VARCHAR(100) NOT NULL, title_en VARCHAR(150) NOT NULL DEFAULT '', "
    "body TEXT NOT NULL, tags VARCHAR(300) NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS ix_kb_articles_version ON kb_articles (version)",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS ix_kb_articles_version",
    "DROP TABLE IF EXISTS kb_articles",
]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
