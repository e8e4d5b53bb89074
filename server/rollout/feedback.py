"""Feedback from the app: what a person in a store suggests or reports, from which screen, with an
optional screenshot; head office and the regional managers answer it.

Who sees what: admin every item, a regional manager their region's, a store manager their store's,
a rep their own. Answering (status, reply) is for admin and the regional manager of the store.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any

import msgspec

from server.auth.scope import Caller
from server.customers.service import decode_cursor, encode_cursor
from server.errors import Forbidden, Invalid, NotFound, TooLarge
from server.rollout.service import find_store
from server.rollout.tables import Feedback
from server.values import as_uuid, utc
from shared.enums import Role
from shared.features import FEEDBACK
from shared.ids import uuid7
from shared.rollout import (
    MAX_APP_VERSION,
    MAX_FEEDBACK_TEXT,
    MAX_SCREEN,
    MAX_SCREENSHOT_BYTES,
    FeedbackCreate,
    FeedbackOut,
    FeedbackPage,
    FeedbackPatch,
)

ANSWERERS = (Role.ADMIN, Role.REGIONAL_MANAGER)
IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def image_type(data: bytes) -> str | None:
    """image/png or image/jpeg by the file's first bytes (whatever the sender says it is)."""
    return next((kind for magic, kind in IMAGE_TYPES if data.startswith(magic)), None)


def _screenshot(text: str | None) -> bytes | None:
    if text is None or text == "":
        return None
    # Base64 takes 4 characters per 3 bytes: refuse an oversized one before decoding it.
    if len(text) > (MAX_SCREENSHOT_BYTES + 2) // 3 * 4 + 4:
        raise TooLarge(
            f"the screenshot is over {MAX_SCREENSHOT_BYTES // (1024 * 1024)} MB; send a smaller one",
            field="screenshot_base64",
        )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("screenshot_base64 is not valid base64", field="screenshot_base64") from None
    if len(data) > MAX_SCREENSHOT_BYTES:
        raise TooLarge(
            f"the screenshot is {len(data)} bytes; at most {MAX_SCREENSHOT_BYTES} (2 MB)", field="screenshot_base64"
        )
    if image_type(data) is None:
        raise Invalid("the screenshot must be a PNG or JPEG image", field="screenshot_base64")
    return data


def _bounded(value: str, limit: int, field: str) -> str:
    if len(value) > limit:
        raise Invalid(f"{field} is at most {limit} characters, got {len(value)}", field=field)
    return value


_SELECT = (
    "SELECT f.id, f.store_id, s.code AS store_code, f.user_id, u.display_name AS user_name, f.text, f.screen, "
    "f.app_version, f.screenshot IS NOT NULL AS has_screenshot, f.status, f.reply, f.created_at, f.updated_at, "
    "b.display_name AS updated_by_name FROM feedback f JOIN stores s ON s.id = f.store_id "
    "LEFT JOIN users u ON u.id = f.user_id LEFT JOIN users b ON b.id = f.updated_by_id"
)


def _out(r: dict[str, Any]) -> FeedbackOut:
    return FeedbackOut(
        id=as_uuid(r["id"]),  # type: ignore[arg-type]
        store_id=as_uuid(r["store_id"]),  # type: ignore[arg-type]
        store_code=r["store_code"],
        user_id=as_uuid(r["user_id"]),
        user_name=r["user_name"] or "",
        text=r["text"],
        screen=r["screen"] or "",
        app_version=r["app_version"] or "",
        has_screenshot=bool(r["has_screenshot"]),
        status=r["status"],
        reply=r["reply"] or "",
        created_at=utc(r["created_at"]),  # type: ignore[arg-type]
        updated_at=utc(r["updated_at"]),  # type: ignore[arg-type]
        updated_by_name=r["updated_by_name"],
    )


def _visible(caller: Caller, params: list[Any]) -> str:
    """The items the caller sees: a rep their own; managers their stores'; admin all."""
    if caller.role == Role.REP:
        params.append(caller.user_id)
        return "f.user_id = {}"
    return caller.store_filter("f.store_id", params)


async def _one(caller: Caller, feedback_id: uuid.UUID) -> dict[str, Any]:
    params: list[Any] = [feedback_id]
    rows = await Feedback.raw(f"{_SELECT} WHERE f.id = {{}} AND {_visible(caller, params)}", *params)
    if not rows:
        raise NotFound(f"feedback {feedback_id} not found")
    return rows[0]


async def create(*, caller: Caller, data: FeedbackCreate, now: dt.datetime | None = None) -> FeedbackOut:
    """Store what a signed-in person of a store sends (nothing is stored when any part is refused)."""
    if caller.store_id is None:
        raise Invalid("feedback comes from a store: sign in as a store's rep or manager", field="store")
    text = data.text.strip()
    if not text:
        raise Invalid("text is required: say what you suggest or what went wrong", field="text")
    _bounded(text, MAX_FEEDBACK_TEXT, "text")
    screen = _bounded(data.screen.strip(), MAX_SCREEN, "screen")
    version = _bounded(data.app_version.strip(), MAX_APP_VERSION, "app_version")
    shot = _screenshot(data.screenshot_base64)
    off = await Feedback.raw(
        "SELECT 1 AS x FROM store_features WHERE store_id = {} AND feature = {} AND enabled = false "
        "AND deleted = false",
        caller.store_id,
        FEEDBACK,
    )
    if off:
        raise Forbidden("feedback is switched off for your store")
    now = now or dt.datetime.now(dt.UTC)
    ident = uuid7()
    await Feedback.raw(
        "INSERT INTO feedback (id, user_id, store_id, text, screen, app_version, screenshot, status, reply, "
        "created_at, updated_at, updated_by_id) VALUES ({}, {}, {}, {}, {}, {}, {}, 'new', '', {}, {}, NULL)",
        ident,
        caller.user_id,
        caller.store_id,
        text,
        screen,
        version,
        shot,
        now,
        now,
    )
    return _out(await _one(caller, ident))


async def listing(
    *,
    caller: Caller,
    status: str | None = None,
    store: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> FeedbackPage:
    """The items the caller sees, newest first, ``limit`` at a time (``cursor``: the page after)."""
    params: list[Any] = []
    where = [_visible(caller, params)]
    if status:
        where.append("f.status = {}")
        params.append(status)
    if store:
        found = await find_store(caller, store)
        where.append("f.store_id = {}")
        params.append(as_uuid(found["id"]))
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        try:
            params.append(uuid.UUID(after))
        except ValueError:
            raise Invalid(
                "cursor is not valid; pass back the next_cursor of the previous page", field="cursor"
            ) from None
        where.append("f.id < {}")  # ids are UUIDv7: newest first is id order
    params.append(limit + 1)
    rows = await Feedback.raw(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY f.id DESC LIMIT {{}}", *params)
    items = [_out(r) for r in rows[:limit]]
    more = len(rows) > limit
    return FeedbackPage(items=items, next_cursor=encode_cursor(items[-1].id) if more and items else None)


async def answer(
    *, caller: Caller, feedback_id: uuid.UUID, data: FeedbackPatch, now: dt.datetime | None = None
) -> FeedbackOut:
    """Set the status and / or the reply (admin; a regional manager for their region's stores)."""
    await _one(caller, feedback_id)
    if caller.role not in ANSWERERS:
        raise Forbidden("only head office (admin) and regional managers answer feedback")
    changes: dict[str, Any] = {}
    if data.status is not msgspec.UNSET:
        changes["status"] = data.status
    if data.reply is not msgspec.UNSET:
        changes["reply"] = data.reply.strip()
    if not changes:
        raise Invalid("nothing to change: send status or reply")
    sets = ", ".join(f"{k} = {{}}" for k in changes)
    await Feedback.raw(
        f"UPDATE feedback SET {sets}, updated_at = {{}}, updated_by_id = {{}} WHERE id = {{}}",
        *changes.values(),
        now or dt.datetime.now(dt.UTC),
        caller.user_id,
        feedback_id,
    )
    return _out(await _one(caller, feedback_id))


async def screenshot(*, caller: Caller, feedback_id: uuid.UUID) -> tuple[bytes, str]:
    """The item's screenshot and its media type; 404 when there is none or the item is out of sight."""
    params: list[Any] = [feedback_id]
    rows = await Feedback.raw(
        f"SELECT f.screenshot FROM feedback f WHERE f.id = {{}} AND {_visible(caller, params)}", *params
    )
    data = rows[0]["screenshot"] if rows else None
    if data is None:
        raise NotFound(f"feedback {feedback_id} has no screenshot" if rows else f"feedback {feedback_id} not found")
    data = bytes(data)
    return data, image_type(data) or "application/octet-stream"
