"""Time-ordered identifiers (UUIDv7, RFC 9562) made by whoever creates a row."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7: 48-bit Unix milliseconds, then a 12-bit counter, then random bits.

    The counter (RFC 9562 method 1) keeps ids made in the same millisecond by this
    process strictly increasing, so ids sort in creation order on one device.
    """
    global _last_ms, _counter
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms = now
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # 0b10 and two random bits


def uuid7_texts(n: int) -> list[str]:
    """``n`` UUIDv7s as text, in increasing order: what :func:`uuid7` makes, for bulk writers
    (an import makes hundreds of thousands; the drivers take ids as text, and building
    ``uuid.UUID`` objects only to write them out again costs more than the ids themselves).
    The counter runs on from :func:`uuid7`'s, so both kinds sort in the order they were made;
    the 62 random bits come as one hex string, cut up."""
    global _last_ms, _counter
    if n <= 0:
        return []
    runs: list[tuple[int, int, int]] = []  # (milliseconds, first counter, how many)
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms = now
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:
            _counter += 1
        left = n
        while left:
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            take = min(left, 0x1000 - _counter)
            runs.append((_last_ms, _counter, take))
            _counter += take
            left -= take
        _counter -= 1  # the last one used
    noise = os.urandom(8 * n).hex()  # 16 hex digits an id: 2 + 12 + 48 random bits used
    out: list[str] = []
    append = out.append
    at = 0
    for ms, first, count in runs:
        stamp = f"{ms & 0xFFFFFFFFFFFF:012x}"
        head = f"{stamp[:8]}-{stamp[8:]}-7"
        for counter in range(first, first + count):
            r = noise[at : at + 16]
            at += 16
            append(f"{head}{counter:03x}-{_VARIANT[r[0]]}{r[1:4]}-{r[4:]}")
    return out


def uuid5_for(*parts: object) -> uuid.UUID:
    """A deterministic id for a server-made row (rule + subject + period): re-runs make nothing new."""
    return uuid.uuid5(_NAMESPACE, "\x1f".join(str(p) for p in parts))


_NAMESPACE = uuid.UUID("6f1c1d0e-54a1-4c7e-9a57-0f6b3c2d9e11")
