"""Rules as data and the sweep that applies them.

Each rule is a row (``rules``) with thresholds, a task title in zh-CN and English, a cooldown and
a default switch; ``rule_stores`` switches it per store (and may override thresholds). A sweep runs
**one set-based query per rule** over every enabled store — never a job per customer — and turns
what it finds into tasks. Every generated task has a deterministic id (uuid5 of its key) and a
unique ``dedupe_key`` (rule + subject + period), and each query skips subjects whose key exists:
a sweep run twice, two leaders for a moment, or a catch-up after downtime create nothing twice.
Due times follow the store's time zone and opening hours (a reminder made while the store is
closed is due when it opens; a follow-up for "the next store day" at that day's opening).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from server import db
from server.rules.hours import StoreHours
from server.rules.tables import Rule, RuleStore
from server.sync.service import allocate_versions, store_scope
from shared.enums import Role, TaskKind, TaskSource, TaskStatus
from shared.features import BEHAVIOUR_RULES, BEHAVIOUR_TRIGGERS
from shared.ids import uuid5_for, uuid7

CONTACT_KINDS = ("visit", "call", "message")  # a person reached the customer
# A backlog (rules switched on over a big chain, or a long outage) is made in slices: each rule
# makes at most this many tasks per sweep and the next minutes' sweeps make the rest (the keys
# skip what exists). Keeps every run short — one sweep writing half a million tasks took 34 s
# on the bench machine — while a normal minute makes tens.
MAX_NEW_PER_RULE = 5000
FOLLOW_UP_KINDS = ("visit", "call", "message", "note")


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    code: str
    kind: TaskKind  # the task kind it makes
    params: dict[str, Any]
    title_zh: str
    title_en: str
    cooldown_hours: int = 0
    target: str = "owner"  # owner | manager (the store manager)
    due: str = "now"  # now (at once, within opening hours) | next_store_day | anchor (the row's own time)


DEFAULTS: tuple[RuleSpec, ...] = (
    RuleSpec(
        "stage_idle",
        TaskKind.STAGE_REMINDER,
        {"idle_days": {}},  # per stage code; pipeline_stages.idle_days when not given
        "商机停滞：{title}已在「{stage}」{days}天",
        "Stalled: {title} has been in “{stage}” for {days} days",
    ),
    RuleSpec(
        "stage_escalation",
        TaskKind.STAGE_REMINDER,
        {"idle_days": {}},
        "升级提醒：{title}已在「{stage}」{days}天（{owner}）",
        "Escalation: {title} has been in “{stage}” for {days} days ({owner})",
        target="manager",
    ),
    RuleSpec("close_near", TaskKind.STAGE_REMINDER, {"days": 3}, "预计成交日临近：{title}", "Close date near: {title}"),
    RuleSpec(
        "contract_end",
        TaskKind.STAGE_REMINDER,
        {"days": 7},
        "合同7天内到期：{title}（{date}）",
        "Contract ends within 7 days: {title} ({date})",
    ),
    RuleSpec(
        "no_follow_up",
        TaskKind.FOLLOW_UP,
        {"hours": 48, "lookback_days": 14},
        "48小时未跟进：{customer}",
        "No follow-up for 48 hours: {customer}",
    ),
    RuleSpec(
        "complaint_history",
        TaskKind.COMPLAINT_CALLBACK,
        {"minutes": 60},
        "投诉1小时内未调取历史：{customer}",
        "Complaint history not retrieved within 1 hour: {customer}",
    ),
    RuleSpec(
        "complaint_solution",
        TaskKind.COMPLAINT_CALLBACK,
        {"minutes": 120},
        "投诉2小时内未给出方案：{customer}",
        "No first solution within 2 hours: {customer}",
    ),
    RuleSpec(
        "complaint_callback",
        TaskKind.COMPLAINT_CALLBACK,
        {"hours": 24, "lookback_days": 14},
        "满意度回访：{customer}",
        "Satisfaction call-back: {customer}",
        due="anchor",
    ),
    RuleSpec(
        "browse_interest",
        TaskKind.FOLLOW_UP,
        {"minutes": 5, "lookback_hours": 72},
        "跟进：{customer}浏览{category}超过{minutes}分钟",
        "Follow up: {customer} browsed {category_en} for over {minutes} minutes",
        cooldown_hours=72,
        due="next_store_day",
    ),
    RuleSpec(
        "abandoned_cart",
        TaskKind.FOLLOW_UP,
        {"hours": 24, "lookback_days": 7},
        "跟进：{customer}加购未下单",
        "Follow up: {customer} left items in the cart",
        cooldown_hours=72,
        due="next_store_day",
    ),
    RuleSpec(
        "vip_silent",
        TaskKind.CALL,
        {"days": 30, "amount": 5000},
        "高价值客户{days}天未联系：{customer}",
        "High-value customer silent for {days} days: {customer}",
        cooldown_hours=30 * 24,
        due="next_store_day",
    ),
    RuleSpec(
        "repurchase_due",
        TaskKind.FOLLOW_UP,
        {"lookback_days": 30},
        "复购提醒：{customer}的{category}该换了",
        "Repurchase due: {customer}'s {category_en}",
        cooldown_hours=30 * 24,
        due="next_store_day",
    ),
)
SPECS = {spec.code: spec for spec in DEFAULTS}


def dedupe_key(code: str, subject: str) -> str:
    return f"{code}:{subject}"


def task_id(key: str) -> uuid.UUID:
    return uuid5_for("rule-task", key)


async def ensure_defaults() -> int:
    """Insert the rules that are not there yet (existing rows, edited by an admin, are kept)."""
    existing = {r["code"] for r in await Rule.select(Rule.code)}
    missing = [spec for spec in DEFAULTS if spec.code not in existing]
    for spec in missing:
        await Rule.raw(
            "INSERT INTO rules (id, code, enabled, params, title_zh, title_en, cooldown_hours, updated_at) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT (code) DO NOTHING",
            uuid7(),
            spec.code,
            True,
            json.dumps(spec.params, ensure_ascii=False),
            spec.title_zh,
            spec.title_en,
            spec.cooldown_hours,
            dt.datetime.now(dt.UTC),
        )
    return len(missing)


# --- what to sweep --------------------------------------------------------------------------------


@dataclasses.dataclass
class StoreInfo:
    id: str
    hours: StoreHours
    time_zone: str
    manager_id: str | None
    behaviour: bool = True  # the store's behaviour_triggers feature (off: none of BEHAVIOUR_RULES)


@dataclasses.dataclass
class Plan:
    """One query's worth: a rule, its effective settings, and the stores it runs for."""

    spec: RuleSpec
    params: dict[str, Any]
    title_zh: str
    title_en: str
    cooldown_hours: int
    stores: list[StoreInfo]
    limit: int = 0  # at most this many new tasks from this query per sweep (0: no cap)


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return json.loads(value or "{}")


_languages: dict[str, str] = {}  # user id → 'zh' | 'en' (the generated title's language)


async def _stores() -> dict[str, StoreInfo]:
    # The store's behaviour_triggers switch comes along (no row: on).
    rows = await Rule.raw(
        "SELECT s.id, s.time_zone, s.opening_hours, f.enabled AS behaviour FROM stores s "
        "LEFT JOIN store_features f ON f.store_id = s.id AND f.feature = {} AND f.deleted = false "
        "WHERE s.deleted = false AND s.active = true",
        BEHAVIOUR_TRIGGERS,
    )
    global _languages
    _languages = {str(r["id"]): r["language"] for r in await Rule.raw("SELECT id, language FROM users")}
    managers: dict[str, str] = {}
    for r in await Rule.raw(
        "SELECT id, store_id FROM users WHERE role = {} AND active = true AND store_id IS NOT NULL ORDER BY username",
        Role.STORE_MANAGER.value,
    ):
        managers.setdefault(str(r["store_id"]), str(r["id"]))
    return {
        str(r["id"]): StoreInfo(
            str(r["id"]),
            StoreHours(r["time_zone"], _json(r["opening_hours"])),
            r["time_zone"],
            managers.get(str(r["id"])),
            behaviour=r["behaviour"] is None or bool(r["behaviour"]),
        )
        for r in rows
    }


async def plans(codes: Sequence[str] | None = None, stores_only: Sequence[uuid.UUID] | None = None) -> list[Plan]:
    """Every enabled (rule, settings) pair with the stores it applies to (``stores_only``: just
    these). A rule runs for a store when its own switch (or, without one, the rule's default) is on
    and, for the behaviour rules, the store's behaviour_triggers feature is on. Stores sharing a
    time zone and thresholds share one query."""
    await ensure_defaults()
    stores = await _stores()
    if stores_only is not None:
        wanted = {str(s) for s in stores_only}
        stores = {k: v for k, v in stores.items() if k in wanted}
    overrides: dict[str, dict[str, dict]] = {}
    for r in await RuleStore.raw("SELECT rule_id, store_id, enabled, params FROM rule_stores"):
        overrides.setdefault(str(r["rule_id"]), {})[str(r["store_id"])] = {
            "enabled": bool(r["enabled"]),
            "params": _json(r["params"]),
        }
    out: list[Plan] = []
    for rule in await Rule.raw("SELECT * FROM rules ORDER BY code"):
        spec = SPECS.get(rule["code"])
        if spec is None or (codes is not None and rule["code"] not in codes):
            continue
        groups: dict[str, Plan] = {}
        for store in stores.values():
            own = overrides.get(str(rule["id"]), {}).get(store.id)
            enabled = own["enabled"] if own is not None else bool(rule["enabled"])
            if not enabled or (spec.code in BEHAVIOUR_RULES and not store.behaviour):
                continue
            params = {**spec.params, **_json(rule["params"]), **(own["params"] if own else {})}
            key = json.dumps([store.time_zone, params], sort_keys=True)
            plan = groups.get(key)
            if plan is None:
                plan = groups[key] = Plan(
                    spec, params, rule["title_zh"], rule["title_en"], int(rule["cooldown_hours"] or 0), []
                )
            plan.stores.append(store)
        out.extend(groups.values())
    return out


# --- the queries ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Found:
    store_id: str
    owner_id: str | None
    customer_id: str | None
    opportunity_id: str | None
    subject: str  # what the dedupe key is made of (after the rule's code)
    values: dict[str, Any]  # for the title
    anchor: dt.datetime | None = None  # the rule's own due time (due='anchor')
    cooldown_subject: str | None = None  # one task per this within the cooldown


async def _query(plan: Plan, sql: str, *params: Any) -> list[dict[str, Any]]:
    """A rule's query, capped at the plan's limit (the rest comes in the next sweeps)."""
    if plan.limit:
        return await Rule.raw(f"{sql} LIMIT {{}}", *params, plan.limit)
    return await Rule.raw(sql, *params)


def _in(ids: Sequence[str]) -> str:
    return ", ".join("{}" for _ in ids)


def _ids(stores: list[StoreInfo]) -> list[uuid.UUID]:
    return [uuid.UUID(s.id) for s in stores]


def _dt(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


async def _stage_rows(plan: Plan, now: dt.datetime, factor: int) -> list[Found]:
    stages = await Rule.raw("SELECT id, code, name_zh, name_en, idle_days FROM pipeline_stages WHERE kind = 'open'")
    limits = plan.params.get("idle_days") or {}
    terms, params = [], []
    names = {}
    for s in stages:
        days = limits.get(s["code"], s["idle_days"])
        if not days:
            continue
        terms.append("(o.stage_id = {} AND o.stage_entered_at < {})")
        params += [s["id"], now - dt.timedelta(days=int(days) * factor)]
        names[str(s["id"])] = (s["name_zh"], s["name_en"])
    if not terms:
        return []
    ids = _ids(plan.stores)
    rows = await _query(
        plan,
        "SELECT o.store_id, o.owner_id, o.customer_id, o.id, o.title, o.stage_id, o.stage_entered_at, "
        "CAST(h.id AS TEXT) AS subject, u.display_name AS owner_name FROM opportunities o "
        "JOIN stage_history h ON h.opportunity_id = o.id AND h.left_at IS NULL "
        "LEFT JOIN users u ON u.id = o.owner_id "
        f"WHERE o.deleted = false AND o.store_id IN ({_in(ids)}) AND ({' OR '.join(terms)}) "
        "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.dedupe_key = {} || CAST(h.id AS TEXT))",
        *ids,
        *params,
        f"{plan.spec.code}:",
    )
    out = []
    for r in rows:
        zh, en = names[str(r["stage_id"])]
        entered = _dt(r["stage_entered_at"])
        days = max(0, (now - entered).days) if entered else 0
        out.append(
            Found(
                str(r["store_id"]),
                str(r["owner_id"]) if r["owner_id"] else None,
                str(r["customer_id"]),
                str(r["id"]),
                r["subject"],
                {"title": r["title"], "stage": zh, "stage_en": en, "days": days, "owner": r["owner_name"] or "—"},
            )
        )
    return out


async def _stage_idle(plan: Plan, now: dt.datetime) -> list[Found]:
    return await _stage_rows(plan, now, 1)


async def _stage_escalation(plan: Plan, now: dt.datetime) -> list[Found]:
    return await _stage_rows(plan, now, 2)


async def _date_window(plan: Plan, now: dt.datetime, column: str, stage_kind: str) -> list[Found]:
    ids = _ids(plan.stores)
    today = plan.stores[0].hours.today(now)
    until = today + dt.timedelta(days=int(plan.params["days"]))
    rows = await _query(
        plan,
        f"SELECT o.store_id, o.owner_id, o.customer_id, o.id, o.title, o.{column} AS day, "
        f"CAST(o.id AS TEXT) || ':' || CAST(o.{column} AS TEXT) AS subject FROM opportunities o "
        "JOIN pipeline_stages s ON s.id = o.stage_id "
        f"WHERE o.deleted = false AND s.kind = {{}} AND o.store_id IN ({_in(ids)}) "
        f"AND o.{column} >= {{}} AND o.{column} <= {{}} "
        f"AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.dedupe_key = {{}} || CAST(o.id AS TEXT) || ':' || "
        f"CAST(o.{column} AS TEXT))",
        stage_kind,
        *ids,
        today,
        until,
        f"{plan.spec.code}:",
    )
    return [
        Found(
            str(r["store_id"]),
            str(r["owner_id"]) if r["owner_id"] else None,
            str(r["customer_id"]),
            str(r["id"]),
            r["subject"],
            {"title": r["title"], "date": str(r["day"])[:10]},
        )
        for r in rows
    ]


async def _close_near(plan: Plan, now: dt.datetime) -> list[Found]:
    return await _date_window(plan, now, "expected_close_date", "open")


async def _contract_end(plan: Plan, now: dt.datetime) -> list[Found]:
    return await _date_window(plan, now, "contract_end_date", "won")


async def _no_follow_up(plan: Plan, now: dt.datetime) -> list[Found]:
    ids = _ids(plan.stores)
    since = now - dt.timedelta(hours=int(plan.params["hours"]))
    oldest = since - dt.timedelta(days=int(plan.params["lookback_days"]))
    contact = ", ".join(f"'{k}'" for k in CONTACT_KINDS)
    follow = ", ".join(f"'{k}'" for k in FOLLOW_UP_KINDS)
    rows = await _query(
        plan,
        "SELECT i.store_id, c.owner_id, i.customer_id, c.name, CAST(i.id AS TEXT) AS subject "
        "FROM interactions i JOIN customers c ON c.id = i.customer_id "
        f"WHERE i.kind IN ({contact}) AND i.user_id IS NOT NULL AND i.deleted = false "
        f"AND i.store_id IN ({_in(ids)}) AND i.occurred_at < {{}} AND i.occurred_at >= {{}} "
        "AND NOT EXISTS (SELECT 1 FROM interactions j WHERE j.customer_id = i.customer_id "
        f"AND j.occurred_at > i.occurred_at AND j.kind IN ({follow}) AND j.deleted = false) "
        "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.dedupe_key = {} || CAST(i.id AS TEXT))",
        *ids,
        since,
        oldest,
        f"{plan.spec.code}:",
    )
    return [_customer_row(r, {"customer": r["name"]}) for r in rows]


def _customer_row(r: dict, values: dict[str, Any], **extra: Any) -> Found:
    return Found(
        str(r["store_id"]),
        str(r["owner_id"]) if r["owner_id"] else None,
        str(r["customer_id"]),
        None,
        r["subject"],
        values,
        **extra,
    )


async def _complaint(
    plan: Plan, now: dt.datetime, condition: str, bound: dt.datetime, anchor: str | None = None
) -> list[Found]:
    ids = _ids(plan.stores)
    rows = await _query(
        plan,
        "SELECT p.store_id, p.owner_id, p.customer_id, c.name, CAST(p.id AS TEXT) AS subject, "
        f"{anchor or 'NULL'} AS anchor FROM complaints p JOIN customers c ON c.id = p.customer_id "
        f"WHERE p.deleted = false AND p.store_id IN ({_in(ids)}) AND {condition} "
        "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.dedupe_key = {} || CAST(p.id AS TEXT))",
        *ids,
        bound,
        f"{plan.spec.code}:",
    )
    return [_customer_row(r, {"customer": r["name"]}, anchor=_dt(r["anchor"])) for r in rows]


async def _complaint_history(plan: Plan, now: dt.datetime) -> list[Found]:
    bound = now - dt.timedelta(minutes=int(plan.params["minutes"]))
    return await _complaint(
        plan, now, "p.status IN ('open', 'in_progress') AND p.history_retrieved_at IS NULL AND p.opened_at < {}", bound
    )


async def _complaint_solution(plan: Plan, now: dt.datetime) -> list[Found]:
    bound = now - dt.timedelta(minutes=int(plan.params["minutes"]))
    return await _complaint(
        plan, now, "p.status IN ('open', 'in_progress') AND p.first_response_at IS NULL AND p.opened_at < {}", bound
    )


async def _complaint_callback(plan: Plan, now: dt.datetime) -> list[Found]:
    oldest = now - dt.timedelta(days=int(plan.params["lookback_days"]))
    found = await _complaint(
        plan, now, "p.solved_at IS NOT NULL AND p.callback_at IS NULL AND p.solved_at >= {}", oldest, "p.solved_at"
    )
    hours = dt.timedelta(hours=int(plan.params["hours"]))
    for f in found:  # due by the end of the call-back window after solving
        f.anchor = (f.anchor or now) + hours
    return found


async def _browse_interest(plan: Plan, now: dt.datetime) -> list[Found]:
    ids = _ids(plan.stores)
    minutes = int(plan.params["minutes"])
    rows = await _query(
        plan,
        "SELECT i.store_id, c.owner_id, i.customer_id, c.name, g.name_zh, g.name_en, "
        "CAST(i.customer_id AS TEXT) || ':' || COALESCE(CAST(i.category_id AS TEXT), '-') AS who, "
        "CAST(i.id AS TEXT) AS event FROM interactions i JOIN customers c ON c.id = i.customer_id "
        "LEFT JOIN categories g ON g.id = i.category_id "
        f"WHERE i.kind = 'browse' AND i.deleted = false AND i.store_id IN ({_in(ids)}) "
        "AND i.duration_seconds >= {} AND i.occurred_at >= {} AND i.occurred_at <= {} "
        + _cooldown_clause("i", "CAST(i.customer_id AS TEXT) || ':' || COALESCE(CAST(i.category_id AS TEXT), '-')")
        + _made_clause(
            "CAST(i.customer_id AS TEXT) || ':' || COALESCE(CAST(i.category_id AS TEXT), '-')", "CAST(i.id AS TEXT)"
        )
        + " ORDER BY i.occurred_at",
        *ids,
        minutes * 60,
        now - dt.timedelta(hours=int(plan.params["lookback_hours"])),
        now,
        f"{plan.spec.code}:",
        now - dt.timedelta(hours=plan.cooldown_hours),
        f"{plan.spec.code}:",
    )
    return [
        _customer_row(
            {**r, "subject": f"{r['who']}:{r['event']}"},
            {
                "customer": r["name"],
                "category": r["name_zh"] or "商品",
                "category_en": r["name_en"] or "products",
                "minutes": minutes,
            },
            cooldown_subject=r["who"],
        )
        for r in rows
    ]


def _cooldown_clause(alias: str, who: str) -> str:
    """No task of this rule for the same subject created within the cooldown (its key starts
    with the rule's code and the subject)."""
    return (
        f"AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.customer_id = {alias}.customer_id "
        f"AND t.dedupe_key LIKE {{}} || {who} || ':%' AND t.created_at > {{}})"
    )


def _made_clause(who: str, event: str) -> str:
    """Not made already: no task under this very key (the cooldown alone would let an old event
    be found again once the cooldown is over)."""
    return f" AND NOT EXISTS (SELECT 1 FROM tasks k WHERE k.dedupe_key = {{}} || {who} || ':' || {event})"


async def _abandoned_cart(plan: Plan, now: dt.datetime) -> list[Found]:
    ids = _ids(plan.stores)
    since = now - dt.timedelta(hours=int(plan.params["hours"]))
    rows = await _query(
        plan,
        "SELECT i.store_id, c.owner_id, i.customer_id, c.name, CAST(i.customer_id AS TEXT) AS who, "
        "CAST(i.id AS TEXT) AS event FROM interactions i JOIN customers c ON c.id = i.customer_id "
        f"WHERE i.kind = 'cart' AND i.deleted = false AND i.store_id IN ({_in(ids)}) "
        "AND i.occurred_at < {} AND i.occurred_at >= {} "
        "AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = i.customer_id AND o.ordered_at > i.occurred_at "
        "AND o.deleted = false) "
        + _cooldown_clause("i", "CAST(i.customer_id AS TEXT)")
        + _made_clause("CAST(i.customer_id AS TEXT)", "CAST(i.id AS TEXT)")
        + " ORDER BY i.occurred_at",
        *ids,
        since,
        since - dt.timedelta(days=int(plan.params["lookback_days"])),
        f"{plan.spec.code}:",
        now - dt.timedelta(hours=plan.cooldown_hours),
        f"{plan.spec.code}:",
    )
    return [
        _customer_row({**r, "subject": f"{r['who']}:{r['event']}"}, {"customer": r["name"]}, cooldown_subject=r["who"])
        for r in rows
    ]


async def _vip_silent(plan: Plan, now: dt.datetime) -> list[Found]:
    ids = _ids(plan.stores)
    days = int(plan.params["days"])
    period = int(now.timestamp() // (max(plan.cooldown_hours, 1) * 3600))  # one task per cooldown period
    contact = ", ".join(f"'{k}'" for k in CONTACT_KINDS)
    rows = await _query(
        plan,
        "SELECT c.store_id, c.owner_id, c.id AS customer_id, c.name, CAST(c.id AS TEXT) AS who FROM customers c "
        "JOIN (SELECT o.customer_id FROM orders o WHERE o.ordered_at >= {} AND o.deleted = false "
        "GROUP BY o.customer_id HAVING SUM(o.amount) > {}) v ON v.customer_id = c.id "
        f"WHERE c.deleted = false AND c.store_id IN ({_in(ids)}) "
        "AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id "
        f"AND i.kind IN ({contact}) AND i.occurred_at >= {{}} AND i.deleted = false) "
        "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.customer_id = c.id AND t.dedupe_key LIKE {} || "
        "CAST(c.id AS TEXT) || ':%' AND t.created_at > {})",
        now - dt.timedelta(days=365),
        float(plan.params["amount"]),
        *ids,
        now - dt.timedelta(days=days),
        f"{plan.spec.code}:",
        now - dt.timedelta(hours=plan.cooldown_hours),
    )
    return [
        _customer_row({**r, "subject": f"{r['who']}:{period}"}, {"customer": r["name"], "days": days}) for r in rows
    ]


async def _repurchase_due(plan: Plan, now: dt.datetime) -> list[Found]:
    ids = _ids(plan.stores)
    lookback = dt.timedelta(days=int(plan.params["lookback_days"]))
    categories = await Rule.raw("SELECT id, repurchase_days FROM categories WHERE repurchase_days IS NOT NULL")
    terms, params = [], []
    for g in categories:
        due = now - dt.timedelta(days=int(g["repurchase_days"]))
        terms.append("(l.category_id = {} AND o.ordered_at < {} AND o.ordered_at >= {})")
        params += [g["id"], due, due - lookback]
    if not terms:
        return []
    rows = await _query(
        plan,
        "SELECT o.store_id, c.owner_id, o.customer_id, c.name, g.name_zh, g.name_en, "
        "CAST(o.customer_id AS TEXT) || ':' || CAST(l.category_id AS TEXT) AS who, CAST(l.id AS TEXT) AS event "
        "FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN customers c ON c.id = o.customer_id "
        "JOIN categories g ON g.id = l.category_id "
        f"WHERE o.deleted = false AND o.store_id IN ({_in(ids)}) AND ({' OR '.join(terms)}) "
        "AND NOT EXISTS (SELECT 1 FROM order_lines l2 JOIN orders o2 ON o2.id = l2.order_id "
        "WHERE o2.customer_id = o.customer_id AND l2.category_id = l.category_id AND o2.ordered_at > o.ordered_at "
        "AND o2.deleted = false) "
        + _cooldown_clause("o", "CAST(o.customer_id AS TEXT) || ':' || CAST(l.category_id AS TEXT)")
        + _made_clause("CAST(o.customer_id AS TEXT) || ':' || CAST(l.category_id AS TEXT)", "CAST(l.id AS TEXT)")
        + " ORDER BY o.ordered_at",
        *ids,
        *params,
        f"{plan.spec.code}:",
        now - dt.timedelta(hours=plan.cooldown_hours),
        f"{plan.spec.code}:",
    )
    return [
        _customer_row(
            {**r, "subject": f"{r['who']}:{r['event']}"},
            {"customer": r["name"], "category": r["name_zh"], "category_en": r["name_en"]},
            cooldown_subject=r["who"],
        )
        for r in rows
    ]


QUERIES: dict[str, Callable[[Plan, dt.datetime], Any]] = {
    "stage_idle": _stage_idle,
    "stage_escalation": _stage_escalation,
    "close_near": _close_near,
    "contract_end": _contract_end,
    "no_follow_up": _no_follow_up,
    "complaint_history": _complaint_history,
    "complaint_solution": _complaint_solution,
    "complaint_callback": _complaint_callback,
    "browse_interest": _browse_interest,
    "abandoned_cart": _abandoned_cart,
    "vip_silent": _vip_silent,
    "repurchase_due": _repurchase_due,
}
assert set(QUERIES) == set(SPECS)


# --- the sweep ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class SweepResult:
    created: dict[str, int]
    seconds: float
    capped: list[str] = dataclasses.field(default_factory=list)  # rules that have more to make

    @property
    def total(self) -> int:
        return sum(self.created.values())


TASK_COLUMNS = (
    "id",
    "version",
    "deleted",
    "updated_at",
    "store_id",
    "owner_id",
    "customer_id",
    "opportunity_id",
    "kind",
    "title",
    "notes",
    "due_at",
    "status",
    "source",
    "dedupe_key",
    "completed_at",
    "created_by_id",
    "created_at",
)


def _due(plan: Plan, store: StoreInfo, found: Found, now: dt.datetime) -> dt.datetime:
    if plan.spec.due == "next_store_day":
        return store.hours.next_store_day(now)
    if plan.spec.due == "anchor" and found.anchor is not None:
        return store.hours.open_at_or_after(found.anchor)
    return store.hours.open_at_or_after(now)


def _title(template: str, values: dict[str, Any]) -> str:
    try:
        return template.format(**values)[:200]
    except (KeyError, IndexError, ValueError):
        return template[:200]  # an admin's template naming an unknown value: keep its text


async def sweep(
    now: dt.datetime | None = None,
    *,
    codes: Sequence[str] | None = None,
    stores: Sequence[uuid.UUID] | None = None,
    limit: int = MAX_NEW_PER_RULE,
) -> SweepResult:
    """Run every enabled rule once (``codes``: only these; ``stores``: only for these stores);
    create the tasks that are due and not made yet, at most ``limit`` per rule (0: all)."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    created: dict[str, int] = {}
    capped: list[str] = []
    rows: dict[str, list[tuple]] = {}
    for plan in await plans(codes, stores):
        plan.limit = limit
        by_id = {s.id: s for s in plan.stores}
        seen: set[str] = set()  # one task per cooldown subject within this sweep
        count = 0
        found_rows = await QUERIES[plan.spec.code](plan, now)
        if plan.limit and len(found_rows) >= plan.limit:
            capped.append(plan.spec.code)
        for found in found_rows:
            store = by_id[found.store_id]
            owner = store.manager_id if plan.spec.target == "manager" else (found.owner_id or store.manager_id)
            if owner is None:
                continue  # nobody to give it to (no owner, no active manager)
            if found.cooldown_subject is not None:
                if found.cooldown_subject in seen:
                    continue
                seen.add(found.cooldown_subject)
            key = dedupe_key(plan.spec.code, found.subject)
            english = (_languages.get(owner) or "zh").startswith("en")
            title = _title(plan.title_en if english else plan.title_zh, found.values)
            rows.setdefault(found.store_id, []).append(
                (
                    task_id(key),
                    0,
                    False,
                    now,
                    uuid.UUID(found.store_id),
                    uuid.UUID(owner),
                    uuid.UUID(found.customer_id) if found.customer_id else None,
                    uuid.UUID(found.opportunity_id) if found.opportunity_id else None,
                    plan.spec.kind.value,
                    title,
                    "",
                    _due(plan, store, found, now),
                    TaskStatus.OPEN.value,
                    TaskSource.RULE.value,
                    key,
                    None,
                    None,
                    now,
                )
            )
            count += 1
        created[plan.spec.code] = created.get(plan.spec.code, 0) + count
    for store_id, store_rows in rows.items():
        await _insert(store_id, store_rows)
    return SweepResult(created, time.perf_counter() - started, capped)


async def _insert(store_id: str, rows: list[tuple]) -> None:
    """One transaction per store: versions from the store's counter, then the rows; a key made
    meanwhile by another leader is skipped by the unique constraint (its version number is
    simply not used)."""
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        async with db.transaction():
            last = await allocate_versions(store_scope(uuid.UUID(store_id)), len(chunk))
            first = last - len(chunk) + 1
            numbered = [(r[0], first + n, *r[2:]) for n, r in enumerate(chunk)]
            await db.insert_many("tasks", TASK_COLUMNS, numbered, on_conflict="dedupe_key")


# --- what an admin (or a store's manager) edits --------------------------------------------------------

# Title placeholders each rule fills in (an admin's template may use any of them, no others).
SAMPLE_VALUES: dict[str, Any] = {
    "title": "岩板餐桌",
    "stage": "方案报价",
    "stage_en": "Proposal",
    "days": 7,
    "owner": "李娜",
    "date": "2026-12-31",
    "customer": "王芳",
    "category": "床垫",
    "category_en": "Mattress",
    "minutes": 5,
}


def _check_params(code: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the thresholds the rule knows, each a whole number in a sane range (idle days per
    stage for the stage rules)."""
    from server.errors import Invalid

    known = SPECS[code].params
    for key, value in params.items():
        if key not in known:
            raise Invalid(f"rule {code} has no threshold {key!r}; it has: {', '.join(sorted(known))}", field="params")
        if key == "idle_days":
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 365
                for k, v in value.items()
            ):
                raise Invalid("idle_days maps stage codes to whole days from 1 to 365", field="params")
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100_000:
            raise Invalid(f"{key} must be a whole number from 1 to 100000", field="params")
    return params


def _check_title(template: str, field: str) -> str:
    from server.errors import Invalid

    try:
        template.format(**SAMPLE_VALUES)
    except (KeyError, IndexError, ValueError) as exc:
        raise Invalid(
            f"the title uses an unknown value {exc}; it may use {{{'}, {'.join(sorted(SAMPLE_VALUES))}}}", field=field
        ) from None
    return template.strip()


async def list_rules(*, caller: Any) -> list[Any]:
    from shared.wire import RuleOut, RuleStoreOut

    await ensure_defaults()
    params: list[object] = []
    where = caller.store_filter("store_id", params)
    switches: dict[str, list[RuleStoreOut]] = {}
    for r in await RuleStore.raw(f"SELECT rule_id, store_id, enabled, params FROM rule_stores WHERE {where}", *params):
        switches.setdefault(str(r["rule_id"]), []).append(
            RuleStoreOut(store_id=uuid.UUID(str(r["store_id"])), enabled=bool(r["enabled"]), params=_json(r["params"]))
        )
    return [
        RuleOut(
            code=r["code"],
            enabled=bool(r["enabled"]),
            params={**SPECS[r["code"]].params, **_json(r["params"])},
            title_zh=r["title_zh"],
            title_en=r["title_en"],
            cooldown_hours=int(r["cooldown_hours"] or 0),
            stores=switches.get(str(r["id"]), []),
        )
        for r in await Rule.raw("SELECT * FROM rules ORDER BY code")
        if r["code"] in SPECS
    ]


async def _rule(code: str) -> dict[str, Any]:
    from server.errors import NotFound

    await ensure_defaults()
    rows = await Rule.raw("SELECT * FROM rules WHERE code = {}", code)
    if not rows or code not in SPECS:
        raise NotFound(f"rule {code} not found")
    return rows[0]


async def patch_rule(*, caller: Any, code: str, data: Any) -> Any:
    """The chain-wide settings of a rule: admin only."""
    import msgspec

    from server.errors import Forbidden, Invalid

    if caller.role != Role.ADMIN:
        raise Forbidden("only an admin changes a rule for the whole chain; a store's manager switches it per store")
    rule = await _rule(code)
    changes: dict[str, Any] = {}
    if data.enabled is not msgspec.UNSET:
        changes["enabled"] = data.enabled
    if data.params is not msgspec.UNSET:
        changes["params"] = json.dumps(_check_params(code, data.params), ensure_ascii=False)
    if data.title_zh is not msgspec.UNSET:
        changes["title_zh"] = _check_title(data.title_zh, "title_zh")
    if data.title_en is not msgspec.UNSET:
        changes["title_en"] = _check_title(data.title_en, "title_en")
    if data.cooldown_hours is not msgspec.UNSET:
        changes["cooldown_hours"] = data.cooldown_hours
    if not changes:
        raise Invalid("nothing to change: send enabled, params, title_zh, title_en or cooldown_hours")
    sets = ", ".join(f"{k} = {{}}" for k in changes)
    await Rule.raw(
        f"UPDATE rules SET {sets}, updated_at = {{}} WHERE id = {{}}",
        *changes.values(),
        dt.datetime.now(dt.UTC),
        rule["id"],
    )
    return next(r for r in await list_rules(caller=caller) if r.code == code)


async def set_store_switches(*, code: str, store_ids: Sequence[uuid.UUID], enabled: bool, now: dt.datetime) -> None:
    """Switch a rule on or off for these stores in one statement (inside the caller's transaction);
    a store's threshold overrides stay. The roll-out's ``rule.<code>`` features write here, so a
    rule has one switch per store whichever screen changes it."""
    if not store_ids:
        return
    rule = await _rule(code)
    values, params = [], []
    for store_id in store_ids:
        values.append("({}, {}, {}, {}, {}, {})")
        params += [uuid7(), rule["id"], store_id, enabled, "{}", now]
    await RuleStore.raw(
        f"INSERT INTO rule_stores (id, rule_id, store_id, enabled, params, updated_at) VALUES {', '.join(values)} "
        "ON CONFLICT (rule_id, store_id) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
        *params,
    )


async def switch_store(*, caller: Any, code: str, store_id: uuid.UUID, data: Any | None) -> Any:
    """A store's own switch (``data`` None: back to the rule's default). Admin, the store's
    regional manager or its store manager; a store outside the caller's scope answers 404."""
    from server.errors import Forbidden

    rule = await _rule(code)
    caller.require(store_id, "store", store_id)
    if caller.role == Role.REP:
        raise Forbidden("a rep cannot switch rules; ask the store manager")
    now = dt.datetime.now(dt.UTC)
    async with db.transaction():
        await RuleStore.raw("DELETE FROM rule_stores WHERE rule_id = {} AND store_id = {}", rule["id"], store_id)
        if data is not None:
            await RuleStore.raw(
                "INSERT INTO rule_stores (id, rule_id, store_id, enabled, params, updated_at) "
                "VALUES ({}, {}, {}, {}, {}, {})",
                uuid7(),
                rule["id"],
                store_id,
                data.enabled,
                json.dumps(_check_params(code, data.params), ensure_ascii=False),
                now,
            )
    return next(r for r in await list_rules(caller=caller) if r.code == code)
