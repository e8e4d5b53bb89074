"""Tables of interactions: visits, calls, browsing, carts, notes, messages (append-only)."""

from piccolo.columns import ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.auth.tables import User
from server.catalog.tables import Category, Product
from server.customers.tables import Customer
from server.stores.tables import Store
from server.sync.columns import SyncColumns
from shared.enums import InteractionChannel, InteractionKind


class Interaction(SyncColumns, Table, tablename="interactions"):
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False, index=True)
    customer_id = ForeignKey(Customer, on_delete=OnDelete.restrict, null=False, index=True)
    user_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)  # who logged it
    kind = Varchar(length=10, choices=InteractionKind)
    channel = Varchar(length=20, choices=InteractionChannel)
    occurred_at = Timestamptz()
    duration_seconds = Integer(null=True, default=None)
    body = Text(default="")
    product_id = ForeignKey(Product, on_delete=OnDelete.restrict, null=True, default=None)
    category_id = ForeignKey(Category, on_delete=OnDelete.restrict, null=True, default=None)
    # The source system's event id (events from POS, shop, WeChat, call centre): a replay is a no-op.
    source_event_id = Varchar(length=128, null=True, default=None, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
