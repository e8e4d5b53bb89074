"""Tables of the product catalogue (chain-wide, scope 'catalog')."""

from decimal import Decimal

from piccolo.columns import ForeignKey, Integer, Numeric, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from server.sync.columns import SyncColumns


class Category(SyncColumns, Table, tablename="categories"):
    code = Varchar(length=32, unique=True)  # e.g. sofa, mattress
    name_zh = Varchar(length=50)
    name_en = Varchar(length=50)
    # Typical days between two purchases of this category (repurchase reminders), when known.
    repurchase_days = Integer(null=True, default=None)


class Product(SyncColumns, Table, tablename="products"):
    sku = Varchar(length=32, unique=True)
    name_zh = Varchar(length=100)
    name_en = Varchar(length=100)
    category_id = ForeignKey(Category, on_delete=OnDelete.restrict, null=False, index=True)
    price = Numeric(digits=(12, 2), default=Decimal("0"))
