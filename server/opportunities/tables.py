"""Tables of the pipeline: configurable stages, opportunities and their stage history."""

from decimal import Decimal

from piccolo.columns import Date, ForeignKey, Integer, Numeric, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.auth.tables import User
from server.customers.tables import Customer
from server.stores.tables import Store
from server.sync.columns import SyncColumns
from shared.enums import StageKind


class PipelineStage(SyncColumns, Table, tablename="pipeline_stages"):
    """The company's pipeline, editable by an admin (scope 'catalog')."""

    code = Varchar(length=40, unique=True)
    name_zh = Varchar(length=40)
    name_en = Varchar(length=40)
    position = Integer()
    kind = Varchar(length=10, choices=StageKind, default=StageKind.OPEN)
    probability = Integer(default=0)  # percent, for the weighted pipeline
    idle_days = Integer(null=True, default=None)  # allowed days in the stage before a reminder


class Opportunity(SyncColumns, Table, tablename="opportunities"):
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False, index=True)
    customer_id = ForeignKey(Customer, on_delete=OnDelete.restrict, null=False, index=True)
    owner_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, index=True)
    title = Varchar(length=200)
    stage_id = ForeignKey(PipelineStage, on_delete=OnDelete.restrict, null=False, index=True)
    amount = Numeric(digits=(12, 2), default=Decimal("0"))
    expected_close_date = Date(null=True, default=None)
    contract_end_date = Date(null=True, default=None)
    stage_entered_at = Timestamptz(default=TimestamptzNow())
    lost_reason = Varchar(length=500, null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class StageHistory(SyncColumns, Table, tablename="stage_history"):
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    opportunity_id = ForeignKey(Opportunity, on_delete=OnDelete.cascade, null=False, index=True)
    stage_id = ForeignKey(PipelineStage, on_delete=OnDelete.restrict, null=False)
    entered_at = Timestamptz()
    left_at = Timestamptz(null=True, default=None)
    moved_by_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
