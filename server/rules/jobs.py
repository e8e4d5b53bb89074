"""The scheduler's entry: sweep every enabled rule (the leader runs it every minute)."""

from __future__ import annotations

import logging

from server.rules import service

log = logging.getLogger("floorwalker.rules")


async def sweep() -> None:
    log.info("rules: sweep started")
    result = await service.sweep()
    log.info("rules: sweep done, %d new%s", result.total, f"; more next time: {result.capped}" if result.capped else "")
    if result.total:
        log.info(
            "rules: %d tasks in %.2f s %s", result.total, result.seconds, {k: v for k, v in result.created.items() if v}
        )
