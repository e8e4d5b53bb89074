"""Scheduled work of analytics: the nightly scoring of every customer's standing."""

from __future__ import annotations

from server.analytics import segments


async def score_customers() -> int:
    """Hourly check; scores everyone once a night (03:00 chain time), or at once when never done."""
    return await segments.score_if_due()
