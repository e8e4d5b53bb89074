"""What a push adapter is given and what it answers (one adapter per push service).

An adapter sends one message to one target and classifies the answer; it never retries by itself
(except refreshing an expired credential once). The dispatcher owns retries, backoff and the send
log, so a worker restart cannot send twice.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class PushMessage(msgspec.Struct, frozen=True, kw_only=True):
    notification_id: str  # also the collapse tag: a resend replaces, never duplicates, on the device
    kind: str
    title: str
    body: str
    link: str = ""  # an app route: /customers/<id>, /opportunities/<id>, /messages
    critical: bool = False  # complaint SLA breach: high priority, bypasses quiet hours and budget
    ttl_seconds: int = 24 * 3600


class WebPushTarget(msgspec.Struct, frozen=True, kw_only=True):
    endpoint: str  # the browser's push service URL
    p256dh: str  # the browser's ECDH public key (base64url, uncompressed P-256 point)
    auth: str  # the 16-byte auth secret (base64url)


class FcmTarget(msgspec.Struct, frozen=True, kw_only=True):
    token: str  # the app instance's FCM registration token


Outcome = Literal["sent", "retry", "gone", "failed"]


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """sent: accepted by the push service. retry: transient (5xx, 429, timeout, connection
    refused) — try again later. gone: the subscription or token no longer exists (404/410,
    FCM UNREGISTERED) — remove it. failed: permanent (any other 4xx) — record, never retry."""

    outcome: Outcome
    status: int | None = None  # the HTTP status, when there was one
    detail: str = ""  # the service's reason, short
    retry_after: float | None = None  # seconds, from a Retry-After header
