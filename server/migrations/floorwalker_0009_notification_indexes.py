"""Notifications: one record per (user, cause), one send per (notification, subscription), one follow
per (user, customer); indexes for a user's change order, the dispatcher's queue and the sweeps."""

from server.migrate import raw_statements

ID = "2026-12-01T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notification uniqueness and indexes"

FORWARDS = [
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_notifications_user_cause ON notifications (user_id, cause)",
    "CREATE INDEX IF NOT EXISTS ix_notifications_user_version ON notifications (user_id, version)",
    "CREATE INDEX IF NOT EXISTS ix_notifications_push ON notifications (push_state, deliver_after)",
    "CREATE INDEX IF NOT EXISTS ix_notifications_task ON notifications (task_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_push_sends_notification_subscription "
    "ON push_sends (notification_id, subscription_id)",
    "CREATE INDEX IF NOT EXISTS ix_push_sends_state_next ON push_sends (state, next_attempt_at)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_customer_follows_user_customer ON customer_follows (user_id, customer_id)",
    "CREATE INDEX IF NOT EXISTS ix_customer_follows_user_version ON customer_follows (user_id, version)",
    "CREATE INDEX IF NOT EXISTS ix_notification_prefs_user_version ON notification_prefs (user_id, version)",
    "CREATE INDEX IF NOT EXISTS ix_push_subscriptions_user ON push_subscriptions (user_id) WHERE removed_at IS NULL",
    "CREATE INDEX IF NOT EXISTS ix_tasks_open_due ON tasks (due_at) WHERE status = 'open' AND deleted = false",
]
BACKWARDS = [f"DROP INDEX IF EXISTS {s.split(' ON ')[0].split()[-1]}" for s in FORWARDS]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
