"""The import panel of the managers' desk: choose a file (customers or orders, its source, the
store), match its columns to fields (templates to load and save, a sample of the first rows), a
dry run that writes nothing, then the real import with its progress, counts and rejected rows."""

from __future__ import annotations

import asyncio
from typing import Any

import flet as ft

from mobile.desktop import REJECTIONS_SHOWN
from mobile.state import AppState
from mobile.ui.common import Field, header, muted
from shared.import_reasons import zh
from shared.imports import KINDS, SOURCES

COUNTS = ("created", "updated", "unchanged", "merged", "rejected", "review")
SAMPLE_ROWS = 5
SAMPLE_CELL = 24  # characters of a sample value shown (an address can be long)
SIDE_PANEL = 440  # on a wide screen the steps and results stand beside the columns, in sight
# How the server names what it read (Python codec names) → how people know them.
ENCODINGS = {"utf-8-sig": "UTF-8 (BOM)", "utf-8": "UTF-8", "gb18030": "GBK / GB18030", "xlsx": "Excel XLSX"}


def _run(coro_factory):
    async def handler(e: ft.Event) -> None:
        await coro_factory()

    return handler


def _chooser(state: AppState) -> ft.Control:
    """What the file is, where it comes from, which store it goes to; and 选择文件."""
    stores = state.import_stores()
    store_options = [ft.dropdown.Option(key=s["code"], text=f"{s['code']} {s['name']}") for s in stores]
    home_only = state.user is not None and state.user.role.value == "store_manager"
    if not home_only:
        store_options.insert(0, ft.dropdown.Option(key="", text=state.tr("import.store_from_file")))
    busy = state.import_busy
    return ft.Row(
        [
            ft.Dropdown(
                key="import-kind",
                label=state.tr("import.kind"),
                width=140,
                dense=True,
                value=state.import_kind,
                disabled=busy,
                options=[ft.dropdown.Option(key=k, text=state.tr(f"import.kind.{k}")) for k in KINDS],
                on_select=lambda e: asyncio.ensure_future(state.set_import_kind(e.control.value)),
            ),
            ft.Dropdown(
                key="import-source",
                label=state.tr("import.source"),
                width=160,
                dense=True,
                value=state.import_source,
                disabled=busy,
                options=[ft.dropdown.Option(key=s, text=state.tr(f"import.source.{s}")) for s in SOURCES],
                on_select=lambda e: state.set_import_source(e.control.value),
            ),
            ft.Dropdown(
                key="import-store",
                label=state.tr("import.store"),
                width=240,
                dense=True,
                value=state.import_store(),
                disabled=busy or home_only,
                options=store_options,
                on_select=lambda e: state.set_import_store(e.control.value or ""),
            ),
            ft.FilledButton(
                key="import-pick",
                content=ft.Text(state.tr("import.pick")),
                icon=ft.Icons.UPLOAD_FILE,
                disabled=busy,
                on_click=_run(state.pick_import_file),
            ),
        ],
        wrap=True,
        spacing=8,
        run_spacing=8,
    )


def _samples(preview: dict[str, Any], index: int) -> str:
    values = [row[index] for row in preview["sample"][:3] if index < len(row) and row[index].strip()]
    return " · ".join(v if len(v) <= SAMPLE_CELL else v[: SAMPLE_CELL - 1] + "…" for v in values)


def _mapping(state: AppState, preview: dict[str, Any]) -> list[ft.Control]:
    """One line per column of the file: its name, a few of its values, the field it goes to."""
    fields = list(preview["fields"])
    options = [ft.dropdown.Option(key="", text=state.tr("import.ignore"))] + [
        ft.dropdown.Option(key=f, text=state.import_field_label(f)) for f in fields
    ]
    rows: list[ft.Control] = []
    for i, column in enumerate(preview["headers"]):
        field = state.import_columns.get(column)
        rows.append(
            ft.Row(
                [
                    ft.Column(
                        [
                            ft.Text(column or "—", weight=ft.FontWeight.W_600),
                            muted(_samples(preview, i)),
                        ],
                        spacing=0,
                        width=260,
                    ),
                    ft.Icon(ft.Icons.ARROW_FORWARD, size=16, color=ft.Colors.GREY_600),
                    ft.Dropdown(
                        key=f"map-{i}",
                        width=240,
                        dense=True,
                        value=field or "",
                        disabled=state.import_busy,
                        options=options,
                        on_select=lambda e, column=column: state.set_import_column(column, e.control.value),
                    ),
                ],
                key=f"column-{i}",
                spacing=8,
            )
        )
    return rows


def _templates(state: AppState) -> ft.Control:
    templates = state.import_templates_of_kind()
    choose: ft.Control
    if templates:
        choose = ft.Dropdown(
            key="import-template",
            label=state.tr("import.template"),
            width=220,
            dense=True,
            value=state.import_template if any(t["name"] == state.import_template for t in templates) else None,
            options=[
                ft.dropdown.Option(key=t["name"], text=f"{t['name']} · {state.tr('import.source.' + t['source'])}")
                if t.get("source") in SOURCES
                else ft.dropdown.Option(key=t["name"], text=t["name"])
                for t in templates
            ],
            on_select=lambda e: state.apply_import_template(e.control.value),
        )
    else:
        choose = muted(state.tr("import.no_templates"))
    return ft.Row(
        [
            choose,
            ft.Container(
                Field(
                    "import-template-name",
                    state.tr("import.template_name"),
                    state.seed_template_name,
                    state.set_import_template_name,
                ),
                width=200,
            ),
            ft.OutlinedButton(
                key="import-save-template",
                content=ft.Text(state.tr("import.save_template")),
                icon=ft.Icons.SAVE_OUTLINED,
                disabled=state.import_busy,
                on_click=_run(state.save_import_template),
            ),
        ],
        wrap=True,
        spacing=8,
        vertical_alignment=ft.CrossAxisAlignment.CENTER,
    )


def _sample_table(preview: dict[str, Any]) -> ft.Control:
    headers = preview["headers"]

    def cell(row: list[str], i: int) -> str:
        value = row[i] if i < len(row) else ""
        return value if len(value) <= SAMPLE_CELL else value[: SAMPLE_CELL - 1] + "…"

    return ft.Row(
        [
            ft.DataTable(
                key="import-sample",
                heading_row_height=32,
                data_row_min_height=28,
                data_row_max_height=36,
                columns=[ft.DataColumn(ft.Text(h or "—", weight=ft.FontWeight.BOLD)) for h in headers],
                rows=[
                    ft.DataRow(cells=[ft.DataCell(ft.Text(cell(row, i))) for i in range(len(headers))])
                    for row in preview["sample"][:SAMPLE_ROWS]
                ],
            )
        ],
        scroll=ft.ScrollMode.AUTO,
    )


def _actions(state: AppState) -> list[ft.Control]:
    problem = state.import_problem()
    out: list[ft.Control] = []
    if problem:
        out.append(ft.Text(problem, color=ft.Colors.ORANGE_900, key="import-problem"))
    out.append(
        ft.Row(
            [
                ft.OutlinedButton(
                    key="import-dry-run",
                    content=ft.Text(state.tr("import.dry_run")),
                    icon=ft.Icons.FACT_CHECK_OUTLINED,
                    disabled=state.import_busy or problem is not None,
                    on_click=_run(lambda: state.start_import(dry_run=True)),
                ),
                ft.FilledButton(
                    key="import-run",
                    content=ft.Text(state.tr("import.run")),
                    icon=ft.Icons.PLAY_ARROW,
                    disabled=not state.import_ready(),
                    on_click=_run(lambda: state.start_import(dry_run=False)),
                ),
                ft.TextButton(
                    key="import-clear",
                    content=ft.Text(state.tr("import.clear")),
                    disabled=state.import_busy,
                    on_click=lambda e: state.clear_import(),
                ),
            ],
            wrap=True,
            spacing=8,
        )
    )
    if not state.import_ready() and not (state.import_job and not state.import_job["dry_run"]):
        out.append(muted(state.tr("import.run_hint")))
    return out


def _reason(state: AppState, rejection: dict[str, Any]) -> str:
    """Why a row was refused, in the app's language: the server writes it in English; in Chinese
    it is the server's translation (``reason_zh``), or the app's own from an older server."""
    if state.locale == "en":
        return rejection["reason"]
    return rejection.get("reason_zh") or zh(rejection["reason"])


def _job(state: AppState, job: dict[str, Any]) -> list[ft.Control]:
    """Progress while it runs; then what it did (or would do), and the first rejected rows."""
    done, total = int(job["next_row"]), int(job["total_rows"])
    out: list[ft.Control] = []
    if job["status"] == "running":
        key = "import.checking" if job["dry_run"] else "import.running"
        out.append(ft.Text(state.tr(key, done=done, total=total), key="import-status"))
        out.append(ft.ProgressBar(key="import-progress", value=min(1.0, done / max(total, done, 1))))
        return out
    counts = {k: int(job[k]) for k in COUNTS}
    if job["status"] == "failed":
        out.append(
            ft.Text(
                state.tr("import.failed", error=job.get("error") or ""), color=ft.Colors.RED_700, key="import-status"
            )
        )
    else:
        title = state.tr("import.dry_result" if job["dry_run"] else "import.done")
        out.append(ft.Text(title, weight=ft.FontWeight.BOLD, key="import-status"))
    line = state.tr("import.dry_counts" if job["dry_run"] else "desk.counts", **counts)
    rows = sum(counts[k] for k in COUNTS if k != "review")
    out.append(ft.Text(line, key="import-result"))
    out.append(muted(state.tr("import.total", rows=rows)))
    if counts["rejected"]:
        out.append(header(state.tr("import.rejections", count=counts["rejected"])))
        for r in state.import_rejections:
            values = " · ".join(str(v) for v in r["raw"].values() if str(v).strip())
            out.append(
                ft.Column(
                    [
                        ft.Text(
                            state.tr(
                                "import.rejection",
                                row=r["row_number"],
                                field=state.import_field_label(r["field"]),
                                reason=_reason(state, r),
                            ),
                            color=ft.Colors.RED_800,
                        ),
                        muted(values),
                    ],
                    key=f"rejection-{r['row_number']}",
                    spacing=0,
                )
            )
        if counts["rejected"] > len(state.import_rejections) and state.import_rejections:
            out.append(muted(state.tr("import.rejections_more", shown=REJECTIONS_SHOWN)))
        out.append(
            ft.OutlinedButton(
                key="import-download-rejected",
                content=ft.Text(state.tr("import.download_rejected")),
                icon=ft.Icons.DOWNLOAD,
                on_click=_run(state.download_rejected),
            )
        )
    return out


def import_panel(state: AppState) -> list[ft.Control]:
    """The import steps as the manager goes through them: top to bottom on a phone; on a wide screen
    the columns on the left and the dry run, the import and their results on the right."""
    rows: list[ft.Control] = [header(state.tr("import.title")), _chooser(state)]
    if state.import_error:
        rows.append(ft.Text(state.import_error, color=ft.Colors.RED_700, key="import-error", selectable=True))
    preview = state.import_preview
    if preview is None:
        rows.append(muted(state.tr("import.reading") if state.import_busy else state.tr("import.hint")))
        return rows
    rows.append(
        ft.Text(
            state.tr(
                "import.file_line",
                name=state.import_file,
                encoding=ENCODINGS.get(preview["encoding"], preview["encoding"].upper()),
                rows=preview["rows"],
                columns=len(preview["headers"]),
            ),
            weight=ft.FontWeight.W_600,
            key="import-file",
        )
    )
    columns: list[ft.Control] = [
        ft.Text(state.tr("import.mapping"), weight=ft.FontWeight.BOLD, size=15),
        muted(state.tr("import.mapping_hint")),
        _templates(state),
        *_mapping(state, preview),
        ft.Text(state.tr("import.sample"), weight=ft.FontWeight.BOLD, size=15),
        _sample_table(preview),
    ]
    steps = _actions(state) + (_job(state, state.import_job) if state.import_job is not None else [])
    if not state.wide:
        return rows + columns + steps
    side = ft.Container(
        ft.Column(steps, spacing=8),
        key="import-steps",
        width=SIDE_PANEL,
        padding=12,
        border_radius=10,
        bgcolor=ft.Colors.with_opacity(0.05, ft.Colors.BLUE_700),
    )
    body = ft.Row(
        [ft.Column(columns, spacing=8, expand=True), side],
        spacing=16,
        vertical_alignment=ft.CrossAxisAlignment.START,
    )
    return [*rows, body]


__all__ = ["import_panel"]
