"""Merges, more indexes: a merge looks up the open review pairs that name the merged-away customer
on either side (the pair index covers ``customer_a`` only) and the aliases that point at it (A→B,
then B→C), once per merge — an import that merges thousands must not scan either table each time."""

from server.migrate import raw_statements

ID = "2026-12-01T16:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "merge lookups: review pairs by their second customer, aliases by survivor"

FORWARDS = [
    "CREATE INDEX IF NOT EXISTS ix_merge_candidates_b_open ON merge_candidates (customer_b) WHERE status = 'open'",
    "CREATE INDEX IF NOT EXISTS ix_customer_aliases_survivor ON customer_aliases (survivor_id) WHERE deleted = false",
]
BACKWARDS = [f"DROP INDEX IF EXISTS {s.split(' ON ')[0].split()[-1]}" for s in FORWARDS]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
