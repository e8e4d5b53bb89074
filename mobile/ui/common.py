"""Pieces every screen uses: the sync badge, section headers, times and money in the rep's words."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from typing import Any

import flet as ft

from mobile import times
from mobile.state import AppState

SYNC_COLOURS = {
    "synced": ft.Colors.GREEN_700,
    "syncing": ft.Colors.BLUE_700,
    "pending": ft.Colors.ORANGE_800,
    "offline": ft.Colors.GREY_700,
    "error": ft.Colors.RED_700,
    "signed_out": ft.Colors.RED_700,
}
SYNC_ICONS = {
    "synced": ft.Icons.CLOUD_DONE,
    "syncing": ft.Icons.CLOUD_SYNC,
    "pending": ft.Icons.CLOUD_UPLOAD,
    "offline": ft.Icons.CLOUD_OFF,
    "error": ft.Icons.ERROR_OUTLINE,
    "signed_out": ft.Icons.LOCK,
}


def sync_label(state: AppState) -> str:
    """'已同步' / '待上传 2' / '离线 · 待上传 2' …: the state and, when edits wait, how many."""
    sync = state.sync_state
    if sync in ("synced", "pending") and state.pending:
        return state.tr("sync.pending", count=state.pending)
    label = state.tr(f"sync.{'synced' if sync == 'pending' else sync}")
    if state.pending and sync in ("offline", "error", "syncing"):
        label += " · " + state.tr("sync.pending", count=state.pending)
    return label


def local_time(state: AppState, text: str | None, fmt: str = "%m-%d %H:%M") -> str:
    if not text:
        return state.tr("opp.none")
    return times.parse(text).astimezone(state.time_zone()).strftime(fmt)


def ago(state: AppState, text: str | None) -> str:
    if not text:
        return state.tr("sync.never")
    seconds = (state.now() - times.parse(text)).total_seconds()
    if seconds < 60:
        return state.tr("time.just_now")
    if seconds < 3600:
        return state.tr("time.minutes", n=int(seconds // 60))
    if seconds < 86400:
        return state.tr("time.hours", n=int(seconds // 3600))
    return state.tr("time.days", n=int(seconds // 86400))


def last_sync_time(state: AppState) -> str:
    """'13:54' today, '11-30 13:54' before."""
    moment = times.parse(state.last_synced_at).astimezone(state.time_zone())
    today = state.now().astimezone(state.time_zone()).date()
    return moment.strftime("%H:%M" if moment.date() == today else "%m-%d %H:%M")


def sync_badge(state: AppState) -> ft.Control:
    """Always on screen: tap it for the sync page."""
    colour = SYNC_COLOURS.get(state.sync_state, ft.Colors.GREY_700)
    words: list[ft.Control] = [
        ft.Text(sync_label(state), color=colour, size=13, weight=ft.FontWeight.W_600, key="sync-label")
    ]
    if state.last_synced_at:  # when the phone last caught up: a clock time, so it never goes stale
        words.append(ft.Text(last_sync_time(state), color=colour, size=10, key="sync-time"))
    return ft.Container(
        key="sync-badge",
        content=ft.Row(
            [
                ft.Icon(SYNC_ICONS.get(state.sync_state, ft.Icons.CLOUD), color=colour, size=18),
                ft.Column(words, spacing=0, tight=True),
            ],
            spacing=4,
            tight=True,
        ),
        padding=ft.Padding.symmetric(horizontal=10, vertical=6),
        border_radius=16,
        bgcolor=ft.Colors.with_opacity(0.08, colour),
        on_click=lambda e: state.go("/sync"),
        tooltip=state.tr("sync.last", time=ago(state, state.last_synced_at)),
    )


def header(text: str, trailing: ft.Control | None = None) -> ft.Control:
    row: list[ft.Control] = [ft.Text(text, size=15, weight=ft.FontWeight.BOLD, expand=True)]
    if trailing is not None:
        row.append(trailing)
    return ft.Container(ft.Row(row), padding=ft.Padding.only(left=4, top=14, bottom=4))


def muted(text: str) -> ft.Control:
    return ft.Text(text, color=ft.Colors.GREY_600, size=13)


def pill(text: str, colour: str = ft.Colors.BLUE_GREY_700) -> ft.Control:
    return ft.Container(
        ft.Text(text, size=12, color=colour),
        padding=ft.Padding.symmetric(horizontal=8, vertical=2),
        border_radius=10,
        bgcolor=ft.Colors.with_opacity(0.1, colour),
    )


def date_text(value: str | None) -> str:
    if not value:
        return "—"
    return value[:10]


def days_between(start: dt.datetime, end: dt.datetime) -> int:
    return max(0, int((end - start).total_seconds() // 86400))


@ft.component
def _Field(
    key: str,
    label: str,
    value: str,
    on_text: Callable[[str], Any],
    *,
    password: bool = False,
    multiline: bool = False,
    number: bool = False,
    phone: bool = False,
    url: bool = False,
    icon: str | None = None,
    autofocus: bool = False,
    on_submit: Callable[[], Any] | None = None,
) -> ft.Control:
    async def changed(e: ft.Event) -> None:
        result = on_text(e.control.value)
        if inspect.isawaitable(result):
            await result

    async def submitted(e: ft.Event) -> None:
        if on_submit is not None:
            result = on_submit()
            if inspect.isawaitable(result):
                await result

    return ft.TextField(
        key=key,
        label=label,
        value=value,
        on_change=changed,
        on_submit=submitted if on_submit is not None else None,
        password=password,
        can_reveal_password=password,
        multiline=multiline,
        min_lines=2 if multiline else None,
        keyboard_type=ft.KeyboardType.NUMBER
        if number
        else ft.KeyboardType.PHONE
        if phone
        else ft.KeyboardType.URL
        if url
        else None,
        prefix_icon=icon,
        autofocus=autofocus,
    )


# A text field is "uncontrolled": ``value`` is what it shows when it appears, and it re-renders only
# when its own arguments change (pass bound methods of the state: they compare equal across renders).
# Re-sending the value on every render races the typing — a render caused by the previous letter, or
# by a sync finishing, would send back a value the phone has already moved past, and letters would
# vanish. The typed text lives in the state through ``on_text``.
Field = ft.memo(_Field)
