"""Two indexes whose column leads a wider index of the same table: every lookup they served, the
wider one serves (``customers (store_id, version)``, ``customer_phones (customer_id, is_primary)``),
and each costs every insert a B-tree entry — a big import writes hundreds of thousands of each
(bench/imports.py: the same rows' COPY takes about 7 % less time without them)."""

from server.migrate import raw_statements

ID = "2026-12-01T18:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "drop single-column indexes a composite covers: customers.store_id, customer_phones.customer_id"

FORWARDS = [
    "DROP INDEX IF EXISTS customers_store_id",
    "DROP INDEX IF EXISTS customer_phones_customer_id",
]
BACKWARDS = [
    "CREATE INDEX IF NOT EXISTS customers_store_id ON customers (store_id)",
    "CREATE INDEX IF NOT EXISTS customer_phones_customer_id ON customer_phones (customer_id)",
]


forwards = raw_statements(ID, DESCRIPTION, FORWARDS, BACKWARDS)
