"""The Flet entry point: ``main(page)`` builds one app per screen (browser tab in web mode), and
``run`` starts it as a desktop window or, with ``web=True``, serves it on 127.0.0.1 (offline: the
CanvasKit engine and the Chinese font come from this machine, never from a CDN)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import flet as ft

from mobile.alarms import TaskAlarms, android_scheduler
from mobile.i18n import pick_locale
from mobile.session import PreferencesCredentials
from mobile.state import AppState, server_url_from_env
from mobile.ui.shell import App

ASSETS = Path(__file__).parent / "assets"
FONT_FAMILY = "Floorwalker Sans SC"
FONT_FILE = "fonts/NotoSansSC-Floorwalker.otf"

log = logging.getLogger("floorwalker.mobile")


async def main(page: ft.Page) -> None:
    page.title = "导购助手 Floorwalker"
    page.fonts = {FONT_FAMILY: FONT_FILE}
    page.theme = ft.Theme(font_family=FONT_FAMILY, color_scheme_seed=ft.Colors.BLUE)
    page.padding = 0
    state = AppState(server_url=server_url_from_env())
    state.locale = pick_locale(os.environ.get("FLOORWALKER_LOCALE") or "zh")
    launcher = ft.UrlLauncher()
    # Report exports and rejected rows: a download in the browser, a save dialog elsewhere; and
    # files to import, picked with their bytes (a browser gives no path).
    picker = ft.FilePicker()

    async def pick() -> tuple[str, bytes] | None:
        files = await picker.pick_files(
            file_type=ft.FilePickerFileType.CUSTOM, allowed_extensions=["csv", "xlsx"], with_data=True
        )
        if not files:
            return None  # cancelled
        chosen = files[0]
        if chosen.bytes is None and chosen.path:  # a desktop picker that gave the path only
            return chosen.name, await asyncio.to_thread(Path(chosen.path).read_bytes)
        return chosen.name, chosen.bytes or b""

    alarms = None
    if page.platform == ft.PagePlatform.ANDROID:  # the packaged app: reminders as local notifications
        scheduler = android_scheduler()
        if scheduler is not None:
            alarms = TaskAlarms(scheduler)
            try:
                await scheduler.request_permissions()
            except Exception:  # refused or unavailable: the in-app banner still works
                log.warning("local notifications not permitted", exc_info=True)
    state.attach(
        PreferencesCredentials(ft.SharedPreferences()),
        navigate=page.navigate,
        launch=lambda url: launcher.launch_url(url),
        alarms=alarms,
        save=lambda name, data: picker.save_file(file_name=name, src_bytes=data),
        pick=pick,
    )
    state.set_wide(page.width)

    def on_resize(e) -> None:
        state.set_wide(page.width)

    def on_locale(e) -> None:
        if e.locales and not os.environ.get("FLOORWALKER_LOCALE"):
            first = e.locales[0]
            state.set_locale(pick_locale(f"{first.language_code}-{first.country_code or ''}"))

    async def on_close(e) -> None:
        await state.close()

    page.on_resize = on_resize
    page.on_locale_change = on_locale
    page.on_close = on_close
    page.render(App, state)
    await state.start()


def run(*, web: bool = False, host: str = "127.0.0.1", port: int = 8550) -> None:
    if web:
        ft.run(
            main,
            view=ft.AppView.WEB_BROWSER,
            host=host,
            port=port,
            assets_dir=str(ASSETS),
            no_cdn=True,
        )
    else:
        ft.run(main, assets_dir=str(ASSETS))


if __name__ == "__main__":  # `python -m mobile.main`: the desktop window
    run()
