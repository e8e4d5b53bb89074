"""Tables of the organisation: regions and stores."""

from piccolo.columns import JSON, Boolean, ForeignKey, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from server.sync.columns import SyncColumns


class Region(SyncColumns, Table, tablename="regions"):
    code = Varchar(length=32, unique=True)
    name = Varchar(length=100)


class Store(SyncColumns, Table, tablename="stores"):
    code = Varchar(length=16, unique=True)  # e.g. BJ-CY
    name = Varchar(length=100)
    city = Varchar(length=50)
    region_id = ForeignKey(Region, on_delete=OnDelete.restrict, null=False, index=True)
    time_zone = Varchar(length=64, default="Asia/Shanghai")
    # {"mon": [["10:00", "22:00"]], ...} in the store's local time; a missing day is closed.
    opening_hours = JSON(default="{}")
    pilot = Boolean(default=False)
    active = Boolean(default=True)
