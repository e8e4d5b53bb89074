"""The complaint loop (REQUIREMENTS §4, §9) over HTTP and through the phone's sync: open → history
→ first solution → solved → satisfaction call-back → closed; every out-of-order step refused with
its reason and nothing changed; the rule task chasing a step finished by it; device times kept
within the complaint's life; a phone refusing offline exactly what the server refuses, and its
queued loop arriving whole."""

from __future__ import annotations

import datetime as dt

import pytest

from server.complaints.tables import Complaint
from server.rules.service import sweep
from server.tasks.tables import Task
from shared import complaints as rules
from tests.test_sync_engine import devices  # noqa: F401 — the fixture

HOUR = dt.timedelta(hours=1)


@pytest.fixture(scope="module", autouse=True)
async def _leave_the_demo_as_found(client):
    """The complaints this module opens on demo customers go again at the end (with the rule tasks
    that chased them), so later modules meet the demo chain as seeded."""
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    yield
    made = await Complaint.select(Complaint.id).where(Complaint.updated_at >= started)
    ids = [str(r["id"]) for r in made]
    for code in ("complaint_history", "complaint_solution", "complaint_callback"):
        await Task.delete().where(Task.dedupe_key.is_in([f"{code}:{i}" for i in ids] or ["-"]))
    if ids:
        await Complaint.delete().where(Complaint.id.is_in(ids))


async def _customer(client, login, username: str = "rep.bjcy") -> str:
    page = (await client.get("/api/customers", params={"limit": 30}, headers=await login(username))).json()
    return page["items"][-1]["id"]


async def _open(client, login, customer_id: str, **extra) -> dict:
    body = {"customer_id": customer_id, "category": "delivery", "description": "送货比约定晚了三天", **extra}
    answer = await client.post("/api/complaints", json=body, headers=await login("rep.bjcy"))
    assert answer.status_code == 201, answer.text
    return answer.json()


async def _step(client, login, complaint_id: str, expect: int = 200, **body) -> dict:
    answer = await client.post(f"/api/complaints/{complaint_id}/steps", json=body, headers=await login("rep.bjcy"))
    assert answer.status_code == expect, answer.text
    return answer.json()


async def test_the_loop_from_complaint_to_archive(client, login):
    customer_id = await _customer(client, login)
    opened = await _open(client, login, customer_id)
    assert opened["status"] == "open" and opened["customer_id"] == customer_id
    at = dt.datetime.fromisoformat(opened["opened_at"])
    assert dt.datetime.fromisoformat(opened["history_due_at"]) == at + dt.timedelta(minutes=rules.HISTORY_MINUTES)
    assert dt.datetime.fromisoformat(opened["response_due_at"]) == at + dt.timedelta(minutes=rules.SOLUTION_MINUTES)
    assert opened["callback_due_at"] is None and opened["late"] == []
    cid = opened["id"]

    # out of order: refused with the reason, nothing changed
    for body, words in (
        ({"step": "callback", "satisfaction": 5}, "the call-back comes after solving"),
        ({"step": "respond"}, "say what the customer was offered"),
        ({"step": "solve"}, "say how the complaint was solved"),
        ({"step": "history", "satisfaction": 3}, "satisfaction is given with the call-back only"),
        ({"step": "apologise"}, "step must be one of history, respond, solve, callback"),
    ):
        refused = await _step(client, login, cid, expect=422, **body)
        assert words in refused["detail"], refused
    assert (await Complaint.select(Complaint.status).where(Complaint.id == cid).first())["status"] == "open"

    looked = await _step(client, login, cid, step="history")
    assert looked["history_retrieved_at"] and looked["status"] == "open"
    again = await _step(client, login, cid, step="history")  # a second look changes nothing
    assert again["history_retrieved_at"] == looked["history_retrieved_at"]
    offered = await _step(client, login, cid, step="respond", text="明天上午补送，并赠送靠垫一个")
    assert offered["status"] == "in_progress" and offered["first_response_at"]
    assert offered["resolution"] == "明天上午补送，并赠送靠垫一个"
    solved = await _step(client, login, cid, step="solve")  # the offer stands as the resolution
    assert solved["status"] == "solved" and solved["solved_at"] and solved["resolution"] == offered["resolution"]
    due = dt.datetime.fromisoformat(solved["solved_at"]) + dt.timedelta(hours=rules.CALLBACK_HOURS)
    assert dt.datetime.fromisoformat(solved["callback_due_at"]) == due
    bad = await client.post(
        f"/api/complaints/{cid}/steps", json={"step": "callback", "satisfaction": 6}, headers=await login("rep.bjcy")
    )
    assert bad.status_code == 400 and "satisfaction" in bad.text  # malformed: the schema's answer
    closed = await _step(client, login, cid, step="callback", satisfaction=4, text="客户满意，下次还来")
    assert (closed["status"], closed["satisfaction"], closed["callback_note"]) == ("closed", 4, "客户满意，下次还来")
    refused = await _step(client, login, cid, expect=422, step="history")
    assert "closed" in refused["detail"]

    # the card's history shows it, newest first, with its resolution
    card = (await client.get(f"/api/customers/{customer_id}", headers=await login("rep.bjcy"))).json()
    assert card["complaints"][0]["id"] == cid and card["complaints"][0]["resolution"] == offered["resolution"]
    listed = (
        await client.get(
            "/api/complaints", params={"customer_id": customer_id, "status": "closed"}, headers=await login("rep.bjcy")
        )
    ).json()
    assert cid in {c["id"] for c in listed["items"]}


async def test_a_step_finishes_the_rule_task_that_chased_it(client, login, stores):
    customer_id = await _customer(client, login)
    opened = await _open(client, login, customer_id)
    cid = opened["id"]
    later = dt.datetime.fromisoformat(opened["opened_at"]) + 3 * HOUR
    await sweep(later, codes=["complaint_history", "complaint_solution"], stores=[stores["BJ-CY"]])
    keys = [f"complaint_history:{cid}", f"complaint_solution:{cid}"]
    made = await Task.select(Task.dedupe_key, Task.status).where(Task.dedupe_key.is_in(keys))
    assert sorted((t["dedupe_key"], t["status"]) for t in made) == [(k, "open") for k in sorted(keys)]
    await _step(client, login, cid, step="history")
    status = {t["dedupe_key"]: t["status"] for t in await Task.select().where(Task.dedupe_key.is_in(keys))}
    assert status == {keys[0]: "done", keys[1]: "open"}
    await _step(client, login, cid, step="respond", text="更换新的沙发套")
    status = {t["dedupe_key"]: t["status"] for t in await Task.select().where(Task.dedupe_key.is_in(keys))}
    assert status == {keys[0]: "done", keys[1]: "done"}


async def test_late_complaints_are_listed_and_device_times_are_kept_in_bounds(client, login):
    customer_id = await _customer(client, login)
    now = dt.datetime.now(dt.UTC)
    late = await _open(client, login, customer_id, opened_at=(now - 3 * HOUR).isoformat())
    assert set(late["late"]) == {"history", "respond"}
    listed = (await client.get("/api/complaints", params={"late": "true"}, headers=await login("rep.bjcy"))).json()
    assert late["id"] in {c["id"] for c in listed["items"]}
    # a phone clock ahead: the complaint is opened now, not in the future
    ahead = await _open(client, login, customer_id, opened_at=(now + 5 * HOUR).isoformat())
    assert dt.datetime.fromisoformat(ahead["opened_at"]) < now + dt.timedelta(minutes=1)
    # a step dated before the opening counts from the opening
    step = await _step(client, login, ahead["id"], step="history", at=(now - 10 * HOUR).isoformat())
    assert step["history_retrieved_at"] == ahead["opened_at"]
    no_zone = await client.post(
        "/api/complaints",
        json={"customer_id": customer_id, "category": "price", "description": "x", "opened_at": "2026-11-01T10:00:00"},
        headers=await login("rep.bjcy"),
    )
    assert no_zone.status_code == 422 and "time zone offset" in no_zone.text
    blank = await client.post(
        "/api/complaints",
        json={"customer_id": customer_id, "category": "price", "description": "   "},
        headers=await login("rep.bjcy"),
    )
    assert blank.status_code == 422 and "say what the customer complains about" in blank.text
    for status, words in (("maybe", "status must be one of"),):
        answer = await client.get("/api/complaints", params={"status": status}, headers=await login("rep.bjcy"))
        assert answer.status_code == 422 and words in answer.text


async def test_a_complaint_of_another_store_is_not_found(client, login):
    theirs = await _customer(client, login, "rep.shpd")
    answer = await client.post(
        "/api/complaints",
        json={"customer_id": theirs, "category": "quality", "description": "起球"},
        headers=await login("rep.bjcy"),
    )
    assert answer.status_code == 404


@pytest.mark.slow
async def test_the_phone_runs_the_loop_offline_and_it_arrives_whole(devices, stores, live_server):  # noqa: F811
    rep = await devices("rep.bjcy")
    await rep.sync()
    customer_id = rep.one(
        "SELECT id FROM customers WHERE store_id = ? ORDER BY id LIMIT 1 OFFSET 7", (str(stores["BJ-CY"]),)
    )["id"]
    live_server.stop()
    try:
        complaint = rep.replica.open_complaint(customer_id, "installation", "床架安装后有异响")
        # refused on the phone with the server's words, nothing queued
        from mobile.mutators import MutationError

        queued = rep.replica.pending_count()
        with pytest.raises(MutationError, match="the call-back comes after solving"):
            rep.replica.complaint_step(complaint, "callback", satisfaction=5)
        with pytest.raises(MutationError, match="say what the customer was offered"):
            rep.replica.complaint_step(complaint, "respond")
        assert rep.replica.pending_count() == queued
        rep.replica.complaint_step(complaint, "history")
        rep.replica.complaint_step(complaint, "respond", text="师傅今晚上门加固")
        rep.replica.complaint_step(complaint, "solve", text="已加固，异响消失")
        rep.replica.complaint_step(complaint, "callback", satisfaction=5, text="很满意")
        local = rep.one("SELECT status, satisfaction, resolution FROM complaints WHERE id = ?", (str(complaint),))
        assert local == {"status": "closed", "satisfaction": 5, "resolution": "已加固，异响消失"}
        await rep.sync(expect="offline")
    finally:
        live_server.start()
    await rep.sync()
    assert rep.replica.pending_count() == 0
    row = await Complaint.select().where(Complaint.id == complaint).first()
    assert (row["status"], row["satisfaction"], row["resolution"], row["callback_note"]) == (
        "closed",
        5,
        "已加固，异响消失",
        "很满意",
    )
    # the phone's times went with the edits: each step after the one before it
    order = [row["opened_at"], row["history_retrieved_at"], row["first_response_at"], row["solved_at"]]
    assert order == sorted(order) and row["callback_at"] >= row["solved_at"]
    assert rep.one("SELECT status FROM complaints WHERE id = ?", (str(complaint),))["status"] == "closed"


async def test_the_complaint_report_follows_the_backlog_and_drills_to_it(client, login, stores):
    from server.analytics import service
    from server.analytics.filters import Filters, today

    now = dt.datetime.now(dt.UTC)
    day = today(now)  # the chain's local date
    f = Filters(start=day - dt.timedelta(days=29), end=day, store_ids=frozenset({stores["BJ-CY"]}))

    async def backlog() -> dict[str, tuple[int, int]]:
        table = await service.run("complaints", f, dt.datetime.now(dt.UTC))
        keys = [c.key for c in table.columns]
        rows = [dict(zip(keys, r, strict=True)) for r in table.rows]
        for row, drill in zip(rows, table.drill, strict=True):  # every number drills to its complaints
            if drill is not None:
                listed = await service.drill(drill.kind, drill.params, f, dt.datetime.now(dt.UTC))
                assert listed.total == row["complaints"], row
        return {r["state_code"]: (r["complaints"], r["late"]) for r in rows}

    before = await backlog()
    customer_id = await _customer(client, login)
    opened = await _open(client, login, customer_id, opened_at=(now - 3 * HOUR).isoformat())
    cid = opened["id"]
    after = await backlog()
    assert after["history"] == (before["history"][0] + 1, before["history"][1] + 1)
    assert after["respond"] == (before["respond"][0] + 1, before["respond"][1] + 1)
    assert after["late"][0] == before["late"][0] + 1 and after["opened"][0] == before["opened"][0] + 1
    await _step(client, login, cid, step="respond", text="上门处理")
    await _step(client, login, cid, step="solve")
    solved = await backlog()
    assert solved["history"] == before["history"] and solved["respond"] == before["respond"]
    assert solved["callback"][0] == before["callback"][0] + 1 and solved["late"] == before["late"]
    await _step(client, login, cid, step="callback", satisfaction=5)
    done = await backlog()
    assert done["callback"] == before["callback"] and done["rated"][0] == before["rated"][0] + 1
    headers = await login("manager.bjcy")
    answer = await client.get("/api/reports/drill/complaints", params={"waiting": "soon"}, headers=headers)
    assert answer.status_code == 422 and "waiting must be one of history, respond, callback, late" in answer.text
