"""Imports started from the app go on after the server that ran them stops: the file is kept with
the job until it is done (``import_files``), the job names its runner and when that runner last
committed a batch (``runner``, ``heartbeat_at``). The scheduler's leader resumes a job whose
heartbeat is stale; a runner that finds another has taken its job over stops (its batch is
rolled back). Plain SQL both engines accept (SQLite keeps the declared types Piccolo reads)."""

from server.migrate import raw_statements

ID = "2026-12-01T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "import jobs: the file kept until done, the runner and its heartbeat"

FORWARDS = [
    "CREATE TABLE IF NOT EXISTS import_files (job_id UUID PRIMARY KEY REFERENCES import_jobs (id) "
    "ON DELETE CASCADE, data BYTEA NOT NULL)",
    "ALTER TABLE import_jobs ADD COLUMN runner UUID NULL",
    "ALTER TABLE import_jobs ADD COLUMN heartbeat_at TIMESTAMPTZ NULL",
]
BACKWARDS = [
    "ALTER TABLE import_jobs DROP COLUMN heartbeat_at",
    "ALTER TABLE import_jobs DROP COLUMN runner",
    "DROP TABLE IF EXISTS import_files",
]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
