"""Versions follow commit order: a writer that takes a number while another transaction is still
open waits for it, so no client can pull past a number that commits later (DESIGN.md, sync)."""

from __future__ import annotations

import asyncio

from server.db import transaction
from server.sync.service import allocate_versions, current_version


async def test_a_second_writer_waits_for_the_first_to_commit(demo):
    scope = "test-change-order"
    a_holds, a_may_commit = asyncio.Event(), asyncio.Event()
    order: list[tuple[str, int]] = []

    async def writer_a():
        async with transaction():
            version = await allocate_versions(scope)
            a_holds.set()
            await a_may_commit.wait()
            order.append(("a committed", version))

    async def writer_b():
        await a_holds.wait()
        async with transaction():
            version = await allocate_versions(scope)
        order.append(("b committed", version))

    task_a = asyncio.create_task(writer_a())
    task_b = asyncio.create_task(writer_b())
    await a_holds.wait()
    await asyncio.sleep(0.5)
    assert order == [], "the second writer got a number while the first transaction was open"
    a_may_commit.set()
    await asyncio.gather(task_a, task_b)
    (first, v1), (second, v2) = order
    assert (first, second) == ("a committed", "b committed")
    assert v2 == v1 + 1
    assert await current_version(scope) == v2


async def test_a_rolled_back_write_leaves_no_gap(demo):
    scope = "test-rollback"
    before = await current_version(scope)

    class Abort(Exception):
        pass

    try:
        async with transaction():
            await allocate_versions(scope, 5)
            raise Abort
    except Abort:
        pass
    assert await current_version(scope) == before
    async with transaction():
        assert await allocate_versions(scope, 2) == before + 2
