"""The managers' desktop, as actions of the app state (mixed into ``AppState``): the pipeline
board (from the replica; moves go through the outbox like every edit), reports and their
drill-downs and exports, nudges, the roll-out (features per store, waves, feedback, adoption)
and the reps' in-app feedback. Everything but the board is read from the server when opened:
a manager at a desk is online, and the figures are the whole chain's, not the phone's replica.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import Any

import httpx

from mobile import queries

log = logging.getLogger("floorwalker.mobile")

PERIODS = ("7d", "30d", "month", "last_month", "90d")
DASHBOARD = ("targets", "funnel", "trend", "pipeline")  # what the KPI dashboard fetches
TABLE_REPORTS = ("pipeline", "stalled", "funnel", "win_rate", "forecast", "rep_activity", "stores", "trend", "adoption")
FEEDBACK_STATUSES = ("new", "acknowledged", "planned", "done", "declined")
MAX_SHOT = 2 * 1024 * 1024


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

    def _problem(self, exc: Exception) -> str:
        if isinstance(exc, httpx.HTTPStatusError):
            try:
                detail = exc.response.json().get("detail")
            except ValueError:
                detail = None
            return self.tr("action.failed", message=detail or str(exc))
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
