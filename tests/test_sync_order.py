"""Pull under concurrency and scope changes: a transaction held open across pulls is never skipped,
a rep moved to another store drops the old store, purged tombstones force a fresh copy."""

from __future__ import annotations

import asyncio
import datetime as dt

from server.auth.tables import User
from server.customers.tables import Customer, CustomerTag
from server.db import transaction
from server.interactions.tables import Interaction
from server.sync.jobs import purge_tombstones
from server.sync.service import allocate_versions, store_scope
from shared import sync as proto
from shared.ids import uuid7


async def _pull(client, headers, device, cursor, limit=2000):
    reply = await client.post(
        "/api/sync/pull",
        json={"client_id": str(device), "schema_version": proto.SCHEMA_VERSION, "cursor": cursor, "limit": limit},
        headers=headers,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


async def _drain(client, headers, device, cursor):
    ids: dict[str, set[str]] = {}
    while True:
        body = await _pull(client, headers, device, cursor)
        assert not body["reset_required"], body["reset_reason"]
        for page in body["changes"]:
            ids.setdefault(page["table"], set()).update(row[0] for row in page["rows"])
        cursor = body["cursor"]
        if not body["has_more"]:
            return ids, cursor, body


async def test_a_transaction_held_open_across_pulls_is_not_skipped(client, login, stores):
    rep = await login("rep.bjcy")
    device = uuid7()
    _, cursor, _ = await _drain(client, rep, device, None)
    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).first()
    slow_id, fast_id = uuid7(), uuid7()
    holding, release = asyncio.Event(), asyncio.Event()

    async def insert(ident, wait=None):
        async with transaction():
            version = await allocate_versions(store_scope(stores["BJ-CY"]))
            now = dt.datetime.now(dt.UTC)
            await Interaction.insert(
                Interaction(
                    id=ident,
                    version=version,
                    store_id=stores["BJ-CY"],
                    customer_id=customer["id"],
                    kind="note",
                    channel="store",
                    occurred_at=now,
                    body="slow",
                    updated_at=now,
                    created_at=now,
                )
            )
            if wait is not None:
                holding.set()
                await wait.wait()

    slow = asyncio.create_task(insert(slow_id, release))
    await holding.wait()
    # A second writer queues behind the open transaction (it needs the next number).
    fast = asyncio.create_task(insert(fast_id))
    await asyncio.sleep(0.3)
    seen, cursor, _ = await _drain(client, rep, device, cursor)  # pulls while the slow one is open
    assert str(slow_id) not in seen.get("interactions", set())
    assert str(fast_id) not in seen.get("interactions", set())
    release.set()
    await asyncio.gather(slow, fast)
    seen, cursor, _ = await _drain(client, rep, device, cursor)
    assert {str(slow_id), str(fast_id)} <= seen["interactions"]


async def test_a_rep_moved_to_another_store_drops_the_old_one(client, login, stores):
    rep2 = await login("rep2.bjcy")
    device = uuid7()
    ids, cursor, _ = await _drain(client, rep2, device, None)
    bj_customers = ids["customers"]
    user = await User.select(User.id).where(User.username == "rep2.bjcy").first()
    await User.update({User.store_id: stores["SH-PD"]}).where(User.id == user["id"])
    try:
        body = await _pull(client, rep2, device, cursor)
        assert body["scopes_removed"] == [str(stores["BJ-CY"])]
        ids, cursor, _ = await _drain(client, rep2, device, cursor)
        sh = {str(r["id"]) for r in await Customer.select(Customer.id).where(Customer.store_id == stores["SH-PD"])}
        assert ids["customers"] | {r[0] for p in body["changes"] if p["table"] == "customers" for r in p["rows"]} == sh
        assert not bj_customers & sh
    finally:
        await User.update({User.store_id: stores["BJ-CY"]}).where(User.id == user["id"])
    # Back in BJ-CY: SH-PD is removed, BJ-CY comes again as a first sync.
    body = await _pull(client, rep2, device, cursor, limit=5000)
    assert body["scopes_removed"] == [str(stores["SH-PD"])]


async def test_purged_tombstones_make_an_old_cursor_start_afresh(client, login, stores):
    rep = await login("rep.bjcy")
    device = uuid7()
    ids, old_cursor, _ = await _drain(client, rep, device, None)
    customer = next(iter(ids["customers"]))
    tag = uuid7()
    hlc = proto.hlc_format(1, 0, "t")
    reply = await client.post(
        "/api/sync/push",
        json={
            "client_id": str(device),
            "schema_version": 1,
            "mutations": [
                {
                    "id": 1,
                    "name": "tag.add",
                    "hlc": hlc,
                    "args": {"id": str(tag), "customer_id": customer, "tag": "清理"},
                },
                {"id": 2, "name": "tag.remove", "hlc": hlc, "args": {"tag_id": str(tag)}},
            ],
        },
        headers=rep,
    )
    assert [r["status"] for r in reply.json()["results"]] == ["applied", "applied"]
    # A device that is up to date is not disturbed by the purge; one that is behind must reset.
    _, fresh_cursor, _ = await _drain(client, rep, uuid7(), None)
    removed = await purge_tombstones(retention=dt.timedelta(0), now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert removed >= 1
    assert await CustomerTag.count().where(CustomerTag.id == tag) == 0
    behind = await _pull(client, rep, device, old_cursor)
    assert behind["reset_required"] and "purged" in behind["reset_reason"]
    assert behind["last_mutation_id"] == 2
    current = await _pull(client, rep, uuid7(), fresh_cursor)
    assert not current["reset_required"]


async def test_a_role_change_that_changes_masking_makes_the_phone_start_afresh(client, login, stores):
    """A store manager moved to head office must not keep the full phone numbers on the device."""
    from shared.enums import Role

    manager = await login("manager.bjcy")
    device = uuid7()
    _, cursor, _ = await _drain(client, manager, device, None)
    user = await User.select(User.id, User.region_id).where(User.username == "manager.bjcy").first()
    region = await User.select(User.region_id).where(User.username == "region.north").first()
    await User.update({User.role: Role.REGIONAL_MANAGER, User.region_id: region["region_id"]}).where(
        User.id == user["id"]
    )
    try:
        body = await _pull(client, manager, device, cursor)
        assert body["reset_required"] and "role" in body["reset_reason"]
        await _drain(client, manager, device, None)  # the fresh copy, masked
        phones = await _pull(client, manager, uuid7(), None, limit=5000)
        numbers = [r for p in phones["changes"] if p["table"] == "customer_phones" for r in p["rows"]]
        assert numbers and all("*" in r[proto.TABLES_BY_NAME["customer_phones"].column_names.index("number")]
                               for r in numbers)  # fmt: skip
    finally:
        await User.update({User.role: Role.STORE_MANAGER, User.region_id: user["region_id"]}).where(
            User.id == user["id"]
        )
