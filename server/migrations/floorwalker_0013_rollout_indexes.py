"""Roll-out: one switch per store and feature, one activity row per person and day (the upsert every
sync request makes needs it), and the lookups of the phones' pulls, the feedback list and adoption."""

from server.migrate import raw_statements

ID = "2026-12-01T13:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "rollout uniqueness and indexes"

FORWARDS = [
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_store_features_store_feature ON store_features (store_id, feature)",
    "CREATE INDEX IF NOT EXISTS ix_store_features_store_version ON store_features (store_id, version)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_activity_days_user_day ON activity_days (user_id, day)",
    "CREATE INDEX IF NOT EXISTS ix_activity_days_store_day ON activity_days (store_id, day)",
    "CREATE INDEX IF NOT EXISTS ix_feedback_store_created ON feedback (store_id, created_at)",
    "CREATE INDEX IF NOT EXISTS ix_feedback_status ON feedback (status)",
]
BACKWARDS = [f"DROP INDEX IF EXISTS {s.split(' ON ')[0].split()[-1]}" for s in FORWARDS]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
