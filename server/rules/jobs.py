"""The scheduler's entry: sweep every enabled rule (the leader runs it every minute)."""

from __future__ import annotations

import logging

from server.rules import service
from server.settings import Settings
from server.sync import pokes

log = logging.getLogger("floorwalker.rules")


async def sweep(settings: Settings | None = None) -> None:
    """``settings``: the process's own; the scheduler references this job by name without
    arguments, so by default they are read from the environment (only Redis's address is used)."""
    log.info("rules: sweep started")
    result = await service.sweep()
    log.info("rules: sweep done, %d new%s", result.total, f"; more next time: {result.capped}" if result.capped else "")
    if result.total:
        log.info(
            "rules: %d tasks in %.2f s %s", result.total, result.seconds, {k: v for k, v in result.created.items() if v}
        )
        # The new tasks reach the phones listening on every API process now, not at their next poll.
        await pokes.announce(settings or Settings.from_env())
