"""Tables of authentication: users, refresh tokens, login attempts."""

from piccolo.columns import UUID, Boolean, ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.stores.tables import Region, Store
from server.sync.columns import SyncColumns
from shared.enums import Role


class User(SyncColumns, Table, tablename="users"):
    username = Varchar(length=64, unique=True)
    display_name = Varchar(length=100)
    password_hash = Varchar(length=200, secret=True)
    role = Varchar(length=20, choices=Role)
    # A rep or store manager belongs to a store; a regional manager to a region; admin to neither.
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=True, index=True)
    region_id = ForeignKey(Region, on_delete=OnDelete.restrict, null=True)
    language = Varchar(length=10, default="zh-CN")
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())


class RefreshToken(Table, tablename="refresh_tokens"):
    """A refresh token is stored only as its hash. Each use rotates it; reusing a rotated token
    revokes its whole family (a stolen token is cut off once either party uses it)."""

    id = UUID(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False, index=True)
    family_id = UUID(index=True)
    token_hash = Varchar(length=64, unique=True)
    issued_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


class LoginAttempt(Table, tablename="login_attempts"):
    id = Serial(primary_key=True)
    username = Varchar(length=64, index=True)
    address = Varchar(length=64, index=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)
    success = Boolean(default=False)
