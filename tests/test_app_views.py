"""The phone app's screens (``mobile/ui``) rendered without a Flet renderer from a signed-in state
(the live server, a real replica file): what each screen shows, and what its real buttons — found
in the rendered tree by key and fired the way Flet fires them (tests/flet_tree.py) — do to the
state and to the next render.
"""

from __future__ import annotations

import re

import flet as ft
import pytest

from mobile import times
from mobile.mutators import fetch_one
from mobile.state import AppState
from mobile.ui.card import CardScreen, OpportunityScreen
from mobile.ui.common import sync_label
from mobile.ui.screens import CustomersScreen, LoginScreen, MessagesScreen, SyncScreen, TodayScreen
from mobile.ui.shell import App, Shell
from tests.flet_tree import change, choose, click, find, find_all, has, render, select, submit, text, texts
from tests.test_app_state import (
    PASSWORD,
    TZ,
    make_phone,
    no_device_left,
    outbox_ids,
    own_customer,
    queued,
    settle,
    sign_in,
    work_list,
)

ZH_TABS = ["今日", "客户", "消息", "同步"]


@pytest.fixture(scope="module")
async def rep_phone(live_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("views-phone")
    phone = await sign_in(live_server.url, folder)
    try:
        yield phone
    finally:
        await phone.state.close()
        no_device_left(folder)


@pytest.fixture
async def rep(rep_phone):
    await settle(rep_phone.state)
    rep_phone.state.set_wide(None)
    rep_phone.routes.clear()
    rep_phone.launched.clear()
    return rep_phone


@pytest.fixture
async def fresh(live_server, tmp_path):
    """An app just opened on a phone nobody signed in on."""
    phone = make_phone(live_server.url, tmp_path)
    yield phone
    await phone.state.close()
    no_device_left(tmp_path)


def shell(state: AppState, screen, *args):
    """The screen inside the app's frame, as the router shows it."""
    return render(lambda: Shell(state, screen(state, *args)))


def badge(tree) -> str:
    """The sync badge's words (the frame's; the sync page shows the same badge once more)."""
    shown = {text(b) for b in find_all(tree, key="sync-label")}
    assert len(shown) == 1, shown
    return shown.pop()


def customer_with(state: AppState, slots: range, test) -> str:
    for slot in slots:
        cid = own_customer(state, slot)
        if test(state.card(cid)):
            return cid
    raise AssertionError(f"no customer in slots {slots} fits")


# --- login ------------------------------------------------------------------------------------------------


async def test_the_app_shows_a_spinner_while_starting_then_the_login_screen(fresh):
    state = fresh.state
    assert state.phase == "starting"
    assert find_all(render(App, state), type=ft.ProgressRing)
    await state.start()
    tree = render(App, state)
    assert not find_all(tree, type=ft.ProgressRing)
    for key in ("login-username", "login-password", "login-server", "login-submit"):
        assert has(tree, key=key)
    assert {"导购助手", "用户名", "密码", "服务器地址", "登录"} <= set(texts(tree))
    assert find(tree, key="login-password").password is True
    assert find(tree, key="login-server").value == state.server_url


async def test_signing_in_through_the_login_screen(fresh, live_server):
    state = fresh.state
    await state.start()
    tree = render(LoginScreen, state)
    await click(find(tree, key="login-submit"))
    tree = render(LoginScreen, state)
    assert find(tree, key="login-error").value == "请输入用户名和密码"

    await change(find(tree, key="login-server"), f"  {live_server.url}/ ")
    await change(find(tree, key="login-username"), "rep.bjcy")
    await change(find(tree, key="login-password"), "wrong")
    assert (state.username, state.password) == ("rep.bjcy", "wrong")
    await click(find(tree, key="login-submit"))
    tree = render(LoginScreen, state)
    assert find(tree, key="login-error").value == "登录失败：wrong username or password"
    assert state.phase == "login"

    await change(find(tree, key="login-password"), PASSWORD)
    await submit(find(tree, key="login-password"))  # the keyboard's enter key
    assert state.phase == "ready" and state.user.username == "rep.bjcy"
    assert state.server_url == live_server.url and fresh.credentials.exists()
    assert fresh.routes == ["/"]


async def test_the_login_screen_switches_language(fresh):
    state = fresh.state
    await state.start()
    tree = render(LoginScreen, state)
    english = next(b for b in find_all(tree, type=ft.TextButton) if "English" in texts(b))
    await click(english)
    assert state.locale == "en"
    tree = render(LoginScreen, state)
    assert {"Floorwalker", "Username", "Password", "Sign in"} <= set(texts(tree))
    chinese = next(b for b in find_all(tree, type=ft.TextButton) if "中文" in texts(b))
    await click(chinese)
    assert "登录" in texts(render(LoginScreen, state))


# --- today ------------------------------------------------------------------------------------------------


async def test_today_shows_the_groups_in_chinese_with_their_buttons(rep):
    state = rep.state
    tree = shell(state, TodayScreen)
    shown = texts(tree)
    assert shown[0] == "今日" and "今日任务" in shown
    names = {
        "stage_reminder": "阶段提醒",
        "complaint_callback": "投诉回访",
        "follow_up": "跟进",
        "call": "电话",
        "visit": "到店",
        "other": "其他",
    }
    groups = state.today()
    assert "stage_reminder" in dict(groups), "the tests take tasks from the other end of the list"
    for kind, tasks in groups:
        assert f"{names[kind]} · {len(tasks)}" in shown
        for task in tasks:
            tile = find(tree, key=f"task-{task.id}")
            assert task.title in texts(tile)
            assert texts(find(tree, key=f"complete-{task.id}")) == ["完成"]
            assert texts(find(tree, key=f"snooze-{task.id}")) == ["延后 1 小时"]
            due = "已逾期" if task.overdue else f"到期 {times.parse(task.due_at).astimezone(TZ):%H:%M}"
            assert any(due in t for t in texts(tile)), (due, texts(tile))
    assert badge(tree) == "已同步"


async def test_the_today_buttons_complete_and_snooze(rep):
    state = rep.state
    tree = shell(state, TodayScreen)
    tasks = work_list(state)
    done = tasks[0]
    later = next(t for t in tasks[1:] if t.overdue)
    before = outbox_ids(state)
    await click(find(tree, key=f"complete-{done.id}"))
    tree = shell(state, TodayScreen)
    assert not has(tree, key=f"task-{done.id}")
    assert badge(tree) == "待上传 1"

    await click(find(tree, key=f"snooze-{later.id}"))
    tree = shell(state, TodayScreen)
    assert badge(tree) == "待上传 2"
    assert [(e.name, e.args["task_id"]) for e in queued(state, before)] == [
        ("task.complete", done.id),
        ("task.snooze", later.id),
    ]
    if has(tree, key=f"task-{later.id}"):  # an hour later is still today (unless near midnight)
        assert "已逾期" not in text(find(tree, key=f"task-{later.id}"))
    await state.sync_now()
    assert badge(shell(state, TodayScreen)) == "已同步"


async def test_a_task_opens_its_customer(rep):
    state = rep.state
    task = next(t for _, ts in state.today() for t in ts if t.customer_id)
    await click(find(render(TodayScreen, state), key=f"customer-{task.id}"))
    assert rep.routes == [f"/customers/{task.customer_id}"] and state.route == rep.routes[0]


# --- customers --------------------------------------------------------------------------------------------


async def test_the_customer_list_searches_filters_and_opens_a_card(rep):
    state = rep.state
    tree = render(CustomersScreen, state)
    hits = state.hits()
    assert [c.key for c in find_all(tree, type=ft.ListTile)] == [f"hit-{h.id}" for h in hits]
    count = f"显示前 {len(hits)} 位，输入姓名或号码缩小范围" if len(hits) >= 50 else f"{len(hits)} 位客户"
    assert count in texts(tree)

    name = state.card(own_customer(state, 20)).profile["name"]
    await change(find(tree, key="customer-search"), name)
    tree = render(CustomersScreen, state)
    assert state.query == name
    found = find_all(tree, type=ft.ListTile)
    assert found and all(name in tile.title.value for tile in found)

    await change(find(tree, key="customer-search"), "")
    tree = render(CustomersScreen, state)
    chip = find(tree, key="filter-mine")
    assert texts(chip) == ["我的客户"] and not chip.selected
    await select(chip)
    tree = render(CustomersScreen, state)
    assert find(tree, key="filter-mine").selected and list(state.filters) == ["mine"]
    mine = {h.id for h in state.hits()}
    assert all(state.card(cid).profile["owner_id"] == str(state.user.id) for cid in mine)
    assert {c.key for c in find_all(tree, type=ft.ListTile)} == {f"hit-{cid}" for cid in mine}
    await select(find(tree, key="filter-mine"))
    assert not find(render(CustomersScreen, state), key="filter-mine").selected and list(state.filters) == []

    first = hits[0]
    await click(find(render(CustomersScreen, state), key=f"hit-{first.id}"))
    assert rep.routes == [f"/customers/{first.id}"]


async def test_each_filter_chip_is_there_in_chinese(rep):
    tree = render(CustomersScreen, rep.state)
    labels = {name: texts(find(tree, key=f"filter-{name}")) for name in ("mine", "high_value", "open_opportunity")}
    assert labels == {"mine": ["我的客户"], "high_value": ["高价值"], "open_opportunity": ["有商机"]}
    assert texts(find(tree, key="filter-not_contacted")) == ["30 天未联系"]
    assert texts(find(tree, key="filter-win_back")) == ["值得挽回"]


# --- the card ---------------------------------------------------------------------------------------------


def _rich(card) -> bool:
    return bool(card.orders and card.interactions)


async def test_the_card_shows_the_customer_their_numbers_value_and_history(rep):
    state = rep.state
    cid = customer_with(state, range(20, 53), _rich)
    card = state.card(cid)
    tree = render(CardScreen, state, cid)
    assert find(tree, key="card-name").value == card.profile["name"]
    assert "负责导购：李娜 · 门店：BJ-CY" in text(tree)
    for phone in card.phones:
        shown = find(tree, key=f"phone-{phone.id}").value
        digits = re.sub(r"\D", "", shown)
        assert "*" not in shown and len(digits) >= 11 and re.sub(r"\D", "", phone.number).endswith(digits)
        assert texts(find(tree, key=f"call-{phone.id}")) == ["拨打"]
    assert any(t.startswith("近 12 个月 ¥") for t in texts(tree))
    assert f"购买记录 · {card.value.order_count}" in texts(tree)
    assert f"互动记录 · {len(card.interactions)}" in texts(tree)
    for order in card.orders:
        assert f"¥{order.amount:,.0f}" in text(tree) or f"¥{order.amount:,.2f}".rstrip("0").rstrip(".") in text(tree)
    for key in ("qa-visit", "qa-call", "qa-note", "qa-task", "qa-opportunity"):
        assert has(tree, key=key)
    assert [texts(find(tree, key=k)) for k in ("qa-visit", "qa-call")] == [["记到店"], ["记电话"]]


async def test_the_card_shows_segment_health_rfm_and_next_purchase(rep):
    """The standing (shared/segments.py) from the replica: segment and health pills, the RFM code,
    the expected next purchase for a customer who bought twice or more."""
    state = rep.state
    cid = customer_with(state, range(20, 120), lambda c: c.value.standing.next_purchase_on is not None)
    s = state.card(cid).value.standing
    tree = render(CardScreen, state, cid)
    names = {"new": "新客", "repeat": "复购客户", "high_value": "高价值客户", "dormant": "沉睡客户", "lost": "流失客户"}
    assert texts(find(tree, key="card-segment")) == [names[s.group]]
    level = {"healthy": "健康", "watch": "需关注", "at_risk": "有流失风险"}[s.health_level]
    assert texts(find(tree, key="card-health")) == [f"健康分 {s.health} · {level}"]
    assert find(tree, key="card-rfm").value.startswith(f"RFM {s.recency}{s.frequency}{s.monetary}（")
    assert s.next_purchase_on.isoformat() in find(tree, key="card-next-purchase").value
    assert has(tree, key="card-win-back") == s.win_back
    prospect = fetch_one(
        state.replica.db,
        "SELECT c.id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id) LIMIT 1",
    )
    assert prospect is not None, "the demo store has no customer without a purchase"
    tree = render(CardScreen, state, prospect["id"])
    assert texts(find(tree, key="card-segment")) == ["新客"] and not has(tree, key="card-rfm")


VALUE_SPLIT = re.compile(r"¥([\d,.]+)\s*[（(][^¥]*¥([\d,.]+)[^¥]*¥([\d,.]+)[^¥]*[）)]")


@pytest.mark.parametrize("locale", ["zh", "en"])
async def test_the_cards_value_line_adds_up(rep, locale):
    """'近 12 个月 ¥T（门店 ¥S · 线上 ¥O）': the split in brackets is of the amount in front of it —
    for a customer who also bought before the last twelve months."""
    state = rep.state
    state.set_locale(locale)
    cid = customer_with(state, range(20, 53), lambda c: c.orders and c.value.amount_12m != c.value.amount_total)
    lines = [t for t in texts(render(CardScreen, state, cid)) if VALUE_SPLIT.search(t)]
    assert len(lines) == 1, texts(render(CardScreen, state, cid))
    total, store, online = (float(x.replace(",", "")) for x in VALUE_SPLIT.search(lines[0]).groups())
    assert store + online == total, lines[0]


async def test_the_call_button_dials_the_number(rep):
    state = rep.state
    cid = own_customer(state, 21)
    phone = state.card(cid).phones[0]
    await click(find(render(CardScreen, state, cid), key=f"call-{phone.id}"))
    assert rep.launched == [f"tel:{re.sub(r'[^0-9+]', '', phone.number)}"]


async def test_the_quick_actions_show_at_once_and_the_badge_counts_them(rep):
    state = rep.state
    cid = customer_with(state, range(30, 53), lambda c: not [o for o in c.opportunities if o.stage_kind == "open"])
    state.open_customer(cid)
    tree = shell(state, CardScreen, cid)
    assert badge(tree) == "已同步" and not has(tree, key="qa-move")
    assert find(tree, key="back").icon == ft.Icons.ARROW_BACK  # a card has a way back

    # a visit: one tap
    await click(find(tree, key="qa-visit"))
    tree = shell(state, CardScreen, cid)
    assert badge(tree) == "待上传 1" and find(tree, key="toast").value == "已记录到店"
    assert any(t.endswith(" · 李娜 · 待上传") for t in texts(tree)), "the visit is shown as waiting to upload"

    # a note: the sheet, an empty save refused, then saved
    await click(find(tree, key="qa-note"))
    tree = shell(state, CardScreen, cid)
    assert has(tree, key="sheet") and has(tree, key="sheet-text")
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="sheet-error").value == "写点什么…" and badge(tree) == "待上传 1"
    await change(find(tree, key="sheet-text"), "想要浅灰色的沙发套")
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CardScreen, cid)
    assert not has(tree, key="sheet") and badge(tree) == "待上传 2"
    assert any("想要浅灰色的沙发套 · 待上传" in t for t in texts(tree))

    # a task: title and when
    await click(find(tree, key="qa-task"))
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="due-tomorrow").selected and not find(tree, key="due-week").selected
    await select(find(tree, key="due-week"))
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="due-week").selected and state.draft_due == "week"
    await change(find(tree, key="sheet-text"), "一周后回访")
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CardScreen, cid)
    assert badge(tree) == "待上传 3" and "一周后回访" in text(tree)

    # an opportunity: a bad amount is refused, then saved
    await click(find(tree, key="qa-opportunity"))
    tree = shell(state, CardScreen, cid)
    await change(find(tree, key="sheet-text"), "主卧衣柜")
    await change(find(tree, key="sheet-amount"), "abc")
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="sheet-error").value.startswith("金额不对") and badge(tree) == "待上传 3"
    assert (state.draft_text, state.draft_amount) == ("主卧衣柜", "abc")  # kept, to be corrected
    await change(find(tree, key="sheet-amount"), "8800")
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CardScreen, cid)
    assert badge(tree) == "待上传 4" and find(tree, key="toast").value == "已创建商机"
    deal = state.card(cid).opportunities[0]
    assert "¥8,800 · 待上传" in text(find(tree, key=f"opp-{deal.id}"))

    # now exactly one open deal: it can be moved from the card
    await click(find(tree, key="qa-move"))
    tree = shell(state, CardScreen, cid)
    stages = [s for s in state.stages() if s.kind == "open"]
    assert not has(tree, key=f"stage-{stages[0].code}")  # not to where it is
    await click(find(tree, key=f"stage-{stages[1].code}"))
    tree = shell(state, CardScreen, cid)
    assert badge(tree) == "待上传 5" and find(tree, key="toast").value == f"已推进到「{stages[1].name_zh}」"
    assert stages[1].name_zh in text(find(tree, key=f"opp-{deal.id}"))

    await state.sync_now()
    tree = shell(state, CardScreen, cid)
    assert badge(tree) == "已同步" and "待上传" not in text(tree)


async def test_a_complaint_is_logged_and_walked_through_its_loop_on_the_card(rep):
    """投诉 on the card: the category and what the customer says; then the loop's buttons one by
    one (调取记录 at once, 给出方案 and 已解决 with words, 满意度回访 with stars); the banner on top
    while it is open; synced, the server holds the same."""
    from server.complaints.tables import Complaint

    state = rep.state
    cid = customer_with(state, range(40, 53), lambda c: not [x for x in c.complaints if x.live])
    state.open_customer(cid)
    tree = shell(state, CardScreen, cid)
    assert not has(tree, key="complaint-banner")
    await click(find(tree, key="qa-complaint"))
    tree = shell(state, CardScreen, cid)
    await click(find(tree, key="sheet-save"))  # nothing said yet: refused
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="sheet-error").value == "请写明客户投诉的内容"
    await select(find(tree, key="complaint-category-delivery"))
    await change(find(tree, key="sheet-text"), "餐桌送到时桌腿有划痕")
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="toast").value == "已登记投诉，1 小时内请调取记录"
    complaint = state.card(cid).complaints[0]
    assert (complaint.category, complaint.status, complaint.description) == ("delivery", "open", "餐桌送到时桌腿有划痕")
    banner = text(find(tree, key="complaint-banner"))
    assert banner.startswith("有 1 件未结投诉") and "配送问题 · 餐桌送到时桌腿有划痕" in banner
    assert [texts(find(tree, key=f"complaint-{s}-{complaint.id}")) for s in ("history", "respond", "solve")] == [
        ["调取记录"],
        ["给出方案"],
        ["已解决"],
    ]

    await click(find(tree, key=f"complaint-history-{complaint.id}"))  # one tap, no sheet
    tree = shell(state, CardScreen, cid)
    assert not has(tree, key=f"complaint-history-{complaint.id}") and not has(tree, key="sheet")
    await click(find(tree, key=f"complaint-respond-{complaint.id}"))
    tree = shell(state, CardScreen, cid)
    await change(find(tree, key="sheet-text"), "换新桌腿，周六上门")
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CardScreen, cid)
    assert "方案：换新桌腿，周六上门" in texts(tree) and find(tree, key="toast").value == "已记录给客户的方案"
    await click(find(tree, key=f"complaint-solve-{complaint.id}"))
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="sheet-text").value == "换新桌腿，周六上门"  # starts from the offer
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="toast").value == "投诉已解决，24 小时内请回访"
    await click(find(tree, key=f"complaint-callback-{complaint.id}"))
    tree = shell(state, CardScreen, cid)
    await click(find(tree, key="sheet-save"))  # no stars yet
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="sheet-error").value == "请选择客户满意度（1–5）"
    await select(find(tree, key="rating-4"))
    await change(find(tree, key="sheet-text"), "客户认可")
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="toast").value == "回访已记录，投诉已归档"
    assert "回访满意度 4/5 客户认可" in texts(tree) and not has(tree, key="complaint-banner")
    steps = ("history", "respond", "solve", "callback")
    assert not [k for k in steps if has(tree, key=f"complaint-{k}-{complaint.id}")]

    await state.sync_now()
    tree = shell(state, CardScreen, cid)
    assert badge(tree) == "已同步"
    row = await Complaint.select().where(Complaint.id == complaint.id).first()
    assert (row["status"], row["satisfaction"], row["resolution"]) == ("closed", 4, "换新桌腿，周六上门")


async def test_completing_a_task_on_the_card(rep):
    state = rep.state
    cid = own_customer(state, 23)
    state.open_sheet("task")
    state.draft_text = "卡片上完成的任务"
    assert state.save_task(cid)
    task = next(t for t in state.card(cid).tasks if t.title == "卡片上完成的任务")
    await state.sync_now()
    tree = render(CardScreen, state, cid)
    assert "卡片上完成的任务" in text(tree)
    assert texts(find(tree, key=f"complete-{task.id}")) == ["完成"]
    await click(find(tree, key=f"complete-{task.id}"))
    tree = render(CardScreen, state, cid)
    assert not has(tree, key=f"complete-{task.id}") and task.id not in [t.id for t in state.card(cid).tasks]
    assert state.toast == "已完成：卡片上完成的任务" and state.pending == 1


# --- the opportunity --------------------------------------------------------------------------------------


async def test_the_opportunity_page_moves_the_deal_and_asks_why_it_was_lost(rep):
    state = rep.state
    cid = own_customer(state, 24)
    state.open_sheet("opportunity")
    state.draft_text, state.draft_amount = "儿童房套装", "15600.50"
    assert state.save_opportunity(cid)
    oid = state.card(cid).opportunities[0].id
    await state.sync_now()
    stages = state.stages()
    opens = [s for s in stages if s.kind == "open"]

    tree = render(OpportunityScreen, state, oid)
    assert find(tree, key="opp-title").value == "儿童房套装"
    assert "金额 ¥15,600.5" in texts(tree) and "已在本阶段 0 天" in texts(tree)
    for stage in stages:
        assert stage.name_zh in texts(tree)
    assert "阶段记录" in texts(tree)
    await click(find(tree, key=f"stage-{opens[1].code}"))
    tree = render(OpportunityScreen, state, oid)
    assert state.toast == f"已推进到「{opens[1].name_zh}」"
    assert not has(tree, key=f"stage-{opens[1].code}") and has(tree, key=f"stage-{opens[0].code}")

    await click(find(tree, key="stage-lost"))
    tree = render(OpportunityScreen, state, oid)
    assert find(tree, key="sheet-error").value == "输单需要填写原因"
    await change(find(tree, key="sheet-text"), "客户搬家延期")
    await click(find(tree, key="sheet-save"))
    tree = render(OpportunityScreen, state, oid)
    assert "已关闭 · 客户搬家延期" in texts(tree)
    assert not [k for k in (c.key for c in find_all(tree, type=ft.OutlinedButton)) if str(k).startswith("stage-")]
    await state.sync_now()
    tree = render(OpportunityScreen, state, oid)
    history = [t for t in texts(tree) if " 天" in t and " · " in t]
    assert [h.split(" · ")[0] for h in history] == [opens[0].name_zh, opens[1].name_zh, "输单"]

    customer = next(b for b in find_all(tree, type=ft.TextButton) if texts(b) == [state.card(cid).profile["name"]])
    await click(customer)
    assert rep.routes[-1] == f"/customers/{cid}"


# --- messages ---------------------------------------------------------------------------------------------


async def test_the_opportunity_page_edits_amount_and_dates(rep, live_server):
    from tests.test_app_state import Api

    state = rep.state
    cid = own_customer(state, 25)
    state.open_sheet("opportunity")
    state.draft_text, state.draft_amount = "全屋窗帘", "3000"
    assert state.save_opportunity(cid)
    oid = state.card(cid).opportunities[0].id
    await state.sync_now()

    tree = render(OpportunityScreen, state, oid)
    await click(find(tree, key="opp-edit"))
    tree = render(OpportunityScreen, state, oid)
    assert find(tree, key="sheet-amount").value == "3000"
    await change(find(tree, key="sheet-close"), "2026-13-40")
    await click(find(tree, key="sheet-save"))
    tree = render(OpportunityScreen, state, oid)
    assert find(tree, key="sheet-error").value == "日期格式不对：2026-13-40（例如 2026-12-31）"
    assert state.pending == 0  # nothing queued

    await change(find(tree, key="sheet-amount"), "3280.5")
    await change(find(tree, key="sheet-close"), "2027-01-15")
    await change(find(tree, key="sheet-contract"), "2028-01-15")
    await click(find(tree, key="sheet-save"))
    tree = render(OpportunityScreen, state, oid)
    assert state.toast == "商机已更新" and state.pending == 1
    assert "金额 ¥3,280.5" in texts(tree)
    assert "预计成交：2027-01-15" in texts(tree) and "合同到期：2028-01-15" in texts(tree)
    await state.sync_now()
    assert state.pending == 0
    deal = await Api(live_server.url).get(f"/api/opportunities/{oid}")
    assert deal["amount"] == "3280.50"
    assert deal["expected_close_date"] == "2027-01-15" and deal["contract_end_date"] == "2028-01-15"


async def test_messages_show_unread_news_until_read(rep):
    state = rep.state
    state.go("/messages")
    tree = shell(state, MessagesScreen)
    items = state.messages()
    assert items and [c.key for c in find_all(tree, type=ft.ListTile)] == [f"msg-{m.key}" for m in items]
    bar = find(tree, key="nav")
    unread = state.unread()
    messages_icon = bar.destinations[2].icon
    if unread:
        assert messages_icon.badge is not None and messages_icon.badge.label == str(unread)
    assert texts(find(tree, key="messages-read")) == ["全部已读"]
    await click(find(tree, key="messages-read"))
    tree = shell(state, MessagesScreen)
    assert state.unread() == 0 and find(tree, key="nav").destinations[2].icon.badge is None
    for tile in find_all(tree, type=ft.ListTile):
        assert tile.title.weight != ft.FontWeight.BOLD

    target = next(m for m in items if m.customer_id and m.kind != "opportunity")
    await click(find(tree, key=f"msg-{target.key}"))
    assert rep.routes[-1] == f"/customers/{target.customer_id}"


# --- sync -------------------------------------------------------------------------------------------------


async def test_the_sync_page_shows_the_queue_the_user_and_the_server(rep):
    state = rep.state
    tree = shell(state, SyncScreen)
    shown = texts(tree)
    assert "同步状态" in shown and "待上传的修改 · 0" in shown and "没有待上传的修改" in shown
    assert "当前用户：李娜（导购）" in shown and f"服务器：{state.server_url}" in shown
    assert find(tree, key="sync-last").value.startswith("上次同步：")
    cid = own_customer(state, 25)
    assert state.log_visit(cid)
    [entry] = state.replica.pending()
    tree = shell(state, SyncScreen)
    name = state.card(cid).profile["name"]
    assert "待上传的修改 · 1" in texts(tree)
    assert any(t.startswith(f"#{entry.id} 到店 · {name} · ") for t in texts(tree)), texts(tree)
    assert badge(tree) == "待上传 1"


async def test_the_sync_now_button_uploads_the_queue(rep):
    state = rep.state
    assert state.log_visit(own_customer(state, 26))
    tree = render(SyncScreen, state)
    assert "待上传的修改 · 1" in texts(tree)
    await click(find(tree, key="sync-now"))
    assert state.pending == 0 and state.sync_state == "synced"
    assert "没有待上传的修改" in texts(render(SyncScreen, state))


async def test_the_sync_page_says_why_sign_out_was_refused(rep):
    state = rep.state
    assert state.log_visit(own_customer(state, 27))
    await state.logout()  # what the 退出登录 button asks for
    assert state.phase == "ready" and state.toast
    assert state.toast in texts(shell(state, SyncScreen)), "the refusal is not shown where the rep tapped"


async def test_the_sign_out_button_signs_out(live_server, tmp_path):
    phone = await sign_in(live_server.url, tmp_path)
    state = phone.state
    try:
        await click(find(render(SyncScreen, state), key="logout"))
        assert state.phase == "login" and not phone.credentials.exists()
        assert has(render(App, state), key="login-submit")
    finally:
        await state.close()
    no_device_left(tmp_path)


async def test_after_signing_out_the_login_screen_asks_only_for_the_password(live_server, tmp_path):
    phone = await sign_in(live_server.url, tmp_path)
    state = phone.state
    try:
        await state.sync_now()
        await state.logout()
        for app in (state, make_phone(live_server.url, tmp_path).state):  # now, and the app opened again
            if app is not state:
                await app.start()
            tree = render(App, app)
            assert find(tree, key="login-username").value == "rep.bjcy"
            assert find(tree, key="login-server").value == live_server.url
            assert find(tree, key="login-password").value == ""
            await app.close()
    finally:
        await state.close()
    no_device_left(tmp_path)


async def test_the_sync_badge_opens_the_sync_page(rep):
    state = rep.state
    await click(find(shell(state, TodayScreen), key="sync-badge"))
    assert state.route == "/sync" and rep.routes == ["/sync"]


# --- the frame ----------------------------------------------------------------------------------------------


async def test_a_phone_gets_a_bottom_bar_and_a_wide_screen_a_rail(rep):
    state = rep.state
    state.set_wide(390)
    tree = shell(state, TodayScreen)
    bar = find(tree, key="nav")
    assert isinstance(bar, ft.NavigationBar) and not find_all(tree, type=ft.NavigationRail)
    assert [d.label for d in bar.destinations] == ZH_TABS and bar.selected_index == 0
    await choose(bar, 1)
    assert state.route == "/customers" and rep.routes == ["/customers"]
    assert find(shell(state, CustomersScreen), key="nav").selected_index == 1

    state.set_wide(1280)
    tree = shell(state, CustomersScreen)
    rail = find(tree, key="nav")
    assert isinstance(rail, ft.NavigationRail) and not find_all(tree, type=ft.NavigationBar)
    assert [d.label for d in rail.destinations] == ZH_TABS and rail.selected_index == 1
    await choose(rail, 3)
    assert state.route == "/sync" and rep.routes[-1] == "/sync"
    await choose(find(shell(state, SyncScreen), key="nav"), 2)
    assert state.route == "/messages"

    state.set_wide(839)
    assert isinstance(find(shell(state, TodayScreen), key="nav"), ft.NavigationBar)


async def test_the_back_arrow_on_a_card_returns_to_the_list(rep):
    state = rep.state
    cid = own_customer(state, 28)
    state.open_customer(cid)
    tree = shell(state, CardScreen, cid)
    assert find(tree, key="nav").selected_index == 1 and texts(tree)[0] == "客户"
    await click(find(tree, key="back"))
    assert state.route == "/customers" and rep.routes[-1] == "/customers"
    assert not find_all(shell(state, CustomersScreen), key="back")


# --- English ----------------------------------------------------------------------------------------------


async def test_the_screens_speak_english_when_asked(rep):
    state = rep.state
    tree = render(SyncScreen, state)
    english = next(c for c in find_all(tree, type=ft.Chip) if texts(c) == ["English"])
    await select(english)
    assert state.locale == "en"
    # The server writes this user's notifications in English from now on (a synced preference).
    assert [e.name for e in state.outbox()][-1:] == ["prefs.update"] and state.prefs()["language"] == "en"
    await state.sync_now()

    tree = shell(state, TodayScreen)
    shown = texts(tree)
    assert shown[0] == "Today" and "Synced" in shown and "Done" in shown and "Snooze 1 h" in shown
    assert [d.label for d in find(tree, key="nav").destinations] == ["Today", "Customers", "Messages", "Sync"]
    groups = dict(state.today())
    if "stage_reminder" in groups:
        assert f"Stage reminders · {len(groups['stage_reminder'])}" in shown

    cid = customer_with(state, range(20, 53), _rich)
    tree = render(CardScreen, state, cid)
    shown = texts(tree)
    assert any(t.startswith("12 months ¥") for t in shown) and "Call" in shown
    assert [texts(find(tree, key=k)) for k in ("qa-visit", "qa-note", "qa-task")] == [["Visit"], ["Note"], ["Task"]]
    assert any(t.startswith("Purchases · ") for t in shown) and any(t.startswith("Interactions · ") for t in shown)
    chips = [texts(c) for c in find_all(render(CustomersScreen, state), type=ft.Chip)]
    assert chips == [["Mine"], ["High value"], ["Open opportunity"], ["Not contacted 30 days"], ["Win back"]]
    assert sync_label(state) == "Synced"

    tree = render(SyncScreen, state)
    assert "Sync now" in texts(tree) and "Signed in as 李娜 (Rep)" in texts(tree)
    await select(next(c for c in find_all(tree, type=ft.Chip) if texts(c) == ["中文"]))
    assert state.locale == "zh" and "立即同步" in texts(render(SyncScreen, state))


# --- what the screens draw --------------------------------------------------------------------------------


async def test_every_character_the_screens_show_has_a_glyph_in_the_bundled_font(rep):
    """Offline, Flutter has no other font to fall back on: a character the bundled subset lacks
    is a box on the rep's screen. Everything the screens show from the demo store, both languages."""
    from fontTools.ttLib import TTFont

    from tests.test_app_i18n import FONT

    font = TTFont(FONT, lazy=True)
    glyphs = {chr(code) for code in font.getBestCmap()}
    font.close()
    state = rep.state
    customers = [r[0] for r in state.replica.db.execute("SELECT id FROM customers ORDER BY id")]
    deals = [r[0] for r in state.replica.db.execute("SELECT id FROM opportunities ORDER BY id")]
    missing: dict[str, str] = {}
    for locale in ("zh", "en"):
        state.set_locale(locale)
        trees = [shell(state, TodayScreen), render(CustomersScreen, state), render(MessagesScreen, state)]
        trees.append(render(SyncScreen, state))
        trees += [render(CardScreen, state, cid) for cid in customers]
        trees += [render(OpportunityScreen, state, oid) for oid in deals]
        for tree in trees:
            for shown in texts(tree):
                for ch in shown:
                    if ch not in glyphs and not ch.isspace():
                        missing.setdefault(ch, shown)
    assert len(customers) > 100 and deals
    assert missing == {}, f"characters the font cannot draw (where seen): {missing}"


async def test_the_sync_badge_shows_when_the_phone_last_caught_up(rep):
    state = rep.state
    await state.sync_now()
    tree = shell(state, TodayScreen)
    shown = find(tree, key="sync-time").value
    local = times.parse(state.last_synced_at).astimezone(state.time_zone())
    assert shown == local.strftime("%H:%M"), shown


async def test_a_walk_in_customer_is_created_from_the_list_and_a_known_number_is_refused(rep, live_server):
    from tests.test_app_state import Api

    state = rep.state
    state.go("/customers")
    tree = shell(state, CustomersScreen)
    await click(find(tree, key="new-customer"))
    tree = shell(state, CustomersScreen)
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CustomersScreen)
    assert find(tree, key="sheet-error").value == "请填写姓名" and state.pending == 0

    # a number another customer already has: refused, with that customer to open
    known = state.card(state.hits()[0].id)
    number = known.phones[0].number.replace(" ", "")
    await change(find(tree, key="customer-name"), "重复的人")
    await change(find(tree, key="customer-phone"), number)
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CustomersScreen)
    assert find(tree, key="sheet-error").value == f"这个号码已经是客户「{known.profile['name']}」的"
    assert state.pending == 0 and has(tree, key="open-duplicate")

    await change(find(tree, key="customer-phone"), "12345")
    await click(find(tree, key="sheet-save"))
    tree = shell(state, CustomersScreen)
    assert find(tree, key="sheet-error").value == "手机号不对：12345" and state.pending == 0

    await change(find(tree, key="customer-name"), "门店新客 孔雀")
    await change(find(tree, key="customer-phone"), "139 0000 1234")
    await click(find(tree, key="sheet-save"))
    assert state.pending == 1 and state.toast == "已新建客户"
    cid = state.route.rsplit("/", 1)[1]
    card = state.card(cid)
    assert card.profile["name"] == "门店新客 孔雀" and card.profile["owner_id"] == str(state.user.id)
    assert [p.number for p in card.phones] == ["+8613900001234"]
    await state.sync_now()
    assert state.pending == 0
    server_card = await Api(live_server.url).get(f"/api/customers/{cid}")
    assert server_card["profile"]["name"] == "门店新客 孔雀"
    assert [p["number"] for p in server_card["phones"]] == ["+8613900001234"]


async def test_the_card_edits_the_customers_details_and_tags(rep, live_server):
    from tests.test_app_state import Api

    state = rep.state
    cid = own_customer(state, 26)
    card = state.card(cid)
    tree = render(CardScreen, state, cid)
    await click(find(tree, key="edit-profile"))
    tree = render(CardScreen, state, cid)
    assert find(tree, key="profile-name").value == card.profile["name"]
    await change(find(tree, key="profile-email"), "not-an-address")
    await click(find(tree, key="sheet-save"))
    tree = render(CardScreen, state, cid)
    assert find(tree, key="sheet-error").value == "邮箱格式不对：not-an-address" and state.pending == 0

    await change(find(tree, key="profile-email"), "kehu@example.com")
    await change(find(tree, key="profile-address"), "朝阳区望京街 9 号 3 单元")
    await click(find(tree, key="sheet-save"))
    tree = render(CardScreen, state, cid)
    assert state.toast == "资料已保存" and state.pending == 1
    assert "朝阳区望京街 9 号 3 单元" in texts(tree)

    await click(find(tree, key="add-tag"))
    tree = render(CardScreen, state, cid)
    await change(find(tree, key="sheet-text"), "爱买床品")
    await click(find(tree, key="sheet-save"))
    tree = render(CardScreen, state, cid)
    assert state.toast == "已加标签：爱买床品" and state.pending == 2
    tag = next(t for t in state.card(cid).tags if t["tag"] == "爱买床品")
    assert "爱买床品" in texts(find(tree, key=f"tag-{tag['id']}"))
    await state.sync_now()
    assert state.pending == 0
    server = await Api(live_server.url).get(f"/api/customers/{cid}")
    assert server["profile"]["email"] == "kehu@example.com"
    assert server["profile"]["address"] == "朝阳区望京街 9 号 3 单元"
    assert "爱买床品" in [t["tag"] if isinstance(t, dict) else t for t in server["tags"]]

    chip = find(render(CardScreen, state, cid), key=f"tag-{tag['id']}")
    chip.on_delete(ft.Event(name="delete", control=chip))
    assert state.toast == "已删除标签：爱买床品" and "爱买床品" not in [t["tag"] for t in state.card(cid).tags]
    await state.sync_now()
    server = await Api(live_server.url).get(f"/api/customers/{cid}")
    assert "爱买床品" not in [t["tag"] if isinstance(t, dict) else t for t in server["tags"]]
