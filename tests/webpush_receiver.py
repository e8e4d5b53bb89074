"""A Web Push service stand-in on 127.0.0.1: checks VAPID, decrypts RFC 8291 payloads, answers as scripted.

It plays both the push service and the browser behind it: `make_subscription` makes a real P-256 key
pair and auth secret as a browser does, and the receiver decrypts each message with them, so a test
reads exactly what the service worker would. The VAPID check and the decryption use PyJWT and
http_ece directly, not the py_vapid/pywebpush code the adapter sends with.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.notifications.push import WebPushTarget

MAX_BODY_BYTES = 4096  # what real push services accept (RFC 8030 §7.2 asks for at least this much)
URGENCIES = {"very-low", "low", "normal", "high"}


@dataclass(frozen=True)
class Received:
    subscription_id: str
    headers: dict[str, str]  # names in lower case
    payload: dict[str, Any]  # the decrypted JSON


@dataclass
class _Subscription:
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    expired: bool = False


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str = ""  # the body: why, for the sender's log
    headers: dict[str, str] = field(default_factory=dict)


class PushReceiver:
    """The push service. `application_server_key` (base64url): refuse, with 403, any other sender's key,
    as a service does for a subscription made with that applicationServerKey."""

    def __init__(self, *, application_server_key: str | None = None) -> None:
        self.application_server_key = application_server_key
        self.latency = 0.0  # seconds each answer waits, to see whether sends overlap
        self._lock = threading.Condition()
        self._subscriptions: dict[str, _Subscription] = {}
        self._scripted: deque[_Answer] = deque()
        self._received: list[Received] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> PushReceiver:
        if self._server is not None:
            raise RuntimeError("the receiver is already running")
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="push-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes the socket: the port refuses connections afterwards."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> PushReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("start the receiver first")
        return self._server.server_address[1]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def register(self, private_key: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> str:
        """What a browser's subscribe() does at its push service; answers the endpoint URL."""
        subscription_id = secrets.token_urlsafe(16)
        with self._lock:
            self._subscriptions[subscription_id] = _Subscription(private_key, auth_secret)
        return f"{self.origin}/push/{subscription_id}"

    def expire(self, endpoint: str) -> None:
        """The user unsubscribed or the browser dropped it: the endpoint answers 410 from now on."""
        with self._lock:
            self._subscriptions[_subscription_id(endpoint)].expired = True

    def answer_next(
        self, status: int, *, times: int = 1, retry_after: str | None = None, reason: str = "scripted"
    ) -> None:
        """The next `times` requests answer `status` (and Retry-After), whatever they carry."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._scripted.extend(_Answer(status, reason, headers) for _ in range(times))

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Blocks until `count` messages have arrived; from async code use `arrived`."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._received) >= count, timeout):
                raise TimeoutError(f"{len(self._received)} of {count} push messages arrived within {timeout}s")
            return list(self._received)

    async def arrived(self, count: int, within: float = 5.0) -> list[Received]:
        return await asyncio.to_thread(self.wait_for, count, within)

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> _Answer:
        with self._lock:
            if self._scripted:
                return self._scripted.popleft()
            subscription_id = _subscription_id(path)
            subscription = self._subscriptions.get(subscription_id)
        if subscription is None:
            return _Answer(404, "no such subscription")
        if subscription.expired:
            return _Answer(410, "subscription expired")
        refusal = self._check_vapid(headers.get("authorization", ""))
        if refusal:
            return refusal
        if headers.get("content-encoding") != "aes128gcm":
            return _Answer(415, f"Content-Encoding must be aes128gcm, got {headers.get('content-encoding')!r}")
        if not re.fullmatch(r"\d+", headers.get("ttl", "")):
            return _Answer(400, f"TTL must be whole seconds, got {headers.get('ttl')!r}")
        if "urgency" in headers and headers["urgency"] not in URGENCIES:
            return _Answer(400, f"Urgency must be one of {sorted(URGENCIES)}, got {headers['urgency']!r}")
        if "topic" in headers and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", headers["topic"]):
            return _Answer(400, f"Topic must be 1-32 base64url characters, got {headers['topic']!r}")
        if len(body) > MAX_BODY_BYTES:
            return _Answer(413, f"payload of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
        try:
            plaintext = http_ece.decrypt(
                body, private_key=subscription.private_key, auth_secret=subscription.auth_secret, version="aes128gcm"
            )
            payload = json.loads(plaintext.decode("utf-8"))
        except Exception as exc:  # what the browser does with an undecryptable message: drop it, say why
            return _Answer(400, f"payload does not decrypt to JSON: {type(exc).__name__} {exc}")
        with self._lock:
            self._received.append(Received(subscription_id, headers, payload))
            self._lock.notify_all()
        return _Answer(201, "", {"Location": f"{self.origin}/message/{secrets.token_urlsafe(8)}"})

    def _check_vapid(self, authorization: str) -> _Answer | None:
        scheme, _, rest = authorization.partition(" ")
        params = dict(part.strip().partition("=")[::2] for part in rest.split(","))
        if scheme.lower() != "vapid" or not params.get("t") or not params.get("k"):
            return _Answer(401, "Authorization must be 'vapid t=<JWT>, k=<key>'")
        try:
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_decode(params["k"]))
        except ValueError:
            return _Answer(401, "k is not a P-256 public key")
        if self.application_server_key is not None and params["k"] != self.application_server_key:
            return _Answer(403, "k is not the application server key this subscription was made with")
        try:
            claims = jwt.decode(
                params["t"],
                public_key,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            return _Answer(401, f"VAPID token refused: {exc}")
        if claims["exp"] > time.time() + 24 * 3600:
            return _Answer(401, "VAPID token exp is more than 24 hours ahead")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return _Answer(401, f"VAPID sub must be a mailto: or https: URI, got {claims['sub']!r}")
        return None


def make_subscription(receiver: PushReceiver) -> tuple[WebPushTarget, ec.EllipticCurvePrivateKey]:
    """What a browser does on PushManager.subscribe(): a fresh key pair and auth secret, registered."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    auth_secret = os.urandom(16)
    point = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    endpoint = receiver.register(private_key, auth_secret)
    return WebPushTarget(endpoint=endpoint, p256dh=_b64url(point), auth=_b64url(auth_secret)), private_key


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: PushReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.receiver._answer(self.path, headers, body)
        time.sleep(self.server.receiver.latency)
        text = answer.reason.encode("utf-8")
        self.send_response(answer.status)  # the standard phrase; the reason goes in the body
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: failures show up as the test's assertion, not as stderr noise


def _subscription_id(endpoint_or_path: str) -> str:
    return endpoint_or_path.rstrip("/").rsplit("/push/", 1)[-1]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
