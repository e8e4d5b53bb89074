"""Scheduled work of imports: imports started from the app whose server stopped mid-file go on."""

from __future__ import annotations

from server.imports import service


async def resume_stale() -> int:
    """The scheduler's leader resumes each import whose runner stopped (service.resume_stale)."""
    return await service.resume_stale()
