"""The columns every row that reaches phones carries (DESIGN.md, 'Sync protocol')."""

from __future__ import annotations

from piccolo.columns import UUID, BigInt, Boolean, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow


class SyncColumns:
    """Mixin: id (UUIDv7 made by the creator), version (position in the scope's change order),
    deleted (tombstone), updated_at. Store-scoped tables add ``store_id`` themselves."""

    id = UUID(primary_key=True)
    version = BigInt(default=0)
    deleted = Boolean(default=False)
    updated_at = Timestamptz(default=TimestamptzNow())
