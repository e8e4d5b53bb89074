"""A customer's tag is unique among live rows only: a tag removed (a tombstone, kept until the
purge) and added again is a new row under the id the device made, so no device is left holding
an id the server replaced."""

from server.migrate import raw_statements

ID = "2026-11-23T14:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer tags unique per customer among live rows"

FORWARDS = [
    "DROP INDEX IF EXISTS ux_customer_tags_customer_tag",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_customer_tags_live ON customer_tags (customer_id, tag) WHERE deleted = false",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS ux_customer_tags_live",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_customer_tags_customer_tag ON customer_tags (customer_id, tag)",
]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
