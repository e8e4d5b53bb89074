"""The Flet web client as a real process, and Debian's Chromium driven by Playwright, for the
end-to-end tests (recipe: the handbook's STACK-NOTES.md)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.live import ROOT, free_port

CHROMIUM = os.environ.get("FLOORWALKER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 412, "height": 915}
SCREENSHOTS = ROOT / "var" / "screenshots"


def need_chromium() -> None:
    """Without Chromium the browser tests cannot run: a visible skip on a laptop, a failure in CI
    (scripts/test installs Debian's chromium package when it is missing)."""
    if Path(CHROMIUM).exists():
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class WebClient:
    """`floorwalker app --web` on a free loopback port, pointed at an API; stopped by PID (its
    process group: Flet's server may start children)."""

    def __init__(self, api_url: str, data_dir: Path, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = log_dir / f"web-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FLOORWALKER_")}
        self.env.update(
            {
                "FLOORWALKER_SERVER_URL": api_url,
                "FLOORWALKER_APP_DATA": str(data_dir),
                "FLOORWALKER_LOCALE": "zh-CN",
            }
        )
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> WebClient:
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "app", "--web", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app --web exited with {self.proc.returncode}: {self.log()[-3000:]}")
            try:
                if httpx.get(self.url, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"app --web did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self.proc = None
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def tracebacks(self) -> str:
        text = self.log()
        return text[text.find("Traceback") :] if "Traceback" in text else ""


async def open_app(browser, url: str, *, locale: str = "zh-CN"):
    """A fresh phone-sized browser (its own local storage: a new device) on the app, with the
    accessibility tree switched on so roles and names can be used."""
    context = await browser.new_context(viewport=PHONE, locale=locale)
    page = await context.new_page()
    await page.goto(url)
    await page.locator("#loading").wait_for(state="detached", timeout=60_000)
    await page.locator("flt-semantics-placeholder").dispatch_event("click")
    return context, page


async def sign_in(page, username: str, password: str = "floorwalker") -> None:
    await type_into(page, "用户名", username)
    await type_into(page, "密码", password)
    await page.get_by_role("button", name="登录").click()


async def screenshot(page, name: str) -> Path:
    """The canvas lags the semantics tree a little: wait, then write var/screenshots/<name>.png."""
    await asyncio.sleep(0.8)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


async def click_below(page, anchor_text: str, button_name: str) -> None:
    """Click the first button named ``button_name`` below the text ``anchor_text`` (a row's own
    button, e.g. a task's 完成)."""
    anchor = await page.get_by_text(anchor_text, exact=True).first.bounding_box()
    assert anchor is not None, f"{anchor_text!r} is not on screen"
    best = None
    for button in await page.get_by_role("button", name=button_name, exact=True).all():
        box = await button.bounding_box()
        if box and box["y"] >= anchor["y"] - 2 and (best is None or box["y"] < best[0]):
            best = (box["y"], button)
    assert best is not None, f"no {button_name!r} button below {anchor_text!r}"
    await best[1].click()


async def type_into(page, label: str, text: str) -> None:
    """Type into the text field named ``label`` as a person would: tap, clear, type — and check the
    field took it. A tap on the accessibility node right after a screen appears sometimes does not
    open Flutter's editing connection yet, and the keys go nowhere: then tap and type again."""
    field = page.get_by_role("textbox", name=label)
    seen = None
    for _ in range(8):
        await field.click()
        await asyncio.sleep(0.2)
        await page.keyboard.press("Control+a")
        await page.keyboard.press("Backspace")
        await page.keyboard.type(text)
        await asyncio.sleep(0.3)
        seen = await page.evaluate("() => document.activeElement && document.activeElement.value")
        if seen == text:
            return
    raise AssertionError(f"the field {label!r} holds {seen!r}, not {text!r}")


async def tap_until(page, button, shows, attempts: int = 4, wait_ms: int = 8000) -> None:
    """Tap ``button`` until ``shows`` (a locator) is on screen. Under load a tap on the
    accessibility node can land while Flutter rebuilds that part of the screen and go nowhere; a
    person taps again, and so does this. (Only for taps that are safe to repeat: opening a sheet.)"""
    for _ in range(attempts):
        await button.click()
        try:
            await shows.first.wait_for(timeout=wait_ms)
            return
        except PlaywrightTimeout:  # the tap went nowhere: tap again
            continue
    await shows.first.wait_for(timeout=wait_ms)


async def open_tab(page, name, shows) -> None:
    """Switch to the bottom tab ``name`` (text or pattern) and wait for ``shows``, a locator of
    that screen. Right after a sync the shell rebuilds, and a tap on the tab's accessibility node
    can go nowhere (CI saw it once): tapping a tab is safe to repeat, so tap again."""
    await tap_until(page, page.get_by_role("tab", name=name), shows)
