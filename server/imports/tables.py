"""Tables of imports and identity: mapping templates, import jobs and their rejected rows, the
review queue of possible duplicates, merges (with what undoing needs) and the aliases that send
a merged-away customer id to the customer it now is."""

from piccolo.columns import JSON, UUID, Boolean, Bytea, Float, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.auth.tables import User
from server.customers.tables import Customer
from server.stores.tables import Store
from server.sync.columns import SyncColumns


class ImportMapping(Table, tablename="import_mappings"):
    """A reusable column mapping: which header of a source's files is which field."""

    id = UUID(primary_key=True)
    name = Varchar(length=64, unique=True)
    kind = Varchar(length=10)  # customers | orders
    source = Varchar(length=20, default="excel")  # pos | online_shop | wechat | call_centre | excel
    columns = JSON(default="{}")  # header → field
    created_by_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ImportJob(Table, tablename="import_jobs"):
    """One file's import (or dry run). ``next_row`` is where a resumed run starts: every batch
    before it is committed, with the counts."""

    id = UUID(primary_key=True)
    kind = Varchar(length=10)
    source = Varchar(length=20, default="excel")
    file_name = Varchar(length=200)
    file_sha256 = Varchar(length=64, index=True)
    encoding = Varchar(length=20, default="")
    columns = JSON(default="{}")  # the mapping used
    mapping_name = Varchar(length=64, default="")
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=True, default=None)  # rows without a store
    dry_run = Boolean(default=False)
    status = Varchar(length=10, default="running")  # running | done | failed
    total_rows = Integer(default=0)
    next_row = Integer(default=0)
    created = Integer(default=0)
    updated = Integer(default=0)
    unchanged = Integer(default=0)
    merged = Integer(default=0)
    rejected = Integer(default=0)
    review = Integer(default=0)  # possible duplicates queued for a person
    error = Text(default="")
    created_by_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
    runner = UUID(null=True, default=None)  # who runs it now (a resumed job gets a new one)
    heartbeat_at = Timestamptz(null=True, default=None)  # when its runner last committed a batch


class ImportFile(Table, tablename="import_files"):
    """The file of an import started from the app, kept until the import is done: a job whose
    runner stopped (a server restart) is resumed from it (migration 0018)."""

    job_id = UUID(primary_key=True)
    data = Bytea()


class ImportRejection(Table, tablename="import_rejections"):
    """A row not imported, as it was in the file, with the reason (downloadable)."""

    id = UUID(primary_key=True)
    job_id = ForeignKey(ImportJob, on_delete=OnDelete.cascade, null=False, index=True)
    row_number = Integer()  # 1 = the first data row after the header
    field = Varchar(length=40, default="")
    reason = Text()
    raw = JSON(default="{}")


class CustomerMerge(Table, tablename="customer_merges"):
    """Customer ``merged_id`` folded into ``survivor_id``: who or what decided, why, and everything
    undoing it needs (the rows moved, the duplicates retired, the survivor's fields before)."""

    id = UUID(primary_key=True)
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    survivor_id = ForeignKey(Customer, on_delete=OnDelete.restrict, null=False, index=True)
    merged_id = ForeignKey(Customer, on_delete=OnDelete.restrict, null=False, index=True)
    score = Float(default=0.0)
    reasons = JSON(default="[]")
    decided_by = Varchar(length=100)  # "user:<id>" or "import:<job id>"
    snapshot = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())
    undone_at = Timestamptz(null=True, default=None)
    undone_by = Varchar(length=100, default="")


class MergeCandidate(Table, tablename="merge_candidates"):
    """Two customers that may be one person (the review band): open until a person decides."""

    id = UUID(primary_key=True)
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False, index=True)
    customer_a = ForeignKey(Customer, on_delete=OnDelete.cascade, null=False)
    customer_b = ForeignKey(Customer, on_delete=OnDelete.cascade, null=False)
    score = Float(default=0.0)
    reasons = JSON(default="[]")
    job_id = UUID(null=True, default=None)
    status = Varchar(length=10, default="open")  # open | merged | distinct
    decided_by_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    merge_id = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class CustomerAlias(SyncColumns, Table, tablename="customer_aliases"):
    """A merged-away customer's id (``id``) and the customer it now is: phones resolve old ids
    (a card opened from a notification, an edit queued offline) to the survivor. A tombstone
    after an undo."""

    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    survivor_id = UUID()
    merge_id = UUID()
