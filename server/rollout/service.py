"""The roll-out: per-store feature switches, the waves stores go live in, and the adoption figures
that compare the pilot stores with the rest.

A feature is on for a store unless the store has a switch of its own saying off. App features live
in ``store_features`` (synced to the store's phones: each write takes a version in the store's change
order, so phones pull it on their next sync and a live poke tells connected ones at once); rule
features (``rule.<code>``) are the rules' own per-store switches (``rule_stores``), so the worker
and the rules screen read the same switch. Head office (admin) switches any store, a regional
manager the stores of their region; store managers and reps read their own store's switches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import msgspec

from server import db
from server.analytics.filters import Filters, today
from server.auth.scope import Caller
from server.errors import Conflict, Forbidden, Invalid, NotFound
from server.rollout.tables import Wave
from server.rules import service as rules
from server.sync.service import allocate_versions, store_scope
from server.values import as_date, as_uuid, utc
from shared.enums import Role
from shared.features import FEATURES, FEATURES_BY_CODE, Feature
from shared.ids import uuid5_for, uuid7
from shared.reports import Column, Table
from shared.rollout import (
    FeatureState,
    WaveCreate,
    WaveFeatureSwitch,
    WaveOut,
    WavePatch,
    WaveStoreOut,
    WaveSwitchOut,
)

SWITCHERS = (Role.ADMIN, Role.REGIONAL_MANAGER)


def feature_row_id(store_id: uuid.UUID, feature: str) -> uuid.UUID:
    """The one ``store_features`` row of (store, feature): the same id wherever it is written."""
    return uuid5_for("store-feature", store_id, feature)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def find_store(caller: Caller, ref: str) -> dict[str, Any]:
    """A store by code or id, in the caller's scope (else 404, like any id from another store)."""
    ident = _uuid(ref)
    rows = await Wave.raw(
        f"SELECT id, code, name, pilot FROM stores WHERE {'id' if ident else 'code'} = {{}} AND deleted = false",
        ident or ref,
    )
    if not rows or not caller.sees(rows[0]["id"]):
        raise NotFound(f"store {ref} not found")
    return rows[0]


def feature(code: str) -> Feature:
    found = FEATURES_BY_CODE.get(code)
    if found is None:
        raise NotFound(f"feature {code} not found; the features are: {', '.join(f.code for f in FEATURES)}")
    return found


def _may_switch(caller: Caller) -> None:
    if caller.role not in SWITCHERS:
        raise Forbidden("only head office (admin) and regional managers switch features; ask your regional manager")


def _admin(caller: Caller, what: str) -> None:
    if caller.role != Role.ADMIN:
        raise Forbidden(f"only head office (admin) {what}")


# --- feature switches -----------------------------------------------------------------------------


async def _states(store: dict[str, Any]) -> list[FeatureState]:
    """Every feature of one store: two queries (its app switches; the rules with its switches)."""
    await rules.ensure_defaults()
    store_id = as_uuid(store["id"])
    own = {
        r["feature"]: r
        for r in await Wave.raw(
            "SELECT feature, enabled, updated_at FROM store_features WHERE store_id = {} AND deleted = false",
            store_id,
        )
    }
    for r in await Wave.raw(
        "SELECT r.code, r.enabled AS chain, rs.enabled, rs.updated_at FROM rules r "
        "LEFT JOIN rule_stores rs ON rs.rule_id = r.id AND rs.store_id = {}",
        store_id,
    ):
        own[f"rule.{r['code']}"] = r
    out = []
    for f in FEATURES:
        row = own.get(f.code)
        mine = row is not None and row["enabled"] is not None
        default = True if f.rule is None or row is None else bool(row["chain"])
        out.append(
            FeatureState(
                feature=f.code,
                kind="rule" if f.rule else "app",
                label_zh=f.label_zh,
                label_en=f.label_en,
                description_zh=f.description_zh,
                description_en=f.description_en,
                enabled=bool(row["enabled"]) if mine else default,
                source="store" if mine else "default",
                store_id=store_id,
                store_code=store["code"],
                updated_at=utc(row["updated_at"]) if mine else None,
            )
        )
    return out


async def features(*, caller: Caller, store: str | None) -> list[FeatureState]:
    """The switches of one store (``store``: a code or an id; without it, the caller's own)."""
    if not store:
        if caller.store_id is None:
            raise Invalid("store is required: a store code like BJ-CY, or its id", field="store")
        store = str(caller.store_id)
    return await _states(await find_store(caller, store))


async def write_switches(*, feature_code: str, store_ids: Sequence[uuid.UUID], enabled: bool, now: dt.datetime) -> None:
    """Set a feature for these stores, inside the caller's transaction. An app feature's row takes
    the next version of its store's change order (phones pull it); a rule feature is the rule's
    per-store switch."""
    f = feature(feature_code)
    if f.rule is not None:
        await rules.set_store_switches(code=f.rule, store_ids=store_ids, enabled=enabled, now=now)
        return
    for store_id in store_ids:
        version = await allocate_versions(store_scope(store_id))
        await Wave.raw(
            "INSERT INTO store_features (id, version, deleted, updated_at, store_id, feature, enabled) "
            "VALUES ({}, {}, false, {}, {}, {}, {}) ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, "
            "version = excluded.version, updated_at = excluded.updated_at, deleted = false",
            feature_row_id(store_id, f.code),
            version,
            now,
            store_id,
            f.code,
            enabled,
        )


async def switch(
    *, caller: Caller, store: str, feature_code: str, enabled: bool, now: dt.datetime | None = None
) -> FeatureState:
    """Switch one feature of one store (admin: any store; a regional manager: their region's)."""
    f = feature(feature_code)
    found = await find_store(caller, store)
    _may_switch(caller)
    async with db.transaction():
        await write_switches(
            feature_code=f.code, store_ids=[as_uuid(found["id"])], enabled=enabled, now=now or dt.datetime.now(dt.UTC)
        )
    return next(s for s in await _states(found) if s.feature == f.code)


# --- waves ----------------------------------------------------------------------------------------


def _status(starts_on: dt.date, now: dt.datetime) -> str:
    return "planned" if starts_on > today(now) else "live"


async def _waves(caller: Caller, now: dt.datetime, wave_id: uuid.UUID | None = None) -> list[WaveOut]:
    where, params = ("WHERE w.id = {}", [wave_id]) if wave_id else ("", [])
    waves = await Wave.raw(
        f"SELECT w.id, w.code, w.name, w.starts_on, w.position, w.notes FROM waves w {where} "
        "ORDER BY w.position, w.starts_on, w.code",
        *params,
    )
    members: dict[str, list[WaveStoreOut]] = {}
    for r in await Wave.raw(
        "SELECT ws.wave_id, s.id, s.code, s.name, s.pilot FROM wave_stores ws JOIN stores s ON s.id = ws.store_id "
        "WHERE s.deleted = false ORDER BY s.code"
    ):
        if caller.sees(r["id"]):  # a regional manager sees their region's stores of each wave
            members.setdefault(str(r["wave_id"]), []).append(
                WaveStoreOut(id=as_uuid(r["id"]), code=r["code"], name=r["name"], pilot=bool(r["pilot"]))
            )
    return [
        WaveOut(
            id=as_uuid(w["id"]),
            code=w["code"],
            name=w["name"],
            starts_on=as_date(w["starts_on"]),
            position=int(w["position"]),
            notes=w["notes"] or "",
            status=_status(as_date(w["starts_on"]), now),  # type: ignore[arg-type]
            stores=members.get(str(w["id"]), []),
        )
        for w in waves
    ]


async def list_waves(*, caller: Caller, now: dt.datetime | None = None) -> list[WaveOut]:
    """Every wave in order, with the stores of it the caller sees; planned until its start date."""
    return await _waves(caller, now or dt.datetime.now(dt.UTC))


async def _wave(wave_id: uuid.UUID) -> dict[str, Any]:
    rows = await Wave.raw("SELECT id, code FROM waves WHERE id = {}", wave_id)
    if not rows:
        raise NotFound(f"wave {wave_id} not found")
    return rows[0]


async def _store_ids(refs: Iterable[str]) -> list[uuid.UUID]:
    """Store codes (or ids) to ids, in the order given; every unknown one is named."""
    wanted = list(dict.fromkeys(refs))
    codes = [ref for ref in wanted if _uuid(ref) is None]
    idents = [i for i in (_uuid(ref) for ref in wanted) if i is not None]
    found: dict[str, uuid.UUID] = {}
    if codes:
        marks = ", ".join("{}" for _ in codes)
        for r in await Wave.raw(f"SELECT id, code FROM stores WHERE deleted = false AND code IN ({marks})", *codes):
            found[r["code"]] = as_uuid(r["id"])  # type: ignore[assignment]
    if idents:
        marks = ", ".join("{}" for _ in idents)
        for r in await Wave.raw(f"SELECT id FROM stores WHERE deleted = false AND id IN ({marks})", *idents):
            found[str(as_uuid(r["id"]))] = as_uuid(r["id"])  # type: ignore[assignment]

    def key(ref: str) -> str:
        ident = _uuid(ref)
        return ref if ident is None else str(ident)

    unknown = [ref for ref in wanted if key(ref) not in found]
    if unknown:
        raise Invalid(f"unknown store {', '.join(unknown)}: give store codes like BJ-CY", field="stores")
    return list(dict.fromkeys(found[key(ref)] for ref in wanted))


async def _place(wave_id: uuid.UUID, store_ids: Sequence[uuid.UUID], *, replace: bool) -> None:
    """Put these stores in the wave (taking them out of any other); ``replace``: only these."""
    if replace:
        await Wave.raw("DELETE FROM wave_stores WHERE wave_id = {}", wave_id)
    if not store_ids:
        return
    marks = ", ".join("{}" for _ in store_ids)
    await Wave.raw(f"DELETE FROM wave_stores WHERE store_id IN ({marks})", *store_ids)
    await Wave.raw(
        f"INSERT INTO wave_stores (id, wave_id, store_id) VALUES {', '.join('({}, {}, {})' for _ in store_ids)}",
        *[v for store_id in store_ids for v in (uuid7(), wave_id, store_id)],
    )


async def _code_free(code: str, wave_id: uuid.UUID | None = None) -> None:
    rows = await Wave.raw("SELECT id FROM waves WHERE code = {}", code)
    if rows and as_uuid(rows[0]["id"]) != wave_id:
        raise Conflict(f"a wave with code {code} exists already; choose another code", field="code")


async def create_wave(*, caller: Caller, data: WaveCreate, now: dt.datetime | None = None) -> WaveOut:
    """A new wave (admin); a store listed that is in another wave moves to this one."""
    _admin(caller, "plans waves")
    now = now or dt.datetime.now(dt.UTC)
    if not data.name.strip():
        raise Invalid("name must not be blank", field="name")
    store_ids = await _store_ids(data.stores)
    wave_id = uuid7()
    async with db.transaction():
        await _code_free(data.code)
        position = data.position
        if position is None:
            rows = await Wave.raw("SELECT max(position) AS p FROM waves")
            position = 0 if rows[0]["p"] is None else int(rows[0]["p"]) + 1
        await Wave.raw(
            "INSERT INTO waves (id, code, name, starts_on, position, notes, updated_at) "
            "VALUES ({}, {}, {}, {}, {}, {}, {})",
            wave_id,
            data.code,
            data.name.strip(),
            data.starts_on,
            position,
            data.notes,
            now,
        )
        await _place(wave_id, store_ids, replace=False)
    return (await _waves(caller, now, wave_id))[0]


async def patch_wave(*, caller: Caller, wave_id: uuid.UUID, data: WavePatch, now: dt.datetime | None = None) -> WaveOut:
    """Change a wave (admin): its code, name, start, notes, position, or its stores (the whole set;
    a store in another wave moves here, one left out leaves the wave)."""
    _admin(caller, "plans waves")
    now = now or dt.datetime.now(dt.UTC)
    await _wave(wave_id)
    changes: dict[str, Any] = {}
    for name in ("code", "name", "starts_on", "notes", "position"):
        value = getattr(data, name)
        if value is not msgspec.UNSET:
            changes[name] = value.strip() if name == "name" else value
    if changes.get("name") == "":
        raise Invalid("name must not be blank", field="name")
    store_ids = None if data.stores is msgspec.UNSET else await _store_ids(data.stores)
    if not changes and store_ids is None:
        raise Invalid("nothing to change: send code, name, starts_on, notes, position or stores")
    async with db.transaction():
        if "code" in changes:
            await _code_free(changes["code"], wave_id)
        sets = ", ".join(f"{k} = {{}}" for k in changes)
        await Wave.raw(
            f"UPDATE waves SET {sets}{', ' if sets else ''}updated_at = {{}} WHERE id = {{}}",
            *changes.values(),
            now,
            wave_id,
        )
        if store_ids is not None:
            await _place(wave_id, store_ids, replace=True)
    return (await _waves(caller, now, wave_id))[0]


async def switch_wave(
    *, caller: Caller, wave_id: uuid.UUID, data: WaveFeatureSwitch, now: dt.datetime | None = None
) -> WaveSwitchOut:
    """Switch a feature for every store of a wave (admin), in one transaction."""
    _admin(caller, "switches a feature for a whole wave")
    f = feature(data.feature)
    wave = await _wave(wave_id)
    rows = await Wave.raw(
        "SELECT s.id, s.code FROM wave_stores ws JOIN stores s ON s.id = ws.store_id "
        "WHERE ws.wave_id = {} AND s.deleted = false ORDER BY s.code",
        wave_id,
    )
    if not rows:
        raise Invalid(f"wave {wave['code']} has no stores yet: add stores first", field="feature")
    async with db.transaction():
        await write_switches(
            feature_code=f.code,
            store_ids=[as_uuid(r["id"]) for r in rows],  # type: ignore[misc]
            enabled=data.enabled,
            now=now or dt.datetime.now(dt.UTC),
        )
    return WaveSwitchOut(wave=wave["code"], feature=f.code, enabled=data.enabled, stores=[r["code"] for r in rows])


# --- adoption -------------------------------------------------------------------------------------

ADOPTION_COLUMNS = [
    Column(key="code", label_zh="门店编码", label_en="Store code"),
    Column(key="name", label_zh="门店", label_en="Store"),
    Column(key="wave", label_zh="批次", label_en="Wave"),
    Column(key="pilot", label_zh="试点", label_en="Pilot"),
    Column(key="reps", label_zh="导购人数", label_en="Reps", kind="int"),
    Column(key="active_reps", label_zh="日活导购占比", label_en="Active reps per day", kind="percent"),
    Column(key="cards_touched", label_zh="客户卡触达率", label_en="Cards touched", kind="percent"),
    Column(key="tasks_on_time", label_zh="任务按时完成率", label_en="Tasks done on time", kind="percent"),
    Column(key="sync_rejections", label_zh="同步被拒次数", label_en="Sync rejections", kind="int"),
    Column(key="feedback", label_zh="反馈条数", label_en="Feedback items", kind="int"),
]
PILOT_LABEL = "试点门店 pilot stores"
OTHER_LABEL = "其他门店 other stores"


def _percent(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(100.0 * part / whole, 1)


async def _added_up(parts: list[Awaitable[list[dict[str, Any]]]], *by: str) -> list[dict[str, Any]]:
    return db.add_up(await asyncio.gather(*parts), by)


def _by_store(rows: list[dict[str, Any]], *keys: str) -> dict[str, tuple[int, ...]]:
    return {str(r["store_id"]): tuple(int(r[k] or 0) for k in keys) for r in rows}


async def adoption(f: Filters, now: dt.datetime) -> Table:
    """Per covered store (in wave order): reps, the share of them active per day (a day counts when
    the rep synced: an ``activity_days`` row), the share of the store's customers a person touched
    (an interaction logged by staff, or a task done on them), the share of tasks due by now in the
    period done by their due time, the mutations sync rejected, and the feedback sent; then the pilot
    stores and the others, each weighted over their stores. One query per figure, all stores at once,
    the queries side by side."""
    last_day = min(f.end, today(now))
    days = max(0, (last_day - f.start).days + 1)
    due_until = min(f.until, now)
    customer_ranges = await db.id_ranges("customers", "id", f.parts)

    def scoped(sql: str, column: str, *params: Any, set_local: dict[str, str] | None = None):
        """The query with the covered stores as ``{scope}``, to run beside the others."""
        args = list(params)
        return db.fetch_report(sql.replace("{scope}", f.store_filter(column, args)), args, set_local)

    stores_job = scoped(
        "SELECT s.id, s.code, s.name, s.pilot, w.name AS wave FROM stores s "
        "LEFT JOIN wave_stores ws ON ws.store_id = s.id LEFT JOIN waves w ON w.id = ws.wave_id "
        "WHERE s.deleted = false AND s.active = true AND {scope} "
        "ORDER BY CASE WHEN w.id IS NULL THEN 1 ELSE 0 END, w.position, w.starts_on, s.code",
        "s.id",
    )
    reps_job = scoped(
        "SELECT store_id, count(*) AS n FROM users WHERE role = 'rep' AND active = true AND deleted = false "
        "AND {scope} GROUP BY store_id",
        "store_id",
    )
    rep_days_job = scoped(
        "SELECT u.store_id, count(*) AS n FROM activity_days a JOIN users u ON u.id = a.user_id "
        "WHERE u.role = 'rep' AND u.active = true AND u.deleted = false AND a.day >= {} AND a.day <= {} "
        "AND {scope} GROUP BY u.store_id",
        "u.store_id",
        f.start,
        last_day,
    )
    customers_job = scoped(
        "SELECT store_id, count(*) AS n FROM customers WHERE deleted = false AND {scope} GROUP BY store_id",
        "store_id",
    )
    # Each customer once however often touched (UNION), counted in the customer's own store: the
    # touched customers sorted and deduplicated, then merged with the customers in id order; split
    # by customer (each range of ids on a connection of its own) and added up.
    touched_parts = [
        scoped(
            "SELECT c.store_id, count(*) AS n FROM (SELECT customer_id FROM interactions WHERE user_id IS NOT NULL "
            f"AND deleted = false AND occurred_at >= {{}} AND occurred_at < {{}} AND {within('customer_id')} "
            "UNION SELECT customer_id FROM tasks WHERE status = 'done' AND deleted = false AND customer_id IS NOT NULL "
            f"AND completed_at >= {{}} AND completed_at < {{}} AND {within('customer_id')}) x "
            f"JOIN customers c ON c.id = x.customer_id WHERE c.deleted = false AND {within('c.id')} AND {{scope}} "
            "GROUP BY c.store_id",
            "c.store_id",
            f.since,
            f.until,
            f.since,
            f.until,
            set_local=db.MERGE_NOT_HASH,
        )
        for within in customer_ranges
    ]
    touched_job = _added_up(touched_parts, "store_id")
    tasks_job = scoped(
        "SELECT store_id, count(*) AS due, sum(CASE WHEN status = 'done' AND completed_at <= due_at THEN 1 ELSE 0 END) "
        "AS on_time FROM tasks WHERE deleted = false AND status <> 'cancelled' AND due_at >= {} AND due_at < {} "
        "AND {scope} GROUP BY store_id",
        "store_id",
        f.since,
        due_until,
    )
    rejected_job = scoped(
        "SELECT store_id, sum(rejected) AS n FROM activity_days WHERE day >= {} AND day <= {} AND {scope} "
        "GROUP BY store_id",
        "store_id",
        f.start,
        last_day,
    )
    feedback_job = scoped(
        "SELECT store_id, count(*) AS n FROM feedback WHERE created_at >= {} AND created_at < {} AND {scope} "
        "GROUP BY store_id",
        "store_id",
        f.since,
        f.until,
    )
    stores, *counted, tasks_by, rejects_by, feedback_by = await asyncio.gather(
        stores_job, reps_job, rep_days_job, customers_job, touched_job, tasks_job, rejected_job, feedback_job
    )
    reps, rep_days, customers, touched = (_by_store(rows, "n") for rows in counted)
    tasks = _by_store(tasks_by, "due", "on_time")
    rejected, feedback = _by_store(rejects_by, "n"), _by_store(feedback_by, "n")

    rows: list[list[Any]] = []
    groups = {True: [0] * 9, False: [0] * 9}  # reps, rep-days, possible rep-days, touched, customers, …
    for s in stores:
        key = str(s["id"])
        n_reps = reps.get(key, (0,))[0]
        active = rep_days.get(key, (0,))[0]
        hit = touched.get(key, (0,))[0]
        base = customers.get(key, (0,))[0]
        due, on_time = tasks.get(key, (0, 0))
        rejects = rejected.get(key, (0,))[0]
        sent = feedback.get(key, (0,))[0]
        pilot = bool(s["pilot"])
        rows.append(
            [
                s["code"],
                s["name"],
                s["wave"] or "",
                "试点 pilot" if pilot else "",
                n_reps,
                _percent(active, n_reps * days),
                _percent(hit, base),
                _percent(on_time, due),
                rejects,
                sent,
            ]
        )
        for i, value in enumerate((n_reps, active, n_reps * days, hit, base, on_time, due, rejects, sent)):
            groups[pilot][i] += value
    for pilot, label in ((True, PILOT_LABEL), (False, OTHER_LABEL)):
        n_reps, active, possible, hit, base, on_time, due, rejects, sent = groups[pilot]
        rows.append(
            [
                "",
                label,
                "",
                "试点 pilot" if pilot else "",
                n_reps,
                _percent(active, possible),
                _percent(hit, base),
                _percent(on_time, due),
                rejects,
                sent,
            ]
        )
    return Table(
        report="adoption",
        title_zh="推广使用情况",
        title_en="Adoption",
        columns=ADOPTION_COLUMNS,
        rows=rows,
        drill=[None] * len(rows),
        filters=f.described(),
        notes_zh="日活导购：每天有同步记录的导购占比（按期内天数平均）；触达：期内员工记录互动或完成任务的客户占比；"
        "按时：期内已到期任务中按时完成的占比。最后两行为试点门店与其他门店的加权合计。",
        notes_en="Active reps: the share of reps who synced each day, averaged over the period's days; cards touched: "
        "customers with an interaction logged by staff or a task done in the period; on time: tasks due in the "
        "period (so far) done by their due time. The last two rows weigh the pilot stores and the others.",
        generated_at=now,
    )
