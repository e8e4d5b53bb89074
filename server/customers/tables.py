"""Tables of the customer domain: the customer and its append-only children."""

from piccolo.columns import JSON, Boolean, Date, ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.auth.tables import User
from server.stores.tables import Store
from server.sync.columns import SyncColumns
from shared.enums import Gender, IdentityKind, PhoneKind


class Customer(SyncColumns, Table, tablename="customers"):
    # home store (indexed by (store_id, version) and others: migration 0017)
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    owner_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, index=True)  # owner rep
    name = Varchar(length=64, index=True)
    gender = Varchar(length=10, choices=Gender, null=True, default=None)
    birthday = Date(null=True, default=None)
    email = Varchar(length=254, null=True, default=None)
    province = Varchar(length=32, default="")
    city = Varchar(length=32, default="")
    district = Varchar(length=32, default="")
    address = Varchar(length=200, default="")
    # {"sms": bool, "wechat": bool, "phone_call": bool, "email": bool}
    consents = JSON(default="{}")
    # Per-field hybrid logical clocks for the card's fields that merge independently.
    field_clocks = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())


class CustomerPhone(SyncColumns, Table, tablename="customer_phones"):
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    # indexed by (customer_id, is_primary): migration 0017
    customer_id = ForeignKey(Customer, on_delete=OnDelete.cascade, null=False)
    number = Varchar(length=32)  # E.164, e.g. +8613812345678
    digits = Varchar(length=20, index=True)  # national significant number, for fragment search
    kind = Varchar(length=10, choices=PhoneKind, default=PhoneKind.MOBILE)
    is_primary = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())


class CustomerTag(SyncColumns, Table, tablename="customer_tags"):
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    customer_id = ForeignKey(Customer, on_delete=OnDelete.cascade, null=False, index=True)
    tag = Varchar(length=32)
    created_at = Timestamptz(default=TimestamptzNow())


class CustomerIdentity(SyncColumns, Table, tablename="customer_identities"):
    """A channel identity: POS member id, online shop id, WeChat openid / unionid."""

    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    customer_id = ForeignKey(Customer, on_delete=OnDelete.cascade, null=False, index=True)
    kind = Varchar(length=20, choices=IdentityKind)
    value = Varchar(length=128)
    created_at = Timestamptz(default=TimestamptzNow())
