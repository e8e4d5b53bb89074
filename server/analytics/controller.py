"""HTTP: the managers' reports and their drill-downs, as JSON tables or as CSV / XLSX downloads.

Store managers, regional managers and admins, each over their own stores; a rep's request answers
403, a store, region or rep outside the caller's scope 404. A drill-down takes the report's
filters plus its own parameters: the client sends a row's ``Drill.params`` over the report's
query (the store comparison's rows name their ``store``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath, QueryParameter

from server.analytics import service
from server.analytics.filters import CHAIN_TZ, Filters, resolve
from server.auth.scope import Caller
from server.deps import CallerDep
from server.errors import Forbidden
from shared.enums import Role
from shared.reports import Column, ReportInfo, Table
from shared.wire import NO_NUL

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The query's own parameters; any other one of a drill-down request is a drill parameter.
FILTER_PARAMS = frozenset({"from", "to", "store", "region", "rep", "format", "limit"})
MAX_PARAM = 200

From = Annotated[
    str | None, QueryParameter(name="from", max_length=32, pattern=NO_NUL, description="first local day, 2026-11-01")
]
To = Annotated[str | None, QueryParameter(name="to", max_length=32, pattern=NO_NUL, description="last local day")]
Ident = Annotated[str | None, QueryParameter(max_length=64, pattern=NO_NUL)]
Format = Annotated[str, QueryParameter(name="format", pattern="^(json|csv|xlsx)$", description="json, csv or xlsx")]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReportController(Controller):
    path = "/api/reports"
    tags = ["reports"]

    @get("/")
    async def list_reports(self, caller: CallerDep) -> list[ReportInfo]:
        """The reports there are (name and titles)."""
        if caller.role == Role.REP:
            raise Forbidden("reports are for managers")
        return [ReportInfo(name=name, title_zh=zh, title_en=en) for name, (zh, en, _) in service.REPORTS.items()]

    @get("/{name:str}")
    async def report(
        self,
        caller: CallerDep,
        name: FromPath[str],
        start: From = None,
        end: To = None,
        store: Ident = None,
        region: Ident = None,
        rep: Ident = None,
        fmt: Format = "json",
    ) -> Response[Table]:
        """One report over the period ``from``–``to`` (local dates, inclusive; default the last 30
        days), narrowed to a store, a region or a rep; as JSON, CSV or XLSX."""
        now = _now()
        f = await resolve(caller, start=start, end=end, store=store, region=region, rep=rep, now=now)
        table = await service.run(name, f, now)
        return _render(table, fmt, caller, f, name)

    @get("/drill/{kind:str}")
    async def drill(
        self,
        request: Request,
        caller: CallerDep,
        kind: FromPath[str],
        start: From = None,
        end: To = None,
        store: Ident = None,
        region: Ident = None,
        rep: Ident = None,
        fmt: Format = "json",
        limit: Annotated[int, QueryParameter(ge=1, le=service.MAX_DRILL_LIMIT)] = 500,
    ) -> Response[Table]:
        """The rows behind a report's number (``kind``: deals, tasks, customers, complaints,
        interactions) with the drill's parameters; ``total`` counts them all, rows stop at ``limit``."""
        now = _now()
        f = await resolve(caller, start=start, end=end, store=store, region=region, rep=rep, now=now)
        params: dict[str, str] = {}
        for key in request.query_params:
            if key in FILTER_PARAMS:
                continue
            values = request.query_params.getall(key)
            if len(values) > 1:
                raise service.BadParameter(f"give {key} once, not {len(values)} times", field=key)
            if len(values[0]) > MAX_PARAM or "\x00" in values[0]:
                raise service.BadParameter(f"{key} is not a value this list takes", field=key)
            params[key] = values[0]
        table = await service.drill(kind, params, f, now, limit=limit)
        return _render(table, fmt, caller, f, f"drill-{kind}")


# --- downloads -------------------------------------------------------------------------------------


def _render(table: Table, fmt: str, caller: Caller, f: Filters, stem: str) -> Response[Any]:
    if fmt == "json":
        return Response(table)
    english = caller.language.lower().startswith("en")
    file_name = f"{stem}-{f.start.isoformat()}-{f.end.isoformat()}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{file_name}"'}
    if fmt == "csv":
        return Response(to_csv(table, english=english), media_type="text/csv; charset=utf-8", headers=headers)
    return Response(to_xlsx(table, english=english), media_type=XLSX, headers=headers)


def _local(value: object) -> Any:
    """A timestamp as the chain's wall-clock time (what a manager reads in Excel), naive."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert isinstance(value, dt.datetime)
    return value.astimezone(CHAIN_TZ).replace(tzinfo=None)


def _unformula(text: str) -> str:
    """Text a spreadsheet would take for a formula (=, +, -, @ first) is kept as text: a customer
    name or a deal title must never run in the manager's Excel."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_cell(value: object, column: Column) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if column.kind == "ts":
        return _local(value).isoformat(sep=" ", timespec="seconds")
    if column.kind == "date" and isinstance(value, dt.date):
        return value.isoformat()
    if column.kind == "text":
        return _unformula(str(value))
    return str(value)


def to_csv(table: Table, *, english: bool) -> bytes:
    """UTF-8 with a byte-order mark (so Excel reads the Chinese), a header row of labels in the
    caller's language, timestamps in China time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.label_en if english else c.label_zh for c in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(v, c) for v, c in zip(row, table.columns, strict=True)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


NUMBER_FORMATS = {"money": "#,##0.00", "ts": "yyyy-mm-dd hh:mm:ss", "date": "yyyy-mm-dd", "percent": "0.0"}


def to_xlsx(table: Table, *, english: bool) -> bytes:
    """One sheet of the table (bold header; money, counts and rates as numbers, times in China
    time) and one sheet saying what it is (title, filters, notes)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=table.report.replace(":", "-")[:31])
    bold = Font(bold=True)

    def cell(value: object, column: Column | None = None, *, font: Font | None = None) -> WriteOnlyCell:
        kind = column.kind if column else "text"
        if value is not None and kind == "money":
            value = Decimal(str(value))
        elif value is not None and kind == "ts":
            value = _local(value)
        elif value is not None and kind == "date" and isinstance(value, str):
            value = dt.date.fromisoformat(value)
        out = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            out.data_type = "s"  # never a formula, whatever the text starts with
        if kind in NUMBER_FORMATS and value is not None:
            out.number_format = NUMBER_FORMATS[kind]
        if font is not None:
            out.font = font
        return out

    sheet.append([cell(c.label_en if english else c.label_zh, font=bold) for c in table.columns])
    for row in table.rows:
        sheet.append([cell(v, c) for v, c in zip(row, table.columns, strict=True)])

    about = book.create_sheet(title="About" if english else "说明")
    about.append([cell(table.title_en if english else table.title_zh, font=bold)])
    for key, value in table.filters.items():
        if value is not None:
            about.append([cell(key), cell(str(value))])
    if table.total is not None:
        about.append([cell("total"), cell(table.total)])
    notes = table.notes_en if english else table.notes_zh
    if notes:
        about.append([cell(notes)])
    if table.generated_at is not None:
        stamp = Column(key="generated_at", label_zh="生成时间", label_en="Generated", kind="ts")
        about.append([cell(stamp.label_en if english else stamp.label_zh), cell(table.generated_at, stamp)])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
