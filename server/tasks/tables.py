"""Tables of tasks: manual to-dos, rule-generated follow-ups and reminders."""

from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.auth.tables import User
from server.customers.tables import Customer
from server.opportunities.tables import Opportunity
from server.stores.tables import Store
from server.sync.columns import SyncColumns
from shared.enums import TaskKind, TaskSource, TaskStatus


class Task(SyncColumns, Table, tablename="tasks"):
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False, index=True)
    owner_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, index=True)
    customer_id = ForeignKey(Customer, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    opportunity_id = ForeignKey(Opportunity, on_delete=OnDelete.restrict, null=True, default=None)
    kind = Varchar(length=20, choices=TaskKind)
    title = Varchar(length=200)
    notes = Text(default="")
    due_at = Timestamptz(index=True)
    status = Varchar(length=10, choices=TaskStatus, default=TaskStatus.OPEN)
    source = Varchar(length=10, choices=TaskSource, default=TaskSource.MANUAL)
    # Rule-made tasks: rule + subject + period. Unique, so a sweep run twice makes nothing new.
    dedupe_key = Varchar(length=200, null=True, default=None, unique=True)
    completed_at = Timestamptz(null=True, default=None)
    created_by_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
