"""Signing in, keeping the session, and handing the sync engine its tokens.

The access token lives in memory only (≤ 15 minutes); the refresh token and the user are kept by
a :class:`CredentialStore` — the device's shared preferences in the app (the browser's local
storage in web mode), a file on a desktop — so a rep who signed in once keeps working offline
after a restart until the server refuses the refresh token (deactivated, revoked, expired): then
the engine signs the device out and wipes its replica.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Protocol

import httpx
import msgspec

from mobile.engine import SignedOut
from shared import wire

LOGIN_PATH = "/api/auth/login"
REFRESH_PATH = "/api/auth/refresh"
LOGOUT_PATH = "/api/auth/logout"
PREFERENCES_KEY = "floorwalker.session"
LAST_LOGIN_KEY = "floorwalker.last_login"  # server and username, kept after signing out


class Credentials(msgspec.Struct):
    server_url: str
    user: wire.UserOut
    refresh_token: str


class LoginError(Exception):
    """The sign-in did not work; ``offline`` when the server could not be reached at all."""

    def __init__(self, message: str, *, offline: bool = False) -> None:
        super().__init__(message)
        self.offline = offline


class LastLogin(msgspec.Struct):
    server_url: str
    username: str


class CredentialStore(Protocol):
    async def load(self) -> Credentials | None: ...
    async def save(self, credentials: Credentials | None) -> None: ...
    async def last_login(self) -> LastLogin | None: ...


_encode = msgspec.json.encode
_decode = msgspec.json.Decoder(Credentials)


_decode_last = msgspec.json.Decoder(LastLogin)


def _read(text: str | None, decoder: msgspec.json.Decoder = _decode) -> Any:
    if not text:
        return None
    try:
        return decoder.decode(text)
    except msgspec.DecodeError:
        return None  # an older or damaged record: sign in again


class FileCredentials:
    """Credentials in a JSON file only this user may read (desktop app, tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def load(self) -> Credentials | None:
        try:
            return _read(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    @property
    def _last_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".last.json")

    async def save(self, credentials: Credentials | None) -> None:
        if credentials is None:
            self.path.unlink(missing_ok=True)
            return
        self._write(self.path, _encode(credentials))
        self._write(self._last_path, _encode(LastLogin(credentials.server_url, credentials.user.username)))

    async def last_login(self) -> LastLogin | None:
        try:
            return _read(self._last_path.read_text(encoding="utf-8"), _decode_last)
        except FileNotFoundError:
            return None

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        tmp.replace(path)


class PreferencesCredentials:
    """Credentials in Flet's ``SharedPreferences`` (the phone's key-value store; the browser's
    local storage in web mode, so each browser keeps its own sign-in)."""

    def __init__(self, preferences: Any) -> None:
        self.preferences = preferences

    async def load(self) -> Credentials | None:
        value = await self.preferences.get(PREFERENCES_KEY)
        return _read(value if isinstance(value, str) else None)

    async def save(self, credentials: Credentials | None) -> None:
        if credentials is None:
            await self.preferences.remove(PREFERENCES_KEY)
        else:
            await self.preferences.set(PREFERENCES_KEY, _encode(credentials).decode())
            last = LastLogin(credentials.server_url, credentials.user.username)
            await self.preferences.set(LAST_LOGIN_KEY, _encode(last).decode())

    async def last_login(self) -> LastLogin | None:
        value = await self.preferences.get(LAST_LOGIN_KEY)
        return _read(value if isinstance(value, str) else None, _decode_last)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("message") or body)
    return str(body)


def normalise_server_url(text: str) -> str:
    text = text.strip().rstrip("/")
    if not re.match(r"^https?://", text):
        text = "http://" + text
    return text


class Session:
    """One signed-in user against one server: logs in, refreshes (rotating the refresh token and
    saving the new one at once), logs out. ``token`` is the engine's token provider."""

    def __init__(
        self,
        store: CredentialStore,
        credentials: Credentials | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.credentials = credentials
        self.transport = transport
        self.timeout = timeout
        self._access: str | None = None

    @property
    def user(self) -> wire.UserOut | None:
        return self.credentials.user if self.credentials else None

    def _client(self, base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url, transport=self.transport, timeout=self.timeout)

    async def login(self, server_url: str, username: str, password: str) -> Credentials:
        base = normalise_server_url(server_url)
        body = {"username": username.strip(), "password": password}
        try:
            async with self._client(base) as client:
                response = await client.post(LOGIN_PATH, content=json.dumps(body))
        except httpx.TransportError as exc:
            raise LoginError(f"{type(exc).__name__}: {exc}", offline=True) from None
        if response.status_code != 200:
            raise LoginError(_message(response))
        pair = msgspec.json.decode(response.content, type=wire.TokenPair)
        self.credentials = Credentials(server_url=base, user=pair.user, refresh_token=pair.refresh_token)
        self._access = pair.access_token
        await self.store.save(self.credentials)
        return self.credentials

    async def token(self, refresh: bool) -> str:
        if self.credentials is None:
            raise SignedOut("not signed in")
        if self._access is not None and not refresh:
            return self._access
        async with self._client(self.credentials.server_url) as client:
            response = await client.post(
                REFRESH_PATH, content=json.dumps({"refresh_token": self.credentials.refresh_token})
            )
        if response.status_code in (400, 401, 403, 422):
            raise SignedOut(_message(response))
        response.raise_for_status()
        pair = msgspec.json.decode(response.content, type=wire.TokenPair)
        self.credentials = Credentials(
            server_url=self.credentials.server_url, user=pair.user, refresh_token=pair.refresh_token
        )
        self._access = pair.access_token
        await self.store.save(self.credentials)
        return self._access

    async def logout(self) -> None:
        """Forget the session here; tell the server if it can be reached (best effort: a phone
        without network still signs out locally)."""
        credentials, self.credentials, self._access = self.credentials, None, None
        await self.store.save(None)
        if credentials is None:
            return
        try:
            async with self._client(credentials.server_url) as client:
                await client.post(LOGOUT_PATH, content=json.dumps({"refresh_token": credentials.refresh_token}))
        except httpx.TransportError:
            pass
