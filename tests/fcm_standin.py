"""A loopback stand-in for Google's OAuth token endpoint and FCM's HTTP v1 messages:send, as strict
about the request format as FCM, so the FCM adapter is tested over real HTTP.

It runs a threaded HTTP server on a free 127.0.0.1 port (usable from async tests: the event loop
talks to it through sockets). ``service_account()`` makes a fake service account whose key it
trusts; ``POST /token`` verifies the signed JWT grant and issues access tokens; ``POST
/v1/projects/<p>/messages:send`` checks the bearer token and the message, records what it accepts
and answers the way FCM does (errors in Google's ``{"error": {code, message, status, details}}``
shape). Tests can script the next answers (5xx, 429, 400, 403, a stall), revoke tokens and
unregister registration tokens. ``clock`` decides token expiry; share it with the adapter under test.
"""

from __future__ import annotations

import functools
import http
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = 3600
SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
TTL = re.compile(r"^\d+(\.\d{1,9})?s$")
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# The fields FCM's v1 resources know (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages);
# FCM answers 400 to any other name.
MESSAGE_FIELDS = set("name data notification android webpush apns fcm_options token topic condition".split())
NOTIFICATION_FIELDS = {"title", "body", "image"}
ANDROID_FIELDS = set(
    "collapse_key priority ttl restricted_package_name data notification fcm_options direct_boot_ok".split()
)
ANDROID_NOTIFICATION_STRINGS = set(
    "title body icon color sound tag click_action body_loc_key title_loc_key channel_id ticker image event_time"
    " notification_priority visibility proxy".split()
)
ANDROID_NOTIFICATION_FIELDS = ANDROID_NOTIFICATION_STRINGS | set(
    "body_loc_args title_loc_args sticky local_only default_sound default_vibrate_timings default_light_settings"
    " vibrate_timings light_settings notification_count bypass_proxy_notification".split()
)
RESERVED_DATA_KEYS = {"from", "notification", "message_type"}

# What FCM says for each status a test can script: (status, message, FcmError errorCode).
SCRIPTED_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument.", "INVALID_ARGUMENT"),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials.", None),
    403: ("PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
    404: ("NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
    429: ("RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests'.", "QUOTA_EXCEEDED"),
    500: ("INTERNAL", "Internal error encountered.", "INTERNAL"),
    503: ("UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"),
}


def new_private_key_pem() -> str:
    """A fresh 2048-bit RSA key as unencrypted PKCS#8 PEM, the form Google puts in service-account files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@functools.cache
def _shared_private_key_pem() -> str:
    # RSA key generation takes up to a few hundred ms; accounts differ by e-mail and key id, not key.
    return new_private_key_pem()


@dataclass(frozen=True)
class _Account:
    public_key: rsa.RSAPublicKey
    key_id: str


@dataclass(frozen=True)
class _Scripted:
    status: int
    retry_after: str | None = None
    stall: float = 0.0


class _Answer(Exception):
    """Ends request handling with this answer."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _fcm_error(status: int, error_status: str, message: str, *details: dict) -> _Answer:
    error: dict[str, Any] = {"code": status, "message": message, "status": error_status}
    if details:
        error["details"] = list(details)
    return _Answer(status, {"error": error})


def _invalid(field: str, message: str) -> _Answer:
    return _fcm_error(
        400,
        "INVALID_ARGUMENT",
        message,
        {"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": field, "description": message}]},
        {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"},
    )


def _grant_error(description: str, error: str = "invalid_grant") -> _Answer:
    return _Answer(400, {"error": error, "error_description": description})


class FcmStandin:
    """Google's token endpoint and FCM for one project, on loopback. Start it (or use ``with``) first."""

    def __init__(self, *, project_id: str = "floorwalker-test", clock: Callable[[], float] = time.time):
        self.project_id = project_id
        self.clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._accounts: dict[str, _Account] = {}
        self._tokens: dict[str, float] = {}  # access token → expiry (clock seconds)
        self._unregistered: set[str] = set()
        self._scripted_sends: deque[_Scripted] = deque()
        self._scripted_tokens: deque[_Scripted] = deque()
        self._messages: list[dict] = []
        self._token_fetches = 0
        self._send_attempts = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the FCM stand-in is already running")
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        # A short poll keeps stop() quick: shutdown() waits for serve_forever to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fcm-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled requests, wait for every handler, and free the port."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()  # joins the handler threads
        assert self._thread is not None
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the FCM stand-in is not running: call start() or use it as a context manager")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """FCM's base URL: the adapter's ``endpoint``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    # ---- setup

    def service_account(self, *, project_id: str | None = None, fresh_key: bool = False) -> dict[str, str]:
        """A fake service account whose RSA key this stand-in trusts, as its JSON file's dict.

        Accounts share one key per test process unless ``fresh_key``."""
        pem = new_private_key_pem() if fresh_key else _shared_private_key_pem()
        key_id = secrets.token_hex(20)
        project = project_id or self.project_id
        email = f"firebase-adminsdk-{secrets.token_hex(3)}@{project}.iam.gserviceaccount.com"
        public_key = serialization.load_pem_private_key(pem.encode(), password=None).public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        with self._lock:
            self._accounts[email] = _Account(public_key=public_key, key_id=key_id)
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**21)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
        }

    def issue_token(self) -> str:
        """An access token, for a test that talks to messages:send directly."""
        token = f"ya29.{secrets.token_urlsafe(48)}"
        with self._lock:
            self._tokens[token] = self.clock() + TOKEN_LIFETIME
        return token

    def revoke_tokens(self) -> None:
        """Every access token issued so far stops working: the next send with one answers 401."""
        with self._lock:
            self._tokens.clear()

    def unregister(self, registration_token: str) -> None:
        """The app instance is gone (uninstalled, data cleared): sends to it answer 404 UNREGISTERED."""
        with self._lock:
            self._unregistered.add(registration_token)

    def fail_next_sends(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        """The next ``count`` sends answer ``status`` (with FCM's error body) before normal service resumes."""
        scripted = _Scripted(status, None if retry_after is None else f"{retry_after:g}")
        with self._lock:
            self._scripted_sends.extend([scripted] * count)

    def stall_next_sends(self, seconds: float, count: int = 1) -> None:
        """The next ``count`` sends wait ``seconds`` before answering (a client timeout test)."""
        with self._lock:
            self._scripted_sends.extend([_Scripted(0, stall=seconds)] * count)

    def fail_next_token_fetches(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        """The next ``count`` token requests answer ``status``: 5xx as an outage, 4xx as invalid_grant."""
        scripted = _Scripted(status, None if retry_after is None else f"{retry_after:g}")
        with self._lock:
            self._scripted_tokens.extend([scripted] * count)

    # ---- what happened

    @property
    def messages(self) -> list[dict]:
        """Every accepted ``message`` object, in arrival order."""
        with self._lock:
            return list(self._messages)

    @property
    def token_fetches(self) -> int:
        """Requests to the token endpoint, answered or refused."""
        with self._lock:
            return self._token_fetches

    @property
    def send_attempts(self) -> int:
        """Requests to messages:send, accepted or not."""
        with self._lock:
            return self._send_attempts

    # ---- the token endpoint

    def _token(self, headers: Any, raw: bytes) -> _Answer:
        with self._lock:
            self._token_fetches += 1
            scripted = self._scripted_tokens.popleft() if self._scripted_tokens else None
        if scripted is not None:
            extra = {"Retry-After": scripted.retry_after} if scripted.retry_after else {}
            if scripted.status >= 500:
                return _Answer(scripted.status, {"error": "internal_failure"}, extra)
            return _Answer(scripted.status, {"error": "invalid_grant", "error_description": "scripted refusal"}, extra)

        if headers.get_content_type() != "application/x-www-form-urlencoded":
            raise _grant_error("Content-Type must be application/x-www-form-urlencoded", "invalid_request")
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        grant_type = form.get("grant_type", [""])[0]
        if grant_type != JWT_BEARER_GRANT:
            raise _grant_error(f"Invalid grant_type: {grant_type}", "unsupported_grant_type")
        assertion = form.get("assertion", [""])[0]
        if not assertion:
            raise _grant_error("Missing required parameter: assertion", "invalid_request")
        self._verify_assertion(assertion)
        token = self.issue_token()
        return _Answer(200, {"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"})

    def _verify_assertion(self, assertion: str) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
            issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as exc:
            raise _grant_error(f"Invalid JWT: {exc}") from exc
        with self._lock:
            account = self._accounts.get(issuer) if isinstance(issuer, str) else None
        if account is None:
            raise _grant_error("Invalid grant: account not found")
        if header.get("alg") != "RS256":
            raise _grant_error(f"Invalid JWT: alg must be RS256, not {header.get('alg')!r}")
        if "kid" in header and header["kid"] != account.key_id:
            raise _grant_error("Invalid JWT Signature.")
        try:
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=issuer,
                # iat and exp are judged below against this stand-in's clock, not the wall clock.
                options={"verify_exp": False, "verify_iat": False, "require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise _grant_error("Invalid JWT Signature.") from exc
        except jwt.PyJWTError as exc:
            raise _grant_error(f"Invalid JWT: {exc}") from exc

        iat, exp, now = claims["iat"], claims["exp"], self.clock()
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise _grant_error("Invalid JWT: iat and exp must be integers (seconds since the epoch)")
        if exp <= now or exp - iat > TOKEN_LIFETIME or iat > now + 60:
            raise _grant_error(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                "Check your iat and exp values in the JWT claim."
            )
        if FCM_SCOPE not in str(claims["scope"]).split():
            raise _grant_error(f"Invalid JWT: scope must include {FCM_SCOPE}", "invalid_scope")

    # ---- messages:send

    def _send(self, project: str, headers: Any, raw: bytes) -> _Answer:
        with self._lock:
            self._send_attempts += 1
            scripted = self._scripted_sends.popleft() if self._scripted_sends else None
        if scripted is not None and scripted.stall:
            self._stopping.wait(scripted.stall)
        elif scripted is not None:
            return _scripted_send_error(scripted)

        bearer = headers.get("Authorization", "")
        token = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else ""
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or expiry <= self.clock():
            raise _fcm_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                "or other valid authentication credential.",
            )
        if project != self.project_id:
            # What FCM answers for a project it does not know (no UNREGISTERED detail).
            raise _fcm_error(404, "NOT_FOUND", "Requested entity was not found.")

        if headers.get_content_type() != "application/json":
            raise _invalid("", "Invalid JSON payload received. Content-Type must be application/json.")
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise _invalid("", f"Invalid JSON payload received. {exc}") from exc
        message = _checked_message(body)

        with self._lock:
            unregistered = message["token"] in self._unregistered
        if unregistered:
            raise _fcm_error(
                404,
                "NOT_FOUND",
                "Requested entity was not found.",
                {"@type": FCM_ERROR_TYPE, "errorCode": "UNREGISTERED"},
            )
        message_id = f"0:{time.time_ns() // 1000}%{secrets.token_hex(8)}"
        with self._lock:
            self._messages.append(message)
        return _Answer(200, {"name": f"projects/{project}/messages/{message_id}"})


def _scripted_send_error(scripted: _Scripted) -> _Answer:
    headers = {"Retry-After": scripted.retry_after} if scripted.retry_after else {}
    if scripted.status in SCRIPTED_ERRORS:
        error_status, message, error_code = SCRIPTED_ERRORS[scripted.status]
        details = [{"@type": FCM_ERROR_TYPE, "errorCode": error_code}] if error_code else []
        answer = _fcm_error(scripted.status, error_status, message, *details)
        answer.headers = headers
        return answer
    # Anything else (502, 504 …) comes from Google's front end as an HTML page, not FCM's JSON.
    phrase = http.HTTPStatus(scripted.status).phrase
    page = f"<html><title>Error {scripted.status} ({phrase})</title><p>{phrase}</p></html>"
    return _Answer(scripted.status, page, headers)


def _checked_message(body: Any) -> dict:
    """The request's ``message``, or a 400 naming the first field FCM would reject."""
    if not isinstance(body, dict):
        raise _invalid("", "Invalid JSON payload received. Expected an object.")
    for name in body:
        if name != "message":
            raise _invalid("", f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
    message = body.get("message")
    if not isinstance(message, dict):
        raise _invalid("message", "Invalid value at 'message': a message object is required.")
    _known_fields(message, MESSAGE_FIELDS, "message")

    token = message.get("token")
    if token is None:
        raise _invalid("message", "Recipient of the message is not set.")
    if not isinstance(token, str) or not token:
        raise _invalid("message.token", "The registration token is not a valid FCM registration token")

    notification = message.get("notification", {})
    _object(notification, "message.notification")
    _known_fields(notification, NOTIFICATION_FIELDS, "message.notification")
    for name, value in notification.items():
        _string(value, f"message.notification.{name}")

    _string_map(message.get("data", {}), "message.data")

    android = message.get("android", {})
    _object(android, "message.android")
    _known_fields(android, ANDROID_FIELDS, "message.android")
    if "priority" in android and android["priority"] not in ("NORMAL", "HIGH"):
        raise _invalid(
            "message.android.priority",
            "Invalid value at 'message.android.priority' "
            f"(type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), {json.dumps(android['priority'])}",
        )
    if "ttl" in android and not (isinstance(android["ttl"], str) and TTL.match(android["ttl"])):
        raise _invalid(
            "message.android.ttl",
            "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), "
            f"{json.dumps(android['ttl'])}: Illegal duration format; duration must end with 's'",
        )
    for name in ("collapse_key", "restricted_package_name"):
        if name in android:
            _string(android[name], f"message.android.{name}")
    _string_map(android.get("data", {}), "message.android.data")
    android_notification = android.get("notification", {})
    _object(android_notification, "message.android.notification")
    _known_fields(android_notification, ANDROID_NOTIFICATION_FIELDS, "message.android.notification")
    for name in ANDROID_NOTIFICATION_STRINGS & android_notification.keys():
        _string(android_notification[name], f"message.android.notification.{name}")
    return message


def _object(value: Any, field: str) -> None:
    if not isinstance(value, dict):
        raise _invalid(field, f"Invalid value at '{field}': {json.dumps(value)} is not an object")


def _known_fields(value: dict, known: set[str], field: str) -> None:
    for name in value:
        if name not in known:
            raise _invalid(
                field, f"Invalid JSON payload received. Unknown name \"{name}\" at '{field}': Cannot find field."
            )


def _string(value: Any, field: str) -> None:
    if not isinstance(value, str):
        raise _invalid(field, f"Invalid value at '{field}' (TYPE_STRING), {json.dumps(value)}")


def _string_map(value: Any, field: str) -> None:
    _object(value, field)
    for key, item in value.items():
        _string(item, f"{field}[{json.dumps(key)}].value")
        if field == "message.data" and (key in RESERVED_DATA_KEYS or key.startswith(("google", "gcm"))):
            raise _invalid(field, f"Invalid data payload key: {key}")


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() then waits for every handler: a stop leaves nothing running
    standin: FcmStandin

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind; that is not a stand-in fault.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a silent client cannot hold stop() forever
    server_version = "fcm-standin"

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        standin = self.server.standin
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path == "/token":
                answer = standin._token(self.headers, raw)
            elif match := SEND_PATH.match(path):
                answer = standin._send(match["project"], self.headers, raw)
            else:
                answer = _fcm_error(404, "NOT_FOUND", f"The requested URL {path} was not found on this server.")
        except _Answer as raised:
            answer = raised
        self._answer(answer)

    def do_GET(self) -> None:
        self._answer(_fcm_error(405, "METHOD_NOT_ALLOWED", "Use POST."))

    def _answer(self, answer: _Answer) -> None:
        content_type = "text/html" if isinstance(answer.body, str) else "application/json"
        text = answer.body if isinstance(answer.body, str) else json.dumps(answer.body, ensure_ascii=False)
        payload = text.encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", f"{content_type}; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; failures show in the answers
