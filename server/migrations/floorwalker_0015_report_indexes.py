"""Reports, more indexes: each lets a report read its rows from an index alone, in the order it
needs them — staff follow-ups by time with the customer and the row's id (counts, the weekly trend,
and contacts without follow-up, an anti-join that tells a follow-up from the contact itself), live
deals by creation and by id, their stage visits by deal and the ended visits by entry (the funnel
merges deals with their visits in deal order), open deals per stage with their amounts (pipeline,
store comparison), tasks done per customer (adoption), live customers by id with their owner and
store (looked up from a report's customer ids in id order), and the few deleted customers and deals
(looked up instead of joining every row).

Three indexes of an earlier draft of 0014 are dropped where they exist: the ones above replace them."""

from server.migrate import raw_statements

ID = "2026-12-01T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "report indexes, read in order"

CREATE = [
    "CREATE INDEX IF NOT EXISTS ix_interactions_staff_time ON interactions "
    "(occurred_at, store_id, user_id, kind, customer_id, id) WHERE deleted = false AND user_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ix_opportunities_live_created ON opportunities (created_at, store_id, owner_id, id) "
    "WHERE deleted = false",
    "CREATE INDEX IF NOT EXISTS ix_opportunities_live_id ON opportunities (id, created_at, store_id, owner_id) "
    "WHERE deleted = false",
    "CREATE INDEX IF NOT EXISTS ix_opportunities_live_stage ON opportunities (stage_id, store_id, owner_id, amount) "
    "WHERE deleted = false",
    "CREATE INDEX IF NOT EXISTS ix_stage_history_live_deal ON stage_history (opportunity_id, stage_id) "
    "WHERE deleted = false",
    "CREATE INDEX IF NOT EXISTS ix_stage_history_live_visits ON stage_history "
    "(entered_at, store_id, stage_id, left_at, opportunity_id) WHERE deleted = false AND left_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ix_tasks_done_customer ON tasks (completed_at, customer_id) "
    "WHERE status = 'done' AND deleted = false AND customer_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ix_customers_live_id ON customers (id, owner_id, store_id) WHERE deleted = false",
    "CREATE INDEX IF NOT EXISTS ix_customers_deleted ON customers (id) WHERE deleted = true",
    "CREATE INDEX IF NOT EXISTS ix_opportunities_deleted ON opportunities (id) WHERE deleted = true",
]
# The draft's (occurred_at, store_id, user_id, kind, customer_id), (created_at) and (entered_at).
REPLACED = ["ix_interactions_staff_occurred", "ix_opportunities_created", "ix_stage_history_entered"]

FORWARDS = CREATE + [f"DROP INDEX IF EXISTS {name}" for name in REPLACED]
BACKWARDS = [f"DROP INDEX IF EXISTS {s.split(' ON ')[0].split()[-1]}" for s in CREATE]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
