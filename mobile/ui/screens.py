"""Login, Today, Customers, Messages and Sync: each a component of the observable state."""

from __future__ import annotations

import asyncio

import flet as ft

from mobile import queries
from mobile.i18n import CATALOGUES
from mobile.state import FILTERS, AppState, money
from mobile.ui.common import Field, ago, header, local_time, muted, pill, sync_badge, sync_label
from mobile.ui.imports import import_panel
from shared import kb
from shared.phones import display as display_phone

BIG = 48  # minimum height of a tap target (one-handed use)
SEARCH_LIMIT = 50  # what queries.search_customers returns at most


# --- login --------------------------------------------------------------------------------------


@ft.component
def LoginScreen(state: AppState) -> ft.Control:
    async def submit(e=None):
        await state.login()

    return ft.Container(
        ft.Column(
            [
                ft.Icon(ft.Icons.STOREFRONT, size=56, color=ft.Colors.BLUE_700),
                ft.Text(state.tr("app.title"), size=28, weight=ft.FontWeight.BOLD),
                muted(state.tr("login.subtitle")),
                Field(
                    "login-username",
                    state.tr("login.username"),
                    state.seed_username,
                    state.set_username,
                    autofocus=True,
                ),
                Field(
                    "login-password",
                    state.tr("login.password"),
                    "",
                    state.set_password,
                    password=True,
                    on_submit=state.login,
                ),
                Field("login-server", state.tr("login.server"), state.seed_server, state.set_server_url, url=True),
                *(
                    [ft.Text(state.login_error, color=ft.Colors.RED_700, key="login-error")]
                    if state.login_error
                    else []
                ),
                ft.FilledButton(
                    key="login-submit",
                    content=ft.Text(state.tr("login.syncing") if state.busy else state.tr("login.submit")),
                    on_click=submit,
                    disabled=state.busy,
                    height=BIG,
                    width=320,
                ),
                ft.Row(
                    [
                        ft.TextButton(content=ft.Text("中文"), on_click=lambda e: state.set_locale("zh")),
                        ft.TextButton(content=ft.Text("English"), on_click=lambda e: state.set_locale("en")),
                    ],
                    alignment=ft.MainAxisAlignment.CENTER,
                ),
            ],
            horizontal_alignment=ft.CrossAxisAlignment.CENTER,
            spacing=14,
            width=360,
        ),
        alignment=ft.Alignment.CENTER,
        padding=24,
        expand=True,
    )


# --- today ----------------------------------------------------------------------------------------


def task_tile(state: AppState, task: queries.TaskView) -> ft.Control:
    due = (
        state.tr("today.overdue")
        if task.overdue
        else state.tr("today.due", time=local_time(state, task.due_at, "%H:%M"))
    )
    subtitle = " · ".join(x for x in (task.customer_name, due) if x)
    actions: list[ft.Control] = [
        ft.FilledButton(
            key=f"complete-{task.id}",
            content=ft.Text(state.tr("today.complete")),
            on_click=lambda e: state.complete_task(task),
            height=40,
        ),
        ft.OutlinedButton(
            key=f"snooze-{task.id}",
            content=ft.Text(state.tr("today.snooze")),
            on_click=lambda e: state.snooze_task(task, "1h"),
            height=40,
            tooltip=state.tr("today.snooze_1h"),
        ),
        ft.OutlinedButton(
            key=f"snooze-tomorrow-{task.id}",
            content=ft.Text(state.tr("today.snooze_tomorrow")),
            on_click=lambda e: state.snooze_task(task, "tomorrow"),
            height=40,
        ),
    ]
    if task.customer_id:
        actions.append(
            ft.TextButton(
                key=f"customer-{task.id}",
                content=ft.Text(state.tr("today.open_customer")),
                on_click=lambda e: state.open_customer(task.customer_id),
                height=40,
            )
        )
    return ft.Container(
        ft.Column(
            [
                ft.Row(
                    [
                        ft.Text(task.title, size=15, weight=ft.FontWeight.W_600, expand=True),
                        *([pill(state.tr("card.pending"), ft.Colors.ORANGE_800)] if task.pending else []),
                    ]
                ),
                ft.Text(subtitle, size=13, color=ft.Colors.RED_700 if task.overdue else ft.Colors.GREY_700),
                ft.Row(actions, spacing=8, wrap=True),
            ],
            spacing=4,
        ),
        padding=12,
        border_radius=12,
        bgcolor=ft.Colors.with_opacity(0.04, ft.Colors.BLUE_GREY_900),
        key=f"task-{task.id}",
    )


@ft.component
def TodayScreen(state: AppState) -> ft.Control:
    groups = state.today()
    rows: list[ft.Control] = [header(state.tr("today.title"))]
    if not groups:
        rows.append(muted(state.tr("today.empty")))
    for kind, tasks in groups:
        rows.append(
            header(f"{state.tr('group.' + kind) if 'group.' + kind in CATALOGUES['zh'] else kind} · {len(tasks)}")
        )
        rows.extend(task_tile(state, task) for task in tasks)
    upcoming = state.upcoming()
    if upcoming:
        rows.append(header(f"{state.tr('today.upcoming')} · {len(upcoming)}"))
        rows.extend(task_tile(state, task) for task in upcoming)
    return ft.Column(rows, spacing=8, scroll=ft.ScrollMode.AUTO, expand=True)


# --- customers ------------------------------------------------------------------------------------

FILTER_KEYS = {
    "mine": "filter.mine",
    "high_value": "filter.high_value",
    "open_opportunity": "filter.open_opportunity",
    "not_contacted": "filter.not_contacted",
    "win_back": "filter.win_back",
}


def new_customer_sheet(state: AppState) -> ft.Control:
    rows: list[ft.Control] = [
        Field("customer-name", state.tr("walkin.name"), "", state.set_draft_text, autofocus=True),
        Field("customer-phone", state.tr("walkin.phone"), "", state.set_draft_phone, phone=True),
    ]
    if state.sheet_error:
        rows.append(ft.Text(state.sheet_error, color=ft.Colors.RED_700, key="sheet-error"))
    buttons: list[ft.Control] = [
        ft.FilledButton(
            key="sheet-save", content=ft.Text(state.tr("action.save")), on_click=lambda e: state.save_customer()
        ),
        ft.TextButton(
            key="sheet-cancel", content=ft.Text(state.tr("action.cancel")), on_click=lambda e: state.close_sheet()
        ),
    ]
    if state.duplicate_id:
        card = state.card(state.duplicate_id)
        name = card.profile["name"] if card else ""
        buttons.append(
            ft.OutlinedButton(
                key="open-duplicate",
                content=ft.Text(state.tr("walkin.open_duplicate", name=name)),
                on_click=lambda e, cid=state.duplicate_id: state.open_customer(cid),
            )
        )
    rows.append(ft.Row(buttons, wrap=True, spacing=8))
    return ft.Container(
        ft.Column(rows, spacing=8),
        padding=12,
        border_radius=12,
        border=ft.Border.all(1, ft.Colors.BLUE_200),
        key="sheet",
    )


@ft.component
def CustomersScreen(state: AppState) -> ft.Control:
    hits = state.hits()
    chips = [
        ft.Chip(
            key=f"filter-{name}",
            label=ft.Text(state.tr(FILTER_KEYS[name])),
            selected=name in state.filters,
            on_select=lambda e, name=name: state.toggle_filter(name),
        )
        for name in FILTERS
    ]
    rows: list[ft.Control] = [
        ft.Row(
            [
                ft.Container(
                    Field(
                        "customer-search",
                        state.tr("customers.search"),
                        state.seed_query,
                        state.search,
                        icon=ft.Icons.SEARCH,
                    ),
                    expand=True,
                ),
                ft.FilledButton(
                    key="new-customer",
                    icon=ft.Icons.PERSON_ADD,
                    content=ft.Text(state.tr("walkin.new")),
                    on_click=lambda e: state.new_customer(),
                    height=BIG,
                ),
            ]
        ),
        *([new_customer_sheet(state)] if state.sheet == "customer" else []),
        ft.Row(chips, wrap=True, spacing=6),
        muted(
            state.tr("customers.first", count=len(hits))
            if len(hits) >= SEARCH_LIMIT
            else state.tr("customers.count", count=len(hits))
            if hits
            else state.tr("customers.none")
        ),
    ]
    for hit in hits:
        rows.append(
            ft.ListTile(
                key=f"hit-{hit.id}",
                title=ft.Text(hit.name, weight=ft.FontWeight.W_600),
                subtitle=ft.Text(" · ".join(x for x in (display_phone(hit.phone), " ".join(hit.tags[:3])) if x)),
                leading=ft.CircleAvatar(content=ft.Text(hit.name[:1])),
                on_click=lambda e, cid=hit.id: state.open_customer(cid),
                min_height=BIG,
            )
        )
    return ft.Column(rows, spacing=6, scroll=ft.ScrollMode.AUTO, expand=True)


# --- messages -------------------------------------------------------------------------------------


def message_text(state: AppState, m: queries.MessageView) -> str:
    if m.kind == "notice":  # written by the server in the user's language
        return m.title
    v = m.values
    customer = m.customer_name or state.tr("common.unknown")
    if m.kind == "new_task":
        return state.tr("msg.new_task", title=v["title"])
    if m.kind == "reminder":
        return state.tr("msg.reminder", title=v["title"])
    if m.kind == "interaction":
        return state.tr("msg.interaction", customer=customer, kind=state.tr(f"kind.{v['kind']}"))
    if m.kind == "complaint":
        return state.tr("msg.complaint", customer=customer, category=category_text(state, v["category"]))
    if m.kind == "order":
        channel = state.tr(f"channel.{v['channel']}") if v.get("channel") else ""
        return state.tr("msg.order", customer=customer, amount=money(v["amount"]), channel=channel)
    return state.tr("msg.opportunity", customer=customer, title=v.get("title", ""))


def category_text(state: AppState, code: str | None) -> str:
    key = f"category.{code}"
    return state.tr(key) if key in CATALOGUES["zh"] else (code or "")


def outbox_text(state: AppState, entry) -> str:
    """'#3 记到店 · 赵小红 · 12-01 13:54': what the edit is and whom it is about."""
    args = entry.args
    what = state.tr(f"mut.{entry.name}") if f"mut.{entry.name}" in CATALOGUES["zh"] else entry.name
    if entry.name == "interaction.log" and f"kind.{args.get('kind')}" in CATALOGUES["zh"]:
        what = state.tr(f"kind.{args['kind']}")
    about = state.subject_of(entry)
    return " · ".join(x for x in (f"#{entry.id} {what}", about, local_time(state, entry.created_at)) if x)


def conflict_text(state: AppState, c) -> str:
    if c.kind == "lost_field":
        who = c.kept_by_name or state.tr("conflict.someone")
        return state.tr("conflict.field", field=c.field, mine=c.my_value or "", who=who, theirs=c.kept_value or "")
    return state.tr("conflict.rejected", name=c.mutation or "", reason=c.reason or "")


@ft.component
def MessagesScreen(state: AppState) -> ft.Control:
    items = state.messages()
    conflicts = [c for c in state.conflicts() if not c.seen]
    rows: list[ft.Control] = [
        header(
            state.tr("messages.title"),
            ft.TextButton(
                key="messages-read",
                content=ft.Text(state.tr("messages.read_all")),
                on_click=lambda e: state.mark_messages_read(),
            ),
        )
    ]
    for c in conflicts:
        rows.append(
            ft.ListTile(
                leading=ft.Icon(ft.Icons.WARNING_AMBER, color=ft.Colors.ORANGE_800),
                title=ft.Text(state.tr("msg.conflict", text=conflict_text(state, c))),
                subtitle=ft.Text(local_time(state, c.at)),
                on_click=(lambda e, cid=c.customer_id: state.open_customer(cid)) if c.customer_id else None,
            )
        )
    if not items and not conflicts:
        rows.append(muted(state.tr("messages.empty")))
    icons = {
        "task_assigned": ft.Icons.ASSIGNMENT,
        "nudge": ft.Icons.ASSIGNMENT_LATE,
        "reminder": ft.Icons.ALARM,
        "task_due": ft.Icons.ALARM_ON,
        "interaction": ft.Icons.TOUCH_APP,
        "complaint": ft.Icons.REPORT_PROBLEM,
        "complaint_sla": ft.Icons.CRISIS_ALERT,
        "order": ft.Icons.SHOPPING_BAG,
        "stage_moved": ft.Icons.TRENDING_UP,
        "reassigned": ft.Icons.SWAP_HORIZ,
        "digest": ft.Icons.INBOX,
    }
    for m in items:
        kind = m.notice_kind or m.kind
        when = ago(state, m.at)
        rows.append(
            ft.ListTile(
                key=f"msg-{m.key}",
                leading=ft.Icon(
                    icons.get(kind, ft.Icons.NOTIFICATIONS),
                    color=ft.Colors.RED_700 if m.critical else ft.Colors.BLUE_700 if m.unread else None,
                ),
                title=ft.Text(message_text(state, m), weight=ft.FontWeight.BOLD if m.unread else None),
                subtitle=ft.Text(f"{m.body} · {when}" if m.body else when),
                on_click=lambda e, m=m: state.open_message(m),
            )
        )
    return ft.Column(rows, spacing=2, scroll=ft.ScrollMode.AUTO, expand=True)


# --- sync -----------------------------------------------------------------------------------------


def _sync_now(state: AppState):
    async def handler(e: ft.Event) -> None:  # Flet awaits only `async def` handlers
        await state.sync_now()

    return handler


def _logout(state: AppState):
    async def handler(e: ft.Event) -> None:
        await state.logout()

    return handler


PUSH_KINDS = ("task_assigned", "reminder", "task_due", "order", "complaint", "stage_moved")
BUDGETS = (5, 10, 20, 50)


def notification_settings(state: AppState) -> list[ft.Control]:
    """Quiet hours, the daily push budget and the kinds pushed (synced: the same on every device)."""
    if not state.feature_on("push"):  # not switched on for the store: nothing to set
        return []
    prefs = state.prefs()
    quiet = bool(prefs["quiet_start"])
    muted_kinds = set(prefs["muted_kinds"])
    return [
        header(state.tr("push.title")),
        ft.Switch(
            key="prefs-quiet",
            label=state.tr("push.quiet"),
            value=quiet,
            on_change=lambda e: state.set_quiet_hours(not quiet),
        ),
        ft.Text(state.tr("push.budget", count=prefs["daily_budget"]), size=13),
        ft.Row(
            [
                ft.Chip(
                    key=f"prefs-budget-{n}",
                    label=ft.Text(str(n)),
                    selected=int(prefs["daily_budget"]) == n,
                    on_select=lambda e, n=n: state.set_budget(n),
                )
                for n in BUDGETS
            ],
            wrap=True,
        ),
        ft.Text(state.tr("push.kinds"), size=13),
        ft.Row(
            [
                ft.Chip(
                    key=f"prefs-kind-{kind}",
                    label=ft.Text(state.tr(f"notice.{kind}")),
                    selected=kind not in muted_kinds,
                    on_select=lambda e, kind=kind: state.toggle_muted(kind),
                )
                for kind in PUSH_KINDS
            ],
            wrap=True,
        ),
    ]


@ft.component
def SyncScreen(state: AppState) -> ft.Control:
    user = state.user
    rows: list[ft.Control] = [
        header(state.tr("sync.title")),
        ft.Row([sync_badge(state)]),
        ft.Text(
            state.tr("sync.last", time=local_time(state, state.last_synced_at, "%Y-%m-%d %H:%M"))
            if state.last_synced_at
            else state.tr("sync.never"),
            key="sync-last",
        ),
    ]
    if state.sync_error and state.sync_state in ("offline", "error"):
        rows.append(ft.Text(state.tr(f"sync.reason.{state.sync_state}"), color=ft.Colors.RED_700, size=13))
        rows.append(muted(state.tr("sync.error_detail", message=state.sync_error)))
    rows.append(
        ft.FilledButton(key="sync-now", content=ft.Text(state.tr("sync.now")), on_click=_sync_now(state), height=BIG)
    )
    rows.append(header(f"{state.tr('sync.queue')} · {len(state.outbox())}"))
    outbox = state.outbox()
    if not outbox:
        rows.append(muted(state.tr("sync.queue_empty")))
    for entry in outbox[:50]:
        rows.append(ft.Text(outbox_text(state, entry), size=13))
    conflicts = state.conflicts()
    rows.append(header(f"{state.tr('sync.conflicts')} · {len(conflicts)}"))
    if not conflicts:
        rows.append(muted(state.tr("sync.conflicts_empty")))
    for c in conflicts[:50]:
        rows.append(ft.Text(f"{local_time(state, c.at)} · {conflict_text(state, c)}", size=13))
    if user is not None:
        rows += [
            header(state.tr("sync.language")),
            ft.Row(
                [
                    ft.Chip(
                        label=ft.Text("中文"),
                        selected=state.locale == "zh",
                        on_select=lambda e: state.choose_language("zh"),
                    ),
                    ft.Chip(
                        label=ft.Text("English"),
                        selected=state.locale == "en",
                        on_select=lambda e: state.choose_language("en"),
                    ),
                ]
            ),
            *notification_settings(state),
            muted(state.tr("sync.user", name=user.display_name, role=state.tr(f"role.{user.role.value}"))),
            muted(state.tr("sync.server", url=state.server_url)),
            ft.OutlinedButton(key="logout", content=ft.Text(state.tr("sync.logout")), on_click=_logout(state)),
        ]
    return ft.Column(rows, spacing=8, scroll=ft.ScrollMode.AUTO, expand=True)


def _refresh_desk(state: AppState):
    async def handler(e: ft.Event) -> None:
        await state.load_desk()

    return handler


def _resume(state: AppState, job_id: str):
    async def handler(e: ft.Event) -> None:
        await state.resume_import(job_id)

    return handler


def _decide(state: AppState, candidate_id: str, decision: str):
    async def handler(e: ft.Event) -> None:
        await state.decide_duplicate(candidate_id, decision)

    return handler


@ft.component
def DeskScreen(state: AppState) -> ft.Control:
    """A file to import (mapped, tried, imported), the recent imports with their progress and counts,
    and the possible duplicates to decide (managers)."""
    ft.use_effect(lambda: asyncio.ensure_future(state.load_desk()), [])
    rows: list[ft.Control] = [
        header(
            state.tr("desk.title"),
            ft.TextButton(key="desk-refresh", content=ft.Text(state.tr("desk.refresh")), on_click=_refresh_desk(state)),
        )
    ]
    if state.desk_error:
        rows.append(ft.Text(state.desk_error, color=ft.Colors.RED_700, key="desk-error"))
    rows.extend(import_panel(state))
    rows.append(header(state.tr("desk.imports")))
    if not state.desk_imports:
        rows.append(muted(state.tr("desk.no_imports")))
    for job in state.desk_imports:
        total = max(int(job["total_rows"]), int(job["next_row"]), 1)
        status = state.tr(f"desk.status.{job['status']}") if job["status"] in ("running", "done", "failed") else ""
        rows.append(
            ft.Column(
                [
                    ft.Text(
                        state.tr(
                            "desk.job",
                            file=job["file_name"],
                            status=status,
                            done=job["next_row"],
                            total=job["total_rows"],
                        ),
                        weight=ft.FontWeight.BOLD,
                    ),
                    ft.ProgressBar(value=min(1.0, int(job["next_row"]) / total)),
                    muted(
                        state.tr(
                            "desk.counts",
                            **{k: job[k] for k in ("created", "updated", "unchanged", "merged", "rejected", "review")},
                        )
                    ),
                    *(
                        [
                            muted(job.get("error") or ""),
                            ft.OutlinedButton(
                                key=f"resume-{job['id']}",
                                content=ft.Text(state.tr("desk.resume")),
                                icon=ft.Icons.PLAY_ARROW,
                                on_click=_resume(state, job["id"]),
                            ),
                        ]
                        if job["status"] == "failed" and job.get("resumable")
                        else []
                    ),
                ],
                key=f"job-{job['id']}",
                spacing=2,
            )
        )
    rows.append(header(state.tr("desk.candidates", count=len(state.desk_candidates))))
    if not state.desk_candidates:
        rows.append(muted(state.tr("desk.no_candidates")))
    for pair in state.desk_candidates:
        rows.append(
            ft.Column(
                [
                    ft.Text(state.tr("desk.pair", a=pair["name_a"], b=pair["name_b"], score=f"{pair['score']:.2f}")),
                    muted(" · ".join(pair["reasons"][:4])),
                    ft.Row(
                        [
                            ft.FilledButton(
                                key=f"merge-{pair['id']}",
                                content=ft.Text(state.tr("desk.merge")),
                                on_click=_decide(state, pair["id"], "merge"),
                            ),
                            ft.OutlinedButton(
                                key=f"distinct-{pair['id']}",
                                content=ft.Text(state.tr("desk.distinct")),
                                on_click=_decide(state, pair["id"], "distinct"),
                            ),
                        ]
                    ),
                ],
                key=f"pair-{pair['id']}",
                spacing=4,
            )
        )
    return ft.Column(rows, spacing=8, scroll=ft.ScrollMode.AUTO, expand=True)


__all__ = ["CustomersScreen", "DeskScreen", "LoginScreen", "MessagesScreen", "SyncScreen", "TodayScreen", "sync_label"]


@ft.component
def KbScreen(state: AppState) -> ft.Control:
    """知识库: return policy, product care, delivery, warranty, service — searched on the phone
    (shared/kb.py), so it answers in a shop without network. A tap opens an article in place."""
    hits = state.kb_hits()
    english = state.locale == "en"
    rows: list[ft.Control] = [
        Field("kb-search", state.tr("kb.search"), state.kb_query, state.kb_search, icon=ft.Icons.SEARCH),
        ft.Row(
            [
                ft.Chip(
                    key=f"kb-topic-{topic}",
                    label=ft.Text(state.tr(f"kb.topic.{topic}")),
                    selected=state.kb_topic == topic,
                    on_select=lambda e, topic=topic: state.kb_choose_topic(topic),
                )
                for topic in kb.TOPICS
            ],
            wrap=True,
            spacing=6,
        ),
    ]
    if not hits:
        rows.append(muted(state.tr("kb.none")))
    for article in hits:
        title = article.title_en if english and article.title_en else article.title
        opened = state.kb_open == article.id
        item: list[ft.Control] = [
            ft.Row(
                [
                    ft.Icon(ft.Icons.MENU_BOOK, size=18, color=ft.Colors.BLUE_700),
                    ft.Text(title, weight=ft.FontWeight.BOLD, expand=True),
                    muted(state.tr(f"kb.topic.{article.topic}")),
                ]
            )
        ]
        if opened:
            item.append(ft.Text(article.body, size=14, key=f"kb-body-{article.code}"))
            if article.tags:
                item.append(muted(" · ".join(article.tags.split(","))))
        rows.append(
            ft.Container(
                ft.Column(item, spacing=4),
                key=f"kb-{article.code}",
                padding=10,
                border_radius=8,
                border=ft.Border.all(1, ft.Colors.BLUE_200 if opened else ft.Colors.GREY_300),
                on_click=lambda e, a=article.id: state.kb_toggle(a),
            )
        )
    return ft.Column(rows, scroll=ft.ScrollMode.AUTO, expand=True, spacing=8)
