"""The sync protocol over HTTP (in-process app): pull pages and cursors, push exactly once, merges,
conflicts, scope changes, tombstones, limits. The multi-device model test with faults runs against a
real server process in tests/test_sync_model.py."""

from __future__ import annotations

import time
import uuid

import pytest

from server.customers.tables import Customer, CustomerTag
from server.interactions.tables import Interaction
from shared import sync as proto
from shared.ids import uuid7


def _hlc(offset_ms: int = 0, node: str = "dev") -> str:
    return proto.hlc_format(int(time.time() * 1000) + offset_ms, 0, node)


async def _pull_all(client, headers, client_id, cursor=None, limit=2000):
    """Every page until has_more is false: {table: {id: row dict}}, the final cursor, pages."""
    tables: dict[str, dict[str, dict]] = {}
    pages = 0
    removed = []
    while True:
        reply = await client.post(
            "/api/sync/pull",
            json={
                "client_id": str(client_id),
                "schema_version": proto.SCHEMA_VERSION,
                "cursor": cursor,
                "limit": limit,
            },
            headers=headers,
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert not body["reset_required"], body
        removed += body["scopes_removed"]
        for page in body["changes"]:
            bucket = tables.setdefault(page["table"], {})
            for row in page["rows"]:
                item = dict(zip(page["columns"], row, strict=True))
                if item["deleted"]:
                    bucket.pop(item["id"], None)
                    bucket.setdefault("__tombstones__", set()).add(item["id"])  # type: ignore[arg-type]
                else:
                    bucket[item["id"]] = item
        cursor = body["cursor"]
        pages += 1
        if not body["has_more"]:
            return tables, cursor, pages, removed


async def _push(client, headers, client_id, mutations):
    reply = await client.post(
        "/api/sync/push",
        json={"client_id": str(client_id), "schema_version": proto.SCHEMA_VERSION, "mutations": mutations},
        headers=headers,
    )
    return reply


async def test_first_sync_pages_hold_exactly_the_reps_store(client, login, stores):
    rep = await login("rep.bjcy")
    tables, cursor, pages, _ = await _pull_all(client, rep, uuid7(), limit=500)
    assert pages > 2
    customers = tables["customers"]
    expected = await Customer.count().where((Customer.store_id == stores["BJ-CY"]) & Customer.deleted.eq(False))
    assert len(customers) == expected
    assert {c["store_id"] for c in customers.values()} == {str(stores["BJ-CY"])}
    n_interactions = await Interaction.count().where(
        (Interaction.store_id == stores["BJ-CY"]) & Interaction.deleted.eq(False)
    )
    assert len(tables["interactions"]) == n_interactions
    assert len(tables["stores"]) >= 7 and "pipeline_stages" in tables
    # Nothing new: one more pull answers no changes and the same position.
    again, _cursor2, _, _ = await _pull_all(client, rep, uuid7(), cursor=cursor)
    assert again == {}


async def test_push_applies_once_and_replay_gets_the_same_answer(client, login, stores):
    rep = await login("rep.bjcy")
    device = uuid7()
    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).first()
    visit = uuid7()
    mutations = [
        {
            "id": 1,
            "name": "interaction.log",
            "hlc": _hlc(),
            "args": {"id": str(visit), "customer_id": str(customer["id"]), "kind": "visit", "body": "看了沙发"},
        },
        {"id": 2, "name": "opportunity.move", "hlc": _hlc(), "args": {"opportunity_id": str(uuid7()), "stage": "won"}},
    ]
    first = await _push(client, rep, device, mutations)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [r["status"] for r in body["results"]] == ["applied", "rejected"]
    assert "not found" in body["results"][1]["reason"]
    # A row the device made and the server stored as sent is not echoed (the pull brings it); a
    # rejected mutation's target is sent as the server has it (here: nothing, it does not exist).
    assert body["results"][0]["rows"] == [] and body["results"][1]["rows"] == []
    assert body["last_mutation_id"] == 2
    again = (await _push(client, rep, device, mutations)).json()
    assert [(r["status"], r["reason"]) for r in again["results"]] == [
        (r["status"], r["reason"]) for r in body["results"]
    ]
    assert await Interaction.count().where(Interaction.id == visit) == 1
    # The pull tells the device how far its mutations went (a lost push reply heals).
    reply = await client.post(
        "/api/sync/pull",
        json={"client_id": str(device), "schema_version": proto.SCHEMA_VERSION, "cursor": None, "limit": 10},
        headers=rep,
    )
    assert reply.json()["last_mutation_id"] == 2


async def test_two_devices_different_fields_both_survive_same_field_later_clock_wins(client, login, stores):
    rep = await login("rep.bjcy")
    rep2 = await login("rep2.bjcy")
    customer = (
        await Customer.select(Customer.id, Customer.city, Customer.email)
        .where(Customer.store_id == stores["BJ-CY"])
        .first()
    )
    cid = str(customer["id"])
    a, b = uuid7(), uuid7()
    # Offline, both edit: A the e-mail and the address, B the district and (later clock) the address.
    ra = await _push(
        client,
        rep,
        a,
        [
            {
                "id": 1,
                "name": "customer.update",
                "hlc": _hlc(0, "a"),
                "args": {
                    "customer_id": cid,
                    "fields": {"email": "wang@example.com", "address": "A 写的地址"},
                    "base": {"email": customer["email"], "address": ""},
                },
            }
        ],
    )
    rb = await _push(
        client,
        rep2,
        b,
        [
            {
                "id": 1,
                "name": "customer.update",
                "hlc": _hlc(-60_000, "b"),
                "args": {
                    "customer_id": cid,
                    "fields": {"district": "朝阳区", "address": "B 写的地址"},
                    "base": {"address": ""},
                },
            }
        ],
    )
    assert ra.json()["results"][0]["status"] == "applied"
    result_b = rb.json()["results"][0]
    assert result_b["status"] == "applied"
    # B's address clock is older: it lost, and is told what was kept and by whom.
    assert [(x["field"], x["kept_value"]) for x in result_b["lost_fields"]] == [("address", "A 写的地址")]
    row = await Customer.select().where(Customer.id == customer["id"]).first()
    assert row["email"] == "wang@example.com" and row["district"] == "朝阳区" and row["address"] == "A 写的地址"
    # The loss is in the store's conflict log, which devices sync.
    tables, _, _, _ = await _pull_all(client, rep2, uuid7())
    conflicts = [c for c in tables["sync_conflicts"].values() if c["customer_id"] == cid]
    assert any(c["loser_value"] == "B 写的地址" and c["winner_value"] == "A 写的地址" for c in conflicts)


async def test_a_phone_clock_hours_ahead_is_capped(client, login, stores):
    rep = await login("rep.bjcy")
    rep2 = await login("rep2.bjcy")
    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).offset(3).first()
    cid = str(customer["id"])
    skewed = await _push(
        client,
        rep,
        uuid7(),
        [
            {
                "id": 1,
                "name": "customer.update",
                "hlc": _hlc(5 * 3600_000, "fast"),
                "args": {"customer_id": cid, "fields": {"province": "河北省"}},
            }
        ],
    )
    assert skewed.json()["results"][0]["status"] == "applied"
    # Ten minutes later (beyond the 5-minute cap) an honest clock wins over the fast phone.
    honest = await _push(
        client,
        rep2,
        uuid7(),
        [
            {
                "id": 1,
                "name": "customer.update",
                "hlc": _hlc(10 * 60_000, "ok"),
                "args": {"customer_id": cid, "fields": {"province": "北京市"}},
            }
        ],
    )
    assert honest.json()["results"][0]["lost_fields"] == []
    row = await Customer.select(Customer.province).where(Customer.id == customer["id"]).first()
    assert row["province"] == "北京市"


async def test_tombstones_reach_devices_and_a_moved_rep_drops_the_old_store(client, login, stores):
    rep = await login("rep.bjcy")
    device = uuid7()
    tables, cursor, _, _ = await _pull_all(client, rep, device)
    customer = next(iter(tables["customers"]))
    tag = uuid7()
    r = await _push(
        client,
        rep,
        device,
        [
            {
                "id": 1,
                "name": "tag.add",
                "hlc": _hlc(),
                "args": {"id": str(tag), "customer_id": customer, "tag": f"墓碑测试{uuid.uuid4().hex[:6]}"},
            },
            {"id": 2, "name": "tag.remove", "hlc": _hlc(), "args": {"tag_id": str(tag)}},
        ],
    )
    assert [x["status"] for x in r.json()["results"]] == ["applied", "applied"]
    changes, cursor, _, _ = await _pull_all(client, rep, device, cursor=cursor)
    assert str(tag) in changes["customer_tags"]["__tombstones__"]
    assert (await CustomerTag.select(CustomerTag.deleted).where(CustomerTag.id == tag).first())["deleted"]


@pytest.mark.parametrize(
    "bad",
    [
        {"client_id": "x", "schema_version": 1, "mutations": []},
        {
            "client_id": str(uuid.uuid4()),
            "schema_version": 1,
            "mutations": [{"id": 0, "name": "tag.add", "args": {}, "hlc": "1"}],
        },
        {"client_id": str(uuid.uuid4()), "schema_version": 1, "mutations": [], "extra": 1},
    ],
)
async def test_malformed_push_is_refused(client, login, bad):
    rep = await login("rep.bjcy")
    reply = await client.post("/api/sync/push", json=bad, headers=rep)
    assert reply.status_code == 400, reply.text


async def test_push_bounds_and_pull_bounds(client, login):
    rep = await login("rep.bjcy")
    many = [{"id": i, "name": "task.complete", "hlc": _hlc(), "args": {"task_id": str(uuid7())}} for i in range(1, 102)]
    reply = await _push(client, rep, uuid7(), many)
    assert reply.status_code == 422 and "at most 100" in reply.text
    reply = await client.post(
        "/api/sync/pull", json={"client_id": str(uuid7()), "schema_version": 1, "limit": 5001}, headers=rep
    )
    assert reply.status_code == 422 and "at most 5000" in reply.text
    reply = await client.post(
        "/api/sync/pull", json={"client_id": str(uuid7()), "schema_version": 1, "cursor": "zz"}, headers=rep
    )
    assert reply.status_code == 422 and "cursor" in reply.text
    reply = await client.post("/api/sync/pull", json={"client_id": str(uuid7()), "schema_version": 99}, headers=rep)
    assert reply.status_code == 409 and "update the app" in reply.text


async def test_a_client_id_is_bound_to_its_user(client, login):
    rep = await login("rep.bjcy")
    other = await login("rep.shpd")
    device = uuid7()
    assert (await _push(client, rep, device, [])).status_code == 200
    reply = await _push(client, other, device, [])
    assert reply.status_code == 422 and "another user" in reply.text


# --- regressions found in review ----------------------------------------------------------------


async def test_a_fast_phone_clock_capped_to_the_same_stamp_still_applies_its_later_edit(client, login, stores):
    rep = await login("rep.bjcy")
    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).offset(11).first()
    cid = str(customer["id"])
    hour = 3600_000
    reply = await _push(
        client,
        rep,
        uuid7(),
        [
            {"id": 1, "name": "customer.update", "hlc": _hlc(hour, "fast"),
             "args": {"customer_id": cid, "fields": {"district": "第一次"}}},
            {"id": 2, "name": "customer.update", "hlc": _hlc(hour + 2000, "fast"),
             "args": {"customer_id": cid, "fields": {"district": "第二次"}}},
        ],
    )  # fmt: skip
    assert [r["status"] for r in reply.json()["results"]] == ["applied", "applied"]
    assert all(r["lost_fields"] == [] for r in reply.json()["results"])
    row = await Customer.select(Customer.district).where(Customer.id == customer["id"]).first()
    assert row["district"] == "第二次"


async def test_a_tag_removed_and_added_again_is_a_new_row_under_the_devices_id(client, login, stores):
    rep = await login("rep.bjcy")
    device = uuid7()
    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).offset(12).first()
    cid = str(customer["id"])
    first, second = uuid7(), uuid7()
    tag = "回头客"
    reply = await _push(
        client,
        rep,
        device,
        [
            {"id": 1, "name": "tag.add", "hlc": _hlc(), "args": {"id": str(first), "customer_id": cid, "tag": tag}},
            {"id": 2, "name": "tag.remove", "hlc": _hlc(), "args": {"tag_id": str(first)}},
            {"id": 3, "name": "tag.add", "hlc": _hlc(), "args": {"id": str(second), "customer_id": cid, "tag": tag}},
            {"id": 4, "name": "tag.remove", "hlc": _hlc(), "args": {"tag_id": str(second)}},
        ],
    )  # fmt: skip
    assert [r["status"] for r in reply.json()["results"]] == ["applied"] * 4
    rows = await CustomerTag.select(CustomerTag.id, CustomerTag.deleted).where(CustomerTag.customer_id == cid)
    mine = {str(r["id"]): r["deleted"] for r in rows if str(r["id"]) in {str(first), str(second)}}
    assert mine == {str(first): True, str(second): True}
    # A live duplicate is still refused.
    third = uuid7()
    args = {"id": str(third), "customer_id": cid, "tag": "回头客"}
    again = await _push(client, rep, device, [{"id": 5, "name": "tag.add", "hlc": _hlc(), "args": args}])
    assert again.json()["results"][0]["status"] == "applied"
    dup = await _push(
        client, rep, device, [{"id": 6, "name": "tag.add", "hlc": _hlc(), "args": {**args, "id": str(uuid7())}}]
    )
    assert (
        dup.json()["results"][0]["status"] == "rejected" and "already has the tag" in dup.json()["results"][0]["reason"]
    )


async def test_the_same_new_id_twice_in_one_push_stores_the_first_and_refuses_the_second(client, login, stores):
    rep = await login("rep.bjcy")
    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).offset(13).first()
    ident = str(uuid7())
    visit = {"id": ident, "customer_id": str(customer["id"]), "kind": "visit", "body": "两次同一个编号"}
    reply = await _push(
        client,
        rep,
        uuid7(),
        [
            {"id": 1, "name": "interaction.log", "hlc": _hlc(), "args": visit},
            {"id": 2, "name": "interaction.log", "hlc": _hlc(), "args": visit},
        ],
    )
    assert [r["status"] for r in reply.json()["results"]] == ["applied", "rejected"]
    assert await Interaction.count().where(Interaction.id == ident) == 1


async def test_a_deactivated_colleague_reaches_phones_and_timestamps_have_one_format(client, login, stores):
    import re

    from server.auth.tables import User

    manager = await login("manager.bjcy")
    rep = await login("rep.bjcy")
    device = uuid7()
    tables, cursor, _, _ = await _pull_all(client, rep, device)
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
    for name in ("customers", "interactions", "tasks", "opportunities"):
        spec = proto.TABLES_BY_NAME[name]
        for column, kind in spec.columns:
            if kind == "ts":
                values = [row[column] for row in tables[name].values() if row[column] is not None]
                assert values and all(stamp.match(v) for v in values), (name, column, values[:3])
    target = await User.select(User.id).where(User.username == "rep2.bjcy").first()
    off = await client.post(f"/api/users/{target['id']}/deactivate", headers=manager)
    assert off.status_code == 200, off.text
    try:
        changes, _, _, _ = await _pull_all(client, rep, device, cursor=cursor)
        assert changes["users"][str(target["id"])]["active"] is False
    finally:
        await client.post(f"/api/users/{target['id']}/activate", headers=manager)
        login.cache.pop("rep2.bjcy", None)  # its sessions were revoked


async def test_a_forged_cursor_beyond_any_version_is_refused(client, login):
    import base64
    import json

    rep = await login("rep.bjcy")
    forged = base64.urlsafe_b64encode(json.dumps({"s": 1, "p": {"org": [0, 2**63 + 10]}}).encode()).decode()
    reply = await client.post(
        "/api/sync/pull",
        json={"client_id": str(uuid7()), "schema_version": 1, "cursor": forged.rstrip("=")},
        headers=rep,
    )
    assert reply.status_code == 422 and "cursor" in reply.text
