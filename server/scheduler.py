"""The scheduler (APScheduler 3.11) and its leader election: exactly one process runs jobs.

PostgreSQL: a session advisory lock held on a dedicated, non-pooled connection; the scheduler
starts paused, resumes while the lock is held, and pauses when the connection is lost.
SQLite (one machine): an exclusive lock on a file beside the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from server.settings import Settings

log = logging.getLogger("floorwalker.scheduler")

LOCK_KEY = 0x466C6F6F72  # "Floor": the advisory lock id every Floorwalker worker competes for
POLL_SECONDS = 2.0
DRAIN_SECONDS = 10.0  # on stop, how long a running job may take to finish

# Job defaults, chosen on purpose:
# - misfire_grace_time 300 s: a job late by up to five minutes (busy loop, leader change) still
#   runs; APScheduler's default of 1 s would silently skip it.
# - coalesce: after downtime, a job that missed several runs runs once, not once per miss; the
#   sweeps are set-based and catch up in one run.
# - max_instances 1: a slow sweep is never overlapped by its next run.
JOB_DEFAULTS = {"misfire_grace_time": 300, "coalesce": True, "max_instances": 1}

# (job id, "module:function", interval seconds). Every reference is importable by name.
JOBS = [
    ("auth.purge_expired_sessions", "server.auth.jobs:purge_expired_sessions", 3600),
    ("sync.purge_tombstones", "server.sync.jobs:purge_tombstones", 3600),
    ("sync.purge_old_answers", "server.sync.jobs:purge_old_answers", 6 * 3600),
    # An import started from the app whose server stopped goes on from its last batch (its runner's
    # heartbeat is two minutes stale); a run holds the job's next runs off (max_instances 1).
    ("imports.resume_stale", "server.imports.jobs:resume_stale", 60),
    # Every customer's segment, RFM and health (shared/segments.py), once a night at 03:00 chain
    # time; the hourly check also scores a fresh database at once and catches up a missed night.
    ("analytics.score_customers", "server.analytics.jobs:score_customers", 3600),
]
# Jobs whose first check runs as soon as the leader starts, not one interval later.
RUN_AT_START = {"analytics.score_customers"}


RULES_JOB = ("rules.sweep", "server.rules.jobs:sweep")
NOTIFY_JOB = ("notifications.tick", "server.notifications.jobs:tick")


def build_scheduler(settings: Settings | None = None) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(job_defaults=JOB_DEFAULTS, timezone="UTC")
    for job_id, ref, seconds in JOBS:
        first = {"next_run_time": datetime.now(UTC)} if job_id in RUN_AT_START else {}
        scheduler.add_job(ref, "interval", seconds=seconds, id=job_id, replace_existing=True, **first)
    if settings is not None and settings.rules_sweep_seconds > 0:
        # Set-based: one query per rule per run. A late or missed run simply catches up (the
        # tasks' unique keys make a second run create nothing); coalesce keeps it to one run.
        job_id, ref = RULES_JOB
        scheduler.add_job(ref, "interval", seconds=settings.rules_sweep_seconds, id=job_id, replace_existing=True)
    if settings is not None and settings.notify_seconds > 0:
        # Feed, due tasks, push plan and dispatch: each step is keyed (notification ids, the unique
        # send log), so a run after a restart or a missed run sends nothing twice.
        job_id, ref = NOTIFY_JOB
        scheduler.add_job(ref, "interval", seconds=settings.notify_seconds, id=job_id, replace_existing=True)
    return scheduler


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    async def try_acquire(self) -> bool:
        if self.fd is not None:
            return True
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    async def still_held(self) -> bool:
        return self.fd is not None

    async def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _AdvisoryLock:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn = None

    async def try_acquire(self) -> bool:
        import asyncpg

        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.dsn, timeout=5)
        return bool(await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY))

    async def still_held(self) -> bool:
        if self.conn is None or self.conn.is_closed():
            return False
        try:
            await asyncio.wait_for(self.conn.fetchval("SELECT 1"), timeout=5)
            return True
        except Exception:  # any failure (closed socket, timeout, server gone): the session is lost
            return False

    async def release(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            with contextlib.suppress(Exception):
                await self.conn.close()
        self.conn = None


async def run_as_leader(
    settings: Settings, stop: asyncio.Event, on_change: Callable[[bool], None] | None = None
) -> None:
    """Run the scheduler whenever this process holds leadership, until ``stop`` is set.

    ``on_change(leading)`` is told each time leadership is gained or lost."""
    lock = (
        _FileLock(settings.sqlite_path.with_suffix(".scheduler.lock"))
        if settings.is_sqlite
        else _AdvisoryLock(settings.database_url.replace("postgres://", "postgresql://", 1))
    )
    scheduler = build_scheduler(settings)
    scheduler.start(paused=True)
    leading = False
    try:
        while not stop.is_set():
            try:
                held = await lock.still_held() if leading else await lock.try_acquire()
            except OSError as exc:
                log.warning("scheduler: cannot reach the database for the leader lock: %s", exc)
                held = False
            if held and not leading:
                log.info("scheduler: leader now, running jobs")
                scheduler.resume()
                leading = True
                if on_change:
                    on_change(True)
            elif not held and leading:
                log.warning("scheduler: lost the leader lock, pausing")
                scheduler.pause()
                await lock.release()
                leading = False
                if on_change:
                    on_change(False)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=POLL_SECONDS)
    finally:
        # Let a running job finish (sweeps are short, and keyed: cutting one loses nothing, but
        # APScheduler would log the cancellation as a failure): pause, wait a little, then stop.
        scheduler.pause()
        running = [
            f for ex in scheduler._executors.values() for f in getattr(ex, "_pending_futures", ()) if not f.done()
        ]
        if running:
            await asyncio.wait(running, timeout=DRAIN_SECONDS)
        scheduler.shutdown(wait=False)
        await lock.release()
