"""The managers' desktop, as actions of the app state (mixed into ``AppState``): the pipeline
board (from the replica; moves go through the outbox like every edit), reports and their
drill-downs and exports, nudges, imports (a file picked, mapped, tried, imported, its rejected
rows downloaded), the roll-out (features per store, waves, feedback, adoption) and the reps'
in-app feedback. Everything but the board is read from the server when opened:
a manager at a desk is online, and the figures are the whole chain's, not the phone's replica.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

import httpx

from mobile import queries
from shared.imports import KINDS, SOURCES, mapping_problem

log = logging.getLogger("floorwalker.mobile")

PERIODS = ("7d", "30d", "month", "last_month", "90d")
DASHBOARD = ("targets", "funnel", "trend", "pipeline")  # what the KPI dashboard fetches
TABLE_REPORTS = (
    "pipeline",
    "stalled",
    "funnel",
    "win_rate",
    "forecast",
    "rep_activity",
    "stores",
    "segments",
    "complaints",
    "trend",
    "adoption",
)
FEEDBACK_STATUSES = ("new", "acknowledged", "planned", "done", "declined")
MAX_SHOT = 2 * 1024 * 1024
IMPORT_TYPES = (".csv", ".xlsx")
IMPORT_MAX_BYTES = 200 * 1024 * 1024  # the server's limit for one upload
IMPORT_TIMEOUT = 300.0  # sending a large file (and its preview) takes a while on a shop's line
IMPORT_POLL_SECONDS = 1.0  # how often a running import is asked for its progress
IMPORT_POLL_FAILURES = 5  # polls in a row that may fail (a blip) before the screen says so
REJECTIONS_SHOWN = 20  # the first rejected rows shown on screen (rejected.csv has them all)


def period_range(period: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The local dates a period chip stands for (both ends inclusive)."""
    if period == "7d":
        return today - dt.timedelta(days=6), today
    if period == "90d":
        return today - dt.timedelta(days=89), today
    if period == "month":
        return today.replace(day=1), today
    if period == "last_month":
        end = today.replace(day=1) - dt.timedelta(days=1)
        return end.replace(day=1), end
    return today - dt.timedelta(days=29), today


class DeskActions:
    """Mixed into AppState: its observed fields (report_*, board_*, rollout_*, feedback_*) are
    declared there."""

    # --- helpers ------------------------------------------------------------------------------------

    def _problem(self, exc: Exception, key: str = "action.failed") -> str:
        """What went wrong, in the server's words when it answered (``key`` frames them)."""
        if isinstance(exc, httpx.HTTPStatusError):
            try:
                body = exc.response.json()
            except ValueError:
                body = {}
            detail = body.get("detail") if isinstance(body, dict) else None
            extra = body.get("extra") if isinstance(body, dict) else None
            if detail and isinstance(extra, list):  # a parameter the server's validation refused: which one
                detail += ": " + "; ".join(f"{e.get('key')}: {e.get('message')}" for e in extra if isinstance(e, dict))
            return self.tr(key, message=detail or str(exc))
        return self.tr("desk.offline", message=str(exc) or type(exc).__name__)

    def report_params(self) -> dict[str, str]:
        start, end = period_range(self.report_period, self.now().astimezone(self.time_zone()).date())
        params = {"from": start.isoformat(), "to": end.isoformat()}
        if self.report_store:
            params["store"] = self.report_store
        if self.report_region:
            params["region"] = self.report_region
        if self.report_rep:
            params["rep"] = self.report_rep
        return params

    # --- the board ----------------------------------------------------------------------------------

    def board(self) -> list[queries.BoardColumn]:
        return self._cached(
            ("board", self.board_owner, self.report_store),
            lambda: queries.board(
                self.replica,
                now=self.now(),
                owner_id=self.board_owner or None,
                store_id=self.store_id_of(self.report_store),
            ),
        )

    def store_id_of(self, code: str) -> str | None:
        if not code:
            return None
        return next((s["id"] for s in self.desk_stores() if s["code"] == code), None)

    def desk_stores(self) -> list[dict[str, Any]]:
        """The stores this manager sees (those with data on the device), for the store filter."""
        return self._cached(
            "desk_stores",
            lambda: [
                dict(r)
                for r in queries.fetch_all(
                    self.replica.db,
                    "SELECT id, code, name, pilot FROM stores WHERE id IN (SELECT DISTINCT store_id FROM customers) "
                    "ORDER BY code",
                )
            ],
        )

    def board_owners(self) -> list[dict[str, str]]:
        return self._cached("board_owners", lambda: queries.owners(self.replica))

    def set_board_owner(self, owner_id: str) -> None:
        self.board_owner = owner_id

    async def nudge(self, opportunity_id: str, owner_name: str | None) -> None:
        """催办: a task for the deal's owner, due today, and a notification to their phone."""
        try:
            answer = await self._api("POST", f"/api/opportunities/{opportunity_id}/nudge", json={})
        except (httpx.HTTPError, OSError) as exc:
            self.toast = self._problem(exc)
            return
        key = "board.nudged" if answer["created"] else "board.nudged_before"
        self.toast = self.tr(key, owner=owner_name or "")
        self.nudged = sorted({*self.nudged, opportunity_id})

    # --- reports ------------------------------------------------------------------------------------

    async def _report(self, name: str) -> dict[str, Any]:
        return await self._api("GET", f"/api/reports/{name}", params=self.report_params())

    async def load_dashboard(self) -> None:
        """The KPI dashboard: targets with their change, funnel, trend, pipeline, and the chosen table."""
        if not self.is_manager:
            return
        self.report_busy = True
        try:
            tables = {name: await self._report(name) for name in (*DASHBOARD, self.report_name)}
            self.report_tables = tables
            self.report_error = None
        except (httpx.HTTPError, OSError) as exc:
            self.report_error = self._problem(exc)
        finally:
            self.report_busy = False

    async def set_period(self, period: str) -> None:
        if period not in PERIODS:
            raise ValueError(period)
        self.report_period, self.drill_table = period, None
        self._cache.clear()
        await self.load_dashboard()

    def desk_regions(self) -> list[dict[str, Any]]:
        return self._cached(
            "desk_regions",
            lambda: [
                dict(r)
                for r in queries.fetch_all(
                    self.replica.db,
                    "SELECT code, name FROM regions WHERE id IN (SELECT region_id FROM stores WHERE id IN "
                    "(SELECT DISTINCT store_id FROM customers)) ORDER BY code",
                )
            ],
        )

    async def set_report_filter(self, which: str, value: str) -> None:
        """region (a code) or rep (a user id); empty: all."""
        if which == "region":
            self.report_region = value
        elif which == "rep":
            self.report_rep = value
        else:
            raise ValueError(which)
        self.drill_table = None
        await self.load_dashboard()

    async def set_report_store(self, code: str) -> None:
        self.report_store, self.drill_table = code, None
        self._cache.clear()
        await self.load_dashboard()

    async def choose_report(self, name: str) -> None:
        self.report_name, self.drill_table = name, None
        try:
            self.report_tables = {**self.report_tables, name: await self._report(name)}
            self.report_error = None
        except (httpx.HTTPError, OSError) as exc:
            self.report_error = self._problem(exc)

    async def open_drill(self, report: str, row: int) -> None:
        """The rows behind a report row's numbers."""
        table = self.report_tables.get(report) or {}
        drills = table.get("drill") or []
        if row >= len(drills) or not drills[row]:
            return
        drill = drills[row]
        try:
            self.drill_table = await self._api(
                "GET", f"/api/reports/drill/{drill['kind']}", params={**self.report_params(), **drill["params"]}
            )
            self.drill_of = (report, row)
            self.report_error = None
        except (httpx.HTTPError, OSError) as exc:
            self.report_error = self._problem(exc)

    def close_drill(self) -> None:
        self.drill_table = None

    async def export(self, what: str, fmt: str) -> None:
        """Download the shown report (``what`` = report name) or the open drill-down (``drill``)
        as CSV or XLSX, from the server (the same figures), saved through the browser / system."""
        if what == "drill" and self.drill_table is not None:
            report, row = self.drill_of
            drill = self.report_tables[report]["drill"][row]
            path, params = f"/api/reports/drill/{drill['kind']}", {**self.report_params(), **drill["params"]}
            name = f"{drill['kind']}-{params['from']}-{params['to']}.{fmt}"
        else:
            path, params = f"/api/reports/{what}", self.report_params()
            name = f"{what}-{params['from']}-{params['to']}.{fmt}"
        try:
            data = await self._api_bytes("GET", path, params={**params, "format": fmt})
        except (httpx.HTTPError, OSError) as exc:
            self.toast = self._problem(exc)
            return
        if self._save is None:
            self.toast = self.tr("report.no_save")
            return
        await self._save(name, data)
        self.last_export = name
        self.toast = self.tr("report.exported", name=name)

    async def _api_bytes(self, method: str, path: str, **options: Any) -> bytes:
        assert self._device is not None
        session = self._device.session
        async with httpx.AsyncClient(
            base_url=session.credentials.server_url, transport=self._transport, timeout=30
        ) as http:
            for refresh in (False, True):
                token = await session.token(refresh)
                answer = await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **options)
                if answer.status_code != 401:
                    break
        answer.raise_for_status()
        return answer.content

    # --- imports: pick a file, map its columns, try it (dry run), import it ---------------------------

    def home_store_code(self) -> str:
        """The code of the user's own store ("" for head office and regional managers)."""
        if self.user is None or self.user.store_id is None:
            return ""
        rows = queries.fetch_all(self.replica.db, "SELECT code FROM stores WHERE id = ?", (str(self.user.store_id),))
        return rows[0]["code"] if rows else ""

    def import_store(self) -> str:
        """Where the file's rows go: a store code, or "" for each row's own store column. A store
        manager's own store (the only one the server lets them import into)."""
        if self.import_store_code is None or (self.user is not None and self.user.role.value == "store_manager"):
            return self.home_store_code()
        return self.import_store_code

    def import_stores(self) -> list[dict[str, Any]]:
        """The stores a file can go to: the user's own for a store manager, else every store on the device."""
        if self.user is not None and self.user.role.value == "store_manager":
            return [s for s in self._all_stores() if s["code"] == self.home_store_code()]
        return self._all_stores()

    def _all_stores(self) -> list[dict[str, Any]]:
        return self._cached(
            "all_stores",
            lambda: [
                dict(r) for r in queries.fetch_all(self.replica.db, "SELECT code, name FROM stores ORDER BY code")
            ],
        )

    def import_templates_of_kind(self) -> list[dict[str, Any]]:
        return [t for t in self.import_templates if t.get("kind") == self.import_kind]

    def import_field_label(self, field: str) -> str:
        """A target field in the user's words (the server's preview names each in both languages)."""
        names = (self.import_preview or {}).get("fields", {}).get(field)
        if not names:
            return field
        return names.get("en" if self.locale == "en" else "zh") or field

    def import_problem(self) -> str | None:
        """Why the mapping as it stands cannot be sent (the server's rule, said before it refuses)."""
        if self.import_preview is None:
            return None
        found = mapping_problem(self.import_columns, self.import_kind, list(self.import_preview["fields"]))
        if found is None:
            return None
        problem, field = found
        return self.tr(f"import.problem.{problem}", field=self.import_field_label(field))

    def _import_signature(self) -> str:
        """What a dry run checked: the file, its kind and source, the store and the mapping. The real
        import runs only on exactly that."""
        return json.dumps(
            [
                self.import_file,
                self._import_digest,
                self.import_kind,
                self.import_source,
                self.import_store(),
                self.import_columns,
            ],
            ensure_ascii=False,
            sort_keys=True,
        )

    def import_ready(self) -> bool:
        """正式导入 is offered: the dry run of exactly this file and mapping finished."""
        job = self.import_job
        return (
            bool(self.import_checked)
            and self.import_checked == self._import_signature()
            and not self.import_busy
            and (job is None or job["dry_run"])
        )

    async def pick_import_file(self) -> None:
        """选择文件: the system's picker (a download-folder dialog, or the browser's), then the preview."""
        if not self.is_manager:
            return
        if self._pick is None:
            self.toast = self.tr("import.no_pick")
            return
        try:
            picked = await self._pick()
        except Exception as exc:  # the platform has no picker (e.g. no zenity on a Linux desktop)
            log.warning("file picker failed", exc_info=True)
            self.import_error = self.tr("import.pick_failed", message=str(exc) or type(exc).__name__)
            return
        if picked:
            await self.open_import_file(*picked)

    async def open_import_file(self, name: str, data: bytes | None) -> None:
        """A picked file: checked here for what the server would refuse anyway, then previewed."""
        if not self.is_manager:
            return
        name = PurePath(name or "").name
        if not name.lower().endswith(IMPORT_TYPES):
            self.import_error = self.tr("import.bad_type", name=name)
            return
        if not data:
            self.import_error = self.tr("import.empty", name=name)
            return
        if len(data) > IMPORT_MAX_BYTES:
            self.import_error = self.tr(
                "import.too_big", size=round(len(data) / 2**20), limit=IMPORT_MAX_BYTES // 2**20
            )
            return
        self._import_data, self._import_digest = data, hashlib.sha256(data).hexdigest()
        self.import_file, self.import_preview, self.import_columns = name, None, {}
        self.import_job, self.import_rejections, self.import_checked, self.import_template = None, [], "", ""
        await self._preview_import()

    async def _preview_import(self) -> None:
        self.import_busy, self.import_error = True, None
        try:
            preview = await self._api(
                "POST",
                "/api/imports/preview",
                params={"file_name": self.import_file, "kind": self.import_kind},
                content=self._import_data,
                seconds=IMPORT_TIMEOUT,
            )
            templates = await self._api("GET", "/api/imports/mappings")
        except (httpx.HTTPError, OSError) as exc:
            self.import_preview, self.import_error = None, self._problem(exc, "import.refused")
            return
        finally:
            self.import_busy = False
        self.import_preview, self.import_templates = preview, templates
        self.import_columns = dict(preview["suggested"])

    async def set_import_kind(self, kind: str) -> None:
        """A customer file or an order file: the fields (and the suggested mapping) differ."""
        if kind not in KINDS:
            raise ValueError(kind)
        self.import_kind, self.import_template = kind, ""
        if self._import_data is not None and self.import_file:
            self.import_job, self.import_rejections = None, []
            await self._preview_import()

    def set_import_source(self, source: str) -> None:
        if source not in SOURCES:
            raise ValueError(source)
        self.import_source = source

    def set_import_store(self, code: str) -> None:
        self.import_store_code = code

    def set_import_column(self, header: str, field: str | None) -> None:
        """The field a column goes to (None or "": 忽略, not imported)."""
        if header not in self.import_columns:
            raise ValueError(header)
        self.import_columns = {**self.import_columns, header: field or None}

    def apply_import_template(self, name: str) -> None:
        """A saved template's mapping on this file's columns (columns it does not name: ignored)."""
        template = next((t for t in self.import_templates if t["name"] == name), None)
        if template is None or self.import_preview is None:
            return
        self.import_columns = {h: template["columns"].get(h) or None for h in self.import_preview["headers"]}
        if template.get("source") in SOURCES:
            self.import_source = template["source"]
        self.import_template = self.import_template_name = self.seed_template_name = name
        self.toast = self.tr("import.template_applied", name=name)

    def set_import_template_name(self, text: str) -> None:
        self.import_template_name = text

    async def save_import_template(self) -> bool:
        """保存为模板: this mapping under a name, for the next file from the same source."""
        name = self.import_template_name.strip()
        if not name:
            self.import_error = self.tr("import.template_name_needed")
            return False
        problem = self.import_problem()
        if problem:
            self.import_error = problem
            return False
        body = {"kind": self.import_kind, "source": self.import_source, "columns": self.import_columns}
        try:
            await self._api("PUT", f"/api/imports/mappings/{quote(name, safe='')}", json=body)
            self.import_templates = await self._api("GET", "/api/imports/mappings")
        except (httpx.HTTPError, OSError) as exc:
            self.import_error = self._problem(exc, "import.refused")
            return False
        self.import_template, self.import_error = name, None
        self.toast = self.tr("import.template_saved", name=name)
        return True

    async def start_import(self, *, dry_run: bool) -> None:
        """试运行 (nothing written: what would happen) or 正式导入 (only after the dry run of exactly
        this file and mapping); then follow the job to its end."""
        if not self.is_manager or self._import_data is None or self.import_preview is None or self.import_busy:
            return
        problem = self.import_problem()
        if problem:
            self.import_error = problem
            return
        signature = self._import_signature()
        if not dry_run and self.import_checked != signature:
            self.import_error = self.tr("import.dry_run_first")
            return
        params = {
            "file_name": self.import_file,
            "kind": self.import_kind,
            "source": self.import_source,
            "dry_run": "true" if dry_run else "false",
            "columns": json.dumps(self.import_columns, ensure_ascii=False),
        }
        if self.import_store():
            params["store"] = self.import_store()
        self.import_busy, self.import_error, self.import_rejections = True, None, []
        if not dry_run:
            self.import_checked = ""  # one real import per dry run (a second tap does not import twice)
        try:
            self.import_job = await self._api(
                "POST", "/api/imports/", params=params, content=self._import_data, seconds=IMPORT_TIMEOUT
            )
        except (httpx.HTTPError, OSError) as exc:
            self.import_error = self._problem(exc, "import.refused")
            self.import_busy = False
            return
        await self.follow_import()
        job = self.import_job
        if dry_run and job is not None and job["status"] == "done":
            self.import_checked = signature
        if not dry_run:
            await self.load_desk()  # the recent imports, and any pair it queued for review

    async def follow_import(self) -> None:
        """Ask for the job's progress about once a second until it is done or failed; then fetch
        the first rejected rows."""
        job = self.import_job
        if job is None:
            return
        self.import_busy = True
        failures = 0
        try:
            while job["status"] == "running" and self._device is not None:
                await asyncio.sleep(IMPORT_POLL_SECONDS)
                try:
                    job = await self._api("GET", f"/api/imports/{job['id']}")
                except (httpx.HTTPError, OSError) as exc:
                    failures += 1
                    if failures >= IMPORT_POLL_FAILURES:
                        self.import_error = self._problem(exc, "import.lost")
                        return
                    continue
                failures = 0
                self.import_job = job
            if job["rejected"] and self._device is not None:
                self.import_rejections = await self._api(
                    "GET", f"/api/imports/{job['id']}/rejections", params={"limit": REJECTIONS_SHOWN}
                )
        except (httpx.HTTPError, OSError) as exc:
            self.import_error = self._problem(exc, "import.lost")
        finally:
            self.import_busy = False

    async def download_rejected(self) -> None:
        """下载被拒绝的行: every rejected row as it was in the file, with its row number and reason
        (CSV, UTF-8 with BOM for Excel), saved like a report export."""
        job = self.import_job
        if job is None or not job["rejected"]:
            return
        try:
            data = await self._api_bytes("GET", f"/api/imports/{job['id']}/rejected.csv")
        except (httpx.HTTPError, OSError) as exc:
            self.toast = self._problem(exc)
            return
        if self._save is None:
            self.toast = self.tr("report.no_save")
            return
        name = f"{PurePath(self.import_file).stem}-rejected.csv"
        await self._save(name, data)
        self.toast = self.tr("import.rejected_saved", name=name)

    def clear_import(self) -> None:
        """Put the import screen back to 选择文件 (what the manager chose for kind, source and store stays)."""
        self._import_data, self._import_digest = None, ""
        self.import_file, self.import_preview, self.import_columns, self.import_error = "", None, {}, None
        self.import_job, self.import_rejections, self.import_checked, self.import_template = None, [], "", ""

    # --- roll-out -----------------------------------------------------------------------------------

    @property
    def runs_rollout(self) -> bool:
        """Head office and regional managers switch features and answer feedback."""
        return self.user is not None and self.user.role.value in ("admin", "regional_manager")

    async def load_rollout(self) -> None:
        if not self.is_manager:
            return
        try:
            waves = await self._api("GET", "/api/rollout/waves")
            store = self.rollout_store or (self.desk_stores()[0]["code"] if self.desk_stores() else "")
            features = await self._api("GET", "/api/rollout/features", params={"store": store}) if store else []
            feedback = await self._api("GET", "/api/feedback", params={"limit": 50})
            adoption = await self._api("GET", "/api/reports/adoption", params=self.report_params())
        except (httpx.HTTPError, OSError) as exc:
            self.rollout_error = self._problem(exc)
            return
        self.rollout = {
            "waves": waves,
            "features": features,
            "feedback": feedback.get("items", feedback) if isinstance(feedback, dict) else feedback,
            "adoption": adoption,
        }
        self.rollout_store, self.rollout_error = store, None

    async def choose_rollout_store(self, code: str) -> None:
        self.rollout_store = code
        await self.load_rollout()

    async def set_feature(self, feature: str, enabled: bool) -> None:
        try:
            await self._api("PUT", f"/api/rollout/features/{self.rollout_store}/{feature}", json={"enabled": enabled})
        except (httpx.HTTPError, OSError) as exc:
            self.toast = self._problem(exc)
            return
        self.toast = self.tr("rollout.switched_on" if enabled else "rollout.switched_off", feature=feature)
        await self.load_rollout()

    async def set_feedback_status(self, feedback_id: str, status: str) -> None:
        if status not in FEEDBACK_STATUSES:
            raise ValueError(status)
        try:
            await self._api("PATCH", f"/api/feedback/{feedback_id}", json={"status": status})
        except (httpx.HTTPError, OSError) as exc:
            self.toast = self._problem(exc)
            return
        await self.load_rollout()

    # --- feature switches on this device --------------------------------------------------------------

    def feature_on(self, feature: str) -> bool:
        """A feature head office switched off for the user's store is hidden (no row: on)."""
        if self.user is None or self._device is None:
            return True
        store = str(self.user.store_id) if self.user.store_id else None
        return self._cached("features", lambda: queries.features(self.replica, store)).get(feature, True)

    # --- feedback from the app ------------------------------------------------------------------------

    async def _capture_screen(self) -> bytes | None:
        shot = self.screen_ref.current
        return await shot.capture(pixel_ratio=1) if shot is not None else None

    async def open_feedback(self) -> None:
        """意见反馈: the screen as it is now is captured first (before the sheet covers it)."""
        self._shot = None
        if self._capture is not None:
            try:
                self._shot = await self._capture()
            except Exception:  # no screenshot on this platform: feedback still goes
                log.info("screenshot unavailable", exc_info=True)
        self.feedback_screen = self.route
        self.feedback_text, self.feedback_shot, self.feedback_error = "", self._shot is not None, None
        self.feedback_open = True

    def set_feedback_text(self, text: str) -> None:
        self.feedback_text = text

    def close_feedback(self) -> None:
        self.feedback_open = False

    async def send_feedback(self) -> bool:
        text = self.feedback_text.strip()
        if not text:
            self.feedback_error = self.tr("feedback.empty")
            return False
        body: dict[str, Any] = {"text": text, "screen": self.feedback_screen[:100], "app_version": APP_VERSION}
        shot = self._shot if self.feedback_shot else None
        if shot and len(shot) <= MAX_SHOT:
            body["screenshot_base64"] = base64.b64encode(shot).decode()
        try:
            await self._api("POST", "/api/feedback", json=body)
        except (httpx.HTTPError, OSError) as exc:
            self.feedback_error = self._problem(exc)
            return False
        self.feedback_open, self._shot = False, None
        self.toast = self.tr("feedback.sent")
        return True


APP_VERSION = "1.0"
