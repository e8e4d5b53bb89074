"""Who uses the app, day by day: one ``activity_days`` row per person and local day (Asia/Shanghai)
counting pulls, pushes and the mutations the server rejected — what the adoption report reads.

A push adds to its row inside its own transaction (it holds the write lock already, and the rejected
count is exact). A pull only counts in memory: a pull never waits for a writer (on SQLite a write
would queue behind any open transaction), so the counts are written by :func:`flush` — every
``FLUSH_SECONDS`` by the API process, at shutdown, and whenever a test wants them. Each flush is one
upsert per person and day that adds to the row, so any number of API processes count correctly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import uuid

from server import db
from server.analytics.filters import CHAIN_TZ
from server.rollout.tables import ActivityDay
from shared.ids import uuid5_for

log = logging.getLogger("floorwalker.activity")

FLUSH_SECONDS = 10.0  # how often an API process writes the pulls it counted (lost on a crash: at most this)

# Adds to the row of (user, day); first_at / last_at keep the earliest and the latest moment.
UPSERT = (
    "INSERT INTO activity_days (id, user_id, store_id, day, pulls, pushes, rejected, first_at, last_at) "
    "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT (user_id, day) DO UPDATE SET "
    "pulls = activity_days.pulls + excluded.pulls, pushes = activity_days.pushes + excluded.pushes, "
    "rejected = activity_days.rejected + excluded.rejected, store_id = excluded.store_id, "
    "first_at = CASE WHEN excluded.first_at < activity_days.first_at THEN excluded.first_at "
    "ELSE activity_days.first_at END, "
    "last_at = CASE WHEN excluded.last_at > activity_days.last_at THEN excluded.last_at ELSE activity_days.last_at END"
)


def local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(CHAIN_TZ).date()


def row_id(user_id: uuid.UUID, day: dt.date) -> uuid.UUID:
    return uuid5_for("activity-day", user_id, day.isoformat())


@dataclasses.dataclass
class _Counts:
    store_id: uuid.UUID | None
    pulls: int
    first_at: dt.datetime
    last_at: dt.datetime


_pulls: dict[tuple[uuid.UUID, dt.date], _Counts] = {}  # counted in this process, not written yet


async def record(
    *,
    user_id: uuid.UUID,
    store_id: uuid.UUID | None,
    now: dt.datetime,
    pulls: int = 0,
    pushes: int = 0,
    rejected: int = 0,
    first_at: dt.datetime | None = None,
) -> None:
    """Add to the person's row of the day ``now`` falls on: one statement (in the caller's
    transaction, if any)."""
    day = local_day(now)
    await ActivityDay.raw(
        UPSERT, row_id(user_id, day), user_id, store_id, day, pulls, pushes, rejected, first_at or now, now
    )


def count_pull(*, user_id: uuid.UUID, store_id: uuid.UUID | None, now: dt.datetime) -> None:
    """Count a pull (written by the next :func:`flush`)."""
    key = (user_id, local_day(now))
    counts = _pulls.get(key)
    if counts is None:
        _pulls[key] = _Counts(store_id, 1, now, now)
    else:
        counts.store_id, counts.pulls, counts.last_at = store_id, counts.pulls + 1, max(counts.last_at, now)


async def flush() -> int:
    """Write the pulls counted so far (one transaction); how many rows it touched. On failure the
    counts are kept for the next flush."""
    if not _pulls:
        return 0
    taken = dict(_pulls)
    _pulls.clear()
    try:
        async with db.transaction():
            for (user_id, day), c in sorted(taken.items(), key=lambda item: (str(item[0][0]), item[0][1])):
                await ActivityDay.raw(
                    UPSERT, row_id(user_id, day), user_id, c.store_id, day, c.pulls, 0, 0, c.first_at, c.last_at
                )
    except BaseException:
        for key, c in taken.items():  # back, merged with what was counted meanwhile
            now = _pulls.get(key)
            if now is not None:
                c.pulls += now.pulls
                c.last_at = max(c.last_at, now.last_at)
                c.store_id = now.store_id
            _pulls[key] = c
        raise
    return len(taken)


class Flusher:
    """The API process's writer of counted pulls: every ``seconds``, and once more when it stops."""

    def __init__(self, seconds: float = FLUSH_SECONDS) -> None:
        self.seconds = seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="activity-flush")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            try:
                await flush()
            except Exception as exc:  # the database away for a moment: kept, tried again
                log.warning("app activity not written yet (%s); trying again in %.0f s", exc, self.seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await flush()
        except Exception as exc:
            log.warning("app activity of the last %.0f s not written: %s", self.seconds, exc)
