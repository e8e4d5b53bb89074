"""The app's frame: login or the signed-in shell (title, sync badge, navigation), and the routes.

Phone width: a bottom navigation bar; wide screens (≥ 840 px, the managers' desk): a navigation
rail on the left, with room beside it for the managers' views that a later issue adds.
"""

from __future__ import annotations

import flet as ft

from mobile.state import AppState
from mobile.ui.card import CardScreen, OpportunityScreen
from mobile.ui.common import sync_badge
from mobile.ui.desktop import BoardScreen, ReportsScreen, RolloutScreen, feedback_sheet
from mobile.ui.screens import (
    CustomersScreen,
    DeskScreen,
    KbScreen,
    LoginScreen,
    MessagesScreen,
    SyncScreen,
    TodayScreen,
)

TABS = (
    ("/", "nav.today", ft.Icons.TODAY_OUTLINED, ft.Icons.TODAY),
    ("/customers", "nav.customers", ft.Icons.PEOPLE_OUTLINE, ft.Icons.PEOPLE),
    ("/messages", "nav.messages", ft.Icons.NOTIFICATIONS_OUTLINED, ft.Icons.NOTIFICATIONS),
    ("/sync", "nav.sync", ft.Icons.CLOUD_OUTLINED, ft.Icons.CLOUD),
)
# Managers only: the desktop (the board and reports on wide screens), imports, the roll-out.
DESK_TABS = (
    ("/board", "nav.board", ft.Icons.VIEW_KANBAN_OUTLINED, ft.Icons.VIEW_KANBAN),
    ("/reports", "nav.reports", ft.Icons.INSIGHTS_OUTLINED, ft.Icons.INSIGHTS),
    ("/desk", "nav.desk", ft.Icons.UPLOAD_FILE_OUTLINED, ft.Icons.UPLOAD_FILE),
    ("/rollout", "nav.rollout", ft.Icons.FLAG_OUTLINED, ft.Icons.FLAG),
)


def tabs(state: AppState) -> tuple:
    return (*TABS, *DESK_TABS) if state.is_manager else TABS


def tab_index(route: str, shown: tuple = (*TABS, *DESK_TABS)) -> int:
    if route.startswith("/opportunities"):
        route = "/customers"
    for i, (path, *_) in enumerate(shown):
        if path != "/" and route.startswith(path):
            return i
    return 0


def _icon(state: AppState, index: int, icon: str) -> ft.Control:
    unread = state.unread() if index == 2 else 0
    return ft.Icon(icon, badge=ft.Badge(label=str(unread)) if unread else None)


def banner(state: AppState) -> ft.Control:
    b = state.banner or {}
    critical = b.get("critical")
    return ft.Container(
        ft.Row(
            [
                ft.Icon(
                    ft.Icons.CRISIS_ALERT if critical else ft.Icons.NOTIFICATIONS_ACTIVE,
                    color=ft.Colors.RED_700 if critical else ft.Colors.BLUE_800,
                ),
                ft.Column(
                    [
                        ft.Text(b.get("title", ""), weight=ft.FontWeight.BOLD, key="banner-title"),
                        *([ft.Text(b["body"], size=13)] if b.get("body") else []),
                    ],
                    spacing=0,
                    expand=True,
                ),
                ft.TextButton(
                    key="banner-open", content=ft.Text(state.tr("banner.open")), on_click=lambda e: state.open_banner()
                ),
                ft.IconButton(
                    ft.Icons.CLOSE,
                    key="banner-close",
                    tooltip=state.tr("banner.close"),
                    on_click=lambda e: state.dismiss_banner(),
                ),
            ]
        ),
        key="banner",
        padding=ft.Padding.symmetric(horizontal=12, vertical=6),
        border_radius=8,
        bgcolor=ft.Colors.with_opacity(0.12, ft.Colors.RED_700 if critical else ft.Colors.BLUE_700),
    )


def _open_feedback(state: AppState):
    async def handler(e: ft.Event) -> None:
        await state.open_feedback()

    return handler


@ft.component
def Shell(state: AppState, body: ft.Control) -> ft.Control:
    shown = tabs(state)
    index = tab_index(state.route, shown)

    def choose(e: ft.Event) -> None:
        state.go(shown[int(e.control.selected_index)][0])

    top = ft.Container(
        ft.Row(
            [
                *(
                    [
                        ft.IconButton(
                            ft.Icons.ARROW_BACK,
                            key="back",
                            tooltip=state.tr("common.back"),
                            on_click=lambda e: state.go("/customers"),
                        )
                    ]
                    if state.route.count("/") > 1
                    else []
                ),
                ft.Text(
                    state.tr("kb.title" if state.route.startswith("/kb") else shown[index][1]),
                    size=20,
                    weight=ft.FontWeight.BOLD,
                    expand=True,
                ),
                ft.Semantics(  # a name for screen readers (and the browser tests): an icon alone has none
                    content=ft.IconButton(
                        ft.Icons.MENU_BOOK_OUTLINED,
                        key="kb-open",
                        tooltip=state.tr("kb.title"),
                        on_click=lambda e: state.go("/kb"),
                    ),
                    label=state.tr("kb.title"),
                    button=True,
                ),
                *(
                    [
                        ft.IconButton(
                            ft.Icons.FEEDBACK_OUTLINED,
                            key="feedback-open",
                            tooltip=state.tr("feedback.title"),
                            on_click=_open_feedback(state),
                        )
                    ]
                    if state.feature_on("feedback")
                    else []
                ),
                sync_badge(state),
            ]
        ),
        padding=ft.Padding.only(left=12, right=12, top=8, bottom=4),
    )
    column: list[ft.Control] = []
    if state.banner:  # a notification that just arrived, or a task that came due: no tap needed to see it
        column.append(banner(state))
    if state.toast:  # what the last action did (or why it did not), on every screen
        column.append(
            ft.Container(
                ft.Text(state.toast, color=ft.Colors.GREEN_900, key="toast"),
                padding=ft.Padding.symmetric(horizontal=12, vertical=6),
                bgcolor=ft.Colors.with_opacity(0.08, ft.Colors.GREEN_700),
                on_click=lambda e: state.dismiss_toast(),
            )
        )
    if state.feedback_open:
        column.append(feedback_sheet(state))
    column.append(ft.Screenshot(body, ref=state.screen_ref, expand=True))
    content = ft.Container(
        ft.Column(column, expand=True, spacing=4), padding=ft.Padding.symmetric(horizontal=12), expand=True
    )
    if state.wide:
        rail = ft.NavigationRail(
            key="nav",
            selected_index=index,
            label_type=ft.NavigationRailLabelType.ALL,
            destinations=[
                ft.NavigationRailDestination(icon=_icon(state, i, icon), selected_icon=selected, label=state.tr(label))
                for i, (_, label, icon, selected) in enumerate(shown)
            ],
            on_change=choose,
        )
        return ft.Row(
            [rail, ft.VerticalDivider(width=1), ft.Column([top, content], expand=True, spacing=0)],
            expand=True,
            spacing=0,
        )
    bar = ft.NavigationBar(
        key="nav",
        selected_index=index,
        destinations=[
            ft.NavigationBarDestination(icon=_icon(state, i, icon), selected_icon=selected, label=state.tr(label))
            for i, (_, label, icon, selected) in enumerate(shown)
        ],
        on_change=choose,
    )
    return ft.Column([top, content, bar], expand=True, spacing=0)


@ft.component
def CardRoute(state: AppState) -> ft.Control:
    return Shell(state, CardScreen(state, ft.use_route_params()["id"]))


@ft.component
def OpportunityRoute(state: AppState) -> ft.Control:
    return Shell(state, OpportunityScreen(state, ft.use_route_params()["id"]))


@ft.component
def App(state: AppState) -> ft.Control:
    if state.phase == "starting":
        return ft.Container(ft.ProgressRing(), alignment=ft.Alignment.CENTER, expand=True)
    if state.phase == "login":
        return LoginScreen(state)
    return ft.Router(
        [
            ft.Route(index=True, component=lambda: Shell(state, TodayScreen(state))),
            ft.Route(path="customers", component=lambda: Shell(state, CustomersScreen(state))),
            ft.Route(path="customers/:id", component=lambda: CardRoute(state)),
            ft.Route(path="opportunities/:id", component=lambda: OpportunityRoute(state)),
            ft.Route(path="messages", component=lambda: Shell(state, MessagesScreen(state))),
            ft.Route(path="sync", component=lambda: Shell(state, SyncScreen(state))),
            ft.Route(path="kb", component=lambda: Shell(state, KbScreen(state))),
            ft.Route(path="desk", component=lambda: Shell(state, DeskScreen(state))),
            ft.Route(path="board", component=lambda: Shell(state, BoardScreen(state))),
            ft.Route(path="reports", component=lambda: Shell(state, ReportsScreen(state))),
            ft.Route(path="rollout", component=lambda: Shell(state, RolloutScreen(state))),
        ],
        not_found=lambda: Shell(state, TodayScreen(state)),
    )
