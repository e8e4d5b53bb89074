"""Live pokes: data-free ``{scope, version}`` messages telling connected devices to pull.

Each API process watches the per-scope change counters (one small query every half second while
anyone listens, at once after a local commit) and fans changes out to its own listeners. The
counters are the database's, so a change made by any process — another API worker, the scheduler,
an import — reaches every listener on every worker, on SQLite and PostgreSQL alike, with no broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from server.sync.tables import ScopeVersion
from shared.sync import SyncPoke

log = logging.getLogger("floorwalker.pokes")

POLL_SECONDS = 0.5


class _Listener:
    def __init__(self, scopes: frozenset[str]) -> None:
        self.scopes = scopes
        self.queue: asyncio.Queue[SyncPoke | None] = asyncio.Queue(maxsize=256)
        self.fresh = True  # gets every scope's version at the next look (then only changes)


class PokeHub:
    def __init__(self, poll_seconds: float = POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self._listeners: set[_Listener] = set()
        self._seen: dict[str, int] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sync-pokes")

    def end_streams(self) -> None:
        """The server is stopping: end every open stream now, so a graceful shutdown does not wait
        for (and finally cancel) the long-lived ones; the apps reconnect to another worker."""
        for listener in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                listener.queue.put_nowait(None)  # ends the stream

    async def stop(self) -> None:
        self.end_streams()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Look at the counters now (a commit in this process just moved one)."""
        self._wake.set()

    @contextlib.asynccontextmanager
    async def listen(self, scopes: list[str]) -> AsyncIterator[asyncio.Queue[SyncPoke | None]]:
        listener = _Listener(frozenset(scopes))
        self._listeners.add(listener)
        self.wake()
        try:
            yield listener.queue
        finally:
            self._listeners.discard(listener)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            if not self._listeners:
                self._seen = None  # nobody listens: stop querying, start afresh later
                continue
            try:
                rows = await ScopeVersion.select(ScopeVersion.scope, ScopeVersion.version)
            except Exception:  # the database restarting must not kill the watcher
                log.warning("cannot read the change counters; retrying", exc_info=True)
                await asyncio.sleep(self.poll_seconds)
                continue
            current = {r["scope"]: int(r["version"]) for r in rows}
            for listener in list(self._listeners):
                if listener.fresh:
                    listener.fresh = False
                    for scope in listener.scopes:
                        self._offer(listener, SyncPoke(scope=scope, version=current.get(scope, 0)))
            if self._seen is not None:
                for scope, version in current.items():
                    if version != self._seen.get(scope):
                        self._publish(SyncPoke(scope=scope, version=version))
            self._seen = current

    def _publish(self, poke: SyncPoke) -> None:
        for listener in list(self._listeners):
            if poke.scope in listener.scopes and not listener.fresh:
                self._offer(listener, poke)

    @staticmethod
    def _offer(listener: _Listener, poke: SyncPoke) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a stalled reader pulls everything anyway
            listener.queue.put_nowait(poke)
