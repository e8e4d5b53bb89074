"""Scheduled housekeeping of the auth domain."""

from __future__ import annotations

import datetime as dt

from server.auth.tables import LoginAttempt, RefreshToken


async def purge_expired_sessions() -> None:
    """Drop refresh tokens expired or revoked over a week ago, and login attempts over a day old."""
    now = dt.datetime.now(dt.UTC)
    week_ago = now - dt.timedelta(days=7)
    await RefreshToken.delete().where((RefreshToken.expires_at < week_ago) | (RefreshToken.revoked_at < week_ago))
    await LoginAttempt.delete().where(LoginAttempt.at < now - dt.timedelta(days=1))
