"""Tables of purchases: orders and their lines, from every channel."""

from decimal import Decimal

from piccolo.columns import ForeignKey, Integer, Numeric, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from server.catalog.tables import Category, Product
from server.customers.tables import Customer
from server.stores.tables import Store
from server.sync.columns import SyncColumns
from shared.enums import OrderChannel, PaymentMethod


class Order(SyncColumns, Table, tablename="orders"):
    # Scope: the customer's home store, so the rep sees online purchases too.
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False, index=True)
    customer_id = ForeignKey(Customer, on_delete=OnDelete.restrict, null=False, index=True)
    channel = Varchar(length=20, choices=OrderChannel)
    sold_by_store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=True, default=None)
    ordered_at = Timestamptz()
    amount = Numeric(digits=(12, 2), default=Decimal("0"))
    payment_method = Varchar(length=20, choices=PaymentMethod)
    external_ref = Varchar(length=64, null=True, default=None, unique=True)  # POS / shop order number


class OrderLine(SyncColumns, Table, tablename="order_lines"):
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    order_id = ForeignKey(Order, on_delete=OnDelete.cascade, null=False, index=True)
    product_id = ForeignKey(Product, on_delete=OnDelete.restrict, null=True)
    category_id = ForeignKey(Category, on_delete=OnDelete.restrict, null=True)
    product_name = Varchar(length=100)
    quantity = Integer(default=1)
    unit_price = Numeric(digits=(12, 2), default=Decimal("0"))
    amount = Numeric(digits=(12, 2), default=Decimal("0"))
