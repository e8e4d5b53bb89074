"""shared.ids: UUIDv7s one at a time and in bulk (as text, for imports), in the order they are made."""

from __future__ import annotations

import time
import uuid

from shared import ids


def test_bulk_ids_are_uuid7_text_unique_and_increasing_and_interleave_with_single_ones():
    made: list[str] = []
    for n in (1, 5, 4097, 3, 10_000):  # 4097 and 10,000 run past a millisecond's 4,096 counters
        made.append(str(ids.uuid7()))
        made += ids.uuid7_texts(n)
    assert len(made) == len(set(made)) == 5 + 1 + 5 + 4097 + 3 + 10_000
    assert made == sorted(made)  # text order is creation order (single and bulk alike)
    for text in made:
        value = uuid.UUID(text)
        assert str(value) == text  # canonical, lower-case, dashes where they belong
        assert value.version == 7 and value.variant == uuid.RFC_4122
    assert ids.uuid7_texts(0) == [] and ids.uuid7_texts(-3) == []


def test_bulk_ids_carry_the_time_and_random_bits():
    now_ms = time.time_ns() // 1_000_000
    for text in ids.uuid7_texts(3):
        assert abs((uuid.UUID(text).int >> 80) - now_ms) < 5_000  # 48-bit Unix milliseconds
    tails = [uuid.UUID(t).int & ((1 << 62) - 1) for t in ids.uuid7_texts(2_000)]
    assert len(set(tails)) == len(tails)  # 62 random bits an id
    high = [(t >> 61) & 1 for t in tails]  # the random bit beside the variant is used too
    assert 800 < sum(high) < 1_200
