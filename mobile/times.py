"""Timestamps on the phone: stored as UTC RFC 3339 text, so string order is time order.

The server sends UTC timestamps (shared/sync.py); what the phone makes itself is written the same
way, so the local queries can compare text against a UTC bound without parsing every row.
"""

from __future__ import annotations

import datetime as dt


def utc_text(moment: dt.datetime) -> str:
    """``2025-03-01T08:30:00.000000Z``: always microseconds, so equal-second stamps still sort."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ms(ms: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def parse(text: str) -> dt.datetime:
    """An RFC 3339 timestamp (``Z`` or an offset) as an aware UTC datetime; naive text counts as UTC."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def bound(moment: dt.datetime) -> str:
    """A comparison bound for stored timestamps: ``YYYY-MM-DDTHH:MM:SS`` in UTC.

    Stored values differ in their tail (``Z``, ``.123456Z``, ``+00:00``); comparing against the
    19-character prefix form keeps ``x < bound`` right to the second whatever the tail."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
