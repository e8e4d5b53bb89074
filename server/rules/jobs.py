"""The scheduler's entry: sweep every enabled rule (the leader runs it every minute)."""

from __future__ import annotations

import logging

from server.rules import service

log = logging.getLogger("floorwalker.rules")


async def sweep() -> None:
    result = await service.sweep()
    if result.total:
        log.info(
            "rules: %d tasks in %.2f s %s", result.total, result.seconds, {k: v for k, v in result.created.items() if v}
        )
