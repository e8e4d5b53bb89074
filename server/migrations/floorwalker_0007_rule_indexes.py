"""Rules: one switch per rule and store, and the indexes the sweeps' set-based queries use (the
open stage of a deal, contacts by kind and time, complaints by state)."""

from server.migrate import raw_statements

ID = "2026-12-01T07:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "rule switches unique per store; indexes for the rule sweeps"

FORWARDS = [
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_rule_stores_rule_store ON rule_stores (rule_id, store_id)",
    "CREATE INDEX IF NOT EXISTS ix_stage_history_open ON stage_history (opportunity_id) WHERE left_at IS NULL",
    "CREATE INDEX IF NOT EXISTS ix_opportunities_stage_entered ON opportunities (stage_id, stage_entered_at)",
    "CREATE INDEX IF NOT EXISTS ix_interactions_kind_occurred ON interactions (kind, occurred_at)",
    "CREATE INDEX IF NOT EXISTS ix_complaints_status_opened ON complaints (status, opened_at)",
    "CREATE INDEX IF NOT EXISTS ix_tasks_customer_created ON tasks (customer_id, created_at)",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS ux_rule_stores_rule_store",
    "DROP INDEX IF EXISTS ix_stage_history_open",
    "DROP INDEX IF EXISTS ix_opportunities_stage_entered",
    "DROP INDEX IF EXISTS ix_interactions_kind_occurred",
    "DROP INDEX IF EXISTS ix_complaints_status_opened",
    "DROP INDEX IF EXISTS ix_tasks_customer_created",
]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
