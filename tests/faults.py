"""A faulty wire for sync engines talking to a real server: an httpx transport that, per request,
drops it before sending, loses the reply after the server handled it, or sends it twice; and that
can "crash" the phone after a number of requests (every later request fails until it is replaced).

It also watches every pull (the cursor sent, the cursor answered, resets) so a test can assert
that positions never go backwards."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx

FaultMode = Literal["none", "drop_request", "drop_reply", "duplicate"]
_HOP_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection"}


def cursor_positions(token: str | None) -> dict[str, tuple[int, int]]:
    """The per-scope (version, snapshot) inside an opaque pull cursor (base64url JSON
    ``{"s": schema, "p": {scope: [version, snapshot]}}``); {} for no cursor."""
    if not token:
        return {}
    raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return {scope: (int(p[0]), int(p[1])) for scope, p in raw["p"].items()}


class CursorWentBack(AssertionError):
    pass


class FaultyTransport(httpx.AsyncBaseTransport):
    def __init__(self, rng: random.Random | None = None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.rng = rng or random.Random(0)
        self.mode: FaultMode = "none"
        self.p = 0.0
        # After this many more requests reach the server, the phone "dies": each later request
        # raises ConnectError (the test then drops the engine and replica and reopens the file).
        self.crash_after: int | None = None
        self.crashed = False
        self.script: list[FaultMode] = []  # faults for the next requests, in order (before `mode`)
        self.calls: list[tuple[str, str]] = []  # (path, what happened)
        self.pulls = 0  # pull replies delivered to the engine
        self.resets = 0  # reset_required replies delivered
        self.violations: list[str] = []
        # Awaited before a request goes out (a test's hook, e.g. to restart the server).
        self.before: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None

    def set_mode(self, mode: FaultMode, p: float = 0.0) -> None:
        self.mode, self.p = mode, p

    def _fault(self) -> FaultMode:
        if self.script:
            return self.script.pop(0)
        if self.mode == "none" or self.rng.random() >= self.p:
            return "none"
        return self.mode

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if self.before is not None:
            await self.before(path, body)
        if self.crash_after is not None:
            if self.crash_after <= 0:
                self.crashed = True
                self.calls.append((path, "crashed"))
                raise httpx.ConnectError("injected: the phone is down", request=request)
            self.crash_after -= 1
        fault = self._fault()
        if fault == "drop_request":
            self.calls.append((path, "dropped request"))
            raise httpx.ConnectError("injected: request dropped", request=request)
        response = await self._send(request)
        if fault == "duplicate":
            self.calls.append((path, "duplicate"))
            response = await self._send(request)  # the engine sees the answer to the second copy
        if fault == "drop_reply":
            self.calls.append((path, "dropped reply"))
            raise httpx.ReadError("injected: reply lost", request=request)
        self.calls.append((path, str(response.status_code)))
        if path.endswith("/sync/pull") and response.status_code == 200:
            self._watch_pull(body, json.loads(response.content))
        return response

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        try:
            content = await response.aread()
        finally:
            await response.aclose()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS]
        return httpx.Response(response.status_code, headers=headers, content=content, request=request)

    def _watch_pull(self, request: dict[str, Any], reply: dict[str, Any]) -> None:
        self.pulls += 1
        if reply["reset_required"]:
            self.resets += 1
            return
        sent = cursor_positions(request.get("cursor"))
        got = cursor_positions(reply["cursor"])
        for scope, (version, snapshot) in sent.items():
            if scope not in got:
                if scope not in reply["scopes_removed"] and len(scope) > 10:
                    self.violations.append(f"scope {scope} left the cursor without scopes_removed")
                continue
            if got[scope][0] < version:
                self.violations.append(f"pull moved scope {scope} back from {version} to {got[scope][0]}")
            if snapshot and got[scope][1] not in (0, snapshot):
                self.violations.append(f"pull changed scope {scope}'s snapshot from {snapshot} to {got[scope][1]}")

    async def aclose(self) -> None:
        await self.inner.aclose()
