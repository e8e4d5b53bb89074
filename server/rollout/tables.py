"""Tables of the roll-out: waves and their stores, per-store feature switches (synced to the store's
phones), feedback sent from the app, and each person's daily use of the app."""

from piccolo.columns import UUID, Boolean, Bytea, Date, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.auth.tables import User
from server.stores.tables import Store
from server.sync.columns import SyncColumns


class Wave(Table, tablename="waves"):
    """A group of stores going live together (W1 pilots, W2 the north, …)."""

    id = UUID(primary_key=True)
    code = Varchar(length=20, unique=True)
    name = Varchar(length=100)
    starts_on = Date()  # live from this local date (Asia/Shanghai)
    position = Integer(default=0)  # the order waves are listed and reported in
    notes = Text(default="")
    updated_at = Timestamptz(default=TimestamptzNow())


class WaveStore(Table, tablename="wave_stores"):
    """A store's wave (a store is in one wave at most)."""

    id = UUID(primary_key=True)
    wave_id = ForeignKey(Wave, on_delete=OnDelete.cascade, null=False, index=True)
    store_id = ForeignKey(Store, on_delete=OnDelete.cascade, null=False, unique=True)


class StoreFeature(SyncColumns, Table, tablename="store_features"):
    """A store's own switch of an app feature (shared.features); no row: on. The id is uuid5 of
    (store, feature), the same on every server. Synced to the store's phones (scope: the store)."""

    store_id = ForeignKey(Store, on_delete=OnDelete.cascade, null=False, index=True)
    feature = Varchar(length=40)
    enabled = Boolean(default=True)


class Feedback(Table, tablename="feedback"):
    """A suggestion or problem sent from the app, with the screen it came from and an optional
    screenshot (PNG or JPEG, at most 2 MB). status: new → acknowledged | planned | done | declined."""

    id = UUID(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    store_id = ForeignKey(Store, on_delete=OnDelete.cascade, null=False, index=True)
    text = Text()
    screen = Varchar(length=100, default="")
    app_version = Varchar(length=40, default="")
    screenshot = Bytea(null=True, default=None)
    status = Varchar(length=12, default="new")
    reply = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    updated_by_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)


class ActivityDay(Table, tablename="activity_days"):
    """One row per person and local day (Asia/Shanghai) they used the app: pulls, pushes and the
    mutations the server rejected. Unique (user_id, day): every sync adds to it with one upsert."""

    id = UUID(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False)
    store_id = ForeignKey(Store, on_delete=OnDelete.cascade, null=True, default=None)
    day = Date()
    pulls = Integer(default=0)
    pushes = Integer(default=0)
    rejected = Integer(default=0)
    first_at = Timestamptz(default=TimestamptzNow())
    last_at = Timestamptz(default=TimestamptzNow())


__all__ = ["ActivityDay", "Feedback", "StoreFeature", "Wave", "WaveStore"]
