"""Scheduled housekeeping of sync: tombstones past the retention window, old mutation answers."""

from __future__ import annotations

import datetime as dt

from server.db import transaction
from server.sync.tables import ScopeVersion, SyncMutation
from shared.sync import TABLES

TOMBSTONE_RETENTION = dt.timedelta(days=30)
# A device offline longer than this replaying a push gets "out of order" for its oldest answers.
ANSWER_RETENTION = dt.timedelta(days=90)


async def purge_tombstones(*, retention: dt.timedelta = TOMBSTONE_RETENTION, now: dt.datetime | None = None) -> int:
    """Delete tombstones older than ``retention`` and raise each scope's purge horizon to the
    highest version removed, in one transaction: a device whose cursor is below the horizon may
    have missed a deletion, so its next pull answers ``reset_required``. Returns rows removed."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - retention
    horizons: dict[str, int] = {}
    removed = 0
    async with transaction():
        for spec in reversed(TABLES):  # children before parents
            scope_column = "store_id" if spec.scope == "store" else f"'{spec.scope}'"
            rows = await ScopeVersion.raw(
                f"DELETE FROM {spec.name} WHERE deleted = true AND updated_at < {{}} "
                f"RETURNING {scope_column} AS scope, version",
                cutoff,
            )
            for row in rows:
                scope = str(row["scope"])
                horizons[scope] = max(horizons.get(scope, 0), int(row["version"]))
            removed += len(rows)
        for scope, version in horizons.items():
            await ScopeVersion.raw(
                "UPDATE scope_versions SET purged_version = {} WHERE scope = {} AND purged_version < {}",
                version,
                scope,
                version,
            )
    return removed


async def purge_old_answers(*, now: dt.datetime | None = None) -> None:
    await SyncMutation.delete().where(SyncMutation.created_at < (now or dt.datetime.now(dt.UTC)) - ANSWER_RETENTION)
