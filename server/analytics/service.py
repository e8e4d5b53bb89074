"""The managers' reports, each one or a few set-based SQL queries over the covered stores, and the
rows behind any of their numbers (drill-downs).

Every report takes resolved ``Filters`` (period ``[since, until)``, the covered stores, one rep)
and the moment ``now`` it describes, and returns a wire ``Table``. Figures are computed in SQL
that PostgreSQL and SQLite both run; the only per-engine piece is ``_epoch`` (seconds of a
timestamp). Money is a decimal string with two places, percentages and days are floats with one
decimal, and a rate with nothing to divide by is None.

Definitions shared by several reports (one place each):

- a *follow-up* is an interaction of kind visit, call, message or note (``FOLLOW_UP_KINDS``)
  logged by a member of staff (``user_id`` set); browse and cart events and messages that came in
  from the shop systems (no user) are not follow-ups;
- a *rep's follow-ups* are the follow-ups that rep logged in a covered store; "follow-ups per rep
  per day" divides those of the active reps of the covered stores by the reps and the period's days;
- a task *on time* was done no later than it was due; *late* was done after (or done with no
  completion time); *overdue* is still open and past due at ``now``; on-time % is on time ÷
  (on time + late + overdue) of the tasks due in the period (cancelled ones and open ones not yet
  due are left out);
- a *contact without follow-up*: see ``_unanswered_contacts``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import importlib.util
import re
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from server import db
from server.analytics.filters import CHAIN_TZ, Filters, local_midnight, today
from server.errors import DomainError, Invalid, NotFound
from server.opportunities.tables import Opportunity
from server.rules.service import CONTACT_KINDS, FOLLOW_UP_KINDS
from server.values import as_date, money, utc
from shared.complaints import CALLBACK_HOURS, HISTORY_MINUTES, SOLUTION_MINUTES
from shared.enums import Group
from shared.reports import REPORTS as REPORT_NAMES
from shared.reports import Column, Drill, Table
from shared.segments import GROUPS, HEALTHY

STALLED_LIMIT = 1000  # rows in the stalled report (most overdue first); ``total`` counts them all
NO_FOLLOW_UP_HOURS = 48  # the no_follow_up rule's default window
REPEAT_COMPLAINT_DAYS = 30
TOTAL_ZH = "合计"
TOTAL_EN = "Total"

TITLES: dict[str, tuple[str, str]] = {
    "pipeline": ("销售管道", "Pipeline"),
    "stalled": ("停滞商机", "Stalled deals"),
    "funnel": ("销售漏斗", "Funnel"),
    "win_rate": ("赢单率与销售周期", "Win rate and sales cycle"),
    "forecast": ("成交预测", "Forecast"),
    "rep_activity": ("导购跟进与任务", "Rep activity"),
    "stores": ("门店对比", "Store comparison"),
    "segments": ("客户分群", "Customer segments"),
    "complaints": ("投诉处理", "Complaint handling"),
    "targets": ("目标达成", "Targets"),
    "trend": ("周趋势", "Weekly trend"),
    "adoption": ("推广使用情况", "Adoption"),
}
assert set(TITLES) == set(REPORT_NAMES)

DRILL_TITLES: dict[str, tuple[str, str]] = {
    "deals": ("商机明细", "Deals"),
    "tasks": ("任务明细", "Tasks"),
    "customers": ("客户明细", "Customers"),
    "complaints": ("投诉明细", "Complaints"),
    "interactions": ("跟进记录", "Follow-ups"),
}


# --- building blocks -----------------------------------------------------------------------------


class Sql:
    """A query's parameters, appended in the order their ``{}`` marks appear in the text: build the
    text left to right (one f-string, or pieces in textual order) and every mark meets its value."""

    def __init__(self) -> None:
        self.params: list[object] = []

    def __call__(self, value: object) -> str:
        self.params.append(value)
        return "{}"

    def stores(self, f: Filters, column: str) -> str:
        return f.store_filter(column, self.params)

    def owner(self, f: Filters, column: str) -> str:
        return f.owner_filter(column, self.params)

    def between(self, column: str, since: dt.datetime | dt.date, until: dt.datetime | dt.date) -> str:
        """``column`` in the half-open interval [since, until)."""
        return f"{column} >= {self(since)} AND {column} < {self(until)}"

    def period(self, f: Filters, column: str) -> str:
        return self.between(column, f.since, f.until)

    async def rows(self, sql: str, set_local: dict[str, str] | None = None) -> list[dict[str, Any]]:
        return await db.fetch_report(sql, self.params, set_local)


Within = Callable[[str], str]  # a range of ids as a condition on the column given (db.id_ranges)


async def _in_parts(
    build: Callable[[Sql, Within], str],
    table: str,
    f: Filters,
    *,
    by: tuple[str, ...],
    set_local: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """A query that counts per customer (or deal) run as ``f.parts`` queries side by side, each
    over its own range of ``table``'s ids (``build(q, within)`` puts ``within(column)`` on every id
    column it reads), and the parts' rows added up by the ``by`` columns: the same figures, the
    sorting and hashing shared by several cores."""
    jobs = []
    for within in await db.id_ranges(table, "id", f.parts):
        q = Sql()
        jobs.append(q.rows(build(q, within), set_local))
    return db.add_up(await asyncio.gather(*jobs), by)


def _epoch(column: str) -> str:
    """Seconds since 1970 of a timestamp, on either engine (SQLite keeps timestamps as text)."""
    if db.is_postgres():
        return f"EXTRACT(EPOCH FROM {column})"
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


def _span(later: str, earlier: str, unit_seconds: int) -> str:
    """``later - earlier`` in days (86400) or minutes (60), as a number."""
    return f"(({_epoch(later)} - {_epoch(earlier)}) / {float(unit_seconds)})"


def _median(inner: str, unit_seconds: int) -> str:
    """Median of the span ``a - b`` in days (86400) or minutes (60) per group ``g`` over ``inner``
    (a SELECT yielding columns g, a and b, two timestamps): the middle span, or the mean of the two
    middle ones (rows where either is missing are left out). Yields g, median, n.

    PostgreSQL takes the two middle spans with percentile_disc, sorting the intervals themselves
    (ascending for the lower, descending for the upper); converting every row to a numeric number
    of seconds first makes the sort several times slower. SQLite has no percentile functions: the
    middle rows by ROW_NUMBER and COUNT windows."""
    if db.is_postgres():
        unit = float(unit_seconds)
        return (
            f"SELECT g, (EXTRACT(EPOCH FROM lo) / {unit} + EXTRACT(EPOCH FROM hi) / {unit}) / 2 AS median, n FROM "
            "(SELECT g, percentile_disc(0.5) WITHIN GROUP (ORDER BY a - b) AS lo, "
            "percentile_disc(0.5) WITHIN GROUP (ORDER BY a - b DESC) AS hi, COUNT(*) AS n "
            f"FROM ({inner}) m WHERE a IS NOT NULL AND b IS NOT NULL GROUP BY g) x"
        )
    return (
        "SELECT g, AVG(v) AS median, MAX(n) AS n FROM ("
        "SELECT g, v, ROW_NUMBER() OVER (PARTITION BY g ORDER BY v) AS rn, COUNT(*) OVER (PARTITION BY g) AS n "
        f"FROM (SELECT g, {_span('a', 'b', unit_seconds)} AS v FROM ({inner}) m0) m WHERE v IS NOT NULL) r "
        "WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY g"
    )


def _shifted(left: str, op: str, right: str, seconds: int) -> str:
    """``left op right + seconds`` for two timestamps, on either engine. PostgreSQL compares the
    timestamps themselves (no numeric seconds computed per row); SQLite compares seconds."""
    if db.is_postgres():
        return f"{left} {op} {right} + INTERVAL '{int(seconds)} seconds'"
    return f"{_epoch(left)} {op} {_epoch(right)} + {int(seconds)}"


def _kinds(kinds: tuple[str, ...]) -> str:
    return ", ".join(f"'{k}'" for k in kinds)


FOLLOW_UP = f"IN ({_kinds(FOLLOW_UP_KINDS)})"
CONTACT = f"IN ({_kinds(CONTACT_KINDS)})"


def _follow_up(alias: str) -> str:
    """The row ``alias`` of interactions is a follow-up (see the module's docstring)."""
    return f"{alias}.kind {FOLLOW_UP} AND {alias}.user_id IS NOT NULL AND {alias}.deleted = false"


def _unanswered_contacts(q: Sql, f: Filters, now: dt.datetime) -> str:
    """Contacts left without a follow-up for 48 hours: a SELECT of (customer_id, occurred_at).

    A *contact* is what the no_follow_up rule reacts to: an interaction of kind visit, call or
    message (``CONTACT_KINDS``) logged by a member of staff (``user_id`` set), not deleted — here
    one that happened in the period and at least 48 hours before ``now`` (so its window is over).
    It is *unanswered* when staff logged no other follow-up (visit, call, message or note, not
    deleted) in the covered stores for that customer at the same moment or in the 48 hours after it.
    Unlike the rule, which at the moment it runs looks for any follow-up since, a report looks back:
    the window closes at 48 hours, and only follow-ups by staff count (not a message that came in
    from WeChat). An anti-join: the period's follow-ups are hashed by customer once and each contact
    looks for another in its window (the explicit range on ``a`` bounds that set; every follow-up
    in a judged contact's window lies in it)."""
    window = NO_FOLLOW_UP_HOURS * 3600
    last = min(f.until, now - dt.timedelta(seconds=window))  # contacts before this are judged
    return (
        f"SELECT c.customer_id, c.occurred_at FROM interactions c WHERE {_follow_up('c')} AND c.kind {CONTACT} "
        f"AND {q.between('c.occurred_at', f.since, last)} AND {q.stores(f, 'c.store_id')} "
        f"AND NOT EXISTS (SELECT 1 FROM interactions a WHERE {_follow_up('a')} "
        f"AND {q.between('a.occurred_at', f.since, last + dt.timedelta(seconds=window))} "
        f"AND {q.stores(f, 'a.store_id')} AND a.customer_id = c.customer_id AND a.id <> c.id "
        f"AND a.occurred_at >= c.occurred_at AND {_shifted('a.occurred_at', '<=', 'c.occurred_at', window)})"
    )


def _col(key: str, zh: str, en: str, kind: str = "text") -> Column:
    return Column(key=key, label_zh=zh, label_en=en, kind=kind)  # type: ignore[arg-type]


def _pct(part: float | int | None, whole: float | int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * float(part) / float(whole), 1)


def _num(value: object) -> float | None:
    """A computed number (Decimal on PostgreSQL, float on SQLite) rounded to one decimal."""
    return None if value is None else round(float(value), 1)  # type: ignore[arg-type]


def _ratio(part: float | int | None, whole: float | int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(float(part) / float(whole), 1)


def _money(value: object) -> str:
    return str(money(value))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _int(value: object) -> int:
    return int(value or 0)  # type: ignore[call-overload]


def _utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC)


def _table(
    name: str,
    columns: list[Column],
    rows: list[list[Any]],
    f: Filters,
    now: dt.datetime,
    *,
    drill: list[Drill | None] | None = None,
    total: int | None = None,
    notes: tuple[str, str] = ("", ""),
    titles: tuple[str, str] | None = None,
    filters: dict[str, Any] | None = None,
) -> Table:
    title_zh, title_en = titles or TITLES[name]
    return Table(
        report=name,
        title_zh=title_zh,
        title_en=title_en,
        columns=columns,
        rows=rows,
        drill=drill if drill is not None else [None] * len(rows),
        filters={**f.described(), **(filters or {})},
        total=total,
        notes_zh=notes[0],
        notes_en=notes[1],
        generated_at=now,
    )


async def _stages(*, deleted_too: bool = False) -> list[dict[str, Any]]:
    """The pipeline's stages in position order (a handful of rows); ``deleted_too``: with the
    deleted ones (old stage visits may name them)."""
    live = "" if deleted_too else "WHERE deleted = false "
    return await Opportunity.raw(
        "SELECT id, code, name_zh, name_en, position, kind, probability, idle_days, deleted FROM pipeline_stages "
        f"{live}ORDER BY position"
    )


def _stalled_terms(q: Sql, stages: list[dict[str, Any]], now: dt.datetime) -> str:
    """Open deals past their stage's idle limit (stages without one never stall): per stage
    ``stage_id = … AND stage_entered_at < now - idle days`` (index on both)."""
    terms = [
        f"(o.stage_id = {q(s['id'])} AND o.stage_entered_at < {q(now - dt.timedelta(days=int(s['idle_days'])))})"
        for s in stages
        if s["kind"] == "open" and s["idle_days"]
    ]
    return f"({' OR '.join(terms)})" if terms else "1=0"


def _month_start(day: dt.date, months_ahead: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 + months_ahead
    return dt.date(index // 12, index % 12 + 1, 1)


# --- pipeline --------------------------------------------------------------------------------------


async def pipeline(f: Filters, now: dt.datetime) -> Table:
    """Open deals now, by stage in pipeline order: count, amount, amount × the stage's probability."""
    now = _utc(now)
    q = Sql()
    rows = await q.rows(
        "SELECT s.code, s.name_zh, s.name_en, s.probability, COUNT(o.id) AS n, SUM(o.amount) AS amount "
        "FROM pipeline_stages s LEFT JOIN opportunities o ON o.stage_id = s.id AND o.deleted = false "
        f"AND {q.stores(f, 'o.store_id')} AND {q.owner(f, 'o.owner_id')} "
        "WHERE s.kind = 'open' AND s.deleted = false "
        "GROUP BY s.code, s.name_zh, s.name_en, s.probability, s.position ORDER BY s.position"
    )
    out, drills = [], []
    for r in rows:
        amount = money(r["amount"])
        weighted = money(amount * int(r["probability"]) / 100)
        out.append(
            [r["name_zh"], r["name_en"], r["code"], _int(r["n"]), str(amount), int(r["probability"]), str(weighted)]
        )
        drills.append(Drill(kind="deals", params={"stage": r["code"]}))
    columns = [
        _col("stage", "阶段", "Stage"),
        _col("stage_en", "阶段（英文）", "Stage (English)"),
        _col("stage_code", "阶段代码", "Stage code"),
        _col("deals", "商机数", "Deals", "int"),
        _col("amount", "金额", "Amount", "money"),
        _col("probability", "赢单概率", "Probability", "percent"),
        _col("weighted", "加权金额", "Weighted amount", "money"),
    ]
    return _table(
        "pipeline",
        columns,
        out,
        f,
        now,
        drill=drills,
        notes=(
            "当前未结商机（不受日期范围限制）；加权金额 = 金额 × 阶段赢单概率。",
            "Open deals now (the dates do not apply); weighted amount = amount × the stage's probability.",
        ),
    )


# --- stalled ---------------------------------------------------------------------------------------


async def stalled(f: Filters, now: dt.datetime) -> Table:
    """Open deals in their stage longer than its idle limit, most overdue first (at most
    ``STALLED_LIMIT`` rows; ``total`` counts all)."""
    now = _utc(now)
    stages = await _stages()
    q = Sql()
    counted = await q.rows(
        f"SELECT COUNT(*) AS n FROM opportunities o WHERE o.deleted = false AND {_stalled_terms(q, stages, now)} "
        f"AND {q.stores(f, 'o.store_id')} AND {q.owner(f, 'o.owner_id')}"
    )
    total = _int(counted[0]["n"])
    rows: list[dict[str, Any]] = []
    if total:
        # The most overdue of each stage come first in its (stage, entered) index: the first
        # STALLED_LIMIT of every stage hold the first STALLED_LIMIT of all.
        q = Sql()
        firsts = " UNION ALL ".join(
            f"SELECT * FROM (SELECT o.id FROM opportunities o WHERE o.deleted = false "
            f"AND o.stage_id = {q(s['id'])} AND o.stage_entered_at < {q(now - dt.timedelta(days=int(s['idle_days'])))} "
            f"AND {q.stores(f, 'o.store_id')} AND {q.owner(f, 'o.owner_id')} "
            f"ORDER BY o.stage_entered_at, o.id LIMIT {q(STALLED_LIMIT)}) s{n}"
            for n, s in enumerate(x for x in stages if x["kind"] == "open" and x["idle_days"])
        )
        rows = await q.rows(
            "SELECT o.id, o.title, o.customer_id, c.name AS customer, o.owner_id, u.display_name AS owner, "
            "st.code AS store, s.name_zh, s.name_en, s.idle_days, o.stage_entered_at, o.amount "
            f"FROM ({firsts}) t JOIN opportunities o ON o.id = t.id JOIN pipeline_stages s ON s.id = o.stage_id "
            "JOIN customers c ON c.id = o.customer_id JOIN stores st ON st.id = o.store_id "
            "LEFT JOIN users u ON u.id = o.owner_id "
            f"ORDER BY {_epoch('o.stage_entered_at')} + s.idle_days * 86400.0, o.id LIMIT {q(STALLED_LIMIT)}"
        )
    out, drills = [], []
    for r in rows:
        entered = utc(r["stage_entered_at"])
        days = (now - entered).total_seconds() / 86400 if entered else 0.0
        out.append(
            [
                str(r["id"]),
                r["title"],
                _text(r["customer_id"]),
                r["customer"],
                r["store"],
                _text(r["owner_id"]),
                r["owner"],
                r["name_zh"],
                r["name_en"],
                round(days, 1),
                int(r["idle_days"]),
                round(days - int(r["idle_days"]), 1),
                _money(r["amount"]),
            ]
        )
        drills.append(Drill(kind="deals", params={"id": str(r["id"])}))
    columns = [
        _col("opportunity_id", "商机ID", "Deal id"),
        _col("title", "商机", "Deal"),
        _col("customer_id", "客户ID", "Customer id"),
        _col("customer", "客户", "Customer"),
        _col("store", "门店", "Store"),
        _col("owner_id", "负责人ID", "Owner id"),
        _col("owner", "负责人", "Owner"),
        _col("stage", "阶段", "Stage"),
        _col("stage_en", "阶段（英文）", "Stage (English)"),
        _col("days_in_stage", "停留天数", "Days in stage", "days"),
        _col("idle_days", "允许天数", "Idle limit (days)", "int"),
        _col("overdue_days", "超期天数", "Days over the limit", "days"),
        _col("amount", "金额", "Amount", "money"),
    ]
    return _table(
        "stalled",
        columns,
        out,
        f,
        now,
        drill=drills,
        total=total,
        notes=(
            f"在当前阶段停留超过该阶段允许天数的未结商机，超期最久的在前（最多{STALLED_LIMIT}行）；未设允许天数的阶段不计停滞。",
            f"Open deals longer in their stage than it allows, most overdue first (at most {STALLED_LIMIT} rows); "
            "stages without an idle limit never stall.",
        ),
    )


# --- funnel ----------------------------------------------------------------------------------------


async def funnel(f: Filters, now: dt.datetime) -> Table:
    """Deals created in the period: how many reached each open stage and the won stage (a visit to
    it or to a later stage, lost aside), conversion from the previous stage, and the median days a
    stage visit entered in the period lasted (visits that have ended)."""
    now = _utc(now)
    visited = [s for s in await _stages(deleted_too=True) if s["kind"] != "lost"]
    stages = [s for s in visited if not s["deleted"]]

    def tops(q: Sql, within: Within) -> str:
        # Per deal created in the period, the furthest non-lost stage it visited (NULL: none); the
        # stages' positions inline (a handful), so the visits need no join.
        position = " ".join(f"WHEN {q(s['id'])} THEN {int(s['position'])}" for s in visited)
        top = f"CASE h.stage_id {position} END" if visited else "CAST(NULL AS INTEGER)"
        return (
            f"SELECT r.top, COUNT(*) AS n FROM (SELECT o.id, MAX({top}) AS top FROM opportunities o LEFT JOIN "
            f"stage_history h ON h.opportunity_id = o.id AND h.deleted = false AND {within('h.opportunity_id')} "
            f"WHERE {_created_sql(q, f)} AND {within('o.id')} GROUP BY o.id) r GROUP BY r.top"
        )

    # Deals and their visits both come in deal order from their indexes: merged, the visits of a
    # deal arrive together.
    tops_job = _in_parts(tops, "opportunities", f, by=("top",), set_local=db.MERGE_NOT_HASH)
    q3 = Sql()
    # A rep's deals need their owner; otherwise only the (few) deleted deals are looked up.
    deal = "JOIN opportunities o ON o.id = h.opportunity_id AND o.deleted = false " if f.owner_id is not None else ""
    medians_job = q3.rows(
        _median(
            f"SELECT h.stage_id AS g, h.left_at AS a, h.entered_at AS b FROM stage_history h {deal}"
            f"WHERE h.deleted = false AND h.left_at IS NOT NULL AND {q3.period(f, 'h.entered_at')} "
            f"AND {q3.stores(f, 'h.store_id')} AND {q3.owner(f, 'o.owner_id')} AND NOT EXISTS "
            "(SELECT 1 FROM opportunities d WHERE d.id = h.opportunity_id AND d.deleted = true)",
            86400,
        ),
        db.LARGE_SORTS,
    )
    tops, medians = await asyncio.gather(tops_job, medians_job)
    reached_at = {int(r["top"]): _int(r["n"]) for r in tops if r["top"] is not None}
    by_stage = {str(m["g"]): m for m in medians}
    created_count = sum(_int(r["n"]) for r in tops)
    out: list[list[Any]] = []
    previous: int | None = None
    for s in stages:
        reached = sum(n for top, n in reached_at.items() if top >= int(s["position"]))
        median = by_stage.get(str(s["id"]))
        out.append(
            [
                s["name_zh"],
                s["name_en"],
                s["code"],
                reached,
                _pct(reached, created_count),
                _pct(reached, previous) if previous is not None else None,
                _num(median["median"]) if median else None,
                _int(median["n"]) if median else 0,
            ]
        )
        previous = reached
    columns = [
        _col("stage", "阶段", "Stage"),
        _col("stage_en", "阶段（英文）", "Stage (English)"),
        _col("stage_code", "阶段代码", "Stage code"),
        _col("reached", "到达数", "Reached", "int"),
        _col("reached_pct", "占新建商机", "Of new deals", "percent"),
        _col("conversion", "上一阶段转化率", "Conversion from previous stage", "percent"),
        _col("median_days", "停留天数中位数", "Median days in stage", "days"),
        _col("timed", "计时阶段记录数", "Stage visits timed", "int"),
    ]
    return _table(
        "funnel",
        columns,
        out,
        f,
        now,
        total=created_count,
        notes=(
            f"期间新建商机{created_count}个；到达某阶段 = 曾进入该阶段或其后的阶段（输单除外）。"
            "停留天数中位数取期间内进入且已离开该阶段的记录。",
            f"{created_count} deals created in the period; a deal reached a stage when it was in that stage or a "
            "later one (lost aside). Median days: stage visits entered in the period that have ended.",
        ),
    )


def _created_sql(q: Sql, f: Filters, alias: str = "o") -> str:
    """Deals created in the period in the covered stores (of the rep): a WHERE condition."""
    return (
        f"{alias}.deleted = false AND {q.period(f, f'{alias}.created_at')} "
        f"AND {q.stores(f, f'{alias}.store_id')} AND {q.owner(f, f'{alias}.owner_id')}"
    )


# --- win rate --------------------------------------------------------------------------------------


def _closed_sql(q: Sql, f: Filters, kinds: tuple[str, ...] = ("won", "lost")) -> str:
    """Deals closed (won or lost) in the period: a WHERE condition on o and s (its stage)."""
    return (
        f"o.deleted = false AND s.kind IN ({_kinds(kinds)}) AND {q.period(f, 'o.closed_at')} "
        f"AND {q.stores(f, 'o.store_id')} AND {q.owner(f, 'o.owner_id')}"
    )


async def win_rate(f: Filters, now: dt.datetime) -> Table:
    """Deals closed in the period per owner, and a total row: won, lost, win rate, won amount, the
    mean and median sales cycle (created → closed) of the won ones, in days."""
    now = _utc(now)
    cycle = _span("o.closed_at", "o.created_at", 86400)
    q = Sql()
    groups_job = q.rows(
        "SELECT o.owner_id, u.display_name AS owner, "
        "SUM(CASE WHEN s.kind = 'won' THEN 1 ELSE 0 END) AS won, "
        "SUM(CASE WHEN s.kind = 'lost' THEN 1 ELSE 0 END) AS lost, "
        "SUM(CASE WHEN s.kind = 'won' THEN o.amount ELSE 0 END) AS won_amount, "
        f"SUM(CASE WHEN s.kind = 'won' THEN {cycle} ELSE 0 END) AS cycle_days "
        "FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id LEFT JOIN users u ON u.id = o.owner_id "
        f"WHERE {_closed_sql(q, f)} GROUP BY o.owner_id, u.display_name"
    )
    q2 = Sql()

    def won() -> str:
        return (
            "SELECT CAST(o.owner_id AS TEXT) AS owner_id, o.closed_at AS a, o.created_at AS b FROM opportunities o "
            f"JOIN pipeline_stages s ON s.id = o.stage_id WHERE {_closed_sql(q2, f, ('won',))}"
        )

    # The same won deals twice: per owner, and all together under '*' (the total row's median).
    inner = f"SELECT owner_id AS g, a, b FROM ({won()}) w UNION ALL SELECT '*' AS g, a, b FROM ({won()}) w2"
    groups, middles = await asyncio.gather(groups_job, q2.rows(_median(inner, 86400)))
    medians = {(str(m["g"]) if m["g"] is not None else None): m["median"] for m in middles}

    def row(owner_id: str | None, owner: str, won: int, lost: int, amount: Decimal, days: float, median: object):
        return [
            owner_id,
            owner,
            won,
            lost,
            won + lost,
            _pct(won, won + lost),
            str(money(amount)),
            _ratio(days, won),
            _num(median),
        ]

    groups.sort(key=lambda r: (-_int(r["won"]), r["owner"] or "", str(r["owner_id"])))
    out, drills = [], []
    for r in groups:
        owner_id = _text(r["owner_id"])
        out.append(
            row(
                owner_id,
                r["owner"] or "—",
                _int(r["won"]),
                _int(r["lost"]),
                money(r["won_amount"]),
                float(r["cycle_days"] or 0),
                medians.get(owner_id),
            )
        )
        drills.append(Drill(kind="deals", params={"owner": owner_id, "status": "won"}) if owner_id else None)
    out.append(
        row(
            None,
            f"{TOTAL_ZH} / {TOTAL_EN}",
            sum(_int(r["won"]) for r in groups),
            sum(_int(r["lost"]) for r in groups),
            sum((money(r["won_amount"]) for r in groups), Decimal(0)),
            sum(float(r["cycle_days"] or 0) for r in groups),
            medians.get("*"),
        )
    )
    drills.append(Drill(kind="deals", params={"status": "won"}))
    columns = [
        _col("owner_id", "负责人ID", "Owner id"),
        _col("owner", "负责人", "Owner"),
        _col("won", "赢单", "Won", "int"),
        _col("lost", "输单", "Lost", "int"),
        _col("closed", "结单", "Closed", "int"),
        _col("win_rate", "赢单率", "Win rate", "percent"),
        _col("won_amount", "赢单金额", "Won amount", "money"),
        _col("avg_cycle_days", "平均销售周期（天）", "Mean sales cycle (days)", "days"),
        _col("median_cycle_days", "销售周期中位数（天）", "Median sales cycle (days)", "days"),
    ]
    return _table(
        "win_rate",
        columns,
        out,
        f,
        now,
        drill=drills,
        notes=(
            "期间内结单（赢单或输单）的商机；赢单率 = 赢单 ÷ 结单；销售周期 = 赢单商机从创建到签约的天数。",
            "Deals closed (won or lost) in the period; win rate = won ÷ closed; sales cycle = days from "
            "creation to close of the won deals.",
        ),
    )


# --- forecast --------------------------------------------------------------------------------------


async def forecast(f: Filters, now: dt.datetime) -> Table:
    """Open deals expected to close this month and next month (months of ``now`` in the chain's
    time zone): count, amount, weighted amount."""
    now = _utc(now)
    first = _month_start(today(now))
    second, after = _month_start(first, 1), _month_start(first, 2)
    q = Sql()
    rows = await q.rows(
        "SELECT x.m, x.probability, COUNT(*) AS n, SUM(x.amount) AS amount FROM ("
        f"SELECT CASE WHEN o.expected_close_date < {q(second)} THEN 0 ELSE 1 END AS m, s.probability, o.amount "
        "FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id "
        f"WHERE o.deleted = false AND s.kind = 'open' AND {q.between('o.expected_close_date', first, after)} "
        f"AND {q.stores(f, 'o.store_id')} AND {q.owner(f, 'o.owner_id')}) x GROUP BY x.m, x.probability"
    )
    out, drills = [], []
    for index, month in enumerate((first, second)):
        mine = [r for r in rows if int(r["m"]) == index]
        amount = sum((money(r["amount"]) for r in mine), Decimal(0))
        weighted = sum((money(r["amount"]) * int(r["probability"]) / 100 for r in mine), Decimal(0))
        label = f"{month.year:04d}-{month.month:02d}"
        out.append([label, sum(_int(r["n"]) for r in mine), str(money(amount)), str(money(weighted))])
        drills.append(Drill(kind="deals", params={"close_month": label}))
    columns = [
        _col("month", "月份", "Month"),
        _col("deals", "商机数", "Deals", "int"),
        _col("amount", "金额", "Amount", "money"),
        _col("weighted", "加权金额", "Weighted amount", "money"),
    ]
    return _table(
        "forecast",
        columns,
        out,
        f,
        now,
        drill=drills,
        notes=(
            "预计成交日在本月和下月的未结商机（不受日期范围限制）；加权金额 = 金额 × 阶段赢单概率。",
            "Open deals expected to close this month and next (the dates do not apply); weighted amount = "
            "amount × the stage's probability.",
        ),
    )


# --- rep activity ----------------------------------------------------------------------------------


async def _reps(f: Filters) -> list[dict[str, Any]]:
    """The reps the figures are about: the active reps of the covered stores (the one rep asked for,
    active or not)."""
    q = Sql()
    active = "1=1" if f.owner_id is not None else "u.active = true"
    return await q.rows(
        "SELECT u.id, u.username, u.display_name, u.store_id, st.code AS store FROM users u "
        "JOIN stores st ON st.id = u.store_id "
        f"WHERE u.role = 'rep' AND u.deleted = false AND {active} AND {q.stores(f, 'u.store_id')} "
        f"AND {q.owner(f, 'u.id')} ORDER BY st.code, u.display_name, u.username"
    )


async def _follow_ups_by_user(f: Filters) -> dict[str, int]:
    q = Sql()
    rows = await q.rows(
        f"SELECT i.user_id, COUNT(*) AS n FROM interactions i WHERE {_follow_up('i')} "
        f"AND {q.period(f, 'i.occurred_at')} AND {q.stores(f, 'i.store_id')} AND {q.owner(f, 'i.user_id')} "
        "GROUP BY i.user_id"
    )
    return {str(r["user_id"]): _int(r["n"]) for r in rows}


@dataclasses.dataclass
class TaskCounts:
    due: int = 0
    on_time: int = 0
    late: int = 0
    overdue: int = 0

    @property
    def on_time_pct(self) -> float | None:
        return _pct(self.on_time, self.on_time + self.late + self.overdue)


async def _task_counts(f: Filters, now: dt.datetime, by: str) -> dict[str, TaskCounts]:
    """Tasks due in the period (not cancelled), grouped by ``by`` (t.owner_id or t.store_id)."""
    q = Sql()
    rows = await q.rows(
        f"SELECT {by} AS k, COUNT(*) AS due, "
        "SUM(CASE WHEN t.status = 'done' AND t.completed_at <= t.due_at THEN 1 ELSE 0 END) AS on_time, "
        "SUM(CASE WHEN t.status = 'done' AND (t.completed_at IS NULL OR t.completed_at > t.due_at) "
        "THEN 1 ELSE 0 END) AS late, "
        f"SUM(CASE WHEN t.status = 'open' AND t.due_at < {q(now)} THEN 1 ELSE 0 END) AS overdue "
        f"FROM tasks t WHERE t.deleted = false AND t.status <> 'cancelled' AND {q.period(f, 't.due_at')} "
        f"AND {q.stores(f, 't.store_id')} AND {q.owner(f, 't.owner_id')} GROUP BY {by}"
    )
    return {
        str(r["k"]): TaskCounts(_int(r["due"]), _int(r["on_time"]), _int(r["late"]), _int(r["overdue"])) for r in rows
    }


async def rep_activity(f: Filters, now: dt.datetime) -> Table:
    """Per rep of the covered stores: follow-ups logged, per day, tasks due in the period (on time,
    late, overdue, on-time %), and their customers whose contact went without follow-up for 48 h."""
    now = _utc(now)
    q = Sql()
    # Each customer once however many contacts went unanswered: a semi-join. (PostgreSQL runs it in
    # parallel itself: hash joins share their tables between its workers.)
    unanswered_job = q.rows(
        f"SELECT c.owner_id, COUNT(*) AS n FROM customers c WHERE c.deleted = false AND {q.owner(f, 'c.owner_id')} "
        f"AND c.id IN (SELECT u.customer_id FROM ({_unanswered_contacts(q, f, now)}) u) GROUP BY c.owner_id",
        db.LARGE_SORTS,
    )
    reps, follow_ups, tasks, unanswered = await asyncio.gather(
        _reps(f), _follow_ups_by_user(f), _task_counts(f, now, "t.owner_id"), unanswered_job
    )
    no_follow_up = {str(r["owner_id"]): _int(r["n"]) for r in unanswered}
    out, drills = [], []
    for rep in reps:
        ident = str(rep["id"])
        done = follow_ups.get(ident, 0)
        t = tasks.get(ident, TaskCounts())
        out.append(
            [
                ident,
                rep["username"],
                rep["display_name"],
                rep["store"],
                done,
                _ratio(done, f.days),
                t.due,
                t.on_time,
                t.late,
                t.overdue,
                t.on_time_pct,
                no_follow_up.get(ident, 0),
            ]
        )
        drills.append(Drill(kind="interactions", params={"user": ident}))
    columns = [
        _col("rep_id", "导购ID", "Rep id"),
        _col("username", "账号", "Username"),
        _col("rep", "导购", "Rep"),
        _col("store", "门店", "Store"),
        _col("follow_ups", "跟进次数", "Follow-ups", "int"),
        _col("follow_ups_per_day", "日均跟进", "Follow-ups per day", "number"),
        _col("tasks_due", "到期任务", "Tasks due", "int"),
        _col("on_time", "按时完成", "Done on time", "int"),
        _col("late", "逾期完成", "Done late", "int"),
        _col("overdue", "逾期未完成", "Overdue", "int"),
        _col("on_time_pct", "按时完成率", "On time", "percent"),
        _col("no_follow_up", "48小时未跟进客户", "Contacts without follow-up in 48 h", "int"),
    ]
    return _table(
        "rep_activity",
        columns,
        out,
        f,
        now,
        drill=drills,
        notes=(
            "跟进 = 员工记录的到店、电话、消息或备注；日均 = 跟进次数 ÷ 期间天数。任务按到期时间计入期间："
            "按时 = 完成时间不晚于到期时间，逾期未完成 = 仍未完成且已过期；"
            "按时完成率 = 按时 ÷（按时 + 逾期完成 + 逾期未完成）。"
            f"48小时未跟进客户 = 该导购名下的客户，在期间内（且至少{NO_FOLLOW_UP_HOURS}小时前）有员工与其接触"
            f"（到店、电话或消息），而同一时刻及此后{NO_FOLLOW_UP_HOURS}小时内没有员工的其他跟进（到店、电话、消息或备注）；"
            "按客户计数。",
            "Follow-ups = visits, calls, messages or notes logged by staff; per day = follow-ups ÷ the period's days. "
            "Tasks count by due time: on time = done no later than due; overdue = still open and past due; on-time "
            "% = on time ÷ (on time + late + overdue). Contacts without follow-up in 48 h = the rep's customers "
            f"whom staff contacted (visit, call or message) in the period, at least {NO_FOLLOW_UP_HOURS} h ago, "
            f"with no other follow-up by staff (visit, call, message or note) at that moment or in the "
            f"{NO_FOLLOW_UP_HOURS} h after; counted once per customer.",
        ),
    )


# --- store comparison ------------------------------------------------------------------------------


async def _complaint_response_medians(f: Filters, group: str) -> dict[str, tuple[float | None, int]]:
    """Median minutes from opening to first response of the complaints opened in the period (that
    have one), per ``group`` (an expression on p)."""
    q = Sql()
    rows = await q.rows(
        _median(
            f"SELECT {group} AS g, p.first_response_at AS a, p.opened_at AS b FROM complaints p "
            f"WHERE p.deleted = false AND p.first_response_at IS NOT NULL AND {q.period(f, 'p.opened_at')} "
            f"AND {q.stores(f, 'p.store_id')} AND {q.owner(f, 'p.owner_id')}",
            60,
        )
    )
    return {str(r["g"]): (_num(r["median"]), _int(r["n"])) for r in rows}


async def stores(f: Filters, now: dt.datetime) -> Table:
    """One row per covered store: customers, open deals and amount, won amount and win rate in the
    period, follow-ups per rep per day, tasks on time %, median complaint first-response minutes."""
    now = _utc(now)
    q = Sql()
    store_rows_job = q.rows(
        f"SELECT id, code, name, pilot FROM stores WHERE deleted = false AND {q.stores(f, 'id')} ORDER BY code"
    )
    q = Sql()
    customers_job = q.rows(
        f"SELECT c.store_id, COUNT(*) AS n FROM customers c WHERE c.deleted = false AND {q.stores(f, 'c.store_id')} "
        f"AND {q.owner(f, 'c.owner_id')} GROUP BY c.store_id"
    )
    q = Sql()
    # Open deals now, and deals closed in the period: two index ranges, counted apart.
    open_job = q.rows(
        "SELECT o.store_id, COUNT(*) AS open_n, SUM(o.amount) AS open_amount "
        "FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id "
        f"WHERE o.deleted = false AND s.kind = 'open' AND {q.stores(f, 'o.store_id')} AND {q.owner(f, 'o.owner_id')} "
        "GROUP BY o.store_id"
    )
    q = Sql()
    closed_job = q.rows(
        "SELECT o.store_id, SUM(CASE WHEN s.kind = 'won' THEN 1 ELSE 0 END) AS won_n, "
        "SUM(CASE WHEN s.kind = 'lost' THEN 1 ELSE 0 END) AS lost_n, "
        "SUM(CASE WHEN s.kind = 'won' THEN o.amount ELSE 0 END) AS won_amount "
        "FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id "
        f"WHERE {_closed_sql(q, f)} GROUP BY o.store_id"
    )
    store_rows, customers, open_deals, closed_deals, reps, follow_ups, tasks, responses = await asyncio.gather(
        store_rows_job,
        customers_job,
        open_job,
        closed_job,
        _reps(f),
        _follow_ups_by_user(f),
        _task_counts(f, now, "t.store_id"),
        _complaint_response_medians(f, "p.store_id"),
    )

    customers_by = {str(r["store_id"]): _int(r["n"]) for r in customers}
    deals_by: dict[str, dict[str, Any]] = {}
    for r in [*open_deals, *closed_deals]:
        deals_by.setdefault(str(r["store_id"]), {}).update(r)
    out, drills = [], []
    for s in store_rows:
        ident = str(s["id"])
        d = deals_by.get(ident, {})
        store_reps = [str(r["id"]) for r in reps if str(r["store_id"]) == ident]
        done = sum(follow_ups.get(r, 0) for r in store_reps)
        won, lost = _int(d.get("won_n")), _int(d.get("lost_n"))
        out.append(
            [
                ident,
                s["code"],
                s["name"],
                bool(s["pilot"]),
                customers_by.get(ident, 0),
                _int(d.get("open_n")),
                _money(d.get("open_amount")),
                _money(d.get("won_amount")),
                _pct(won, won + lost),
                len(store_reps),
                _ratio(done, len(store_reps) * f.days),
                tasks.get(ident, TaskCounts()).on_time_pct,
                responses.get(ident, (None, 0))[0],
            ]
        )
        drills.append(Drill(kind="deals", params={"store": s["code"], "status": "open"}))
    columns = [
        _col("store_id", "门店ID", "Store id"),
        _col("code", "门店代码", "Store code"),
        _col("name", "门店", "Store"),
        _col("pilot", "试点", "Pilot"),
        _col("customers", "客户数", "Customers", "int"),
        _col("open_deals", "未结商机", "Open deals", "int"),
        _col("open_amount", "未结金额", "Open amount", "money"),
        _col("won_amount", "期间赢单金额", "Won in period", "money"),
        _col("win_rate", "赢单率", "Win rate", "percent"),
        _col("reps", "导购人数", "Reps", "int"),
        _col("follow_ups_per_rep_day", "人均日跟进", "Follow-ups per rep per day", "number"),
        _col("on_time_pct", "任务按时完成率", "Tasks on time", "percent"),
        _col("response_minutes", "投诉首次响应中位数（分钟）", "Median complaint first response (min)", "minutes"),
    ]
    return _table(
        "stores",
        columns,
        out,
        f,
        now,
        drill=drills,
        notes=(
            "客户数与未结商机为当前数；赢单金额和赢单率按期间内结单计；"
            "人均日跟进 = 在职导购的跟进次数 ÷ 导购人数 ÷ 天数；"
            "任务按时完成率含门店全部任务；投诉响应取期间内新开且已首次响应的投诉。",
            "Customers and open deals are as of now; won amount and win rate count deals closed in the period; "
            "follow-ups per rep per day = the active reps' follow-ups ÷ reps ÷ days; tasks on time covers all the "
            "store's tasks; complaint response: complaints opened in the period that have had a first response.",
        ),
    )


# --- targets ---------------------------------------------------------------------------------------


# The complaint loop's backlog now (shared/complaints.py's clocks): what each waiting state means,
# and when an item in it is late.
_LIVE = "p.status IN ('open', 'in_progress')"
WAITING = {
    "history": (f"{_LIVE} AND p.history_retrieved_at IS NULL", "p.opened_at", HISTORY_MINUTES),
    "respond": (f"{_LIVE} AND p.first_response_at IS NULL", "p.opened_at", SOLUTION_MINUTES),
    "callback": ("p.status = 'solved' AND p.callback_at IS NULL", "p.solved_at", CALLBACK_HOURS * 60),
}
WAITING_NAMES = {
    "history": ("待调取记录", "Awaiting history"),
    "respond": ("待给出方案", "Awaiting a first solution"),
    "callback": ("待满意度回访", "Awaiting the call-back"),
    "late": ("已超时（合计）", "Late (any step)"),
}


def _waiting_sql(q: Sql, state: str, now: dt.datetime) -> str:
    """Complaints in a waiting state now (``late``: past any step's time)."""
    if state != "late":
        return f"({WAITING[state][0]})"
    terms = [
        f"({cond} AND {since} < {q(now - dt.timedelta(minutes=minutes))})" for cond, since, minutes in WAITING.values()
    ]
    return f"({' OR '.join(terms)})"


async def complaints_report(f: Filters, now: dt.datetime) -> Table:
    """The complaint loop for the covered stores (a rep: their own): the backlog now — awaiting
    history, a first solution, the call-back, and how many of each are late, with the longest
    wait — then the period's new complaints and call-backs with their average satisfaction. Each
    row drills to its complaints."""
    first = Sql()
    parts = []
    for state, (cond, since, minutes) in WAITING.items():
        parts.append(
            f"SELECT {first(state)} AS state, COUNT(*) AS n, "
            f"SUM(CASE WHEN {since} < {first(now - dt.timedelta(minutes=minutes))} THEN 1 ELSE 0 END) AS late, "
            f"MIN({since}) AS oldest FROM complaints p WHERE p.deleted = false AND {cond} "
            f"AND {first.stores(f, 'p.store_id')} AND {first.owner(f, 'p.owner_id')}"
        )
    parts.append(
        f"SELECT {first('late')} AS state, COUNT(*) AS n, COUNT(*) AS late, MIN(p.opened_at) AS oldest "
        f"FROM complaints p WHERE p.deleted = false AND {_waiting_sql(first, 'late', now)} "
        f"AND {first.stores(f, 'p.store_id')} AND {first.owner(f, 'p.owner_id')}"
    )
    second = Sql()
    rated = "p.satisfaction IS NOT NULL AND {}"
    period = (
        f"SELECT SUM(CASE WHEN {second.period(f, 'p.opened_at')} THEN 1 ELSE 0 END) AS opened, "
        f"SUM(CASE WHEN {rated.format(second.period(f, 'p.callback_at'))} THEN 1 ELSE 0 END) AS rated, "
        f"AVG(CASE WHEN {rated.format(second.period(f, 'p.callback_at'))} THEN p.satisfaction END) "
        f"AS satisfaction FROM complaints p WHERE p.deleted = false "
        f"AND {second.stores(f, 'p.store_id')} AND {second.owner(f, 'p.owner_id')}"
    )
    backlog, totals = await asyncio.gather(first.rows(" UNION ALL ".join(parts)), second.rows(period))
    found = {str(r["state"]): r for r in backlog}
    rows: list[list[Any]] = []
    drill: list[Drill | None] = []
    for state, (zh, en) in WAITING_NAMES.items():
        r = found.get(state, {})
        n = _int(r.get("n"))
        oldest = utc(r.get("oldest"))
        hours = round((now - oldest).total_seconds() / 3600, 1) if oldest and n else None
        rows.append([zh, en, state, n, _int(r.get("late")), hours, None])
        drill.append(Drill(kind="complaints", params={"waiting": state}) if n else None)
    t = totals[0] if totals else {}
    satisfaction = _num(t.get("satisfaction"))
    rows.append(["本期新投诉", "New in the period", "opened", _int(t.get("opened")), None, None, None])
    drill.append(Drill(kind="complaints") if _int(t.get("opened")) else None)
    rows.append(
        [
            "本期回访",
            "Call-backs in the period",
            "rated",
            _int(t.get("rated")),
            None,
            None,
            round(satisfaction, 1) if satisfaction is not None else None,
        ]
    )
    drill.append(Drill(kind="complaints", params={"rated": "1"}) if _int(t.get("rated")) else None)
    columns = [
        _col("state", "状态", "State (Chinese)"),
        _col("state_en", "状态（英文）", "State"),
        _col("state_code", "状态代码", "State code"),
        _col("complaints", "投诉数", "Complaints", "int"),
        _col("late", "其中超时", "Of which late", "int"),
        _col("oldest_hours", "最久已等（小时）", "Longest wait (hours)", "number"),
        _col("satisfaction", "平均满意度", "Average satisfaction", "number"),
    ]
    notes = (
        f"时限：{HISTORY_MINUTES} 分钟内调取记录，{SOLUTION_MINUTES} 分钟内给出方案，"
        f"解决后 {CALLBACK_HOURS} 小时内回访。前四行是此刻的积压（不受时段影响），后两行按所选时段统计。",
        f"Times: history within {HISTORY_MINUTES} minutes, a first solution within {SOLUTION_MINUTES}, the "
        f"call-back within {CALLBACK_HOURS} hours of solving. The first four rows are the backlog now (the period "
        "does not apply); the last two count the period.",
    )
    return _table("complaints", columns, rows, f, now, drill=drill, notes=notes)


SEGMENT_NAMES = {
    Group.NEW: ("新客", "New"),
    Group.REPEAT: ("复购客户", "Repeat"),
    Group.HIGH_VALUE: ("高价值客户", "High value"),
    Group.DORMANT: ("沉睡客户", "Dormant"),
    Group.LOST: ("流失客户", "Lost"),
}


async def segments_report(f: Filters, now: dt.datetime) -> Table:
    """Live customers of the covered stores (a rep: their own) by segment, as the nightly scoring
    found them (shared/segments.py): how many, their average health and share healthy, twelve
    months' sales and its share, how many are worth winning back. The notes say when they were
    scored and what the top fifth of buyers bring. The period does not apply: a standing is now."""

    # The standings' own store and owner (as scored; one table read, no join), less the customers
    # deleted since (few: a partial index holds them).
    def scope(q: Sql) -> str:
        return (
            f"{q.stores(f, 's.store_id')} AND {q.owner(f, 's.owner_id')} AND NOT EXISTS "
            "(SELECT 1 FROM customers d WHERE d.id = s.customer_id AND d.deleted = true)"
        )

    first = Sql()
    by_segment = await first.rows(
        "SELECT s.segment, COUNT(*) AS n, AVG(s.health) AS health, "
        f"SUM(CASE WHEN s.health >= {first(HEALTHY)} THEN 1 ELSE 0 END) AS healthy, "
        "SUM(s.amount_12m) AS sales, SUM(CASE WHEN s.win_back THEN 1 ELSE 0 END) AS win_back, "
        "SUM(CASE WHEN s.amount_12m > 0 THEN 1 ELSE 0 END) AS buyers, "
        "MIN(s.computed_at) AS oldest, MAX(s.computed_at) AS newest "
        f"FROM customer_standings s WHERE {scope(first)} GROUP BY s.segment"
    )
    # The top fifth of the buyers (rounded up, as NTILE(5) would cut it): a top-k, not a full sort.
    buyers = sum(_int(r["buyers"]) for r in by_segment)
    fifth: list[dict[str, Any]] = []
    if buyers:
        second = Sql()
        fifth = await second.rows(
            "SELECT SUM(t.amount_12m) AS top, MIN(t.amount_12m) AS threshold FROM (SELECT s.amount_12m "
            f"FROM customer_standings s WHERE s.amount_12m > 0 AND {scope(second)} "
            f"ORDER BY s.amount_12m DESC LIMIT {second(-(-buyers // 5))}) t"
        )
    found = {str(r["segment"]): r for r in by_segment}
    customers = sum(_int(r["n"]) for r in by_segment)
    sales = sum((money(r["sales"]) for r in by_segment), Decimal(0))
    rows: list[list[Any]] = []
    drill: list[Drill | None] = []
    healthy_all = health_sum = 0.0
    for group in GROUPS:
        r = found.get(group.value, {})
        n = _int(r.get("n"))
        amount = money(r.get("sales"))
        health = _num(r.get("health"))
        health_sum += (health or 0) * n
        healthy_all += _int(r.get("healthy"))
        zh, en = SEGMENT_NAMES[group]
        rows.append(
            [
                zh,
                en,
                group.value,
                n,
                _pct(n, customers),
                round(health, 1) if health is not None else None,
                _pct(_int(r.get("healthy")), n),
                _money(amount),
                _pct(amount, sales),
                _int(r.get("win_back")),
            ]
        )
        drill.append(Drill(kind="customers", params={"segment": group.value}) if n else None)
    wins = sum(_int(r["win_back"]) for r in by_segment)
    rows.append(
        [
            TOTAL_ZH,
            TOTAL_EN,
            None,
            customers,
            _pct(customers, customers),
            round(health_sum / customers, 1) if customers else None,
            _pct(healthy_all, customers),
            _money(sales),
            _pct(sales, sales),
            wins,
        ]
    )
    drill.append(Drill(kind="customers", params={"win_back": "1"}) if wins else None)
    columns = [
        _col("segment", "分群", "Segment (Chinese)"),
        _col("segment_en", "分群（英文）", "Segment"),
        _col("segment_code", "分群代码", "Segment code"),
        _col("customers", "客户数", "Customers", "int"),
        _col("share_pct", "占比", "Share", "percent"),
        _col("health", "平均健康分", "Average health", "number"),
        _col("healthy_pct", "健康（≥80）占比", "Healthy (≥ 80)", "percent"),
        _col("sales_12m", "近12个月消费", "Sales, 12 months", "money"),
        _col("sales_pct", "消费占比", "Share of sales", "percent"),
        _col("win_back", "值得挽回", "Worth winning back", "int"),
    ]
    newest = max((utc(r["newest"]) for r in by_segment if r["newest"] is not None), default=None)
    top = {**(fifth[0] if fifth else {}), "total": sales}
    if newest is None:
        notes = (
            "尚未评分：夜间任务（每天 03:00）评分后这里才有数据。",
            "Not scored yet: the nightly scoring (03:00 daily) fills this report.",
        )
    else:
        stamp = newest.astimezone(CHAIN_TZ).strftime("%Y-%m-%d %H:%M")
        notes = (
            f"评分时间 {stamp}（每天 03:00 重新评分；不受所选时段影响）。"
            f"近12个月有消费的 {buyers} 位客户中，消费最高的 20% 贡献了 "
            f"{_pct(money(top.get('top')), money(top.get('total'))) or 0:.1f}% 的消费"
            f"（门槛 ¥{_money(money(top.get('threshold')))}）。"
            "合计一行的“值得挽回”：沉睡或流失、且累计消费满 5000 元或购买过两次以上的客户。",
            f"Scored {stamp} (again every day at 03:00; the period does not apply). Of the {buyers} customers "
            "who bought in the last twelve months, the top 20% by spend brought "
            f"{_pct(money(top.get('top')), money(top.get('total'))) or 0:.1f}% of the sales "
            f"(from ¥{_money(money(top.get('threshold')))} up). Worth winning back: dormant or lost, "
            "with 5,000 spent in all or two purchases or more.",
        )
    return _table("segments", columns, rows, f, now, drill=drill, notes=notes)


async def _retention(f: Filters) -> tuple[float | None, float | None]:
    """Customers who ordered in the period before ``f``'s and again in ``f``'s ÷ those who ordered
    in the period before (live customers of the covered stores; the rep's own customers) — for
    ``f`` and for the period before it. One pass over the three periods' orders: per customer,
    which of them they ordered in."""
    before = f.previous()
    earliest = before.previous()

    def counts(q: Sql, within: Within) -> str:
        flags = (
            f"SELECT o.customer_id, MAX(CASE WHEN o.ordered_at >= {q(f.since)} THEN 1 ELSE 0 END) AS p0, "
            f"MAX(CASE WHEN o.ordered_at >= {q(before.since)} AND o.ordered_at < {q(before.until)} THEN 1 ELSE 0 END) "
            f"AS p1, MAX(CASE WHEN o.ordered_at < {q(earliest.until)} THEN 1 ELSE 0 END) AS p2 FROM orders o "
            f"WHERE o.deleted = false AND {q.between('o.ordered_at', earliest.since, f.until)} "
            f"AND {q.stores(f, 'o.store_id')} AND {within('o.customer_id')} GROUP BY o.customer_id"
        )
        # A rep's customers need their owner; otherwise only the (few) deleted customers are looked up.
        customers = (
            f"JOIN customers c ON c.id = x.customer_id AND c.deleted = false AND {q.owner(f, 'c.owner_id')} "
            if f.owner_id is not None
            else ""
        )
        return (
            "SELECT SUM(x.p1) AS base, SUM(x.p1 * x.p0) AS kept, SUM(x.p2) AS base_before, "
            f"SUM(x.p2 * x.p1) AS kept_before FROM ({flags}) x {customers}"
            "WHERE NOT EXISTS (SELECT 1 FROM customers d WHERE d.id = x.customer_id AND d.deleted = true)"
        )

    r = (await _in_parts(counts, "customers", f, by=(), set_local=db.LARGE_SORTS))[0]
    return _pct(r["kept"], r["base"]), _pct(r["kept_before"], r["base_before"])


async def _sales_cycle(f: Filters) -> float | None:
    q = Sql()
    rows = await q.rows(
        f"SELECT AVG({_span('o.closed_at', 'o.created_at', 86400)}) AS days FROM opportunities o "
        f"JOIN pipeline_stages s ON s.id = o.stage_id WHERE {_closed_sql(q, f, ('won',))}"
    )
    return _num(rows[0]["days"])


async def _satisfaction(f: Filters) -> float | None:
    q = Sql()
    rows = await q.rows(
        "SELECT COUNT(*) AS rated, SUM(CASE WHEN p.satisfaction >= 4 THEN 1 ELSE 0 END) AS good FROM complaints p "
        f"WHERE p.deleted = false AND p.satisfaction IS NOT NULL AND {q.period(f, 'p.callback_at')} "
        f"AND {q.stores(f, 'p.store_id')} AND {q.owner(f, 'p.owner_id')}"
    )
    return _pct(rows[0]["good"], rows[0]["rated"])


async def _response_minutes(f: Filters) -> float | None:
    return (await _complaint_response_medians(f, "1")).get("1", (None, 0))[0]


def _repeat_sql() -> str:
    """The complaint p had an earlier complaint of the same customer opened within 30 days before."""
    window = REPEAT_COMPLAINT_DAYS * 86400
    return (
        "EXISTS (SELECT 1 FROM complaints e WHERE e.customer_id = p.customer_id AND e.deleted = false "
        f"AND e.id <> p.id AND e.opened_at < p.opened_at AND {_shifted('e.opened_at', '>=', 'p.opened_at', -window)})"
    )


async def _repeat_complaints(f: Filters) -> float | None:
    q = Sql()

    def opened() -> str:
        return (
            f"SELECT COUNT(*) FROM complaints p WHERE p.deleted = false AND {q.period(f, 'p.opened_at')} "
            f"AND {q.stores(f, 'p.store_id')} AND {q.owner(f, 'p.owner_id')}"
        )

    # Two counts over the same complaints; the repeat test as a WHERE (a semi-join, not a probe per row).
    rows = await q.rows(f"SELECT ({opened()}) AS n, ({opened()} AND {_repeat_sql()}) AS repeated")
    return _pct(rows[0]["repeated"], rows[0]["n"])


async def _follow_ups_per_rep_day(f: Filters) -> float | None:
    reps, follow_ups = await asyncio.gather(_reps(f), _follow_ups_by_user(f))
    return _ratio(sum(follow_ups.get(str(r["id"]), 0) for r in reps), len(reps) * f.days)


async def _no_campaign_data(f: Filters) -> float | None:
    return None  # the product holds no campaign data yet: no number rather than an invented one


Measure = Callable[[Filters], Awaitable[tuple[float | None, float | None]]]  # this period, the one before


@dataclasses.dataclass(frozen=True)
class Target:
    key: str
    name_zh: str
    name_en: str
    unit: str
    baseline: float | None
    target: float
    better: str  # higher | lower
    measure: Measure
    drill: Drill | None = None


def _each_period(measure: Callable[[Filters], Awaitable[float | None]]) -> Measure:
    """A measure of one period as one of this period and the one before, the two side by side."""

    async def both(f: Filters) -> tuple[float | None, float | None]:
        this, last = await asyncio.gather(measure(f), measure(f.previous()))
        return this, last

    return both


TARGETS = (
    Target("retention", "客户留存率", "Retention", "%", 35, 50, "higher", _retention),
    Target(
        "sales_cycle",
        "销售周期",
        "Sales cycle",
        "days",
        14,
        11,
        "lower",
        _each_period(_sales_cycle),
        Drill(kind="deals", params={"status": "won"}),
    ),
    Target(
        "campaign_conversion",
        "营销活动转化率",
        "Campaign conversion",
        "%",
        2,
        5,
        "higher",
        _each_period(_no_campaign_data),
    ),
    Target(
        "satisfaction",
        "满意度",
        "Satisfaction",
        "%",
        70,
        85,
        "higher",
        _each_period(_satisfaction),
        Drill(kind="complaints", params={"rated": "1"}),
    ),
    Target(
        "complaint_response",
        "投诉响应时间",
        "Complaint response",
        "minutes",
        None,
        5,
        "lower",
        _each_period(_response_minutes),
        Drill(kind="complaints", params={}),
    ),
    Target(
        "repeat_complaints",
        "重复投诉率",
        "Repeat complaints",
        "%",
        18,
        5,
        "lower",
        _each_period(_repeat_complaints),
        Drill(kind="complaints", params={"repeat": "1"}),
    ),
    Target(
        "follow_ups",
        "人均日跟进次数",
        "Follow-ups per rep per day",
        "per rep per day",
        10,
        15,
        "higher",
        _each_period(_follow_ups_per_rep_day),
        Drill(kind="interactions", params={}),
    ),
)


async def targets(f: Filters, now: dt.datetime) -> Table:
    """The chain's targets (REQUIREMENTS.md) measured in this period and the one before it."""
    now = _utc(now)
    before = f.previous()
    out, drills = [], []
    # Every measure of both periods side by side: each query takes a pooled connection of its own
    # (the pool's size bounds how many run at once; the rest wait for a connection).
    figures = await asyncio.gather(*(t.measure(f) for t in TARGETS))
    for t, (this, last) in zip(TARGETS, figures, strict=True):
        change = round(this - last, 1) if this is not None and last is not None else None
        out.append([t.key, t.name_zh, t.name_en, t.unit, t.baseline, t.target, this, last, change, t.better])
        drills.append(t.drill)
    columns = [
        _col("metric_key", "指标代码", "Metric key"),
        _col("metric", "指标", "Metric"),
        _col("metric_en", "指标（英文）", "Metric (English)"),
        _col("unit", "单位", "Unit"),
        _col("baseline", "基线", "Baseline", "number"),
        _col("target", "目标", "Target", "number"),
        _col("this_period", "本期", "This period", "number"),
        _col("previous_period", "上期", "Previous period", "number"),
        _col("change", "变化", "Change", "number"),
        _col("better", "方向", "Better when", "text"),
    ]
    return _table(
        "targets",
        columns,
        out,
        f,
        now,
        drill=drills,
        filters={"previous_from": before.start.isoformat(), "previous_to": before.end.isoformat()},
        notes=(
            "留存率 = 上期下过单且本期再次下单的客户 ÷ 上期下过单的客户；"
            "销售周期 = 本期赢单商机从创建到签约的平均天数；"
            "营销活动转化率：系统中尚无营销活动数据，暂不计算；满意度 = 本期回访评分≥4的投诉 ÷ 本期有评分的回访；"
            "投诉响应时间 = 本期新开投诉从创建到首次响应的分钟数中位数（目标为低于5分钟，无基线）；"
            f"重复投诉率 = 本期新开投诉中，同一客户在此前{REPEAT_COMPLAINT_DAYS}天内已有投诉的比例；"
            "人均日跟进 = 在职导购的跟进次数 ÷ 导购人数 ÷ 天数。上期 = 紧接本期之前、同样长度的期间。",
            "Retention = customers who ordered in the previous period and again in this one ÷ those who ordered in "
            "the previous period; sales cycle = mean days from creation to close of deals won in the period; "
            "campaign conversion: the product holds no campaign data yet, so it is not computed; satisfaction = "
            "call-backs in the period rated 4 or 5 ÷ call-backs rated; complaint response = median minutes from "
            "opening to first response of complaints opened in the period (target: under 5 minutes; no baseline); "
            f"repeat complaints = complaints opened in the period whose customer had another within the "
            f"{REPEAT_COMPLAINT_DAYS} days before ÷ complaints opened; follow-ups per rep per day = the active reps' "
            "follow-ups ÷ reps ÷ days. The previous period is the one of the same length just before.",
        ),
    )


# --- trend -----------------------------------------------------------------------------------------


def _weeks(f: Filters) -> list[tuple[str, dt.date, dt.date]]:
    """The ISO weeks (chain time zone) overlapping the period, each cut to the period: (label,
    first day, last day)."""
    out = []
    monday = f.start - dt.timedelta(days=f.start.weekday())
    while monday <= f.end:
        year, week, _ = monday.isocalendar()
        out.append((f"{year}-W{week:02d}", max(monday, f.start), min(monday + dt.timedelta(days=6), f.end)))
        monday += dt.timedelta(days=7)
    return out


def _bucket(q: Sql, column: str, bounds: list[dt.datetime]) -> str:
    """The index of the week ``column`` falls in (``bounds``: each week's end but the last's)."""
    if not bounds:
        return "0"
    whens = " ".join(f"WHEN {column} < {q(b)} THEN {n}" for n, b in enumerate(bounds))
    return f"CASE {whens} ELSE {len(bounds)} END"


async def trend(f: Filters, now: dt.datetime) -> Table:
    """Week by week: deals created, deals won and their amount, follow-ups logged by staff."""
    now = _utc(now)
    weeks = _weeks(f)
    bounds = [local_midnight(last + dt.timedelta(days=1)) for _, _, last in weeks[:-1]]
    q = Sql()
    created_job = q.rows(
        f"SELECT x.w, COUNT(*) AS n FROM (SELECT {_bucket(q, 'o.created_at', bounds)} AS w FROM opportunities o "
        f"WHERE {_created_sql(q, f)}) x GROUP BY x.w"
    )
    q = Sql()
    won_job = q.rows(
        f"SELECT x.w, COUNT(*) AS n, SUM(x.amount) AS amount FROM (SELECT {_bucket(q, 'o.closed_at', bounds)} AS w, "
        "o.amount FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id "
        f"WHERE {_closed_sql(q, f, ('won',))}) x GROUP BY x.w"
    )
    q = Sql()
    follow_ups_job = q.rows(
        f"SELECT x.w, COUNT(*) AS n FROM (SELECT {_bucket(q, 'i.occurred_at', bounds)} AS w FROM interactions i "
        f"WHERE {_follow_up('i')} AND {q.period(f, 'i.occurred_at')} AND {q.stores(f, 'i.store_id')} "
        f"AND {q.owner(f, 'i.user_id')}) x GROUP BY x.w"
    )
    created, won, follow_ups = await asyncio.gather(created_job, won_job, follow_ups_job)
    created_by = {int(r["w"]): _int(r["n"]) for r in created}
    won_by = {int(r["w"]): r for r in won}
    follow_by = {int(r["w"]): _int(r["n"]) for r in follow_ups}
    out = []
    for n, (label, first, last) in enumerate(weeks):
        w = won_by.get(n, {})
        out.append(
            [
                label,
                first,
                last,
                created_by.get(n, 0),
                _int(w.get("n")),
                _money(w.get("amount")),
                follow_by.get(n, 0),
            ]
        )
    columns = [
        _col("week", "周", "Week"),
        _col("from", "起", "From", "date"),
        _col("to", "止", "To", "date"),
        _col("new_deals", "新建商机", "New deals", "int"),
        _col("won_deals", "赢单", "Won deals", "int"),
        _col("won_amount", "赢单金额", "Won amount", "money"),
        _col("follow_ups", "跟进次数", "Follow-ups", "int"),
    ]
    return _table(
        "trend",
        columns,
        out,
        f,
        now,
        notes=(
            "按ISO周（北京时间）统计，首尾两周只含期间内的日子；跟进 = 员工记录的到店、电话、消息或备注。",
            "ISO weeks (China time); the first and last weeks hold only the period's days; follow-ups = visits, "
            "calls, messages or notes logged by staff.",
        ),
    )


# --- the registry ----------------------------------------------------------------------------------

ReportFn = Callable[[Filters, dt.datetime], Awaitable[Table]]


async def _adoption(f: Filters, now: dt.datetime) -> Table:
    from server.rollout.service import adoption

    return await adoption(f, now)


def _rollout_ready() -> bool:
    try:
        return importlib.util.find_spec("server.rollout.service") is not None
    except ImportError:
        return False


_FUNCTIONS: dict[str, ReportFn] = {
    "pipeline": pipeline,
    "stalled": stalled,
    "funnel": funnel,
    "win_rate": win_rate,
    "forecast": forecast,
    "rep_activity": rep_activity,
    "stores": stores,
    "segments": segments_report,
    "complaints": complaints_report,
    "targets": targets,
    "trend": trend,
}
if _rollout_ready():
    _FUNCTIONS["adoption"] = _adoption

# name → (title in Chinese, title in English, the function), in the order of shared.reports.REPORTS.
REPORTS: dict[str, tuple[str, str, ReportFn]] = {
    name: (*TITLES[name], _FUNCTIONS[name]) for name in REPORT_NAMES if name in _FUNCTIONS
}


async def run(name: str, f: Filters, now: dt.datetime) -> Table:
    entry = REPORTS.get(name)
    if entry is None:
        raise NotFound(f"report {name!r} not found; reports are: {', '.join(REPORTS)}")
    return await entry[2](f, now)


# --- drill-downs -----------------------------------------------------------------------------------


class BadParameter(DomainError):
    """A drill parameter this list does not take (400)."""

    status_code = 400


def _flag(params: dict[str, str], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise Invalid(f"{name} must be 1 or 0, got {value!r}", field=name)


def _ident(params: dict[str, str], name: str) -> uuid.UUID | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Invalid(f"{name} must be an id (UUID), got {value!r}", field=name) from None


def _choice(params: dict[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = params.get(name)
    if value is not None and value not in choices:
        raise Invalid(f"{name} must be one of {', '.join(choices)}, got {value!r}", field=name)
    return value


async def _page(
    body: Callable[[Sql], str],
    *,
    inner: str,
    order: str,
    outer: str,
    joins: str,
    outer_order: str,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """A drill-down's rows: the first ``limit`` of ``SELECT inner FROM body ORDER BY order`` (``body``
    is a FROM … WHERE …, made once per query), with names joined to just those rows as ``t`` and
    ``outer``, and how many rows there are in all (a COUNT over the same FROM … WHERE)."""
    counting, listing = Sql(), Sql()
    counted, rows = await asyncio.gather(
        counting.rows(f"SELECT COUNT(*) AS n FROM {body(counting)}"),
        listing.rows(
            f"SELECT {outer} FROM (SELECT {inner} FROM {body(listing)} ORDER BY {order} "
            f"LIMIT {listing(limit)}) t {joins} ORDER BY {outer_order}"
        ),
    )
    return rows, _int(counted[0]["n"])


async def _drill_deals(params: dict[str, str], f: Filters, now: dt.datetime, limit: int):
    """Deals: ``id``; ``stage`` (code, current stage); ``status`` open (now) | stalled (now) | won |
    lost (closed in the period); ``close_month`` YYYY-MM (open, expected then); ``owner``. With none
    of id, stage, status or close_month: the deals created in the period."""
    stages = await _stages()
    status = _choice(params, "status", ("open", "won", "lost", "stalled"))
    owner, ident = _ident(params, "owner"), _ident(params, "id")
    stage = params.get("stage")
    if stage is not None and stage not in {s["code"] for s in stages}:
        known = ", ".join(s["code"] for s in stages)
        raise Invalid(f"unknown stage {stage!r}; the pipeline's stages are: {known}", field="stage")
    month = params.get("close_month")
    month_start = None
    if month is not None:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise Invalid(f"close_month must look like 2026-12, got {month!r}", field="close_month")
        month_start = dt.date(int(month[:4]), int(month[5:]), 1)

    def body(q: Sql) -> str:
        where = [f"o.deleted = false AND {q.stores(f, 'o.store_id')} AND {q.owner(f, 'o.owner_id')}"]
        if ident is not None:
            where.append(f"o.id = {q(ident)}")
        if owner is not None:
            where.append(f"o.owner_id = {q(owner)}")
        if stage is not None:
            where.append(f"s.code = {q(stage)}")
        if status == "open":
            where.append("s.kind = 'open'")
        elif status == "stalled":
            where.append(f"s.kind = 'open' AND {_stalled_terms(q, stages, now)}")
        elif status in ("won", "lost"):
            where.append(f"s.kind = '{status}' AND {q.period(f, 'o.closed_at')}")
        if month_start is not None:
            until = _month_start(month_start, 1)
            where.append(f"s.kind = 'open' AND {q.between('o.expected_close_date', month_start, until)}")
        if ident is None and stage is None and status is None and month_start is None:
            where.append(q.period(f, "o.created_at"))
        return f"opportunities o JOIN pipeline_stages s ON s.id = o.stage_id WHERE {' AND '.join(where)}"

    def order(a: str, b: str) -> str:
        if status == "stalled":
            return f"{_epoch(f'{a}.stage_entered_at')} + {b}.idle_days * 86400.0, {a}.id"
        return f"{a}.amount DESC, {a}.id"

    rows, total = await _page(
        body,
        inner="o.id, o.title, o.customer_id, o.store_id, o.owner_id, s.name_zh, s.name_en, s.kind, s.idle_days, "
        "o.amount, o.expected_close_date, o.stage_entered_at, o.created_at, o.closed_at",
        order=order("o", "s"),
        outer="t.*, c.name AS customer, st.code AS store, u.display_name AS owner",
        joins="JOIN customers c ON c.id = t.customer_id JOIN stores st ON st.id = t.store_id "
        "LEFT JOIN users u ON u.id = t.owner_id",
        outer_order=order("t", "t"),
        limit=limit,
    )
    out = []
    for r in rows:
        entered = utc(r["stage_entered_at"])
        out.append(
            [
                str(r["id"]),
                r["title"],
                _text(r["customer_id"]),
                r["customer"],
                r["store"],
                _text(r["owner_id"]),
                r["owner"],
                r["name_zh"],
                r["name_en"],
                r["kind"],
                _money(r["amount"]),
                as_date(r["expected_close_date"]),
                entered,
                round((now - entered).total_seconds() / 86400, 1) if entered and r["kind"] == "open" else None,
                utc(r["created_at"]),
                utc(r["closed_at"]),
            ]
        )
    columns = [
        _col("opportunity_id", "商机ID", "Deal id"),
        _col("title", "商机", "Deal"),
        _col("customer_id", "客户ID", "Customer id"),
        _col("customer", "客户", "Customer"),
        _col("store", "门店", "Store"),
        _col("owner_id", "负责人ID", "Owner id"),
        _col("owner", "负责人", "Owner"),
        _col("stage", "阶段", "Stage"),
        _col("stage_en", "阶段（英文）", "Stage (English)"),
        _col("status", "状态", "Status"),
        _col("amount", "金额", "Amount", "money"),
        _col("expected_close_date", "预计成交日", "Expected close", "date"),
        _col("stage_entered_at", "进入阶段时间", "In stage since", "ts"),
        _col("days_in_stage", "停留天数", "Days in stage", "days"),
        _col("created_at", "创建时间", "Created", "ts"),
        _col("closed_at", "结单时间", "Closed", "ts"),
    ]
    return columns, out, total


async def _drill_tasks(params: dict[str, str], f: Filters, now: dt.datetime, limit: int):
    """Tasks due in the period (not cancelled): ``owner``; ``state`` on_time | late | overdue."""
    owner = _ident(params, "owner")
    state = _choice(params, "state", ("on_time", "late", "overdue"))

    def body(q: Sql) -> str:
        where = [
            f"t.deleted = false AND t.status <> 'cancelled' AND {q.period(f, 't.due_at')} "
            f"AND {q.stores(f, 't.store_id')} AND {q.owner(f, 't.owner_id')}"
        ]
        if owner is not None:
            where.append(f"t.owner_id = {q(owner)}")
        if state == "on_time":
            where.append("t.status = 'done' AND t.completed_at <= t.due_at")
        elif state == "late":
            where.append("t.status = 'done' AND (t.completed_at IS NULL OR t.completed_at > t.due_at)")
        elif state == "overdue":
            where.append(f"t.status = 'open' AND t.due_at < {q(now)}")
        return f"tasks t WHERE {' AND '.join(where)}"

    rows, total = await _page(
        body,
        inner="t.id, t.title, t.kind, t.store_id, t.owner_id, t.customer_id, t.due_at, t.status, t.completed_at",
        order="t.due_at, t.id",
        outer="t.*, st.code AS store, u.display_name AS owner, c.name AS customer",
        joins="JOIN stores st ON st.id = t.store_id LEFT JOIN users u ON u.id = t.owner_id "
        "LEFT JOIN customers c ON c.id = t.customer_id",
        outer_order="t.due_at, t.id",
        limit=limit,
    )
    out = [
        [
            str(r["id"]),
            r["title"],
            r["kind"],
            r["store"],
            _text(r["owner_id"]),
            r["owner"],
            _text(r["customer_id"]),
            r["customer"],
            utc(r["due_at"]),
            r["status"],
            utc(r["completed_at"]),
        ]
        for r in rows
    ]
    columns = [
        _col("task_id", "任务ID", "Task id"),
        _col("title", "任务", "Task"),
        _col("kind", "类型", "Kind"),
        _col("store", "门店", "Store"),
        _col("owner_id", "负责人ID", "Owner id"),
        _col("owner", "负责人", "Owner"),
        _col("customer_id", "客户ID", "Customer id"),
        _col("customer", "客户", "Customer"),
        _col("due_at", "到期时间", "Due", "ts"),
        _col("status", "状态", "Status"),
        _col("completed_at", "完成时间", "Completed", "ts"),
    ]
    return columns, out, total


async def _drill_customers(params: dict[str, str], f: Filters, now: dt.datetime, limit: int):
    """Customers of the covered stores: ``owner``; ``no_follow_up=1``: those with a contact in the
    period left without follow-up for 48 h (``contact_at``: the latest such contact); ``segment``:
    those the nightly scoring put in it; ``win_back=1``: those it found worth winning back (most
    spent first). Every row says the customer's standing as last scored."""
    owner = _ident(params, "owner")
    unanswered = _flag(params, "no_follow_up")
    segment = _choice(params, "segment", tuple(g.value for g in GROUPS))
    win_back = _flag(params, "win_back")
    scored = segment is not None or win_back

    def body(q: Sql) -> str:
        join = ""
        if unanswered:
            join = (
                "JOIN (SELECT u.customer_id, MAX(u.occurred_at) AS contact_at "
                f"FROM ({_unanswered_contacts(q, f, now)}) u GROUP BY u.customer_id) x ON x.customer_id = c.id "
            )
        if scored:
            join += "JOIN customer_standings s ON s.customer_id = c.id "
        where = [f"c.deleted = false AND {q.stores(f, 'c.store_id')} AND {q.owner(f, 'c.owner_id')}"]
        if owner is not None:
            where.append(f"c.owner_id = {q(owner)}")
        if segment is not None:
            where.append(f"s.segment = {q(segment)}")
        if win_back:
            where.append("s.win_back = true")
        return f"customers c {join}WHERE {' AND '.join(where)}"

    order = ("s.amount_total DESC, " if win_back else "") + "c.name, c.id"
    rows, total = await _page(
        body,
        inner="c.id, c.name, c.store_id, c.owner_id, c.created_at, "
        + ("x.contact_at" if unanswered else "NULL AS contact_at")
        + (", s.amount_total AS spent" if win_back else ", NULL AS spent"),
        order=order,
        outer="t.*, st.code AS store, u.display_name AS owner, cs.segment, cs.health, cs.recency, cs.frequency, "
        "cs.monetary, cs.amount_12m, cs.amount_total, cs.days_since_order, cs.next_purchase_on",
        joins="JOIN stores st ON st.id = t.store_id LEFT JOIN users u ON u.id = t.owner_id "
        "LEFT JOIN customer_standings cs ON cs.customer_id = t.id",
        outer_order=("t.spent DESC, " if win_back else "") + "t.name, t.id",
        limit=limit,
    )
    out = []
    for r in rows:
        segment_of = r["segment"]
        names = SEGMENT_NAMES.get(Group(segment_of)) if segment_of else None
        rfm = f"{r['recency']}{r['frequency']}{r['monetary']}" if r["recency"] is not None else None
        out.append(
            [
                str(r["id"]),
                r["name"],
                r["store"],
                _text(r["owner_id"]),
                r["owner"],
                utc(r["created_at"]),
                utc(r["contact_at"]),
                names[0] if names else None,
                _int(r["health"]) if r["health"] is not None else None,
                rfm,
                _money(money(r["amount_12m"])) if segment_of else None,
                _money(money(r["amount_total"])) if segment_of else None,
                _int(r["days_since_order"]) if r["days_since_order"] is not None else None,
                as_date(r["next_purchase_on"]).isoformat() if r["next_purchase_on"] is not None else None,
            ]
        )
    columns = [
        _col("customer_id", "客户ID", "Customer id"),
        _col("customer", "客户", "Customer"),
        _col("store", "门店", "Store"),
        _col("owner_id", "负责人ID", "Owner id"),
        _col("owner", "负责人", "Owner"),
        _col("created_at", "建档时间", "Created", "ts"),
        _col("contact_at", "未跟进的接触时间", "Contact without follow-up", "ts"),
        _col("segment", "分群", "Segment"),
        _col("health", "健康分", "Health", "int"),
        _col("rfm", "RFM", "RFM"),
        _col("amount_12m", "近12个月消费", "Spent, 12 months", "money"),
        _col("amount_total", "累计消费", "Spent in all", "money"),
        _col("days_since_order", "距上次购买（天）", "Days since last order", "int"),
        _col("next_purchase_on", "预计下次购买", "Next purchase expected", "date"),
    ]
    return columns, out, total


async def _drill_complaints(params: dict[str, str], f: Filters, now: dt.datetime, limit: int):
    """Complaints opened in the period: ``owner``; ``repeat=1``: whose customer had another in the 30
    days before. ``rated=1``: instead, the call-backs rated in the period. ``waiting`` history |
    respond | callback | late: instead, those waiting for that step now (the period does not apply)."""
    owner = _ident(params, "owner")
    repeat, rated = _flag(params, "repeat"), _flag(params, "rated")
    waiting = _choice(params, "waiting", tuple(WAITING_NAMES))

    def body(q: Sql) -> str:
        if waiting is not None:
            when = _waiting_sql(q, waiting, now)
        elif rated:
            when = f"p.satisfaction IS NOT NULL AND {q.period(f, 'p.callback_at')}"
        else:
            when = q.period(f, "p.opened_at")
        where = [f"p.deleted = false AND {when} AND {q.stores(f, 'p.store_id')} AND {q.owner(f, 'p.owner_id')}"]
        if owner is not None:
            where.append(f"p.owner_id = {q(owner)}")
        if repeat:
            where.append(_repeat_sql())
        return f"complaints p WHERE {' AND '.join(where)}"

    rows, total = await _page(
        body,
        inner="p.id, p.customer_id, p.store_id, p.owner_id, p.category, p.status, p.opened_at, p.first_response_at, "
        f"{_span('p.first_response_at', 'p.opened_at', 60)} AS response_minutes, p.callback_at, p.satisfaction",
        order="p.opened_at DESC, p.id",
        outer="t.*, c.name AS customer, st.code AS store, u.display_name AS owner",
        joins="JOIN customers c ON c.id = t.customer_id JOIN stores st ON st.id = t.store_id "
        "LEFT JOIN users u ON u.id = t.owner_id",
        outer_order="t.opened_at DESC, t.id",
        limit=limit,
    )
    out = [
        [
            str(r["id"]),
            _text(r["customer_id"]),
            r["customer"],
            r["store"],
            _text(r["owner_id"]),
            r["owner"],
            r["category"],
            r["status"],
            utc(r["opened_at"]),
            utc(r["first_response_at"]),
            _num(r["response_minutes"]),
            utc(r["callback_at"]),
            r["satisfaction"],
        ]
        for r in rows
    ]
    columns = [
        _col("complaint_id", "投诉ID", "Complaint id"),
        _col("customer_id", "客户ID", "Customer id"),
        _col("customer", "客户", "Customer"),
        _col("store", "门店", "Store"),
        _col("owner_id", "负责人ID", "Owner id"),
        _col("owner", "负责人", "Owner"),
        _col("category", "类别", "Category"),
        _col("status", "状态", "Status"),
        _col("opened_at", "投诉时间", "Opened", "ts"),
        _col("first_response_at", "首次响应时间", "First response", "ts"),
        _col("response_minutes", "响应分钟数", "Response (min)", "minutes"),
        _col("callback_at", "回访时间", "Call-back", "ts"),
        _col("satisfaction", "满意度", "Satisfaction", "int"),
    ]
    return columns, out, total


async def _drill_interactions(params: dict[str, str], f: Filters, now: dt.datetime, limit: int):
    """Follow-ups logged in the period: ``user`` (who logged them)."""
    user = _ident(params, "user")

    def body(q: Sql) -> str:
        where = [
            f"{_follow_up('i')} AND {q.period(f, 'i.occurred_at')} AND {q.stores(f, 'i.store_id')} "
            f"AND {q.owner(f, 'i.user_id')}"
        ]
        if user is not None:
            where.append(f"i.user_id = {q(user)}")
        return f"interactions i WHERE {' AND '.join(where)}"

    rows, total = await _page(
        body,
        inner="i.id, i.occurred_at, i.kind, i.channel, i.customer_id, i.store_id, i.user_id",
        order="i.occurred_at DESC, i.id",
        outer="t.*, c.name AS customer, st.code AS store, u.display_name AS user_name",
        joins="JOIN customers c ON c.id = t.customer_id JOIN stores st ON st.id = t.store_id "
        "LEFT JOIN users u ON u.id = t.user_id",
        outer_order="t.occurred_at DESC, t.id",
        limit=limit,
    )
    out = [
        [
            str(r["id"]),
            utc(r["occurred_at"]),
            r["kind"],
            r["channel"],
            _text(r["customer_id"]),
            r["customer"],
            r["store"],
            _text(r["user_id"]),
            r["user_name"],
        ]
        for r in rows
    ]
    columns = [
        _col("interaction_id", "记录ID", "Interaction id"),
        _col("occurred_at", "时间", "When", "ts"),
        _col("kind", "类型", "Kind"),
        _col("channel", "渠道", "Channel"),
        _col("customer_id", "客户ID", "Customer id"),
        _col("customer", "客户", "Customer"),
        _col("store", "门店", "Store"),
        _col("user_id", "记录人ID", "Logged by (id)"),
        _col("user", "记录人", "Logged by"),
    ]
    return columns, out, total


DrillFn = Callable[[dict[str, str], Filters, dt.datetime, int], Awaitable[tuple[list[Column], list[list[Any]], int]]]

# kind → (the parameters it takes, the function)
DRILLS: dict[str, tuple[frozenset[str], DrillFn]] = {
    "deals": (frozenset({"stage", "owner", "id", "status", "close_month"}), _drill_deals),
    "tasks": (frozenset({"owner", "state"}), _drill_tasks),
    "customers": (frozenset({"owner", "no_follow_up", "segment", "win_back"}), _drill_customers),
    "complaints": (frozenset({"owner", "repeat", "rated", "waiting"}), _drill_complaints),
    "interactions": (frozenset({"user"}), _drill_interactions),
}
MAX_DRILL_LIMIT = 10_000


async def drill(kind: str, params: dict[str, str], f: Filters, now: dt.datetime, limit: int = 500) -> Table:
    """The rows behind a report's number: at most ``limit`` of them, ``total`` = how many in all."""
    entry = DRILLS.get(kind)
    if entry is None:
        raise NotFound(f"drill-down {kind!r} not found; kinds are: {', '.join(DRILLS)}")
    allowed, fn = entry
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise BadParameter(
            f"{kind} takes no parameter {unknown[0]!r}; it takes: {', '.join(sorted(allowed))}", field=unknown[0]
        )
    if not 1 <= limit <= MAX_DRILL_LIMIT:
        raise Invalid(f"limit must be from 1 to {MAX_DRILL_LIMIT}, got {limit}", field="limit")
    now = _utc(now)
    columns, rows, total = await fn(params, f, now, limit)
    return _table(
        f"drill:{kind}",
        columns,
        rows,
        f,
        now,
        total=total,
        titles=DRILL_TITLES[kind],
        filters={"kind": kind, **params},
    )
