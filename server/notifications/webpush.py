"""The Web Push adapter: one message to one browser subscription, signed with VAPID (RFC 8292) and
encrypted for the browser (RFC 8291, aes128gcm), the push service's answer classified as a Delivery.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, VapidException
from pywebpush import WebPusher

from server.notifications.push import Delivery, PushMessage, WebPushTarget

# RFC 8292 allows at most 24 h; 12 h leaves room for clock skew between us and the push service.
VAPID_LIFETIME_SECONDS = 12 * 3600
DETAIL_BODY_CHARS = 200


class WebPushSender:
    """Sends to browser push services as one application server (one VAPID key and contact)."""

    def __init__(self, private_key: str, subject: str, *, timeout: float = 10.0) -> None:
        if not re.fullmatch(r"mailto:[^@\s]+@[^@\s]+", subject) and not _is_https_url(subject):
            raise ValueError(
                "VAPID subject must be a mailto: address or an https: URL (e.g. mailto:ops@example.com), "
                f"got {subject!r}"
            )
        self._subject = subject
        self._timeout = timeout
        # no-strict: the subject is checked above; py_vapid's own check refuses https URLs with a path.
        self._vapid = Vapid(private_key=_load_private_key(private_key), conf={"no-strict": True})
        point = self._vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self._public_key = _b64url(point)

    @property
    def public_key(self) -> str:
        """The application server key for `PushManager.subscribe` (base64url, unpadded, 65-byte point)."""
        return self._public_key

    async def send(self, target: WebPushTarget, message: PushMessage) -> Delivery:
        problem = _target_problem(target)
        if problem:
            return Delivery(outcome="failed", detail=f"unusable subscription: {problem}")
        endpoint = urlsplit(target.endpoint)
        claims = {
            "sub": self._subject,
            "aud": f"{endpoint.scheme}://{endpoint.netloc}",
            "exp": int(time.time()) + VAPID_LIFETIME_SECONDS,
        }
        try:
            authorization = self._vapid.sign(claims)
        except VapidException as exc:  # py_vapid accepts only scheme://host[:port] audiences (no IPv6 literal)
            return Delivery(outcome="failed", detail=f"cannot sign VAPID for {claims['aud']}: {exc}")
        headers = {**authorization, "Urgency": "high" if message.critical else "normal"}
        # The Topic makes the push service replace a still-queued earlier send of the same notification;
        # at most 32 base64url characters, so a UUID goes without its dashes.
        topic = re.sub(r"[^A-Za-z0-9_]", "", message.notification_id)[:32]
        if topic:
            headers["Topic"] = topic
        subscription = {"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}}
        try:
            # Our own session, so the body is read while the connection is still open.
            async with aiohttp.ClientSession() as session:
                response = await WebPusher(subscription, aiohttp_session=session).send_async(
                    _payload(message),
                    headers,
                    ttl=max(0, message.ttl_seconds),
                    content_encoding="aes128gcm",
                    timeout=self._timeout,
                )
                body = (await response.read()).decode("utf-8", "replace")
        except TimeoutError:
            return Delivery(outcome="retry", detail=f"no answer from {endpoint.netloc} within {self._timeout:g}s")
        except aiohttp.ClientError as exc:
            return Delivery(outcome="retry", detail=f"{type(exc).__name__}: {exc}"[:DETAIL_BODY_CHARS])
        return _classify(response.status, response.reason or "", body, response.headers.get("Retry-After"))


def generate_vapid_key() -> str:
    """A new VAPID private key as PEM text (PKCS#8), for dev and demo setups."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _payload(message: PushMessage) -> bytes:
    # The service worker reads these keys; UTF-8 as is (msgspec does not escape non-ASCII).
    return msgspec.json.encode(
        {
            "id": message.notification_id,
            "kind": message.kind,
            "title": message.title,
            "body": message.body,
            "link": message.link,
            "critical": message.critical,
        }
    )


def _classify(status: int, reason: str, body: str, retry_after: str | None) -> Delivery:
    detail = f"{status} {reason}".strip()
    if body.strip():
        detail += f": {body.strip()[:DETAIL_BODY_CHARS]}"
    if status in (200, 201, 202):
        outcome = "sent"
    elif status in (404, 410):
        outcome = "gone"
    elif status == 429 or status >= 500:
        outcome = "retry"
    else:
        outcome = "failed"
    return Delivery(outcome=outcome, status=status, detail=detail, retry_after=_seconds(retry_after))


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After as seconds from now: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not retry_after:
        return None
    value = retry_after.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _load_private_key(private_key: str) -> ec.EllipticCurvePrivateKey:
    text = private_key.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"VAPID private key: the PEM text does not load ({exc})") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("VAPID private key: the PEM key must be an EC P-256 (prime256v1) key")
        return key
    raw = _b64url_decode(text)
    if raw is None or len(raw) != 32:
        raise ValueError("VAPID private key: expected PEM text or the raw 32-byte key in base64url")
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError as exc:
        raise ValueError("VAPID private key: the raw key is not a valid P-256 private value") from exc


def _target_problem(target: WebPushTarget) -> str:
    """Why the browser's subscription cannot be encrypted for or posted to; empty when it can."""
    endpoint = urlsplit(target.endpoint)
    if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
        return f"endpoint {target.endpoint!r} is not an http(s) URL"
    point = _b64url_decode(target.p256dh)
    try:
        if point is None or len(point) != 65:
            raise ValueError
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return "p256dh is not a base64url uncompressed P-256 public key"
    auth = _b64url_decode(target.auth)
    if auth is None or len(auth) != 16:
        return "auth is not a base64url 16-byte secret"
    return ""


def _is_https_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme == "https" and bool(parts.hostname) and not re.search(r"\s", text)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes | None:
    # Browsers send unpadded base64url; some stores keep standard base64 with padding: take both.
    cleaned = text.strip().rstrip("=")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
