"""The FCM adapter: sends one push message to one Android app instance and classifies the answer.

It speaks Firebase Cloud Messaging's HTTP v1 API and signs in as a Google service account:

- sending: https://firebase.google.com/docs/cloud-messaging/send/v1-api and the message resource,
  https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages
- errors and which of them to retry: https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
- the access token: Google's OAuth 2.0 flow for server-to-server applications,
  https://developers.google.com/identity/protocols/oauth2/service-account#httprest — a JWT bearer
  grant (RFC 7523) signed RS256 with the service account's key.

It never retries a send by itself (the dispatcher owns retries and backoff); the one exception is a
401 from FCM, answered by fetching a fresh access token and sending once more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import httpx
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from server.notifications.push import Delivery, FcmTarget, PushMessage

FCM_ENDPOINT = "https://fcm.googleapis.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REQUIRED_CREDENTIALS = ("client_email", "private_key", "token_uri")

ASSERTION_LIFETIME = 3600  # Google accepts at most one hour between iat and exp
TOKEN_EARLY_REFRESH = 60.0  # renew this long before expiry so a token never lapses in flight
MAX_TTL_SECONDS = 28 * 24 * 3600  # FCM keeps a message at most four weeks
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DETAIL_LIMIT = 200


class _TokenUnavailable(Exception):
    """No access token: carries the Delivery the send answers with."""

    def __init__(self, delivery: Delivery):
        super().__init__(delivery.detail)
        self.delivery = delivery


class FcmSender:
    """Sends PushMessages to FCM registration tokens as one Firebase project.

    ``credentials`` is the service-account JSON (as a dict) from the Firebase console;
    ``project_id`` may be empty when the credentials name it. ``endpoint`` is FCM's base URL
    (a stand-in's in tests), ``client`` an httpx client to share (left open by :meth:`aclose`),
    ``clock`` the time source for token expiry and the JWT's ``iat``, ``timeout`` seconds per request.
    """

    def __init__(
        self,
        project_id: str,
        credentials: dict,
        *,
        endpoint: str = FCM_ENDPOINT,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ):
        if not isinstance(credentials, dict):
            raise ValueError("service-account credentials must be a JSON object")
        if credentials.get("type", "service_account") != "service_account":
            raise ValueError(
                f"credentials of type {credentials['type']!r} are not a service account: "
                "download a service-account key (Firebase console → Project settings → Service accounts)"
            )
        for name in REQUIRED_CREDENTIALS:
            if not isinstance(credentials.get(name), str) or not credentials[name]:
                raise ValueError(f"service-account credentials lack {name!r}")
        self.project_id = project_id or credentials.get("project_id") or ""
        if not isinstance(self.project_id, str) or not self.project_id:
            raise ValueError("no FCM project id: pass project_id or use credentials that name their project_id")
        try:
            key = serialization.load_pem_private_key(credentials["private_key"].encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"service-account 'private_key' is not an unencrypted PEM private key: {exc}") from exc
        if not isinstance(key, RSAPrivateKey):
            raise ValueError("service-account 'private_key' must be an RSA key (FCM tokens are signed RS256)")

        self._key = key
        self._client_email: str = credentials["client_email"]
        self._token_uri: str = credentials["token_uri"]
        self._key_id: str = credentials.get("private_key_id") or ""
        self._send_url = f"{endpoint.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None
        self._clock = clock
        self._timeout = timeout
        self._token_lock = asyncio.Lock()
        self._token = ""
        self._token_expires_at = 0.0

    @classmethod
    def from_file(cls, path: str | Path, *, project_id: str = "", endpoint: str = FCM_ENDPOINT) -> Self:
        """A sender from a service-account JSON file; the project is the file's unless ``project_id`` is given."""
        if not str(path):
            raise ValueError(
                "FCM needs a service-account JSON file (Firebase console → Project settings → Service accounts)"
            )
        path = Path(path)
        try:
            credentials = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:  # not JSON, or not UTF-8
            raise ValueError(f"{path}: not a service-account JSON file: {exc}") from exc
        try:
            return cls(project_id, credentials, endpoint=endpoint)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def send(self, target: FcmTarget, message: PushMessage) -> Delivery:
        """Send once and say what became of it; never raises for an answer or an unreachable service."""
        body = _fcm_message(target, message)
        try:
            token = await self._access_token()
            response = await self._post_message(token, body)
            if response.status_code == 401:
                token = await self._access_token(stale=token)
                response = await self._post_message(token, body)
        except _TokenUnavailable as exc:
            return exc.delivery
        except httpx.TransportError as exc:
            return Delivery(outcome="retry", detail=_short(f"FCM unreachable: {_describe(exc)}"))
        return self._classify(response)

    async def _post_message(self, token: str, body: dict) -> httpx.Response:
        return await self._client.post(
            self._send_url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=self._timeout
        )

    async def _access_token(self, *, stale: str = "") -> str:
        """The cached access token, or a fresh one; ``stale`` is one FCM refused, never handed out again.

        Under a lock, so concurrent sends (and concurrent 401s) share a single fetch."""
        async with self._token_lock:
            if self._token and self._token != stale and self._clock() < self._token_expires_at:
                return self._token
            self._token = ""
            token, expires_in, fetched_at = await self._fetch_token()
            self._token = token
            self._token_expires_at = fetched_at + expires_in - TOKEN_EARLY_REFRESH
            return token

    async def _fetch_token(self) -> tuple[str, float, float]:
        now = self._clock()
        issued_at = int(now)
        claims = {
            "iss": self._client_email,
            "scope": FCM_SCOPE,
            "aud": self._token_uri,
            "iat": issued_at,
            "exp": issued_at + ASSERTION_LIFETIME,
        }
        headers = {"kid": self._key_id} if self._key_id else None
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        try:
            response = await self._client.post(
                self._token_uri,
                data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion},
                timeout=self._timeout,
            )
        except httpx.TransportError as exc:
            raise _TokenUnavailable(
                Delivery(outcome="retry", detail=_short(f"token endpoint unreachable: {_describe(exc)}"))
            ) from exc

        answer = _json_object(response)
        status = response.status_code
        if status == 200:
            token, expires_in = answer.get("access_token"), answer.get("expires_in", ASSERTION_LIFETIME)
            if isinstance(token, str) and token and isinstance(expires_in, int | float) and expires_in > 0:
                return token, float(expires_in), now
            # A broken answer is the token service's fault, not the message's: try again later.
            raise _TokenUnavailable(
                Delivery(outcome="retry", status=status, detail="token endpoint answered 200 without an access_token")
            )
        reason = " ".join(str(answer.get(k, "")) for k in ("error", "error_description")).strip()
        detail = _short(f"token endpoint {status} {reason or response.text}".strip())
        if status == 429 or status >= 500:
            raise _TokenUnavailable(
                Delivery(
                    outcome="retry",
                    status=status,
                    detail=detail,
                    retry_after=_retry_after(response.headers.get("retry-after"), self._clock()),
                )
            )
        # invalid_grant and friends: the credentials are wrong (revoked key, wrong clock); resending won't help.
        raise _TokenUnavailable(Delivery(outcome="failed", status=status, detail=detail))

    def _classify(self, response: httpx.Response) -> Delivery:
        status = response.status_code
        answer = _json_object(response)
        if 200 <= status < 300:
            return Delivery(outcome="sent", status=status, detail=str(answer.get("name", "")))

        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        error_status = str(error.get("status", "")) or response.reason_phrase
        error_message = str(error.get("message", "")) or response.text
        details = error.get("details") if isinstance(error.get("details"), list) else []
        error_codes = {str(d.get("errorCode")) for d in details if isinstance(d, dict) and "errorCode" in d}
        detail = _short(f"{status} {error_status}: {error_message}".strip())

        if "UNREGISTERED" in error_codes:
            # Only FCM's own word that the token is dead removes it: a bare 404 is also what a
            # mistyped project id or endpoint answers, and must not wipe every Android token.
            return Delivery(outcome="gone", status=status, detail=detail)
        if status in RETRY_STATUSES:
            retry_after = _retry_after(response.headers.get("retry-after"), self._clock())
            return Delivery(outcome="retry", status=status, detail=detail, retry_after=retry_after)
        return Delivery(outcome="failed", status=status, detail=detail)


def _fcm_message(target: FcmTarget, message: PushMessage) -> dict[str, Any]:
    """The messages:send request body for one message to one app instance."""
    ttl = min(max(message.ttl_seconds, 0), MAX_TTL_SECONDS)
    return {
        "message": {
            "token": target.token,
            "notification": {"title": message.title, "body": message.body},
            # FCM's data is a map of strings; the app reads these when the notification is tapped.
            "data": {
                "notification_id": message.notification_id,
                "kind": message.kind,
                "link": message.link,
                "critical": "1" if message.critical else "0",
            },
            "android": {
                "priority": "HIGH" if message.critical else "NORMAL",
                "ttl": f"{ttl}s",
                # Same id → a resend replaces the queued and the shown notification instead of adding one.
                "collapse_key": message.notification_id,
                "notification": {
                    "tag": message.notification_id,
                    "channel_id": "critical" if message.critical else "reminders",
                },
            },
        }
    }


def _json_object(response: httpx.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:  # an HTML error page from a proxy, or nothing at all
        return {}
    return answer if isinstance(answer, dict) else {}


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from now: either delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp() - now
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"
