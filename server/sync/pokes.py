"""Live pokes: data-free ``{scope, version}`` messages telling connected devices to pull.

The per-scope change counters in the database are the truth. Each API process reads them at once
after a local commit (``wake()``) and fans what moved out to its own listeners. With Redis
(``redis_url``) it also publishes what moved to a Litestar channel that every process subscribes
to, so a commit in one API worker pokes the phones connected to all the others within
milliseconds; a process without a hub (the scheduler's worker) publishes through ``announce()``.
Each process forwards a scope's version only when it is newer than the last one it forwarded, so
its own echo and the same change heard twice are dropped.

The counters are also polled while anyone listens — every half second without Redis; with Redis
every five seconds, a safety net for messages lost while Redis was away (``poke_poll_ms``
overrides both). Redis being down never fails a commit or a sweep: a warning is logged, the hub
polls at the no-Redis rate and subscribes again when Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import AsyncIterator, Iterable

import msgspec
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from server.settings import Settings
from server.sync.tables import ScopeVersion
from shared.sync import SyncPoke

log = logging.getLogger("floorwalker.pokes")

POLL_SECONDS = 0.5  # without Redis (and while Redis is unreachable)
REDIS_POLL_SECONDS = 5.0  # with Redis: only a safety net
REDIS_TIMEOUT_SECONDS = 2.0  # connect and publish; a slow Redis must not stall the hub
RETRY_SECONDS = (1.0, 2.0, 5.0)  # between attempts to subscribe again

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[SyncPoke]).decode
_hubs: weakref.WeakSet[PokeHub] = weakref.WeakSet()  # the hubs running in this process
_announced: dict[str, int] = {}  # what announce() last published from this process


def poll_seconds(settings: Settings) -> float:
    """How often a hub reads the counters while anyone listens: ``poke_poll_ms`` when positive."""
    if settings.poke_poll_ms > 0:
        return settings.poke_poll_ms / 1000
    return REDIS_POLL_SECONDS if settings.redis_url else POLL_SECONDS


def _redis(url: str) -> Redis:
    # No retries inside redis-py: a silent reconnect of the subscription would hide the gap in
    # which messages were lost; the hub notices every drop and catches up from the counters.
    # Named for the process, so CLIENT LIST tells whose connections these are.
    return Redis.from_url(
        url,
        client_name=f"floorwalker-pokes-{os.getpid()}",
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )


def _channel(client: Redis) -> str:
    # Redis pub/sub ignores database numbers: two deployments sharing a Redis on /0 and /1 would
    # hear each other's pokes (and drop their own as old). The number goes into the channel name.
    return f"floorwalker:pokes:{client.connection_pool.connection_kwargs.get('db', 0)}"


def _where(client: Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs  # no password in the log
    return f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}/{kwargs.get('db', 0)}"


async def _counters() -> dict[str, int]:
    rows = await ScopeVersion.select(ScopeVersion.scope, ScopeVersion.version)
    return {r["scope"]: int(r["version"]) for r in rows}


class _Listener:
    def __init__(self, scopes: frozenset[str]) -> None:
        self.scopes = scopes
        self.queue: asyncio.Queue[SyncPoke | None] = asyncio.Queue(maxsize=256)
        self.fresh = True  # gets every scope's version at the next look (then only changes)


class _PubSubBackend(RedisChannelsPubSubBackend):
    """Litestar's Redis pub/sub backend, telling when its connection is lost. The stock event
    stream dies with the connection: the plugin then hears nothing, says nothing, and re-raises
    the error when it shuts down."""

    def __init__(self, *, redis: Redis) -> None:
        super().__init__(redis=redis)
        self.lost = asyncio.Event()
        self.reason = ""

    async def stream_events(self) -> AsyncIterator[tuple[str, bytes]]:
        try:
            async for event in super().stream_events():
                yield event
        except (RedisError, OSError) as exc:
            self.reason = str(exc) or type(exc).__name__
        finally:
            self.lost.set()


class PokeHub:
    def __init__(self, *, poll_seconds: float = POLL_SECONDS, redis_url: str = "") -> None:
        self.poll_seconds = poll_seconds
        self.redis_url = redis_url
        self._listeners: set[_Listener] = set()
        self._known: dict[str, int] = {}  # the last version forwarded (or read) per scope
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._channels: ChannelsPlugin | None = None  # set while subscribed to Redis
        self._channel = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> PokeHub:
        return cls(poll_seconds=poll_seconds(settings), redis_url=settings.redis_url)

    def runs_in(self, loop: asyncio.AbstractEventLoop) -> bool:
        return bool(self._tasks) and not self._tasks[0].done() and self._tasks[0].get_loop() is loop

    def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._run(), name="sync-pokes"))
        if self.redis_url:
            self._tasks.append(loop.create_task(self._relay(), name="sync-pokes-redis"))
        _hubs.add(self)

    def end_streams(self) -> None:
        """The server is stopping: end every open stream now, so a graceful shutdown does not wait
        for (and finally cancel) the long-lived ones; the apps reconnect to another worker."""
        for listener in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                listener.queue.put_nowait(None)  # ends the stream

    async def stop(self) -> None:
        self.end_streams()
        _hubs.discard(self)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

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

    def _interval(self) -> float:
        if self.redis_url and self._channels is None:  # Redis away: the poll carries the pokes
            return min(self.poll_seconds, POLL_SECONDS)
        return self.poll_seconds

    async def _run(self) -> None:
        if self.redis_url:  # what is already there is no news to publish
            with contextlib.suppress(Exception):
                self._known = await _counters()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval())
            woken = self._wake.is_set()
            self._wake.clear()
            # Nobody listens here: read only to publish a local commit to the other processes.
            if not self._listeners and not (woken and self._channels is not None):
                continue
            try:
                current = await _counters()
            except Exception:  # the database restarting must not kill the watcher
                log.warning("cannot read the change counters; retrying", exc_info=True)
                await asyncio.sleep(POLL_SECONDS)
                continue
            news = self._deliver(SyncPoke(scope=s, version=v) for s, v in current.items())
            for listener in list(self._listeners):  # after the news, which they are not sent twice
                if listener.fresh:
                    listener.fresh = False
                    for scope in listener.scopes:
                        version = max(current.get(scope, 0), self._known.get(scope, 0))
                        self._offer(listener, SyncPoke(scope=scope, version=version))
            if news and self._channels is not None:
                await self._publish(self._channels, news)

    def _deliver(self, pokes: Iterable[SyncPoke]) -> list[SyncPoke]:
        """Forward to the listeners what is newer than this process knew; returns that news."""
        news = []
        for poke in pokes:
            if poke.version > self._known.get(poke.scope, -1):
                self._known[poke.scope] = poke.version
                news.append(poke)
                for listener in list(self._listeners):
                    if poke.scope in listener.scopes and not listener.fresh:
                        self._offer(listener, poke)
        return news

    async def _publish(self, channels: ChannelsPlugin, news: list[SyncPoke]) -> None:
        # wait_published, not publish(): the plugin's queued publish dies with its first error and
        # leaves a queue that its shutdown then waits on for ever.
        try:
            await asyncio.wait_for(channels.wait_published(_encode(news), self._channel), REDIS_TIMEOUT_SECONDS)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("pokes not published to Redis (%s); the other processes find them by polling", exc)

    async def _relay(self) -> None:
        """Stay subscribed to the pokes channel: subscribe, hear until the connection is lost,
        poll the database meanwhile, subscribe again."""
        attempt = 0
        while True:
            client = _redis(self.redis_url)
            backend = _PubSubBackend(redis=client)
            channels = ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True)
            self._channel = _channel(client)
            reason, subscribed = "", False
            try:
                async with channels, channels.start_subscription(self._channel) as subscriber:
                    self._channels, subscribed = channels, True
                    log.info("live pokes through Redis %s, channel %s", _where(client), self._channel)
                    attempt = 0
                    self.wake()  # catch up on what moved while not subscribed, and tell the others
                    await self._hear(subscriber, backend)
                    reason = backend.reason or "connection closed"
            except (RedisError, OSError) as exc:
                reason = reason or str(exc) or type(exc).__name__
            except Exception as exc:  # a surprise must not end live pokes for good: log it, go on
                log.warning("Redis subscription failed", exc_info=True)
                reason = reason or f"{type(exc).__name__}: {exc}"
            finally:
                self._channels = None
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            if attempt == 0:
                log.warning(
                    "Redis %s %s (%s): live pokes poll the database every %.1f s until it answers",
                    _where(client),
                    "lost" if subscribed else "unreachable",
                    reason,
                    self._interval(),
                )
            self.wake()  # the poll takes the shorter interval at once
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1

    async def _hear(self, subscriber: Subscriber, backend: _PubSubBackend) -> None:
        """Deliver what the channel carries until the backend loses its connection."""

        async def receive() -> None:
            async for message in subscriber.iter_events():
                try:
                    self._deliver(_decode(message))
                except msgspec.DecodeError:
                    log.warning("ignored a malformed poke message: %r", message[:200])

        receiving = asyncio.create_task(receive())
        lost = asyncio.create_task(backend.lost.wait())
        try:
            await asyncio.wait({receiving, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiving, lost):
                task.cancel()
            await asyncio.gather(receiving, lost, return_exceptions=True)

    @staticmethod
    def _offer(listener: _Listener, poke: SyncPoke) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a stalled reader pulls everything anyway
            listener.queue.put_nowait(poke)


async def announce(settings: Settings) -> None:
    """Tell the listening processes that this process committed changes outside an API request
    (the scheduler's sweep): wakes the hub running in this process (the embedded ``serve``), or
    else publishes to Redis the versions that moved since this process last announced (every
    scope's, the first time; the API processes forward only what is new to them). Without Redis
    there is nothing to do: the API processes poll the counters. Never raises: a failure is
    logged and the polls find the change."""
    loop = asyncio.get_running_loop()
    here = [hub for hub in _hubs if hub.runs_in(loop)]
    if here:
        for hub in here:
            hub.wake()
        return
    if not settings.redis_url:
        return
    try:
        current = await _counters()
    except Exception as exc:
        log.warning("pokes not announced: cannot read the change counters (%s)", exc)
        return
    moved = [SyncPoke(scope=s, version=v) for s, v in current.items() if v != _announced.get(s)]
    if not moved:
        return
    client = _redis(settings.redis_url)
    try:
        await asyncio.wait_for(client.publish(_channel(client), _encode(moved)), REDIS_TIMEOUT_SECONDS)
        _announced.update(current)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning(
            "pokes not announced: Redis %s unreachable (%s); the API processes find the change by polling",
            _where(client),
            exc,
        )
    finally:
        with contextlib.suppress(RedisError, OSError):
            await client.aclose()
