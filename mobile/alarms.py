"""On-device reminders: the rep's upcoming due tasks scheduled as the phone's own local
notifications, so a reminder fires on time with the app closed and no network.

In the packaged Android app the scheduler is the ``flet-android-notifications`` extension (the
flutter_local_notifications plugin); in web and desktop mode there is none, and the app shows an
in-app banner instead (``AppState.check_reminders``). ``TaskAlarms`` keeps what is scheduled in
step with the replica: a task done, deleted or snoozed cancels or moves its alarm; a new or
reassigned one gets one. Only the next ``HORIZON`` is scheduled (Android limits pending alarms).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any, Protocol

from mobile import times
from mobile.mutators import fetch_all
from mobile.replica import Replica

log = logging.getLogger("floorwalker.mobile.alarms")

HORIZON = dt.timedelta(days=7)
MAX_ALARMS = 200
CHANNEL = ("floorwalker_reminders", "任务提醒 Reminders")


class Scheduler(Protocol):
    """What the platform offers (the extension's method names)."""

    async def schedule_notification(
        self, notification_id: int, title: str, body: str, scheduled_time: dt.datetime, **options: Any
    ) -> Any: ...

    async def cancel(self, notification_id: int) -> Any: ...


def alarm_id(task_id: str) -> int:
    """A stable 31-bit id per task (Android notification ids are Java ints)."""
    return uuid.UUID(str(task_id)).int % (2**31 - 1) + 1


def wanted(replica: Replica, user_id: str, now: dt.datetime, title_of=lambda t: t) -> dict[int, tuple]:
    """alarm id → (due time, title, body, link) for the user's open tasks due within HORIZON."""
    rows = fetch_all(
        replica.db,
        "SELECT t.id, t.title, t.due_at, t.customer_id, c.name AS customer_name FROM tasks t "
        "LEFT JOIN customers c ON c.id = t.customer_id WHERE t.owner_id = ? AND t.status = 'open' "
        "AND t.due_at > ? AND t.due_at <= ? ORDER BY t.due_at LIMIT ?",
        (str(user_id), times.utc_text(now), times.utc_text(now + HORIZON), MAX_ALARMS),
    )
    return {
        alarm_id(r["id"]): (
            r["due_at"],
            title_of(r["title"]),
            r["customer_name"] or "",
            f"/customers/{r['customer_id']}" if r["customer_id"] else "/",
        )
        for r in rows
    }


class TaskAlarms:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.scheduled: dict[int, tuple] = {}
        self._lock = asyncio.Lock()  # one round at a time: two would schedule the same alarm twice

    async def update(self, replica: Replica, user_id: str, now: dt.datetime, title_of=lambda t: t) -> tuple[int, int]:
        """Schedule what is new or moved, cancel what is no longer wanted; (scheduled, cancelled)."""
        async with self._lock:
            return await self._update(wanted(replica, user_id, now, title_of))

    async def _update(self, want: dict[int, tuple]) -> tuple[int, int]:
        added = cancelled = 0
        for ident in [i for i in self.scheduled if i not in want or want[i] != self.scheduled[i]]:
            try:
                await self.scheduler.cancel(ident)
            except Exception:  # the platform refused: keep going, try again next time
                log.warning("cannot cancel alarm %s", ident, exc_info=True)
                continue
            self.scheduled.pop(ident)
            cancelled += 1
        for ident, entry in want.items():
            if ident in self.scheduled:
                continue
            due, title, body, link = entry
            try:
                await self.scheduler.schedule_notification(
                    ident,
                    title,
                    body,
                    times.parse(due),
                    payload=link,
                    channel_id=CHANNEL[0],
                    channel_name=CHANNEL[1],
                    schedule_mode="exact_allow_while_idle",
                )
            except Exception:
                log.warning("cannot schedule alarm %s", ident, exc_info=True)
                continue
            self.scheduled[ident] = entry
            added += 1
        return added, cancelled


def android_scheduler() -> Scheduler | None:
    """The extension, when this is the packaged Android app that ships it; else None."""
    try:
        from flet_android_notifications import FletAndroidNotifications  # type: ignore[import-not-found]
    except ImportError:
        return None
    return FletAndroidNotifications()
