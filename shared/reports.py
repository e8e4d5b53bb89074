"""The managers' reports on the wire: every report is a table (columns + rows), so the desktop
renders, charts, drills into and exports any of them the same way.

A row may carry a drill-down: which rows are behind its numbers (``Drill``: a kind of list and
the filters that select it), fetched from ``GET /api/reports/drill/{kind}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from shared.wire import Read

# How a column's values read: text, a count, money (a decimal string), a percentage (0..100,
# float), days or minutes (float), a date (ISO), a timestamp (RFC 3339).
ColumnKind = Literal["text", "int", "money", "percent", "days", "minutes", "number", "date", "ts"]
DrillKind = Literal["deals", "tasks", "customers", "complaints", "interactions"]

REPORTS = (
    "pipeline",  # open deals by stage: count, amount, weighted amount
    "stalled",  # open deals over their stage's idle limit, with owner
    "funnel",  # stage-to-stage conversion and median days in stage
    "win_rate",  # win rate and sales-cycle length per owner
    "forecast",  # this and next month: open deals by expected close
    "rep_activity",  # follow-ups per rep per day, tasks on time / overdue, contacts without follow-up
    "stores",  # store comparison
    "segments",  # customers by lifecycle segment: health, twelve months' sales, worth winning back
    "complaints",  # the complaint loop's backlog now (awaiting each step, late) and the period's call-backs
    "targets",  # the chain's targets with period-over-period change
    "trend",  # week by week: new deals, won, follow-ups
    "adoption",  # roll-out: per store and wave, pilots against the rest
)


class Column(Read):
    key: str
    label_zh: str
    label_en: str
    kind: ColumnKind = "text"


class Drill(Read):
    kind: DrillKind
    params: dict[str, str] = msgspec.field(default_factory=dict)


class Table(Read):
    report: str
    title_zh: str
    title_en: str
    columns: list[Column]
    rows: list[list[Any]]
    # One entry per row (None: nothing behind it), same order as rows.
    drill: list[Drill | None] = msgspec.field(default_factory=list)
    # The filters the figures were computed with (resolved: dates, store codes, …).
    filters: dict[str, Any] = msgspec.field(default_factory=dict)
    # Drill lists are capped; total says how many rows there are in all.
    total: int | None = None
    notes_zh: str = ""
    notes_en: str = ""
    generated_at: dt.datetime | None = None


class ReportInfo(Read):
    name: str
    title_zh: str
    title_en: str
