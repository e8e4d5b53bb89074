"""Tables of complaints and their service-level timestamps."""

from piccolo.columns import ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from server.auth.tables import User
from server.customers.tables import Customer
from server.stores.tables import Store
from server.sync.columns import SyncColumns
from shared.enums import ComplaintCategory, ComplaintStatus


class Complaint(SyncColumns, Table, tablename="complaints"):
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False, index=True)
    customer_id = ForeignKey(Customer, on_delete=OnDelete.restrict, null=False, index=True)
    owner_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    category = Varchar(length=20, choices=ComplaintCategory)
    status = Varchar(length=20, choices=ComplaintStatus, default=ComplaintStatus.OPEN)
    description = Text(default="")
    opened_at = Timestamptz()
    history_retrieved_at = Timestamptz(null=True, default=None)
    first_response_at = Timestamptz(null=True, default=None)
    solved_at = Timestamptz(null=True, default=None)
    callback_at = Timestamptz(null=True, default=None)
    satisfaction = Integer(null=True, default=None)  # 1..5 from the call-back
    resolution = Text(default="")  # what the customer was offered / how it was solved (migration 0020)
    callback_note = Text(default="")  # what the call-back heard
