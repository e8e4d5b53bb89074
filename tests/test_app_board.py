"""The managers' board in the app against a real server: manager.bjcy's board holds exactly the
store's open deals by stage with the stalled ones marked (checked against the database), a move
from the board reaches the server through the outbox, and 催办 on a stalled deal gives its owner a
task due today (once a day) and a notification that rep.bjcy's phone receives."""

from __future__ import annotations

import datetime as dt
import uuid

from mobile.ui.desktop import BoardScreen
from mobile.ui.shell import Shell
from server.notifications import service as notifications
from server.opportunities.tables import Opportunity
from server.tasks.tables import Task
from tests.conftest import open_deals as _open_deals
from tests.flet_tree import click, find, has, keys, render, text
from tests.test_app_state import no_device_left, sign_in


async def test_the_board_nudge_reaches_the_owner(live_server, tmp_path, stores, stalled_deal, login):
    await notifications.feed(dt.datetime.now(dt.UTC), stores=[stores["BJ-CY"]])  # the feed starts past history
    manager = (await sign_in(live_server.url, tmp_path / "manager", "manager.bjcy")).state
    rep = (await sign_in(live_server.url, tmp_path / "rep", "rep.bjcy")).state
    try:
        await manager.sync_now()
        manager.set_wide(1440)
        columns = manager.board()
        expected = await _open_deals(stores["BJ-CY"])
        now = dt.datetime.now(dt.UTC)
        # Independently: which deals are open, in which stage, and which are over their stage's limit.
        assert {d.id for c in columns for d in c.deals} == {str(r["id"]) for r in expected}
        by_stage = {c.stage.code: {d.id for d in c.deals} for c in columns}
        for r in expected:
            assert str(r["id"]) in by_stage[r["code"]]
        entered = {str(r["id"]): r["stage_entered_at"] for r in expected}
        stalled = {
            str(r["id"])
            for r in expected
            if r["idle_days"] is not None and _days(entered[str(r["id"])], now) > r["idle_days"]
        }
        assert {d.id for c in columns for d in c.deals if d.stalled} == stalled
        deal_id = str(stalled_deal["id"])
        assert deal_id in stalled

        tree = render(lambda: Shell(manager, BoardScreen(manager)))
        assert [d.label for d in find(tree, key="nav").destinations][-4:] == ["看板", "报表", "导入", "推广"]
        assert has(tree, key=f"deal-{deal_id}") and "销售看板" in text(tree)
        listed = [k for k in keys(tree) if k.startswith("stalled-") and not k.startswith("stalled-nudge-")]
        assert set(listed) == {f"stalled-{i}" for i in stalled} and f"停滞商机 · {len(stalled)}" in text(tree)
        await click(find(tree, key=f"nudge-{deal_id}"))
        owner = (await login.user("rep.bjcy"))["display_name"]
        assert manager.toast == f"已提醒{owner}跟进", manager.toast
        tasks = await Task.select().where(Task.dedupe_key.like(f"nudge:{deal_id}:%"))
        assert len(tasks) == 1 and str(tasks[0]["owner_id"]) == str(stalled_deal["owner_id"])
        assert str(tasks[0]["created_by_id"]) == str(manager.user.id) and tasks[0]["status"] == "open"

        tree = render(lambda: Shell(manager, BoardScreen(manager)))
        await click(find(tree, key=f"nudge-{deal_id}"))  # again today: the same task, said so
        assert manager.toast == f"今天已提醒过{owner}"
        assert await Task.count().where(Task.dedupe_key.like(f"nudge:{deal_id}:%")) == 1

        assert await notifications.feed(dt.datetime.now(dt.UTC), stores=[stores["BJ-CY"]]) >= 1
        await rep.sync_now()
        today = [t for _, group in rep.today() for t in group if t.id == str(tasks[0]["id"])]
        assert today and today[0].title.startswith("经理提醒"), rep.today()  # due today, whatever the hour
        assert any(m.notice_kind == "nudge" and "提醒你跟进" in m.title for m in rep.messages())
    finally:
        await manager.close()
        await rep.close()
        no_device_left(tmp_path)


def _days(value, now: dt.datetime) -> float:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (now - moment).total_seconds() / 86400


async def test_a_move_from_the_board_goes_through_the_outbox(live_server, tmp_path, stores, login):
    manager = (await sign_in(live_server.url, tmp_path / "mover", "manager.bjcy")).state
    try:
        await manager.sync_now()
        columns = manager.board()
        # A deal of rep2.bjcy: the move tells its owner (a follower), and later tests read
        # rep.bjcy's inbox as the demo left it.
        rep2 = (await login.user("rep2.bjcy"))["id"]
        source = next(c for c in columns if any(d.owner_id == rep2 for d in c.deals))
        target = next(c for c in columns if c.stage.code != source.stage.code)
        deal = next(d for d in reversed(source.deals) if d.owner_id == rep2)
        tree = render(lambda: Shell(manager, BoardScreen(manager)))
        menu = find(tree, key=f"move-{deal.id}")
        item = next(i for i in menu.items if target.stage.name_zh in i.content.value)
        await click(item)
        assert manager.toast == f"已推进到「{target.stage.name_zh}」"
        assert deal.id in {d.id for c in manager.board() if c.stage.code == target.stage.code for d in c.deals}
        await manager.sync_now()
        row = await Opportunity.raw(
            "SELECT s.code FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id WHERE o.id = {}",
            uuid.UUID(deal.id),
        )
        assert row[0]["code"] == target.stage.code
    finally:
        await manager.close()
        no_device_left(tmp_path / "mover")


async def test_nudge_refusals(client, login, stores):
    rows = await _open_deals(stores["SH-PD"])
    other = rows[0]["id"]
    answer = await client.post(f"/api/opportunities/{other}/nudge", json={}, headers=await login("manager.bjcy"))
    assert answer.status_code == 404, answer.text  # another store's deal
    mine = (await _open_deals(stores["BJ-CY"]))[0]["id"]
    answer = await client.post(f"/api/opportunities/{mine}/nudge", json={}, headers=await login("rep.bjcy"))
    assert answer.status_code == 403 and "managers" in answer.json()["detail"]
    answer = await client.post(f"/api/opportunities/{mine}/nudge", json={"who": 1}, headers=await login("manager.bjcy"))
    assert answer.status_code == 400
    assert await Task.count().where(Task.dedupe_key.like(f"nudge:{mine}:%")) == 0
