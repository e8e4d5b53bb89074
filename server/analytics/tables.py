"""What the nightly scoring writes: each live customer's standing (shared/segments.py) as of
``computed_at``, so the segment report and its drill-downs read one row a customer instead of
aggregating every order again."""

from piccolo.columns import UUID, Boolean, Date, Integer, Numeric, Timestamptz, Varchar
from piccolo.table import Table

from shared.enums import Group


class CustomerStanding(Table, tablename="customer_standings"):
    customer_id = UUID(primary_key=True)  # references customers (ON DELETE CASCADE, migration 0019)
    store_id = UUID(index=False)  # ix_customer_standings_store_segment
    owner_id = UUID(null=True, default=None)
    segment = Varchar(length=16, choices=Group)
    health = Integer()
    recency = Integer(null=True, default=None)
    frequency = Integer(null=True, default=None)
    monetary = Integer(null=True, default=None)
    days_since_order = Integer(null=True, default=None)
    next_purchase_on = Date(null=True, default=None)
    win_back = Boolean(default=False)
    amount_total = Numeric(digits=(12, 2))
    amount_12m = Numeric(digits=(12, 2))
    computed_at = Timestamptz()
