"""The sync engine: pushes the outbox, pulls pages until caught up, and listens for pokes.

Exactly-once rests on the protocol, not on luck: mutation ids are monotonic per client and the
server stores the last applied one, so a push whose reply was lost is simply sent again (the
server answers the replay with its stored answers), and a pull reply's ``last_mutation_id``
drops mutations the server applied even when no push reply ever arrived. Pages are committed
with their cursor, so a dropped connection loses at most one page.

Transient failures (no network, timeouts, 5xx, 429) are retried with exponential backoff and full
jitter; a 401 triggers one token refresh; any other 4xx stops this round with the server's message
and keeps the outbox. A refresh the server refuses (the account was deactivated or the session
revoked: the token provider raises :class:`SignedOut`, or an ``httpx.HTTPStatusError`` with 401/403)
signs the device out: the replica is wiped (rows, outbox, conflict log) and the state is
'signed_out', because a device must not keep rows its user may no longer see. Everything that
waits (``sleep``, ``random``, ``clock``) and the HTTP transport are injectable, so tests can run
engines against a real server through a faulty wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import httpx
import msgspec

from mobile import times
from mobile.replica import ConflictEntry, Replica
from shared import sync as proto

log = logging.getLogger("floorwalker.mobile.sync")

State = Literal["synced", "syncing", "pending", "offline", "error", "signed_out"]
# Called with refresh=False for the current access token, refresh=True after a 401 for a new one.
TokenProvider = Callable[[bool], str | Awaitable[str]]
T = TypeVar("T")

PUSH_PATH = "/api/sync/push"
PULL_PATH = "/api/sync/pull"
EVENTS_PATH = "/api/sync/events"
MAX_RESETS_PER_ROUND = 3


@dataclasses.dataclass
class SyncStatus:
    """What the UI shows: the sync state, how many edits wait, when the phone last caught up."""

    state: State = "pending"
    pending: int = 0
    last_synced_at: str | None = None
    last_error: str | None = None


class SyncFailed(Exception):
    """A round ended early; ``state`` says whether to show 'offline' or 'error'."""

    def __init__(self, message: str, state: State = "error") -> None:
        super().__init__(message)
        self.state = state


class SignedOut(Exception):
    """Raised by a token provider when the server refuses to refresh the session (401/403)."""


def _refused(exc: BaseException) -> bool:
    if isinstance(exc, SignedOut):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (401, 403)


class _Retry(Exception):
    def __init__(self, message: str, state: State, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.state = state
        self.retry_after = retry_after


_encoder = msgspec.json.Encoder()
_push_decoder = msgspec.json.Decoder(proto.PushResponse)
_pull_decoder = msgspec.json.Decoder(proto.PullResponse)
_poke_decoder = msgspec.json.Decoder(proto.SyncPoke)


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message") or body
        field = body.get("field")
        return f"HTTP {response.status_code}: {detail}" + (f" ({field})" if field else "")
    return f"HTTP {response.status_code}: {body}"


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


class SyncEngine:
    def __init__(
        self,
        replica: Replica,
        base_url: str,
        token_provider: TokenProvider,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        pull_limit: int = proto.DEFAULT_PULL_LIMIT,
        push_batch: int = proto.MAX_MUTATIONS_PER_PUSH,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        timeout: float = 30.0,
        debounce: float = 0.05,
        push_on_mutation: bool = False,
    ) -> None:
        self.replica = replica
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), transport=transport, timeout=timeout)
        self.token_provider = token_provider
        self.clock = clock
        self.sleep = sleep
        self.random = random
        self.pull_limit = pull_limit
        self.push_batch = min(push_batch, proto.MAX_MUTATIONS_PER_PUSH)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        self.debounce = debounce
        self.status = SyncStatus(
            state="pending" if replica.pending_count() else "synced",
            pending=replica.pending_count(),
            last_synced_at=replica.last_synced_at,
        )
        self.on_change: list[Callable[[SyncStatus], Any]] = []
        self._callbacks: set[asyncio.Future] = set()
        self.connected = False  # the poke stream is open
        self.rounds = 0  # completed sync rounds (for tests and diagnostics)
        self._token: str | None = None
        self._task: asyncio.Task | None = None
        self._debounced: asyncio.Task | None = None
        self._again = False
        self._push_on_mutation = push_on_mutation
        replica.on_mutation.append(self._local_change)

    async def __aenter__(self) -> SyncEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in (self._debounced, self._task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(ValueError):
            self.replica.on_mutation.remove(self._local_change)
        await self.client.aclose()

    # --- status ---------------------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        before = dataclasses.replace(self.status)
        for key, value in changes.items():
            setattr(self.status, key, value)
        if self.status != before:
            for callback in list(self.on_change):
                try:
                    result = callback(self.status)
                    if inspect.isawaitable(result):
                        task = asyncio.ensure_future(result)
                        self._callbacks.add(task)
                        task.add_done_callback(self._callbacks.discard)
                except Exception:
                    log.exception("a sync status listener failed")

    def _local_change(self) -> None:
        pending = self.replica.pending_count()
        if self.status.state in ("synced", "pending"):
            self._set(state="pending" if pending else "synced", pending=pending)
        else:
            self._set(pending=pending)
        if self._push_on_mutation:
            self.poke()

    def conflicts(self, unseen_only: bool = False) -> list[ConflictEntry]:
        return self.replica.conflicts(unseen_only=unseen_only)

    # --- scheduling -----------------------------------------------------------------------------

    async def sync(self) -> SyncStatus:
        """Push, then pull until caught up; again while new edits were queued. At most one round
        runs at a time: a call during a round makes that round go once more, and waits for it."""
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="floorwalker-sync")
        try:
            await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self.status.state != "signed_out":
                raise  # the caller itself was cancelled
        return self.status

    def poke(self) -> None:
        """Ask for a sync soon (a poke arrived, or an edit was made): debounced and coalesced."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        if self._debounced is not None and not self._debounced.done():
            return
        self._debounced = asyncio.get_running_loop().create_task(self._after_debounce(), name="floorwalker-poke")

    async def _after_debounce(self) -> None:
        if self.debounce > 0:
            await self.sleep(self.debounce)
        try:
            await self.sync()
        except Exception:  # already logged and shown in the status by _run
            pass

    async def _run(self) -> None:
        while self._again:
            self._again = False
            try:
                await self._round()
            except SyncFailed as exc:
                if exc.state == "signed_out":
                    self._sign_out(str(exc))
                    return
                self._set(state=exc.state, last_error=str(exc), pending=self.replica.pending_count())
                return
            except Exception as exc:  # a bug or a broken replica file: show it, do not spin
                log.exception("sync round failed")
                self._set(state="error", last_error=f"{type(exc).__name__}: {exc}")
                raise
            self.rounds += 1

    async def _round(self) -> None:
        self._set(state="syncing", pending=self.replica.pending_count())
        while True:
            await self._push_all()
            await self._pull_all()
            pending = self.replica.pending_count()
            if not pending:
                break  # else: edits made during the round; push them too
        at = times.utc_text(times.from_ms(self.clock() * 1000))
        self.replica.mark_synced(at)
        self._set(state="synced", pending=0, last_synced_at=at, last_error=None)

    def _sign_out(self, message: str) -> None:
        """The server ended this user's session for good: forget everything the device holds."""
        log.warning("signed out by the server: %s", message)
        self._token = None
        # A round still running (e.g. while the poke stream found out) must not write a page into
        # the wiped replica: it is cancelled at the await it is suspended at.
        current = asyncio.current_task()
        for task in (self._task, self._debounced):
            if task is not None and task is not current and not task.done():
                task.cancel()
        self.replica.wipe()
        self._set(state="signed_out", pending=0, last_synced_at=None, last_error=message)

    # --- push and pull --------------------------------------------------------------------------

    async def _push_all(self) -> None:
        while True:
            batch = self.replica.pending(limit=self.push_batch)
            if not batch:
                return
            self.replica.mark_attempt([e.id for e in batch])
            request = proto.PushRequest(
                client_id=self.replica.client_id,
                schema_version=proto.SCHEMA_VERSION,
                mutations=[e.to_mutation() for e in batch],
            )
            response = await self._post(PUSH_PATH, request, _push_decoder)
            self.replica.apply_push(response)
            first = self.replica.pending(limit=1)
            if first and first[0].id == batch[0].id:
                raise SyncFailed(f"the server did not answer mutation {batch[0].id}; will retry later")
            self._set(pending=self.replica.pending_count())

    async def _pull_all(self) -> None:
        cursor = self.replica.cursor
        resets = 0
        ahead: asyncio.Task | None = None  # the next page, already asked for
        try:
            while True:
                if ahead is not None:
                    response, ahead = await ahead, None
                else:
                    response = await self._post(PULL_PATH, self._pull_request(cursor), _pull_decoder)
                if response.reset_required:
                    resets += 1
                    if resets > MAX_RESETS_PER_ROUND:
                        raise SyncFailed(f"the server keeps asking for a fresh copy: {response.reset_reason}")
                    log.info("replica reset: %s", response.reset_reason)
                    self.replica.reset()
                    cursor = None
                    continue
                if response.has_more:
                    # Pipelining: the server prepares the next page while this one is written locally.
                    # Safe: the next page is applied only after this one (and its cursor) committed.
                    ahead = asyncio.ensure_future(
                        self._post(PULL_PATH, self._pull_request(response.cursor), _pull_decoder)
                    )
                    for _ in range(8):  # let the request go out before the local write blocks the loop
                        await asyncio.sleep(0)
                self.replica.apply_page(response)
                cursor = response.cursor
                if not response.has_more:
                    return
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(BaseException):
                    await ahead

    def _pull_request(self, cursor: str | None) -> proto.PullRequest:
        return proto.PullRequest(
            client_id=self.replica.client_id,
            schema_version=proto.SCHEMA_VERSION,
            cursor=cursor,
            limit=self.pull_limit,
        )

    # --- HTTP -----------------------------------------------------------------------------------

    async def _get_token(self, refresh: bool) -> str:
        if self._token is None or refresh:
            try:
                token = self.token_provider(refresh)
                if inspect.isawaitable(token):
                    token = await token
            except Exception as exc:
                if _refused(exc) and (refresh or isinstance(exc, SignedOut)):
                    raise SyncFailed(f"the server refused the session ({exc}); sign in again", "signed_out") from exc
                if isinstance(exc, httpx.TransportError):
                    raise SyncFailed(f"no connection to the server ({type(exc).__name__}: {exc})", "offline") from exc
                raise SyncFailed(f"cannot get an access token ({exc}); sign in again") from exc
            self._token = str(token)
        return self._token

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random wait in [0, min(cap, base·2^(attempt-1)))."""
        return self.random() * min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempt - 1))

    async def _post(self, path: str, body: msgspec.Struct, decoder: msgspec.json.Decoder[T]) -> T:
        attempt = 0
        refreshed = False
        content = _encoder.encode(body)
        while True:
            token = await self._get_token(refresh=False)
            try:
                return await self._post_once(path, content, token, decoder)
            except _Unauthorized:
                if refreshed:
                    raise SyncFailed(
                        "the server refused the sign-in (401 after a token refresh); sign in again"
                    ) from None
                refreshed = True
                await self._get_token(refresh=True)
                continue
            except _Retry as exc:
                attempt += 1
                if attempt >= self.max_attempts:
                    raise SyncFailed(str(exc), exc.state) from None
                self._set(state=exc.state, last_error=str(exc))
                await self.sleep(max(self.backoff(attempt), min(exc.retry_after, self.backoff_cap)))
                self._set(state="syncing")

    async def _post_once(self, path: str, content: bytes, token: str, decoder: msgspec.json.Decoder[T]) -> T:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            response = await self.client.post(path, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise _Retry(f"the server did not answer in time ({type(exc).__name__})", "offline") from None
        except httpx.TransportError as exc:
            raise _Retry(f"no connection to the server ({type(exc).__name__}: {exc})", "offline") from None
        status = response.status_code
        if status == 401:
            raise _Unauthorized
        if status == 429 or status >= 500:
            raise _Retry(_server_message(response), "error" if status >= 500 else "offline", _retry_after(response))
        if status >= 400:
            raise SyncFailed(_server_message(response))
        try:
            return decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise _Retry(f"the server's reply could not be read: {exc}", "error") from None

    # --- pokes ----------------------------------------------------------------------------------

    async def listen(self) -> None:
        """Keep a poke stream (Server-Sent Events) open and sync on each poke; reconnect with
        backoff. Runs until cancelled (``task = asyncio.create_task(engine.listen())``)."""
        attempt = 0
        refreshed = False
        while True:
            try:
                token = await self._get_token(refresh=False)
                headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
                timeout = httpx.Timeout(self.timeout, read=max(60.0, self.timeout))
                async with self.client.stream("GET", EVENTS_PATH, headers=headers, timeout=timeout) as response:
                    if response.status_code == 401 and not refreshed:
                        refreshed = True
                        await self._get_token(refresh=True)
                        continue
                    if response.status_code != 200:
                        raise _Retry(f"poke stream: HTTP {response.status_code}", "offline")
                    attempt, refreshed = 0, False
                    self.connected = True
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            try:
                                _poke_decoder.decode(line[5:].strip())
                            except msgspec.DecodeError:
                                continue
                            self.poke()
            except SyncFailed as exc:
                if exc.state == "signed_out":
                    self._sign_out(str(exc))
                    return
                log.debug("poke stream closed: %s", exc)
            except (httpx.TransportError, _Retry) as exc:
                log.debug("poke stream closed: %s", exc)
            finally:
                self.connected = False
            attempt += 1
            await self.sleep(self.backoff(attempt))


class _Unauthorized(Exception):
    pass
