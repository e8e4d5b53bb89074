"""The managers' desktop screens (wide layout): the pipeline board with moves and nudges, the
KPI dashboard with charts and any report as a table (drill-down, CSV/XLSX export), and the
roll-out (feature switches per store, waves, feedback, adoption). Also the feedback sheet every
user can open from the top bar."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import flet as ft
import flet_charts as fch

from mobile.desktop import FEEDBACK_STATUSES, PERIODS, TABLE_REPORTS
from mobile.queries import stalled_deals
from mobile.state import AppState, money
from mobile.ui.common import header, muted

CHART_COLOURS = (ft.Colors.BLUE_600, ft.Colors.TEAL_600, ft.Colors.ORANGE_700, ft.Colors.PURPLE_500)


def _run(coro_factory):
    async def handler(e: ft.Event) -> None:
        await coro_factory()

    return handler


def _label(state: AppState, item: dict[str, Any], key: str = "title") -> str:
    return item.get(f"{key}_en" if state.locale == "en" else f"{key}_zh") or ""


def _cell(state: AppState, kind: str, value: Any) -> str:
    if value is None:
        return "—"
    if kind == "money":
        return "¥" + money(value)
    if kind == "percent":
        return f"{float(value):.1f}%"
    if kind in ("days", "minutes", "number"):
        unit = {"days": state.tr("report.days"), "minutes": state.tr("report.minutes"), "number": ""}[kind]
        return f"{float(value):.1f}{unit}"
    if kind == "bool":
        return "✓" if value else ""
    if isinstance(value, bool):
        return "✓" if value else ""
    return str(value)


def _filters(state: AppState, *, with_store: bool = True) -> ft.Control:
    chips: list[ft.Control] = [
        ft.Chip(
            key=f"period-{p}",
            label=ft.Text(state.tr(f"report.period.{p}")),
            selected=state.report_period == p,
            on_select=_run(lambda p=p: state.set_period(p)),
        )
        for p in PERIODS
    ]
    if with_store and len(state.desk_stores()) > 1:
        chips.append(
            ft.Dropdown(
                key="report-store",
                width=200,
                dense=True,
                value=state.report_store or "",
                options=[ft.dropdown.Option(key="", text=state.tr("report.all_stores"))]
                + [ft.dropdown.Option(key=s["code"], text=f"{s['code']} {s['name']}") for s in state.desk_stores()],
                on_select=lambda e: asyncio.ensure_future(state.set_report_store(e.control.value or "")),
            )
        )
    regions = state.desk_regions()
    if len(regions) > 1:
        chips.append(
            ft.Dropdown(
                key="report-region",
                width=160,
                dense=True,
                value=state.report_region or "",
                options=[ft.dropdown.Option(key="", text=state.tr("report.all_regions"))]
                + [ft.dropdown.Option(key=r["code"], text=r["name"]) for r in regions],
                on_select=lambda e: asyncio.ensure_future(state.set_report_filter("region", e.control.value or "")),
            )
        )
    reps = state.board_owners()
    if reps:
        chips.append(
            ft.Dropdown(
                key="report-rep",
                width=160,
                dense=True,
                value=state.report_rep or "",
                options=[ft.dropdown.Option(key="", text=state.tr("board.all_owners"))]
                + [ft.dropdown.Option(key=r["id"], text=r["name"]) for r in reps],
                on_select=lambda e: asyncio.ensure_future(state.set_report_filter("rep", e.control.value or "")),
            )
        )
    return ft.Row(chips, wrap=True, spacing=6)


# --- the board ---------------------------------------------------------------------------------------


def _deal_card(state: AppState, column, deal) -> ft.Control:
    others = [c.stage for c in state.board() if c.stage.code != column.stage.code]
    won = [s for s in state.stages() if s.kind == "won"]
    name = lambda s: s.name_en if state.locale == "en" else s.name_zh  # noqa: E731
    items = [
        ft.PopupMenuItem(
            content=ft.Text(state.tr("board.move_to", stage=name(s))),
            on_click=lambda e, s=s: state.move_stage(deal.id, s.code),
        )
        for s in [*others, *won]
    ]
    lines: list[ft.Control] = [
        ft.Text(deal.title, weight=ft.FontWeight.BOLD, size=14, max_lines=2),
        muted(f"{deal.customer_name} · {deal.owner_name or state.tr('board.no_owner')}"),
        ft.Row(
            [
                ft.Text("¥" + money(deal.amount), size=13),
                ft.Text(
                    state.tr("board.days", days=int(deal.days_in_stage)),
                    size=12,
                    color=ft.Colors.RED_700 if deal.stalled else ft.Colors.GREY_700,
                ),
            ],
            alignment=ft.MainAxisAlignment.SPACE_BETWEEN,
        ),
    ]
    actions: list[ft.Control] = [
        ft.PopupMenuButton(
            key=f"move-{deal.id}",
            icon=ft.Icons.DRIVE_FILE_MOVE_OUTLINE,
            tooltip=state.tr("board.move"),
            items=items,
        )
    ]
    if deal.stalled and deal.owner_id:
        actions.insert(
            0,
            ft.TextButton(
                key=f"nudge-{deal.id}",
                content=ft.Text(state.tr("board.nudged_short") if deal.id in state.nudged else state.tr("board.nudge")),
                on_click=_run(lambda: state.nudge(deal.id, deal.owner_name)),
            ),
        )
    lines.append(ft.Row(actions, alignment=ft.MainAxisAlignment.END, spacing=0))
    return ft.Container(
        ft.Column(lines, spacing=2),
        key=f"deal-{deal.id}",
        padding=8,
        border_radius=8,
        bgcolor=ft.Colors.with_opacity(0.10, ft.Colors.RED_400) if deal.stalled else ft.Colors.WHITE,
        border=ft.Border.all(1, ft.Colors.with_opacity(0.2, ft.Colors.GREY_700)),
    )


def _stalled_row(state: AppState, stage, deal) -> ft.Control:
    name = stage.name_en if state.locale == "en" else stage.name_zh
    over = int(deal.days_in_stage - (deal.idle_days or 0))
    return ft.Container(
        ft.Column(
            [
                ft.Text(deal.title, weight=ft.FontWeight.W_600, size=13, max_lines=1),
                ft.Row(
                    [
                        ft.Text(
                            state.tr("board.stalled_line", owner=deal.owner_name or "—", stage=name, over=over),
                            size=12,
                            color=ft.Colors.RED_700,
                            expand=True,
                        ),
                        ft.TextButton(
                            key=f"stalled-nudge-{deal.id}",
                            content=ft.Text(
                                state.tr("board.nudged_short") if deal.id in state.nudged else state.tr("board.nudge")
                            ),
                            on_click=_run(lambda: state.nudge(deal.id, deal.owner_name)),
                            disabled=not deal.owner_id,
                        ),
                    ]
                ),
            ],
            spacing=0,
        ),
        key=f"stalled-{deal.id}",
        padding=ft.Padding.symmetric(horizontal=6, vertical=2),
    )


@ft.component
def BoardScreen(state: AppState) -> ft.Control:
    """Pipeline by stage (the manager's stores on this device), stalled deals marked and listed."""
    columns = state.board()
    owners = state.board_owners()
    top = ft.Row(
        [
            ft.Dropdown(
                key="board-owner",
                width=200,
                dense=True,
                value=state.board_owner or "",
                options=[ft.dropdown.Option(key="", text=state.tr("board.all_owners"))]
                + [ft.dropdown.Option(key=o["id"], text=o["name"]) for o in owners],
                on_select=lambda e: state.set_board_owner(e.control.value or ""),
            ),
            muted(
                state.tr(
                    "board.summary",
                    count=sum(len(c.deals) for c in columns),
                    amount=money(sum((c.amount for c in columns), Decimal(0))),
                    stalled=sum(1 for c in columns for d in c.deals if d.stalled),
                )
            ),
        ],
        spacing=16,
    )
    lanes = [
        ft.Container(
            ft.Column(
                [
                    ft.Text(
                        f"{c.stage.name_en if state.locale == 'en' else c.stage.name_zh} · {len(c.deals)}",
                        weight=ft.FontWeight.BOLD,
                        size=15,
                    ),
                    muted("¥" + money(c.amount)),
                    ft.Column(
                        [_deal_card(state, c, d) for d in c.deals[:60]]
                        + ([muted(state.tr("board.more", n=len(c.deals) - 60))] if len(c.deals) > 60 else []),
                        spacing=6,
                        scroll=ft.ScrollMode.AUTO,
                        expand=True,
                    ),
                ],
                spacing=4,
                expand=True,
            ),
            key=f"lane-{c.stage.code}",
            width=250,
            padding=8,
            border_radius=10,
            bgcolor=ft.Colors.with_opacity(0.05, ft.Colors.BLUE_GREY_700),
        )
        for c in columns
    ]
    stalled = stalled_deals(columns)
    panel = ft.Container(
        ft.Column(
            [
                ft.Text(state.tr("board.stalled", count=len(stalled)), weight=ft.FontWeight.BOLD, size=15),
                muted(state.tr("board.stalled_hint")),
                ft.Column(
                    [_stalled_row(state, stage, deal) for stage, deal in stalled[:100]],
                    spacing=4,
                    scroll=ft.ScrollMode.AUTO,
                    expand=True,
                ),
            ],
            spacing=4,
            expand=True,
        ),
        key="board-stalled",
        width=300,
        padding=8,
        border_radius=10,
        bgcolor=ft.Colors.with_opacity(0.06, ft.Colors.RED_400),
    )
    return ft.Column(
        [
            header(state.tr("board.title")),
            top,
            ft.Row(
                [
                    ft.Row(
                        lanes,
                        spacing=10,
                        scroll=ft.ScrollMode.AUTO,
                        vertical_alignment=ft.CrossAxisAlignment.START,
                        expand=True,
                    ),
                    panel,
                ],
                vertical_alignment=ft.CrossAxisAlignment.START,
                expand=True,
            ),
        ],
        spacing=8,
        expand=True,
    )


# --- reports and the KPI dashboard -------------------------------------------------------------------


UNIT_KINDS = {"%": "percent", "days": "days", "minutes": "minutes"}


def _kpi_tiles(state: AppState, table: dict[str, Any] | None) -> ft.Control:
    """One tile per target: this period's figure, the target and baseline, the change against the
    previous period (green when it moved the right way)."""
    if not table:
        return muted(state.tr("report.loading"))
    keys = [c["key"] for c in table["columns"]]
    tiles: list[ft.Control] = []
    for row in table["rows"]:
        item = dict(zip(keys, row, strict=False))
        kind = UNIT_KINDS.get(item.get("unit") or "", "number")
        current, change = item.get("this_period"), item.get("change")
        if change is None:
            trend, colour = state.tr("report.no_change"), ft.Colors.GREY_700
        else:
            value = float(change)
            arrow = "▲" if value > 0 else "▼" if value < 0 else "＝"
            good = (value > 0) == (item.get("better") == "higher") if value else None
            colour = ft.Colors.GREY_700 if good is None else ft.Colors.GREEN_700 if good else ft.Colors.RED_700
            trend = f"{arrow} {_cell(state, kind, abs(value))}"
        name = item.get("metric_en") if state.locale == "en" else item.get("metric")
        tiles.append(
            ft.Container(
                ft.Column(
                    [
                        ft.Text(name, size=13),
                        ft.Text(
                            _cell(state, kind, current) if current is not None else state.tr("report.no_data"),
                            size=24,
                            weight=ft.FontWeight.BOLD,
                        ),
                        muted(
                            state.tr(
                                "report.kpi_line",
                                target=_cell(state, kind, item.get("target")),
                                baseline=_cell(state, kind, item.get("baseline")),
                            )
                        ),
                        ft.Text(trend, size=12, color=colour),
                    ],
                    spacing=2,
                ),
                key=f"kpi-{item.get('metric_key', len(tiles))}",
                width=200,
                padding=10,
                border_radius=10,
                bgcolor=ft.Colors.with_opacity(0.06, ft.Colors.BLUE_700),
            )
        )
    return ft.Row(tiles, wrap=True, spacing=8, run_spacing=8)


def _bar_chart(labels: list[str], values: list[float], colour: str, key: str) -> ft.Control:
    top = max([v for v in values if v is not None] or [1]) or 1
    return fch.BarChart(
        key=key,
        groups=[
            fch.BarChartGroup(
                x=i,
                rods=[fch.BarChartRod(from_y=0, to_y=float(v or 0), width=22, color=colour, tooltip=f"{v}")],
            )
            for i, v in enumerate(values)
        ],
        bottom_axis=fch.ChartAxis(
            labels=[fch.ChartAxisLabel(value=i, label=ft.Text(text, size=11)) for i, text in enumerate(labels)],
            label_size=32,
        ),
        left_axis=fch.ChartAxis(label_size=40),
        horizontal_grid_lines=fch.ChartGridLines(interval=max(top / 4, 1), color=ft.Colors.GREY_300, width=1),
        max_y=top * 1.15,
        interactive=True,
        height=220,
        expand=True,
    )


def _column(table: dict[str, Any], key: str) -> list[Any]:
    keys = [c["key"] for c in table["columns"]]
    if key not in keys:
        return []
    i = keys.index(key)
    return [row[i] for row in table["rows"]]


def _charts(state: AppState) -> ft.Control:
    funnel = state.report_tables.get("funnel")
    trend = state.report_tables.get("trend")
    boxes: list[ft.Control] = []
    if funnel and funnel["rows"]:
        names = _column(funnel, "stage_en" if state.locale == "en" else "stage")
        boxes.append(
            _chart_box(
                state.tr("report.chart.funnel"),
                _bar_chart(
                    names, [float(v or 0) for v in _column(funnel, "reached")], CHART_COLOURS[0], "chart-funnel"
                ),
            )
        )
        durations = [float(v or 0) for v in _column(funnel, "median_days")]
        if durations:
            boxes.append(
                _chart_box(
                    state.tr("report.chart.durations"),
                    _bar_chart(names, durations, CHART_COLOURS[1], "chart-durations"),
                )
            )
    if trend and trend["rows"]:
        weeks = [str(w) for w in _column(trend, "week")]
        series, legend = [], []
        for i, (key, label) in enumerate((("new_deals", "report.trend.new"), ("won_deals", "report.trend.won"))):
            values = _column(trend, key)
            if values:
                legend.append(
                    ft.Text(f"━ {state.tr(label)}", color=CHART_COLOURS[(i + 2) % len(CHART_COLOURS)], size=12)
                )
                series.append(
                    fch.LineChartData(
                        points=[fch.LineChartDataPoint(x=j, y=float(v or 0)) for j, v in enumerate(values)],
                        color=CHART_COLOURS[(i + 2) % len(CHART_COLOURS)],
                        stroke_width=3,
                        curved=True,
                    )
                )
        if series:
            boxes.append(
                _chart_box(
                    state.tr("report.chart.trend"),
                    fch.LineChart(
                        key="chart-trend",
                        data_series=series,
                        bottom_axis=fch.ChartAxis(
                            labels=[
                                fch.ChartAxisLabel(value=j, label=ft.Text(w[-3:], size=11)) for j, w in enumerate(weeks)
                            ],
                            label_size=28,
                        ),
                        left_axis=fch.ChartAxis(label_size=36),
                        height=200,
                        expand=True,
                    ),
                    legend,
                )
            )
    return ft.Row(boxes, spacing=10, vertical_alignment=ft.CrossAxisAlignment.START)


def _chart_box(title: str, chart: ft.Control, legend: list[ft.Control] | None = None) -> ft.Control:
    return ft.Container(
        ft.Column(
            [ft.Row([ft.Text(title, weight=ft.FontWeight.BOLD), *(legend or [])], wrap=True, spacing=10), chart],
            spacing=4,
        ),
        padding=10,
        border_radius=10,
        expand=True,
        border=ft.Border.all(1, ft.Colors.with_opacity(0.15, ft.Colors.GREY_700)),
    )


HIDDEN = {"id", "stage_code", "segment_code", "state_code", "metric_key", "unit", "better"}


def _shown(state: AppState, key: str, keys: set[str]) -> bool:
    """Ids and codes stay out of sight; of a zh/en pair the reader's language shows."""
    if key in HIDDEN or key.endswith("_id"):
        return False
    if key.endswith("_en"):
        return state.locale == "en"
    return not (state.locale == "en" and f"{key}_en" in keys)


def _table(state: AppState, table: dict[str, Any], *, report: str | None, key: str) -> ft.Control:
    columns = table["columns"]
    shown = [i for i, c in enumerate(columns) if _shown(state, c["key"], {c["key"] for c in columns})]
    drills = table.get("drill") or []

    def row_click(i: int):
        if report is None or i >= len(drills) or not drills[i]:
            return None
        return _run(lambda: state.open_drill(report, i))

    return ft.DataTable(
        key=key,
        heading_row_height=36,
        data_row_min_height=32,
        data_row_max_height=44,
        columns=[
            ft.DataColumn(
                ft.Text(_label(state, columns[i], "label"), weight=ft.FontWeight.BOLD),
                numeric=columns[i]["kind"] not in ("text", "date", "ts"),
            )
            for i in shown
        ],
        rows=[
            ft.DataRow(
                cells=[ft.DataCell(ft.Text(_cell(state, columns[i]["kind"], row[i]))) for i in shown],
                on_select_change=row_click(n),
            )
            for n, row in enumerate(table["rows"][:300])
        ],
    )


def _export_buttons(state: AppState, what: str) -> list[ft.Control]:
    return [
        ft.OutlinedButton(
            key=f"export-{what}-{fmt}",
            content=ft.Text(state.tr(f"report.export_{fmt}")),
            icon=ft.Icons.DOWNLOAD,
            on_click=_run(lambda fmt=fmt: state.export(what, fmt)),
        )
        for fmt in ("csv", "xlsx")
    ]


@ft.component
def ReportsScreen(state: AppState) -> ft.Control:
    """KPI dashboard (the chain's targets with their change), charts, and any report as a table."""
    ft.use_effect(lambda: asyncio.ensure_future(state.load_dashboard()), [])
    rows: list[ft.Control] = [
        header(
            state.tr("report.title"),
            ft.TextButton(
                key="report-refresh", content=ft.Text(state.tr("desk.refresh")), on_click=_run(state.load_dashboard)
            ),
        ),
        _filters(state),
    ]
    if state.report_error:
        rows.append(ft.Text(state.report_error, color=ft.Colors.RED_700, key="report-error"))
    rows.append(ft.Text(state.tr("report.kpis"), weight=ft.FontWeight.BOLD, size=16))
    rows.append(_kpi_tiles(state, state.report_tables.get("targets")))
    rows.append(_charts(state))
    rows.append(
        ft.Row(
            [
                ft.Dropdown(
                    key="report-pick",
                    width=240,
                    dense=True,
                    value=state.report_name,
                    options=[ft.dropdown.Option(key=n, text=state.tr(f"report.name.{n}")) for n in TABLE_REPORTS],
                    on_select=lambda e: asyncio.ensure_future(state.choose_report(e.control.value)),
                ),
                *_export_buttons(state, state.report_name),
            ],
            spacing=8,
        )
    )
    table = state.report_tables.get(state.report_name)
    if table is not None:
        if table.get("notes_zh"):
            rows.append(muted(table["notes_en"] if state.locale == "en" else table["notes_zh"]))
        rows.append(muted(state.tr("report.drill_hint")))
        rows.append(_table(state, table, report=state.report_name, key=f"table-{state.report_name}"))
    if state.drill_table is not None:
        drill = state.drill_table
        rows.append(
            ft.Row(
                [
                    ft.Text(
                        state.tr(
                            "report.drill", title=_label(state, drill), total=drill.get("total") or len(drill["rows"])
                        ),
                        weight=ft.FontWeight.BOLD,
                    ),
                    *_export_buttons(state, "drill"),
                    ft.TextButton(content=ft.Text(state.tr("report.close")), on_click=lambda e: state.close_drill()),
                ],
                spacing=8,
            )
        )
        rows.append(_table(state, drill, report=None, key="table-drill"))
    return ft.Column(rows, spacing=10, scroll=ft.ScrollMode.AUTO, expand=True)


# --- roll-out ----------------------------------------------------------------------------------------


@ft.component
def RolloutScreen(state: AppState) -> ft.Control:
    """Waves, the chosen store's feature switches, feedback from the stores, adoption."""
    ft.use_effect(lambda: asyncio.ensure_future(state.load_rollout()), [])
    data = state.rollout
    rows: list[ft.Control] = [
        header(
            state.tr("rollout.title"),
            ft.TextButton(
                key="rollout-refresh", content=ft.Text(state.tr("desk.refresh")), on_click=_run(state.load_rollout)
            ),
        )
    ]
    if state.rollout_error:
        rows.append(ft.Text(state.rollout_error, color=ft.Colors.RED_700))
    rows.append(ft.Text(state.tr("rollout.waves"), weight=ft.FontWeight.BOLD, size=16))
    for wave in data.get("waves", []):
        stores = ", ".join(s.get("code", "") if isinstance(s, dict) else str(s) for s in wave.get("stores", []))
        rows.append(
            ft.Text(
                state.tr(
                    "rollout.wave",
                    name=wave.get("name", ""),
                    date=wave.get("starts_on", ""),
                    status=state.tr(f"rollout.status.{wave.get('status', 'planned')}"),
                    stores=stores,
                ),
                key=f"wave-{wave.get('code', '')}",
            )
        )
    rows.append(
        ft.Row(
            [
                ft.Text(state.tr("rollout.features"), weight=ft.FontWeight.BOLD, size=16),
                ft.Dropdown(
                    key="rollout-store",
                    width=220,
                    dense=True,
                    value=state.rollout_store,
                    options=[
                        ft.dropdown.Option(key=s["code"], text=f"{s['code']} {s['name']}") for s in state.desk_stores()
                    ],
                    on_select=lambda e: asyncio.ensure_future(state.choose_rollout_store(e.control.value)),
                ),
            ]
        )
    )
    for feature in data.get("features", []):
        rows.append(
            ft.Switch(
                key=f"feature-{feature['feature']}",
                label=_label(state, feature, "label"),
                value=bool(feature["enabled"]),
                disabled=not state.runs_rollout,
                on_change=lambda e, f=feature["feature"]: asyncio.ensure_future(
                    state.set_feature(f, bool(e.control.value))
                ),
            )
        )
    rows.append(ft.Text(state.tr("rollout.adoption"), weight=ft.FontWeight.BOLD, size=16))
    if data.get("adoption"):
        rows.append(_table(state, data["adoption"], report=None, key="table-adoption"))
    rows.append(ft.Text(state.tr("rollout.feedback"), weight=ft.FontWeight.BOLD, size=16))
    for item in data.get("feedback", []):
        rows.append(
            ft.Row(
                [
                    ft.Column(
                        [
                            ft.Text(item.get("text", ""), weight=ft.FontWeight.W_600),
                            muted(
                                " · ".join(
                                    str(x)
                                    for x in (
                                        item.get("store_code"),
                                        item.get("user_name"),
                                        item.get("screen"),
                                        item.get("created_at", "")[:10],
                                    )
                                    if x
                                )
                                + (" · " + state.tr("rollout.has_shot") if item.get("has_screenshot") else "")
                            ),
                        ],
                        spacing=0,
                        expand=True,
                    ),
                    ft.Dropdown(
                        width=150,
                        dense=True,
                        value=item.get("status"),
                        disabled=not state.runs_rollout,
                        options=[
                            ft.dropdown.Option(key=s, text=state.tr(f"feedback.status.{s}")) for s in FEEDBACK_STATUSES
                        ],
                        on_select=lambda e, i=item["id"]: asyncio.ensure_future(
                            state.set_feedback_status(i, e.control.value)
                        ),
                    ),
                ],
                key=f"feedback-{item['id']}",
            )
        )
    return ft.Column(rows, spacing=8, scroll=ft.ScrollMode.AUTO, expand=True)


# --- the feedback sheet (every user) -----------------------------------------------------------------


def feedback_sheet(state: AppState) -> ft.Control:
    from mobile.ui.common import Field

    return ft.Container(
        ft.Column(
            [
                ft.Text(state.tr("feedback.title"), weight=ft.FontWeight.BOLD, size=16),
                Field("feedback-text", state.tr("feedback.hint"), "", state.set_feedback_text, multiline=True),
                ft.Checkbox(
                    key="feedback-shot",
                    label=state.tr("feedback.attach"),
                    value=state.feedback_shot,
                    disabled=state._shot is None,
                    on_change=lambda e: setattr(state, "feedback_shot", bool(e.control.value)),
                ),
                *([ft.Text(state.feedback_error, color=ft.Colors.RED_700)] if state.feedback_error else []),
                ft.Row(
                    [
                        ft.FilledButton(
                            key="feedback-send",
                            content=ft.Text(state.tr("feedback.send")),
                            on_click=_run(state.send_feedback),
                        ),
                        ft.TextButton(
                            content=ft.Text(state.tr("feedback.cancel")), on_click=lambda e: state.close_feedback()
                        ),
                    ]
                ),
            ],
            spacing=6,
        ),
        key="feedback-sheet",
        padding=12,
        border_radius=10,
        bgcolor=ft.Colors.with_opacity(0.06, ft.Colors.BLUE_700),
    )


__all__ = ["BoardScreen", "ReportsScreen", "RolloutScreen", "feedback_sheet"]
