"""Conversions of database values that differ between PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

CENT = Decimal("0.01")


def money(value: object) -> Decimal:
    """An amount as Decimal with two places (SQLite returns sums as float, PostgreSQL as Decimal)."""
    if value is None:
        return Decimal("0.00")
    if isinstance(value, Decimal):
        return value.quantize(CENT)
    return Decimal(str(value)).quantize(CENT)


def utc(value: object) -> dt.datetime | None:
    """A timestamp as an aware UTC datetime (SQLite returns computed ones as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def as_uuid(value: object) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def as_date(value: object) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value))


def json_obj(value: object) -> dict:
    """A JSON column's value as a dict (Piccolo hands back text on both engines)."""
    import json

    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    return json.loads(value)


def like_pattern(fragment: str) -> str:
    r"""'%fragment%' with LIKE's wildcards escaped (use with ESCAPE '\')."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def client_time(value: dt.datetime, field: str) -> dt.datetime:
    """A client-sent timestamp as UTC: it must carry an offset and lie in 2000–2099."""
    from server.errors import Invalid

    if value.tzinfo is None:
        raise Invalid(f"{field} needs a time zone offset, e.g. 2026-11-22T15:00:00+08:00", field=field)
    try:
        moment = value.astimezone(dt.UTC)
    except OverflowError:
        moment = None
    if moment is None or not (EARLIEST <= moment < LATEST):
        raise Invalid(f"{field} must lie between the years 2000 and 2099", field=field)
    return moment
