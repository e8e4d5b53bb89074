"""The scheduler's entry: make notifications (feed, due tasks), decide their push, dispatch."""

from __future__ import annotations

import logging

from server.notifications import dispatch, service
from server.settings import Settings

log = logging.getLogger("floorwalker.notifications")

_senders: dict[str, dispatch.Sender] | None = None


def _adapters() -> dict[str, dispatch.Sender]:
    global _senders
    if _senders is None:
        _senders = dispatch.senders_from(Settings.from_env())
        log.info("notifications: push through %s", ", ".join(sorted(_senders)) or "nothing (no adapter configured)")
    return _senders


async def tick() -> None:
    made = await service.feed() + await service.due()
    plan = await service.plan_pushes()
    sent = await dispatch.dispatch(_adapters())
    if made or plan.pushed or plan.digests or sent.total:
        log.info(
            "notifications: %d new; push %d, held %d, digest %d (+%d digests), muted %d; sends %s",
            made,
            plan.pushed,
            plan.held,
            plan.digest,
            plan.digests,
            plan.muted,
            sent,
        )
    if made:
        from server.sync import pokes

        await pokes.announce(Settings.from_env())  # the users' apps pull their new notifications now
