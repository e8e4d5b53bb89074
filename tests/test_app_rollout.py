"""Roll-out in the app against a real server: a rep sends feedback from the top bar with a
screenshot of the screen it was on (the platform's capture is the one double: there is no Flutter
renderer here), head office sees it on the roll-out screen, answers it with a status and switches a
feature for a store from there; a store manager sees the switches but cannot flip them; reports
export the same rows as CSV through the save callback."""

from __future__ import annotations

import base64
import csv
import io
import uuid

from mobile.ui.desktop import ReportsScreen, RolloutScreen
from mobile.ui.screens import TodayScreen
from mobile.ui.shell import Shell
from server.rollout.tables import Feedback, StoreFeature
from tests.flet_tree import click, find, has, render, text
from tests.test_app_state import no_device_left, sign_in

# A 1×1 PNG: what the capture returns.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def test_a_rep_sends_feedback_with_a_screenshot_and_head_office_answers_it(live_server, tmp_path, client, login):
    rep = (await sign_in(live_server.url, tmp_path / "rep", "rep.shpd")).state
    admin = (await sign_in(live_server.url, tmp_path / "admin", "admin")).state
    made: list[uuid.UUID] = []
    try:
        await rep.sync_now()

        async def capture() -> bytes:
            return PNG

        rep._capture = capture
        rep.go("/")
        tree = render(lambda: Shell(rep, TodayScreen(rep)))
        await click(find(tree, key="feedback-open"))
        assert rep.feedback_open and rep.feedback_shot and rep.feedback_screen == "/"
        tree = render(lambda: Shell(rep, TodayScreen(rep)))
        assert has(tree, key="feedback-sheet") and "附上当前页面截图" in text(tree)
        await click(find(tree, key="feedback-send"))
        assert rep.feedback_error == "请写下你的反馈"  # nothing typed: nothing sent
        rep.set_feedback_text("快捷按钮太少，希望能自定义顺序")
        await click(find(render(lambda: Shell(rep, TodayScreen(rep))), key="feedback-send"))
        assert rep.toast == "反馈已发送，谢谢！" and not rep.feedback_open
        rows = await Feedback.select().where(Feedback.text == "快捷按钮太少，希望能自定义顺序")
        assert len(rows) == 1
        made.append(rows[0]["id"])
        assert rows[0]["screen"] == "/" and bytes(rows[0]["screenshot"]) == PNG and rows[0]["status"] == "new"

        admin.set_wide(1440)
        await admin.load_rollout()
        assert admin.rollout_error is None
        tree = render(lambda: Shell(admin, RolloutScreen(admin)))
        item = f"feedback-{rows[0]['id']}"
        assert has(tree, key=item) and "快捷按钮太少，希望能自定义顺序" in text(tree)
        assert "W1 试点" in text(tree)  # the demo's waves
        await admin.set_feedback_status(str(rows[0]["id"]), "planned")
        assert (await Feedback.select(Feedback.status).where(Feedback.id == rows[0]["id"]).first())[
            "status"
        ] == "planned"

        # A switch from the screen: the chosen store's quick actions off, then on again.
        await admin.choose_rollout_store("SH-PD")
        tree = render(lambda: Shell(admin, RolloutScreen(admin)))
        switch = find(tree, key="feature-quick_actions")
        assert switch.value is True and not switch.disabled
        await admin.set_feature("quick_actions", False)
        assert admin.toast == "已关闭 quick_actions"
        row = await StoreFeature.select().where(StoreFeature.feature == "quick_actions").first()
        assert row is not None and row["enabled"] is False
        await admin.set_feature("quick_actions", True)
        assert find(render(lambda: Shell(admin, RolloutScreen(admin))), key="feature-quick_actions").value is True
    finally:
        if made:
            await Feedback.delete().where(Feedback.id.is_in(made))
        await rep.close()
        await admin.close()
        no_device_left(tmp_path)


async def test_a_store_manager_sees_the_switches_but_cannot_flip_them(live_server, tmp_path):
    manager = (await sign_in(live_server.url, tmp_path / "manager", "manager.bjcy")).state
    try:
        await manager.load_rollout()
        assert manager.rollout_store == "BJ-CY"
        tree = render(lambda: Shell(manager, RolloutScreen(manager)))
        assert find(tree, key="feature-quick_actions").disabled is True
        await manager.set_feature("quick_actions", False)  # as if the switch were forced
        assert manager.toast.startswith("没有保存：only head office")
    finally:
        await manager.close()
        no_device_left(tmp_path / "manager")


async def test_a_report_exports_the_rows_it_shows(live_server, tmp_path):
    manager = (await sign_in(live_server.url, tmp_path / "exports", "manager.bjcy")).state
    saved: dict[str, bytes] = {}

    async def save(name: str, data: bytes) -> None:
        saved[name] = data

    manager._save = save
    try:
        manager.report_name = "pipeline"
        await manager.load_dashboard()
        assert manager.report_error is None
        table = manager.report_tables["pipeline"]
        tree = render(lambda: Shell(manager, ReportsScreen(manager)))
        assert has(tree, key="table-pipeline") and has(tree, key="kpi-retention")
        await click(find(tree, key="export-pipeline-csv"))
        (name, data), *_ = saved.items()
        assert name.startswith("pipeline-") and name.endswith(".csv") and manager.toast == f"已导出 {name}"
        assert data.startswith(b"\xef\xbb\xbf")
        lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert lines[0][0] == "阶段" and len(lines) - 1 == len(table["rows"])
        # Drill into the first stage: the deals behind its count.
        await manager.open_drill("pipeline", 0)
        assert manager.drill_table is not None
        keys = [c["key"] for c in table["columns"]]
        assert manager.drill_table["total"] == table["rows"][0][keys.index("deals")]
    finally:
        await manager.close()
        no_device_left(tmp_path / "exports")


async def test_the_rep_filter_narrows_the_dashboard_to_that_rep(live_server, tmp_path, stores, login):
    from tests.conftest import open_deals

    manager = (await sign_in(live_server.url, tmp_path / "filters", "manager.bjcy")).state
    try:
        await manager.sync_now()
        rep = await login.user("rep2.bjcy")
        assert rep["id"] in {r["id"] for r in manager.board_owners()}
        tree = render(lambda: Shell(manager, ReportsScreen(manager)))
        assert has(tree, key="report-rep") and not has(tree, key="report-region")  # one store, one region
        await manager.set_report_filter("rep", rep["id"])
        table = manager.report_tables["pipeline"]
        keys = [c["key"] for c in table["columns"]]
        shown = sum(row[keys.index("deals")] for row in table["rows"])
        expected = [r for r in await open_deals(stores["BJ-CY"]) if str(r["owner_id"]) == rep["id"]]
        assert shown == len(expected) and table["filters"]["rep"] == "rep2.bjcy"
    finally:
        await manager.close()
        no_device_left(tmp_path / "filters")


async def test_the_segment_report_on_the_desk_names_segments_in_the_readers_language(live_server, tmp_path, client):
    from server.analytics import segments

    await segments.score_all()  # what the worker does at night
    manager = (await sign_in(live_server.url, tmp_path / "segments", "manager.bjcy")).state
    try:
        await manager.choose_report("segments")
        assert manager.report_error is None
        table = manager.report_tables["segments"]
        tree = render(lambda: Shell(manager, ReportsScreen(manager)))
        shown = text(tree)
        for name in ("新客", "复购客户", "高价值客户", "沉睡客户", "流失客户", "合计", "值得挽回"):
            assert name in shown, name
        assert "high_value" not in shown and "segment_code" not in shown  # the code column stays hidden
        assert "评分时间" in shown  # the notes say when
        # the total row drills to those worth winning back
        await manager.open_drill("segments", len(table["rows"]) - 1)
        assert manager.drill_table is not None and manager.drill_table["total"] == table["rows"][-1][-1] > 0
    finally:
        await manager.close()
        no_device_left(tmp_path / "segments")
