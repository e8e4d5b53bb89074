"""Tables of the sync domain: the per-scope change counter."""

from piccolo.columns import BigInt, Varchar
from piccolo.table import Table


class ScopeVersion(Table, tablename="scope_versions"):
    """One row per scope (a store id, or 'org' / 'catalog'). Its counter is bumped inside the
    writing transaction, so on PostgreSQL the row lock orders versions by commit."""

    scope = Varchar(length=64, primary_key=True)
    version = BigInt(default=0)
