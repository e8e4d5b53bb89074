"""Dispatch: hand queued sends to the push services, exactly once per notification and device.

The send log (``push_sends``) has one row per (notification, subscription), unique. A dispatcher
claims a batch — queued and due, or claimed by a dispatcher that died and whose lease ran out —
in a short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two leaders for a moment
never claim the same row), sends outside any transaction, and records each answer:

- sent → done; the subscription's ``last_sent_at`` moves;
- retry (5xx, 429, network) → queued again after an exponential backoff (or the service's
  Retry-After), until MAX_ATTEMPTS, then failed;
- gone (404/410, FCM UNREGISTERED) → the subscription is removed, with the reason;
- failed (any other 4xx) → recorded with the service's reason, never retried.

A dispatcher killed between the push service's answer and its own record leaves a claimed row;
it is sent again when the lease ends, with the same collapse tag (Web Push ``Topic``, FCM
``collapse_key``/``tag``), so the device shows one notification.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import uuid
from pathlib import Path
from typing import Any, Protocol

from server import db
from server.notifications.push import Delivery, FcmTarget, PushMessage, WebPushTarget
from server.notifications.tables import PushSend
from server.settings import Settings

log = logging.getLogger("floorwalker.push")

BATCH = 200
LEASE = dt.timedelta(minutes=2)
MAX_ATTEMPTS = 6
BACKOFF_BASE = dt.timedelta(seconds=30)  # 30 s, 1 min, 2 min, 4 min, 8 min …
BACKOFF_MAX = dt.timedelta(hours=1)
CONCURRENCY = 20


class Sender(Protocol):
    async def send(self, target: Any, message: PushMessage) -> Delivery: ...


def backoff(attempts: int, retry_after: float | None = None) -> dt.timedelta:
    wait = min(BACKOFF_BASE * (2 ** max(0, attempts - 1)), BACKOFF_MAX)
    if retry_after is not None:
        wait = max(wait, dt.timedelta(seconds=min(retry_after, BACKOFF_MAX.total_seconds())))
    return wait


def vapid_key(settings: Settings) -> str:
    """The Web Push key: the setting, or (dev / demo) one made once beside the database."""
    from server.notifications.webpush import generate_vapid_key

    if settings.vapid_private_key:
        return settings.vapid_private_key
    if settings.mode == "production":
        return ""
    name = settings.database_url.rsplit("/", 1)[-1].replace(".", "_") or "default"
    path = Path("var") / f"vapid-{name}.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(generate_vapid_key())
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text()


def senders_from(settings: Settings) -> dict[str, Sender]:
    """The push services this process can reach: Web Push whenever a VAPID key exists, FCM only
    when configured."""
    from server.notifications.webpush import WebPushSender

    out: dict[str, Sender] = {}
    key = vapid_key(settings)
    if key:
        out["webpush"] = WebPushSender(key, settings.vapid_subject)
    if settings.fcm_project_id or settings.fcm_credentials_file:
        from server.notifications.fcm import FcmSender

        out["fcm"] = FcmSender.from_file(
            settings.fcm_credentials_file, project_id=settings.fcm_project_id, endpoint=settings.fcm_endpoint
        )
    return out


@dataclasses.dataclass
class DispatchResult:
    sent: int = 0
    retried: int = 0
    gone: int = 0
    failed: int = 0
    skipped: int = 0  # no adapter for the channel here (e.g. FCM not configured): stays queued

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.gone + self.failed


async def _claim(now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    async with db.transaction():
        pick = (
            "SELECT id FROM push_sends WHERE (state = 'queued' AND next_attempt_at <= {}) "
            "OR (state = 'sending' AND lease_until <= {}) ORDER BY next_attempt_at, id LIMIT {}"
        )
        if db.is_postgres():
            pick += " FOR UPDATE SKIP LOCKED"
        rows = await PushSend.raw(pick, now, now, limit)
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ", ".join("{}" for _ in ids)
        await PushSend.raw(
            f"UPDATE push_sends SET state = 'sending', lease_until = {{}}, attempts = attempts + 1 "
            f"WHERE id IN ({marks})",
            now + LEASE,
            *ids,
        )
        return await PushSend.raw(
            "SELECT p.id, p.attempts, p.notification_id, s.id AS subscription_id, s.channel, s.address, s.p256dh, "
            "s.auth, s.removed_at, n.kind, n.title, n.body, n.link, n.critical FROM push_sends p "
            "JOIN push_subscriptions s ON s.id = p.subscription_id "
            "JOIN notifications n ON n.id = p.notification_id "
            f"WHERE p.id IN ({marks}) ORDER BY p.id",
            *ids,
        )


def _target(row: dict[str, Any]) -> Any:
    if row["channel"] == "webpush":
        return WebPushTarget(endpoint=row["address"], p256dh=row["p256dh"], auth=row["auth"])
    return FcmTarget(token=row["address"])


def _message(row: dict[str, Any]) -> PushMessage:
    return PushMessage(
        notification_id=str(row["notification_id"]),
        kind=row["kind"],
        title=row["title"],
        body=row["body"] or "",
        link=row["link"] or "",
        critical=bool(row["critical"]),
    )


async def dispatch(senders: dict[str, Sender], now: dt.datetime | None = None, *, limit: int = BATCH) -> DispatchResult:
    """Claim one batch of due sends, send them, record every answer."""
    now = now or dt.datetime.now(dt.UTC)
    rows = await _claim(now, limit)
    result = DispatchResult()
    if not rows:
        return result
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(row: dict[str, Any]) -> tuple[dict[str, Any], Delivery | None]:
        sender = senders.get(row["channel"])
        if sender is None or row["removed_at"] is not None:
            return row, None
        async with gate:
            try:
                return row, await sender.send(_target(row), _message(row))
            except Exception as exc:  # an adapter bug must not lose the send: retry it later
                log.exception("push: %s adapter raised", row["channel"])
                return row, Delivery(outcome="retry", detail=f"adapter error: {type(exc).__name__}: {exc}"[:200])

    answers = await asyncio.gather(*(one(r) for r in rows))
    async with db.transaction():
        for row, delivery in answers:
            await _record(row, delivery, now, result)
    return result


async def _record(row: dict[str, Any], delivery: Delivery | None, now: dt.datetime, result: DispatchResult) -> None:
    ident = row["id"]
    if delivery is None:
        reason = "subscription removed" if row["removed_at"] is not None else f"no {row['channel']} adapter configured"
        state = "gone" if row["removed_at"] is not None else "queued"
        await PushSend.raw(
            "UPDATE push_sends SET state = {}, attempts = attempts - 1, lease_until = NULL, last_error = {}, "
            "next_attempt_at = {} WHERE id = {}",
            state,
            reason,
            now + BACKOFF_MAX,
            ident,
        )
        result.skipped += 1
        return
    detail = delivery.detail[:500]
    if delivery.outcome == "sent":
        await PushSend.raw(
            "UPDATE push_sends SET state = 'sent', sent_at = {}, lease_until = NULL, last_status = {}, last_error = '' "
            "WHERE id = {}",
            now,
            delivery.status,
            ident,
        )
        await PushSend.raw("UPDATE push_subscriptions SET last_sent_at = {} WHERE id = {}", now, row["subscription_id"])
        result.sent += 1
    elif delivery.outcome == "retry" and int(row["attempts"]) < MAX_ATTEMPTS:
        await PushSend.raw(
            "UPDATE push_sends SET state = 'queued', next_attempt_at = {}, lease_until = NULL, last_status = {}, "
            "last_error = {} WHERE id = {}",
            now + backoff(int(row["attempts"]), delivery.retry_after),
            delivery.status,
            detail,
            ident,
        )
        result.retried += 1
    elif delivery.outcome == "gone":
        await PushSend.raw(
            "UPDATE push_sends SET state = 'gone', lease_until = NULL, last_status = {}, last_error = {} WHERE id = {}",
            delivery.status,
            detail,
            ident,
        )
        await remove_subscription(row["subscription_id"], f"push service: {detail}"[:200], now)
        result.gone += 1
    else:  # failed, or retry out of attempts
        if delivery.outcome == "retry":
            detail = f"gave up after {row['attempts']} attempts: {detail}"[:500]
        await PushSend.raw(
            "UPDATE push_sends SET state = 'failed', lease_until = NULL, last_status = {}, last_error = {} "
            "WHERE id = {}",
            delivery.status,
            detail,
            ident,
        )
        log.warning("push: send %s failed for good: %s", ident, detail)
        result.failed += 1


async def remove_subscription(subscription_id: Any, reason: str, now: dt.datetime) -> None:
    await PushSend.raw(
        "UPDATE push_subscriptions SET removed_at = {}, removed_reason = {} WHERE id = {} AND removed_at IS NULL",
        now,
        reason,
        subscription_id if isinstance(subscription_id, uuid.UUID) else uuid.UUID(str(subscription_id)),
    )
    # What was still queued for it will never arrive.
    await PushSend.raw(
        "UPDATE push_sends SET state = 'gone', last_error = {} WHERE subscription_id = {} AND state = 'queued'",
        reason,
        subscription_id,
    )
