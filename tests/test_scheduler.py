"""Leader election: of two schedulers exactly one leads; when it stops, the other takes over."""

from __future__ import annotations

import asyncio

import msgspec

from server.scheduler import JOB_DEFAULTS, JOBS, build_scheduler, run_as_leader
from tests.conftest import TMP


async def _wait_for(predicate, seconds=10.0):
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def test_exactly_one_leader_and_takeover(settings, demo):
    if settings.is_sqlite:
        # On SQLite the lock is a file beside the database, and the session's live server (`serve`
        # runs the scheduler there) may already hold the session database's: these two compete
        # for a lock of their own.
        settings = msgspec.structs.replace(settings, database_url=f"sqlite:///{TMP}/election/floorwalker.sqlite3")
        (TMP / "election").mkdir(exist_ok=True)
    state = {"a": False, "b": False}
    stops = {"a": asyncio.Event(), "b": asyncio.Event()}

    def tracker(name):
        return lambda leading: state.__setitem__(name, leading)

    task_a = asyncio.create_task(run_as_leader(settings, stops["a"], tracker("a")))
    assert await _wait_for(lambda: state["a"])
    task_b = asyncio.create_task(run_as_leader(settings, stops["b"], tracker("b")))
    await asyncio.sleep(1.0)
    assert state == {"a": True, "b": False}, "two leaders, or none"

    stops["a"].set()
    await task_a
    assert await _wait_for(lambda: state["b"], seconds=10), "the second scheduler did not take over"
    stops["b"].set()
    await task_b


def test_jobs_are_importable_and_defaults_chosen():
    scheduler = build_scheduler()
    assert {job.id for job in scheduler.get_jobs()} == {job_id for job_id, _, _ in JOBS}
    assert JOB_DEFAULTS["misfire_grace_time"] >= 60 and JOB_DEFAULTS["coalesce"] is True
