"""The app's state and everything a screen can do, without a renderer.

``AppState`` is a Flet observable: the screens (``mobile/ui``) are components that take it as an
argument and re-render when a field changes. Every action a screen offers is a method here, so
the tests drive the app through the same calls the buttons make. Data the screens show is read
from the phone's replica (never from the domain API); edits go through the outbox
(``Replica.mutate``) and the sync engine carries them to the server when it can.

One ``Device`` (replica file + sync engine) exists per signed-in user and server in this process;
in web mode several browser tabs of the same user share it, so one outbox has one pusher.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import os
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import flet as ft
import httpx

from mobile import queries, times
from mobile.desktop import DeskActions
from mobile.engine import SyncEngine, SyncStatus
from mobile.i18n import DEFAULT_LOCALE, has_key, t
from mobile.mutators import MutationError, fetch_one
from mobile.replica import ConflictEntry, OutboxEntry, Replica
from mobile.session import Credentials, CredentialStore, LoginError, Session, normalise_server_url
from shared import kb, wire
from shared.phones import PhoneError
from shared.phones import normalise as normalise_phone

log = logging.getLogger("floorwalker.mobile.app")

DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
MESSAGES_SEEN = "messages_seen_at"
RETRY_SECONDS = 10.0  # while offline or failing, try again this often (the poke stream also retries)
REMINDER_SECONDS = 15.0  # how often the phone looks for tasks that came due (on-device reminders)
FILTERS = ("mine", "high_value", "open_opportunity", "not_contacted", "win_back")
TASK_GROUPS = ("stage_reminder", "complaint_callback", "follow_up", "call", "visit", "other")
STEP_DONE = {  # the toast after a complaint step
    "respond": "complaint.respond_done",
    "solve": "complaint.solve_done",
    "callback": "complaint.callback_done",
}
SHEETS = (
    "note",
    "task",
    "opportunity",
    "move",
    "details",
    "customer",
    "profile",
    "tag",
    "complaint",  # log a complaint
    "complaint_respond",  # the loop's steps that need words (shared/complaints.py)
    "complaint_solve",
    "complaint_callback",
)
PROFILE_FIELDS = ("name", "email", "city", "district", "address")
DUE_CHOICES = ("today", "tomorrow", "week")


def data_dir() -> Path:
    """Where replicas live: ``FLOORWALKER_APP_DATA``, else the packaged app's storage folder
    (``FLET_APP_STORAGE_DATA``), else ``var/app`` under the working directory."""
    for name in ("FLOORWALKER_APP_DATA", "FLET_APP_STORAGE_DATA"):
        if os.environ.get(name):
            return Path(os.environ[name])
    return Path("var") / "app"


def replica_path(server_url: str, username: str, root: Path | None = None) -> Path:
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", re.sub(r"^https?://", "", server_url)).strip("_")
    user = re.sub(r"[^A-Za-z0-9._-]+", "_", username)
    return (root or data_dir()) / host / f"{user}.sqlite3"


class Device:
    """A replica and its sync engine, kept running while any screen of its user is open."""

    _open: dict[Path, Device] = {}

    def __init__(self, path: Path, session: Session, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.path = path
        self.session = session
        path.parent.mkdir(parents=True, exist_ok=True)
        self.replica = Replica(path)
        assert session.credentials is not None
        self.engine = SyncEngine(
            self.replica,
            session.credentials.server_url,
            session.token,
            transport=transport,
            push_on_mutation=True,
            backoff_cap=RETRY_SECONDS,
            max_attempts=3,
            timeout=10.0,
        )
        self.users = 0
        self._tasks: list[asyncio.Task] = []
        # Called (no arguments) every REMINDER_SECONDS: the screens look for tasks that came due.
        self.on_tick: list[Callable[[], None]] = []

    @classmethod
    def acquire(cls, path: Path, session: Session, transport: httpx.AsyncBaseTransport | None = None) -> Device:
        device = cls._open.get(path)
        if device is None:
            device = cls._open[path] = Device(path, session, transport)
        else:
            device.session.credentials = session.credentials or device.session.credentials
        device.users += 1
        return device

    def start(self, live: bool = True) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._keep_trying(), name="floorwalker-retry"))
        self._tasks.append(loop.create_task(self._tick(), name="floorwalker-reminders"))
        if live:
            self._tasks.append(loop.create_task(self.engine.listen(), name="floorwalker-listen"))

    async def _keep_trying(self) -> None:
        with contextlib.suppress(Exception):
            await self.engine.sync()
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            if self.engine.status.state in ("offline", "error", "pending"):
                self.engine.poke()

    async def _tick(self) -> None:
        """The phone's own reminders: due times are checked against the local clock, network or not."""
        while True:
            await asyncio.sleep(REMINDER_SECONDS)
            for listener in list(self.on_tick):
                try:
                    listener()
                except Exception:  # one screen's failure must not stop the others' reminders
                    log.exception("reminder check failed")

    async def release(self, *, wipe: bool = False) -> None:
        """Let go of the device; the last user stops it. ``wipe`` (signing out) stops it for every
        screen of this user and empties the replica — after the engine stopped, so no sync round
        still running can write a cursor into the emptied file."""
        self.users -= 1
        if self.users > 0 and not wipe:
            return
        self.users = 0
        Device._open.pop(self.path, None)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        listeners = list(self.engine.on_change)
        await self.engine.aclose()
        if wipe:
            self.replica.wipe()
            for listener in listeners:  # other tabs of this user: signed out too
                with contextlib.suppress(Exception):
                    listener(SyncStatus(state="signed_out", last_error=None))
        self.replica.close()


def _due_at(choice: str, tz: ZoneInfo, now: dt.datetime) -> str:
    local = now.astimezone(tz)
    if choice == "today":
        moment = max(local + dt.timedelta(hours=1), local.replace(hour=18, minute=0, second=0, microsecond=0))
    elif choice == "tomorrow":
        moment = (local + dt.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    else:
        moment = (local + dt.timedelta(days=7)).replace(hour=10, minute=0, second=0, microsecond=0)
    return times.utc_text(moment)


@ft.observable
@dataclasses.dataclass
class AppState(DeskActions):
    locale: str = DEFAULT_LOCALE
    wide: bool = False  # a wide screen: navigation rail instead of the bottom bar
    route: str = "/"
    phase: str = "starting"  # starting | login | ready
    server_url: str = DEFAULT_SERVER_URL
    username: str = ""
    password: str = ""
    login_error: str | None = None
    busy: bool = False
    user: wire.UserOut | None = None
    # sync
    sync_state: str = "pending"
    pending: int = 0
    last_synced_at: str | None = None
    sync_error: str | None = None
    revision: int = 0  # bumped whenever the replica changed: views re-read it
    # customers
    query: str = ""
    filters: list[str] = dataclasses.field(default_factory=list)
    # quick action sheet on the card / opportunity: which one is open and its draft
    sheet: str | None = None
    draft_text: str = ""
    draft_amount: str = ""
    draft_due: str = "tomorrow"
    draft_stage: str | None = None
    draft_category: str = "quality"  # a new complaint's
    draft_rating: int | None = None  # the call-back's satisfaction, 1–5
    sheet_target: str | None = None  # the complaint a step sheet is for
    # the knowledge base screen
    kb_query: str = ""
    kb_topic: str | None = None
    kb_open: str | None = None  # the article shown in full
    draft_phone: str = ""
    duplicate_id: str | None = None  # the customer who already has the typed number
    draft_close: str = ""  # expected close date, YYYY-MM-DD
    draft_contract: str = ""  # contract end date, YYYY-MM-DD
    sheet_error: str | None = None
    toast: str | None = None
    messages_seen_at: str | None = None
    # An in-app banner: a notification that just arrived, or a task of the rep's that came due
    # ({kind: notice|due, title, body, link, notice_id, critical}).
    banner: dict[str, Any] | None = None
    # The managers' desk (online: read from the server when opened): imports and their progress,
    # and the possible duplicates waiting for a person to decide.
    desk_imports: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    desk_candidates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    desk_error: str | None = None
    # The import screen on the desk (mobile/desktop.py): the picked file (its bytes are not observed),
    # the server's preview of it, the mapping being edited, and the job run from it — a dry run
    # first, then the real import of exactly what the dry run checked.
    import_file: str = ""
    import_kind: str = "customers"
    import_source: str = "excel"
    import_store_code: str | None = None  # a store code, "" = each row's store column, None = the user's own
    import_preview: dict[str, Any] | None = None
    import_columns: dict[str, str | None] = dataclasses.field(default_factory=dict)
    import_templates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    import_template: str = ""  # the template last applied or saved
    import_template_name: str = ""
    seed_template_name: str = ""
    import_job: dict[str, Any] | None = None
    import_checked: str = ""  # what the last finished dry run checked (the file, kind, store, mapping)
    import_rejections: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    import_error: str | None = None
    import_busy: bool = False
    # The managers' desktop (mobile/desktop.py): board filters, reports, drill-down, roll-out.
    board_owner: str = ""
    nudged: list[str] = dataclasses.field(default_factory=list)  # deals nudged from this screen
    report_period: str = "30d"
    report_store: str = ""  # a store code, or every store the manager sees
    report_region: str = ""  # a region code (head office)
    report_rep: str = ""  # a rep's user id
    report_name: str = "stalled"  # the table shown under the dashboard
    report_tables: dict[str, Any] = dataclasses.field(default_factory=dict)
    report_error: str | None = None
    report_busy: bool = False
    drill_table: dict[str, Any] | None = None
    drill_of: tuple[str, int] = ("", 0)
    last_export: str | None = None
    rollout: dict[str, Any] = dataclasses.field(default_factory=dict)
    rollout_store: str = ""
    rollout_error: str | None = None
    # In-app feedback (any user): the sheet, its text, whether the screenshot goes along.
    feedback_open: bool = False
    feedback_text: str = ""
    feedback_shot: bool = False
    feedback_screen: str = "/"
    feedback_error: str | None = None
    # What a text field shows when it appears (see mobile/ui/common.Field): typing changes the
    # state (query, username, …) but not these, so a field is never sent a value after it appears.
    seed_query: str = ""
    seed_username: str = ""
    seed_server: str = ""
    seed_amount: str = ""
    seed_close: str = ""
    seed_contract: str = ""
    profile_seed: dict[str, str] = dataclasses.field(default_factory=dict)  # the card as the form opened
    profile_draft: dict[str, str] = dataclasses.field(default_factory=dict)

    # --- not observed: services -----------------------------------------------------------------

    def attach(
        self,
        store: CredentialStore,
        *,
        navigate: Callable[[str], Any] | None = None,
        launch: Callable[[str], Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        live: bool = True,
        root: Path | None = None,
        alarms: Any = None,
        save: Callable[[str, bytes], Any] | None = None,
        capture: Callable[[], Any] | None = None,
        pick: Callable[[], Any] | None = None,
    ) -> AppState:
        self._store = store
        self._navigate = navigate
        self._launch = launch
        self._transport = transport
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._live = live
        self._root = root
        self._device: Device | None = None
        self._cache: dict[Any, Any] = {}
        self._alarms = alarms  # mobile.alarms.TaskAlarms on a phone that can schedule local notifications
        self._alarm_round: asyncio.Task | None = None
        self._save = save  # (file name, bytes) → a download (web) or a save dialog
        self._capture = capture  # () → PNG bytes of the current screen, for feedback
        self._pick = pick  # () → (file name, bytes) of a CSV / XLSX file the user picked, or None
        self._import_data: bytes | None = None  # the picked file (not observed: it can be large)
        self._import_digest = ""
        self._shot: bytes | None = None
        self.screen_ref: ft.Ref = ft.Ref()  # the Shell's ft.Screenshot around the current screen
        if capture is None:
            self._capture = self._capture_screen
        self.seed_username, self.seed_server = self.username, self.server_url
        return self

    @property
    def replica(self) -> Replica:
        assert self._device is not None, "not signed in"
        return self._device.replica

    @property
    def engine(self) -> SyncEngine:
        assert self._device is not None, "not signed in"
        return self._device.engine

    def tr(self, key: str, **values: object) -> str:
        return t(self.locale, key, **values)

    def now(self) -> dt.datetime:
        return self._clock()

    # --- start, sign in, sign out -----------------------------------------------------------------

    async def start(self) -> None:
        """Open the remembered session (works offline) or show the login screen."""
        credentials = await self._store.load()
        if credentials is None:
            last = await self._store.last_login()
            if last is not None:  # remembered: only the password to type
                self.server_url, self.username = last.server_url, last.username
                self.seed_server, self.seed_username = last.server_url, last.username
            self.phase = "login"
            return
        self.server_url = credentials.server_url
        self.username = credentials.user.username
        await self._open(Session(self._store, credentials, transport=self._transport))

    async def login(self) -> None:
        if not self.username.strip() or not self.password:
            self.login_error = self.tr("login.missing")
            return
        self.busy, self.login_error = True, None
        session = Session(self._store, transport=self._transport)
        try:
            credentials = await session.login(self.server_url, self.username, self.password)
        except LoginError as exc:
            key = "login.offline" if exc.offline else "login.failed"
            self.busy, self.login_error = False, self.tr(key, message=str(exc))
            return
        self.password = ""
        self.server_url = credentials.server_url
        await self._open(session, first=True)
        self.busy = False

    async def _open(self, session: Session, first: bool = False) -> None:
        assert session.credentials is not None
        user = session.credentials.user
        path = replica_path(session.credentials.server_url, user.username, self._root)
        device = Device.acquire(path, session, self._transport)
        try:
            device.replica.set_identity(user.id, store_id=user.store_id, role=user.role.value)
        except ValueError:  # a file left by someone else under this name: start it afresh
            await device.release()
            path.unlink(missing_ok=True)
            device = Device.acquire(path, session, self._transport)
            device.replica.set_identity(user.id, store_id=user.store_id, role=user.role.value)
        self._device = device
        self.user = user
        device.engine.on_change.append(self._on_sync)
        device.replica.on_mutation.append(self._on_local_change)
        device.on_tick.append(self.check_reminders)
        self.messages_seen_at = device.replica.get_meta(MESSAGES_SEEN)
        # Banners announce what arrives from now on (the message centre holds the rest).
        self._notice_mark = self._due_mark = times.utc_text(self.now())
        self._on_sync(device.engine.status)
        if first:
            with contextlib.suppress(Exception):
                await device.engine.sync()
        device.start(live=self._live)
        self.phase = "ready"
        self.go("/")

    async def close(self, *, wipe: bool = False) -> None:
        """The screen went away (tab closed): let go of the device (``wipe``: and empty it)."""
        device, self._device = self._device, None
        if device is None:
            return
        with contextlib.suppress(ValueError):
            device.engine.on_change.remove(self._on_sync)
        with contextlib.suppress(ValueError):
            device.replica.on_mutation.remove(self._on_local_change)
        with contextlib.suppress(ValueError):
            device.on_tick.remove(self.check_reminders)
        await device.release(wipe=wipe)

    async def logout(self) -> None:
        if self.pending and self.sync_state != "signed_out":
            self.toast = self.tr("sync.logout_pending", count=self.pending)
            return
        device = self._device
        if device is not None:
            await device.session.logout()
        await self.close(wipe=True)
        self.user, self.phase, self.password = None, "login", ""
        self.seed_username, self.seed_server = self.username, self.server_url
        self.go("/")

    def _on_sync(self, status: SyncStatus) -> None:
        changed = status.state != self.sync_state or status.last_synced_at != self.last_synced_at
        self.sync_state = status.state
        self.pending = status.pending
        self.last_synced_at = status.last_synced_at
        self.sync_error = status.last_error
        if status.state == "signed_out":
            # The server refused the session (or this user signed out in another tab): forget it
            # here too, so the next start asks for the password instead of opening an empty phone.
            self.user, self.phase = None, "login"
            if status.last_error:
                self.login_error = self.tr("sync.signed_out") + f": {status.last_error}"
            self._closing = asyncio.ensure_future(self._forget())
            return
        if changed:
            self._changed()
            self._announce()
            self._reschedule()

    async def _forget(self) -> None:
        await self._store.save(None)
        await self.close()

    def _on_local_change(self) -> None:
        self._changed()
        self._reschedule()

    def _reschedule(self) -> None:
        """Bring the phone's local alarms in step with the tasks (one round at a time)."""
        if self._alarms is None or self._device is None or self.user is None:
            return
        if self._alarm_round is not None and not self._alarm_round.done():
            return
        self._alarm_round = asyncio.ensure_future(self.update_alarms())

    async def update_alarms(self) -> tuple[int, int]:
        if self._alarms is None or self._device is None or self.user is None:
            return 0, 0
        return await self._alarms.update(
            self.replica, str(self.user.id), self.now(), lambda title: self.tr("banner.due", title=title)
        )

    def _changed(self) -> None:
        self._cache.clear()
        self.revision += 1

    # --- navigation -----------------------------------------------------------------------------

    def go(self, route: str) -> None:
        self.route = route
        self.seed_query = self.query
        self.sheet, self.sheet_error, self.toast = None, None, None
        if self._navigate is not None:
            self._navigate(route)

    def set_wide(self, width: float | None) -> None:
        self.wide = bool(width and width >= 840)

    def set_locale(self, locale: str) -> None:
        self.locale = locale

    # --- reads (cached per revision) --------------------------------------------------------------

    def _cached(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def unmask(self) -> bool:
        return self.user is not None and self.user.role.value in ("rep", "store_manager")

    def time_zone(self) -> ZoneInfo:
        def make() -> ZoneInfo:
            row = None
            if self.user is not None and self.user.store_id is not None:
                row = fetch_one(
                    self.replica.db, "SELECT time_zone FROM stores WHERE id = ?", (str(self.user.store_id),)
                )
            return ZoneInfo(row["time_zone"] if row and row["time_zone"] else "Asia/Shanghai")

        return self._cached("tz", make)

    def today(self) -> list[tuple[str, list[queries.TaskView]]]:
        def make():
            groups = queries.today_tasks(self.replica, tz=self.time_zone(), now=self.now())
            order = [g for g in TASK_GROUPS if g in groups] + sorted(set(groups) - set(TASK_GROUPS))
            return [(g, groups[g]) for g in order]

        return self._cached("today", make)

    def upcoming(self) -> list[queries.TaskView]:
        return self._cached(
            "upcoming", lambda: queries.upcoming_tasks(self.replica, tz=self.time_zone(), now=self.now())
        )

    def hits(self) -> list[queries.CustomerHit]:
        key = ("hits", self.query, tuple(self.filters))
        return self._cached(
            key,
            lambda: queries.search_customers(
                self.replica,
                self.query,
                mine="mine" in self.filters,
                high_value="high_value" in self.filters,
                open_opportunity="open_opportunity" in self.filters,
                not_contacted_days=30 if "not_contacted" in self.filters else None,
                win_back="win_back" in self.filters,
                now=self.now(),
                unmask=self.unmask,
            ),
        )

    def card(self, customer_id: str) -> queries.CustomerCardView | None:
        return self._cached(
            ("card", customer_id),
            lambda: queries.customer_card(self.replica, customer_id, unmask=self.unmask, now=self.now()),
        )

    def cross_sell(self, customer_id: str) -> list[dict[str, str]]:
        return self._cached(("xsell", customer_id), lambda: queries.cross_sell(self.replica, customer_id))

    def opportunity(self, opportunity_id: str) -> queries.OpportunityDetail | None:
        return self._cached(
            ("opp", opportunity_id), lambda: queries.opportunity_detail(self.replica, opportunity_id, now=self.now())
        )

    def stages(self) -> list[queries.StageView]:
        return self._cached("stages", lambda: queries.stages(self.replica))

    def messages(self) -> list[queries.MessageView]:
        return self._cached(
            ("messages", self.messages_seen_at),
            lambda: queries.messages(self.replica, now=self.now(), seen_at=self.messages_seen_at),
        )

    def unread(self) -> int:
        if self._device is None:
            return 0
        return sum(1 for m in self.messages() if m.unread) + len(self.replica.conflicts(unseen_only=True))

    def conflicts(self) -> list[ConflictEntry]:
        return self._cached("conflicts", lambda: self.replica.conflicts())

    def outbox(self) -> list[OutboxEntry]:
        return self._cached("outbox", lambda: self.replica.pending())

    def subject_of(self, entry: OutboxEntry) -> str | None:
        """Whom a queued edit is about: the customer's name, else the task's or deal's title."""
        args = entry.args
        db = self.replica.db
        if args.get("customer_id"):
            row = fetch_one(db, "SELECT name FROM customers WHERE id = ?", (str(args["customer_id"]),))
            if row:
                return row["name"]
        if entry.name == "complaint.step" and args.get("complaint_id"):
            row = fetch_one(
                db,
                "SELECT c.name FROM complaints p JOIN customers c ON c.id = p.customer_id WHERE p.id = ?",
                (str(args["complaint_id"]),),
            )
            if row:
                return row["name"]
        table = {"task": "tasks", "opportunity": "opportunities"}.get(entry.name.split(".")[0])
        ident = args.get("task_id") or args.get("opportunity_id") or args.get("id")
        if table and ident:
            row = fetch_one(db, f"SELECT title FROM {table} WHERE id = ?", (str(ident),))
            if row:
                return row["title"]
        return None

    def user_name(self, user_id: str | None) -> str | None:
        if not user_id:
            return None
        row = fetch_one(self.replica.db, "SELECT display_name FROM users WHERE id = ?", (str(user_id),))
        return row["display_name"] if row else None

    # --- customers --------------------------------------------------------------------------------

    def search(self, text: str) -> None:
        self.query = text

    def set_username(self, text: str) -> None:
        self.username = text

    def set_password(self, text: str) -> None:
        self.password = text

    def set_server_url(self, text: str) -> None:
        self.server_url = text

    def set_draft_text(self, text: str) -> None:
        self.draft_text = text

    def set_draft_amount(self, text: str) -> None:
        self.draft_amount = text

    def set_draft_phone(self, text: str) -> None:
        self.draft_phone = text

    def new_customer(self) -> None:
        self.open_sheet("customer")
        self.draft_phone, self.duplicate_id = "", None

    def save_customer(self) -> bool:
        """A walk-in customer: name and (optional) mobile number, in the rep's store and owned by
        them; a number another customer already has is refused with that customer to open."""
        name = self.draft_text.strip()
        if not name:
            self.sheet_error = self.tr("walkin.name_needed")
            return False
        phone = self.draft_phone.strip() or None
        self.duplicate_id = None
        if phone:
            try:
                _, digits = normalise_phone(phone)
            except PhoneError:
                self.sheet_error = self.tr("walkin.bad_phone", value=phone)
                return False
            row = fetch_one(
                self.replica.db,
                "SELECT c.id, c.name FROM customer_phones p JOIN customers c ON c.id = p.customer_id "
                "WHERE p.digits = ?",
                (digits,),
            )
            if row is not None:
                self.duplicate_id = row["id"]
                self.sheet_error = self.tr("walkin.duplicate", name=row["name"])
                return False
        created: list[Any] = []
        if not self._edit(
            lambda: created.append(self.replica.create_customer(name, phone=phone)), self.tr("walkin.created")
        ):
            return False
        toast = self.toast
        self.go(f"/customers/{created[0]}")
        self.toast = toast
        return True

    def edit_profile(self, customer_id: str) -> None:
        """Open the card's details form with what the card shows now."""
        card = self.card(customer_id)
        self.open_sheet("profile")
        values = {f: str((card.profile.get(f) if card else None) or "") for f in PROFILE_FIELDS}
        self.profile_seed, self.profile_draft = dict(values), dict(values)

    def set_profile_field(self, field: str, text: str) -> None:
        self.profile_draft = {**self.profile_draft, field: text}

    def profile_setter(self, field: str) -> Callable[[str], None]:
        """The same callable every time (a text field re-renders only when its arguments change)."""
        setters = self.__dict__.setdefault("_profile_setters", {})
        if field not in setters:
            setters[field] = functools.partial(self.set_profile_field, field)
        return setters[field]

    def save_profile(self, customer_id: str) -> bool:
        """Only the fields the rep changed are sent (each merges on its own on the server, and an
        edit made meanwhile elsewhere is detected against what this form showed)."""
        changes = {
            f: self.profile_draft.get(f, "").strip()
            for f in PROFILE_FIELDS
            if self.profile_draft.get(f, "").strip() != self.profile_seed.get(f, "").strip()
        }
        if "name" in changes and not changes["name"]:
            self.sheet_error = self.tr("refused.name")
            return False
        email = changes.get("email")
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            self.sheet_error = self.tr("profile.bad_email", value=email)
            return False
        if "email" in changes and not email:
            changes["email"] = None
        if not changes:
            self.close_sheet()
            return True
        return self._edit(lambda: self.replica.update_customer(customer_id, **changes), self.tr("profile.saved"))

    def add_tag(self, customer_id: str) -> bool:
        tag = self.draft_text.strip()
        if not tag:
            self.sheet_error = self.tr("refused.tag")
            return False
        return self._edit(lambda: self.replica.add_tag(customer_id, tag), self.tr("tags.added", tag=tag))

    def remove_tag(self, tag_id: str, tag: str) -> bool:
        return self._edit(lambda: self.replica.remove_tag(tag_id), self.tr("tags.removed", tag=tag))

    def set_draft_close(self, text: str) -> None:
        self.draft_close = text

    def set_draft_contract(self, text: str) -> None:
        self.draft_contract = text

    def edit_details(self, opportunity: queries.OpportunityView) -> None:
        """Open the amount / dates form with the deal's current values."""
        self.open_sheet("details")
        self.draft_amount = self.seed_amount = money_plain(opportunity.amount)
        self.draft_close = self.seed_close = opportunity.expected_close_date or ""
        self.draft_contract = self.seed_contract = opportunity.contract_end_date or ""

    def save_details(self, opportunity: queries.OpportunityView) -> bool:
        """Amount, expected close date and contract end date; only what changed is sent (an empty
        date clears it). Dates are YYYY-MM-DD."""
        changes: dict[str, Any] = {}
        amount = self.draft_amount.strip()
        if amount and amount != money_plain(opportunity.amount):
            changes["amount"] = amount
        for field, text, current in (
            ("expected_close_date", self.draft_close, opportunity.expected_close_date),
            ("contract_end_date", self.draft_contract, opportunity.contract_end_date),
        ):
            text = text.strip()
            if text:
                try:
                    text = dt.date.fromisoformat(text).isoformat()
                except ValueError:
                    self.sheet_error = self.tr("opp.bad_date", value=text)
                    return False
            if (text or None) != (current or None):
                changes[field] = text or None
        if not changes:
            self.close_sheet()
            return True
        return self._edit(lambda: self.replica.update_opportunity(opportunity.id, **changes), self.tr("opp.saved"))

    def toggle_filter(self, name: str) -> None:
        if name not in FILTERS:
            raise ValueError(name)
        self.filters = [f for f in self.filters if f != name] if name in self.filters else [*self.filters, name]

    def open_customer(self, customer_id: str) -> None:
        self.go(f"/customers/{customer_id}")

    def open_opportunity(self, opportunity_id: str) -> None:
        self.go(f"/opportunities/{opportunity_id}")

    async def call(self, number: str) -> None:
        if self._launch is not None:
            result = self._launch(f"tel:{re.sub(r'[^0-9+]', '', number)}")
            if asyncio.iscoroutine(result):
                await result

    # --- edits (all through the outbox) ------------------------------------------------------------

    def refusal(self, exc: MutationError) -> str:
        """Why the phone refused an edit, in the rep's words where the field says it (the
        validation's own sentence otherwise)."""
        key = f"refused.{exc.field}"
        if exc.field and has_key(key):
            return self.tr(key)
        return str(exc)

    def _edit(self, make: Callable[[], Any], done: str) -> bool:
        try:
            make()
        except MutationError as exc:
            message = self.refusal(exc)
            self.sheet_error = message
            self.toast = self.tr("action.failed", message=message)
            return False
        self.sheet, self.sheet_error, self.draft_text, self.draft_amount = None, None, "", ""
        self.toast = done
        return True

    def log_visit(self, customer_id: str) -> bool:
        return self._edit(lambda: self.replica.log_visit(customer_id), self.tr("action.visit_logged"))

    def log_call(self, customer_id: str) -> bool:
        return self._edit(
            lambda: self.replica.log_interaction(customer_id, "call", "", channel="phone"),
            self.tr("action.call_logged"),
        )

    def open_sheet(self, name: str, stage: str | None = None) -> None:
        if name not in SHEETS:
            raise ValueError(name)
        self.sheet, self.sheet_error, self.draft_text, self.draft_amount = name, None, "", ""
        self.draft_due, self.draft_stage = "tomorrow", stage

    def close_sheet(self) -> None:
        self.sheet, self.sheet_error = None, None

    # --- the knowledge base (shared/kb.py, offline) ---------------------------------------------------

    def kb_hits(self) -> list[kb.Article]:
        return self._cached(
            ("kb", self.kb_query, self.kb_topic),
            lambda: kb.search(queries.kb_articles(self.replica), self.kb_query, topic=self.kb_topic, limit=30),
        )

    def kb_search(self, text: str) -> None:
        self.kb_query, self.kb_open = text, None

    def kb_choose_topic(self, topic: str | None) -> None:
        self.kb_topic = None if topic == self.kb_topic else topic
        self.kb_open = None

    def kb_toggle(self, article_id: str) -> None:
        self.kb_open = None if self.kb_open == article_id else article_id

    # --- complaints (the loop: shared/complaints.py) -------------------------------------------------

    def open_complaint_step(self, complaint_id: str, step: str) -> None:
        """The history step needs no words and is done at once; the others open their sheet (the
        solve sheet starts from the solution already offered)."""
        if step == "history":
            self._edit(lambda: self.replica.complaint_step(complaint_id, "history"), self.tr("complaint.history_done"))
            return
        self.open_sheet(f"complaint_{step}")
        self.sheet_target, self.draft_rating = complaint_id, None
        if step == "solve":
            row = fetch_one(self.replica.db, "SELECT resolution FROM complaints WHERE id = ?", (complaint_id,))
            self.draft_text = (row or {}).get("resolution") or ""

    def set_draft_category(self, category: str) -> None:
        self.draft_category = category

    def set_draft_rating(self, rating: int) -> None:
        self.draft_rating = rating

    def save_complaint(self, customer_id: str) -> bool:
        text = self.draft_text.strip()
        if not text:
            self.sheet_error = self.tr("complaint.describe")
            return False
        category = self.draft_category
        return self._edit(lambda: self.replica.open_complaint(customer_id, category, text), self.tr("complaint.logged"))

    def save_complaint_step(self) -> bool:
        step = (self.sheet or "").removeprefix("complaint_")
        target, text, rating = self.sheet_target, self.draft_text.strip(), self.draft_rating
        if target is None or step not in ("respond", "solve", "callback"):
            return False
        if step == "callback" and rating is None:
            self.sheet_error = self.tr("complaint.rate")
            return False
        done = self._edit(lambda: self.replica.complaint_step(target, step, text, rating), self.tr(STEP_DONE[step]))
        if done:
            self.sheet_target, self.draft_rating = None, None
        return done

    def save_note(self, customer_id: str) -> bool:
        text = self.draft_text.strip()
        if not text:
            self.sheet_error = self.tr("action.note_hint")
            return False
        return self._edit(lambda: self.replica.log_interaction(customer_id, "note", text), self.tr("action.note_saved"))

    def save_task(self, customer_id: str | None, opportunity_id: str | None = None) -> bool:
        title = self.draft_text.strip()
        if not title:
            self.sheet_error = self.tr("action.task_title")
            return False
        due = _due_at(self.draft_due, self.time_zone(), self.now())
        extra: dict[str, Any] = {"kind": "follow_up", "customer_id": customer_id}
        if opportunity_id:
            extra["opportunity_id"] = opportunity_id
        return self._edit(lambda: self.replica.create_task(title, due, **extra), self.tr("action.task_created"))

    def save_opportunity(self, customer_id: str) -> bool:
        title = self.draft_text.strip()
        if not title:
            self.sheet_error = self.tr("action.opportunity_title")
            return False
        extra: dict[str, Any] = {}
        if self.draft_amount.strip():
            extra["amount"] = self.draft_amount.strip()
        return self._edit(
            lambda: self.replica.create_opportunity(customer_id, title, **extra), self.tr("action.opportunity_created")
        )

    def move_stage(self, opportunity_id: str, stage: str) -> bool:
        """Move an opportunity; a lost deal needs the reason typed in the sheet first."""
        target = next((s for s in self.stages() if s.code == stage), None)
        if target is None:
            self.sheet_error = stage
            return False
        reason = self.draft_text.strip() or None
        if target.kind == "lost" and not reason:
            self.sheet, self.draft_stage = "move", stage
            self.sheet_error = self.tr("opp.lost_reason_needed")
            return False
        name = target.name_zh if self.locale == "zh" else target.name_en
        return self._edit(
            lambda: self.replica.move_opportunity(
                opportunity_id, stage, lost_reason=reason if target.kind == "lost" else None
            ),
            self.tr("action.moved", stage=name),
        )

    def complete_task(self, task: queries.TaskView) -> bool:
        return self._edit(lambda: self.replica.complete_task(task.id), self.tr("today.done", title=task.title))

    def snooze_task(self, task: queries.TaskView, choice: str = "1h") -> bool:
        tz = self.time_zone()
        local = self.now().astimezone(tz)
        if choice == "1h":
            until = local + dt.timedelta(hours=1)
        else:
            until = (local + dt.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
        return self._edit(
            lambda: self.replica.snooze_task(task.id, times.utc_text(until)), self.tr("today.snoozed", title=task.title)
        )

    # --- messages and sync ------------------------------------------------------------------------

    def mark_messages_read(self) -> None:
        at = times.utc_text(self.now())
        if any(m.unread and m.notice_id for m in self.messages()):
            # Read on every device of the user: the server marks them, the next pulls bring it.
            self.replica.mutate("notification.read_all", {"upto": at})
        self.replica.set_meta(MESSAGES_SEEN, at)
        self.replica.mark_conflicts_seen()
        self.messages_seen_at = at
        self.banner = None
        self._changed()

    def open_message(self, m: queries.MessageView) -> None:
        """Open what a message is about (marking a notification read)."""
        if m.notice_id and m.unread:
            self.replica.mutate("notification.read", {"notification_id": m.notice_id})
        self._follow_link(m.link, m.customer_id, m.opportunity_id)

    def _follow_link(self, link: str, customer_id: str | None = None, opportunity_id: str | None = None) -> None:
        if link.startswith("/opportunities/") or (not link and opportunity_id):
            self.open_opportunity(link.rsplit("/", 1)[-1] if link else opportunity_id)
        elif link.startswith("/customers/") or (not link and customer_id):
            self.open_customer(link.rsplit("/", 1)[-1] if link else customer_id)
        else:
            self.go(link or "/messages")

    # --- banners: what just arrived, and on-device reminders ---------------------------------------

    def _announce(self) -> None:
        """A notification newer than the last banner arrived with a pull: show the newest."""
        if self._device is None or self.user is None:
            return
        fresh = queries.fresh_notices(self.replica, str(self.user.id), self._notice_mark)
        if not fresh:
            return
        self._notice_mark = max(r["created_at"] for r in fresh)
        top = next((r for r in fresh if r["critical"]), fresh[0])
        more = len(fresh) - 1
        self.banner = {
            "kind": "notice",
            "title": top["title"],
            "body": top["body"] + (self.tr("banner.more", count=more) if more else ""),
            "link": top["link"] or "/messages",
            "notice_id": top["id"],
            "critical": bool(top["critical"]),
        }

    def check_reminders(self) -> None:
        """Tasks of the rep's that came due since the last look: a banner (and a refreshed Today)."""
        if self._device is None or self.user is None:
            return
        upto = times.utc_text(self.now())
        due = queries.came_due(self.replica, str(self.user.id), self._due_mark, upto)
        self._due_mark = upto
        if not due:
            return
        task = due[-1]
        body = task["customer_name"] or ""
        if len(due) > 1:
            body += self.tr("banner.more", count=len(due) - 1)
        self.banner = {
            "kind": "due",
            "title": self.tr("banner.due", title=task["title"]),
            "body": body,
            "link": f"/customers/{task['customer_id']}" if task["customer_id"] else "/",
            "notice_id": None,
            "critical": False,
        }
        self._changed()

    def open_banner(self) -> None:
        banner, self.banner = self.banner, None
        if not banner:
            return
        if banner.get("notice_id"):
            with contextlib.suppress(MutationError):
                self.replica.mutate("notification.read", {"notification_id": banner["notice_id"]})
        self._follow_link(banner["link"])

    def dismiss_banner(self) -> None:
        self.banner = None

    # --- follows and push preferences ----------------------------------------------------------------

    # --- the managers' desk: imports and the review queue (online) ------------------------------------

    @property
    def is_manager(self) -> bool:
        return self.user is not None and self.user.role.value != "rep"

    async def _api(self, method: str, path: str, *, seconds: float = 15, **options: Any) -> Any:
        assert self._device is not None
        session = self._device.session
        async with httpx.AsyncClient(
            base_url=session.credentials.server_url, transport=self._transport, timeout=seconds
        ) as http:
            for refresh in (False, True):
                token = await session.token(refresh)
                answer = await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **options)
                if answer.status_code != 401:
                    break
        answer.raise_for_status()
        return answer.json()

    async def load_desk(self) -> None:
        """Fetch the imports and the open review queue (the desk is online-only)."""
        if not self.is_manager:
            return
        try:
            self.desk_imports = await self._api("GET", "/api/imports/", params={"limit": 20})
            self.desk_candidates = await self._api("GET", "/api/merges/candidates")
            self.desk_error = None
        except (httpx.HTTPError, OSError) as exc:
            self.desk_error = self.tr("desk.offline", message=str(exc) or type(exc).__name__)

    async def resume_import(self, job_id: str) -> None:
        """继续导入: an import from the app that stopped goes on from its last committed batch (the
        server kept the file); the list then shows its progress."""
        job = await self._desk_call("POST", f"/api/imports/{job_id}/resume")
        if job is None:
            return
        self.toast = self.tr("desk.resumed", row=int(job["next_row"]) + 1)
        await self.load_desk()

    async def _desk_call(self, method: str, path: str, **options: Any) -> Any | None:
        """A desk action's request; on a refusal or no network, the reason as a toast and None."""
        try:
            return await self._api(method, path, **options)
        except httpx.HTTPStatusError as exc:
            self.toast = self.tr("action.failed", message=exc.response.json().get("detail", str(exc)))
        except (httpx.HTTPError, OSError) as exc:
            self.toast = self.tr("desk.offline", message=str(exc) or type(exc).__name__)
        return None

    async def decide_duplicate(self, candidate_id: str, decision: str) -> None:
        """合并 (merge: the first customer stays) or 不是同一人 (distinct) for a pair in the queue."""
        path = f"/api/merges/candidates/{candidate_id}"
        if await self._desk_call("POST", path, json={"decision": decision}) is None:
            return
        self.toast = self.tr("desk.merged" if decision == "merge" else "desk.distinct")
        await self.load_desk()
        with contextlib.suppress(Exception):
            await self.sync_now()  # the merge reaches this phone's replica now

    def is_following(self, customer_id: str) -> bool:
        if self.user is None:
            return False
        return self._cached(
            ("following", customer_id), lambda: queries.following(self.replica, str(self.user.id), customer_id)
        )

    def toggle_follow(self, customer_id: str) -> None:
        from shared.sync import follow_id

        following = not self.is_following(customer_id)
        args = {
            "follow_id": str(follow_id(self.user.id, customer_id)),
            "customer_id": customer_id,
            "following": following,
        }
        self._edit(
            lambda: self.replica.mutate("follow.set", args),
            self.tr("card.follow_on" if following else "card.follow_off"),
        )

    def prefs(self) -> dict[str, Any]:
        if self.user is None:
            return dict(queries.PREFS_DEFAULT)
        return self._cached("prefs", lambda: queries.notification_prefs(self.replica, str(self.user.id)))

    def _set_prefs(self, done: str, **values: Any) -> None:
        from shared.sync import prefs_id

        if self.user is None:
            return
        args = {"prefs_id": str(prefs_id(self.user.id)), **values}
        self._edit(lambda: self.replica.mutate("prefs.update", args), done)

    def set_quiet_hours(self, on: bool) -> None:
        start, end = ("22:00", "08:00") if on else ("", "")
        self._set_prefs(self.tr("push.saved"), quiet_start=start, quiet_end=end)

    def set_budget(self, budget: int) -> None:
        self._set_prefs(self.tr("push.saved"), daily_budget=int(budget))

    def toggle_muted(self, kind: str) -> None:
        muted = set(self.prefs()["muted_kinds"])
        muted ^= {kind}
        self._set_prefs(self.tr("push.saved"), muted_kinds=sorted(muted))

    def choose_language(self, locale: str) -> None:
        """The language of the app, and of what the server writes to this user from now on."""
        from shared.sync import prefs_id

        self.set_locale(locale)
        if self._device is not None and self.user is not None:
            language = "en" if locale == "en" else "zh-CN"
            self.replica.mutate("prefs.update", {"prefs_id": str(prefs_id(self.user.id)), "language": language})

    async def sync_now(self) -> None:
        if self._device is not None:
            await self._device.engine.sync()

    def dismiss_toast(self) -> None:
        self.toast = None


def money_plain(value: Decimal | str | None) -> str:
    """'1078.00' → '1078', '99.50' → '99.5': how an amount is typed."""
    text = f"{Decimal(str(value or 0)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def money(value: Decimal | str | None) -> str:
    amount = Decimal(str(value or 0))
    return f"{amount:,.2f}".rstrip("0").rstrip(".") if amount % 1 else f"{amount:,.0f}"


def server_url_from_env() -> str:
    return normalise_server_url(os.environ.get("FLOORWALKER_SERVER_URL", DEFAULT_SERVER_URL))


__all__ = ["AppState", "Credentials", "Device", "money"]
