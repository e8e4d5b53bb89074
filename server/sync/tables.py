"""Tables of the sync domain: per-scope change counters, registered devices, the answers given
to their mutations, and the conflict log."""

from piccolo.columns import JSON, UUID, BigInt, ForeignKey, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.auth.tables import User
from server.customers.tables import Customer
from server.stores.tables import Store
from server.sync.columns import SyncColumns


class ScopeVersion(Table, tablename="scope_versions"):
    """One row per scope (a store id, or 'org' / 'catalog'). Its counter is bumped inside the
    writing transaction, so on PostgreSQL the row lock orders versions by commit.
    ``purged_version``: the highest version of a tombstone removed for good; a client whose
    cursor is older must re-snapshot the scope."""

    scope = Varchar(length=64, primary_key=True)
    version = BigInt(default=0)
    purged_version = BigInt(default=0)


class SyncClient(Table, tablename="sync_clients"):
    """A device replica (one per user and device). ``last_mutation_id`` moves in the same
    transaction as the mutations it counts, so each mutation applies exactly once."""

    id = UUID(primary_key=True)  # the client id the device made
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False, index=True)
    last_mutation_id = BigInt(default=0)
    schema_version = BigInt(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    last_push_at = Timestamptz(null=True, default=None)
    last_pull_at = Timestamptz(null=True, default=None)


class SyncMutation(Table, tablename="sync_mutations"):
    """The answer given to each mutation, so a replayed push gets the same answer."""

    id = Serial(primary_key=True)
    client_id = ForeignKey(SyncClient, on_delete=OnDelete.cascade, null=False)
    mutation_id = BigInt()
    name = Varchar(length=40)
    status = Varchar(length=10)  # applied | rejected
    reason = Text(null=True, default=None)
    field = Varchar(length=64, null=True, default=None)
    lost_fields = JSON(default="[]")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class SyncConflict(SyncColumns, Table, tablename="sync_conflicts"):
    """A customer-card field whose concurrent edit lost: the audit trail the rep is shown
    ("your change to 电话 was replaced by 王经理's at 14:02"). Synced to the store's devices."""

    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False, index=True)
    customer_id = ForeignKey(Customer, on_delete=OnDelete.cascade, null=False)
    field = Varchar(length=64)
    winner_value = Text(null=True, default=None)
    loser_value = Text(null=True, default=None)
    winner_user_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    loser_user_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    winner_hlc = Varchar(length=64, default="")
    loser_hlc = Varchar(length=64, default="")
    at = Timestamptz(default=TimestamptzNow())
