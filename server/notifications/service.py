"""Notifications: what makes them, in whose language, and when they may be pushed.

A notification is a record per (user, cause) — its id is uuid5 of both, so every producer can run
twice (a sweep after a restart, two leaders for a moment) and make nothing new. Records reach the
user's devices through sync (scope ``u:<user id>``): the message centre works offline and a
connected app sees a new one within the live-poke delay.

Producers, all set-based:
- **the feed**: each store's change order read from where it stopped (versions follow commit
  order, so a row committed late is never skipped): tasks given to a user by someone else or by a
  rule, and what happens to followed customers — a new order, a new complaint, a deal moved by
  someone else;
- **due tasks**: a task whose due time has come (a snooze makes a new due time, a new cause);
- **reassignment** and **nudges**, written by the command that does them.

Push (the system tray) is decided per record by :func:`plan_pushes`: opted-out kinds are muted,
quiet hours hold, a daily budget sends the rest as a digest, critical kinds bypass all three. A store
whose push feature is switched off (roll-out) gets no push at all; its records stay in the message centre.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from server import db
from server.notifications.tables import FeedCursor, Notification
from server.sync.service import allocate_versions, current_version, store_scope
from shared.features import PUSH
from shared.ids import uuid5_for
from shared.sync import CRITICAL_KINDS, user_scope

DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_PREFS = {"quiet_start": "22:00", "quiet_end": "08:00", "daily_budget": 20, "muted_kinds": [], "language": ""}
FEED_LOOKBACK = dt.timedelta(days=1)  # older rows in the feed (an import of history) notify nobody
DUE_LOOKBACK = dt.timedelta(hours=2)  # a due time further back than this (a long outage) is not pushed late
DUE_AT_CREATION = dt.timedelta(minutes=5)  # a task due when made is told once, by its "new task" notice
DIGEST_EVERY = dt.timedelta(hours=3)  # at most one digest per user in this time
DIGEST_WAIT = dt.timedelta(minutes=30)  # the oldest waiting item waits this long before a digest goes

# (zh, en) per kind: title and body templates (str.format with the values the producer gives).
TEXTS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "task_assigned": (("新任务：{task}", "{by}分配给你 · {due}"), ("New task: {task}", "From {by} · due {due}")),
    "reminder": (("提醒：{task}", "{customer} · {due}"), ("Reminder: {task}", "{customer} · due {due}")),
    "complaint_sla": (
        ("投诉超时：{task}", "{customer} · 请立即处理"),
        ("Complaint SLA: {task}", "{customer} · act now"),
    ),
    "task_due": (("到期：{task}", "{customer} · {due}"), ("Due: {task}", "{customer} · {due}")),
    "nudge": (("{by}提醒你跟进：{task}", "{customer} · {due}"), ("{by} asks you to follow up: {task}", "{customer}")),
    "order": (("新订单：{customer}", "{channel} · ¥{amount}"), ("New order: {customer}", "{channel_en} · ¥{amount}")),
    "complaint": (("新投诉：{customer}", "{category} · {description}"), ("New complaint: {customer}", "{description}")),
    "stage_moved": (
        ("商机推进：{customer}", "{opportunity} → {stage}（{by}）"),
        ("Deal moved: {customer}", "{opportunity} → {stage_en} ({by})"),
    ),
    "reassigned": (("客户已分配给你：{customer}", "由{by}分配"), ("Customer assigned to you: {customer}", "By {by}")),
    "reassigned_away": (("客户已转给{to}：{customer}", "由{by}转交"), ("{customer} now belongs to {to}", "By {by}")),
    "digest": (("还有{n}条提醒", "{titles}"), ("{n} more notifications", "{titles}")),
}
CHANNELS = {"store": ("门店", "store"), "online": ("网店", "online shop"), "mini_program": ("小程序", "mini-program")}


@dataclasses.dataclass
class Draft:
    """A notification to make: who, why (the cause is unique per user), and what it says."""

    user_id: str
    cause: str
    kind: str
    values: dict[str, Any]
    store_id: str | None = None
    customer_id: str | None = None
    opportunity_id: str | None = None
    task_id: str | None = None
    link: str = ""
    critical: bool = False
    created_at: dt.datetime | None = None


def notification_id(user_id: object, cause: str) -> uuid.UUID:
    return uuid5_for("notification", user_id, cause)


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(kind: str, values: dict[str, Any], language: str) -> tuple[str, str]:
    zh, en = TEXTS[kind]
    title, body = en if language.startswith("en") else zh
    filled = _Blank({k: ("" if v is None else v) for k, v in values.items()})
    return title.format_map(filled)[:200], body.format_map(filled).strip(" ·")[:1000]


# --- who wants to hear, in which language, in which time zone --------------------------------------


@dataclasses.dataclass
class Person:
    id: str
    language: str
    zone: str
    prefs: dict[str, Any]
    push: bool = True  # the store's push feature (off: the message centre only, nothing to the tray)


async def people(user_ids: Iterable[str]) -> dict[str, Person]:
    ids = sorted({str(u) for u in user_ids if u})
    if not ids:
        return {}
    marks = ", ".join("{}" for _ in ids)
    rows = await Notification.raw(
        "SELECT u.id, u.language, s.time_zone, p.quiet_start, p.quiet_end, p.daily_budget, p.muted_kinds, "
        "p.language AS chosen, f.enabled AS push FROM users u LEFT JOIN stores s ON s.id = u.store_id "
        "LEFT JOIN notification_prefs p ON p.user_id = u.id "
        "LEFT JOIN store_features f ON f.store_id = u.store_id AND f.feature = {} AND f.deleted = false "
        f"WHERE u.id IN ({marks})",
        PUSH,
        *[uuid.UUID(i) for i in ids],
    )
    out = {}
    for r in rows:
        prefs = dict(DEFAULT_PREFS)
        if r["quiet_start"] is not None:
            muted = r["muted_kinds"]
            prefs.update(
                quiet_start=r["quiet_start"],
                quiet_end=r["quiet_end"],
                daily_budget=int(r["daily_budget"]),
                muted_kinds=json.loads(muted) if isinstance(muted, str) else list(muted or []),
            )
        language = r["chosen"] or r["language"] or "zh-CN"
        push = r["push"] is None or bool(r["push"])
        out[str(r["id"])] = Person(str(r["id"]), language, r["time_zone"] or DEFAULT_ZONE, prefs, push)
    return out


# --- writing -----------------------------------------------------------------------------------------

_COLUMNS = (
    "id",
    "version",
    "deleted",
    "updated_at",
    "user_id",
    "store_id",
    "kind",
    "cause",
    "title",
    "body",
    "customer_id",
    "opportunity_id",
    "task_id",
    "link",
    "critical",
    "created_at",
    "read_at",
    "push_state",
    "deliver_after",
    "pushed_at",
    "digest_id",
)


def _uuid(value: object) -> uuid.UUID | None:
    return None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def write(drafts: Sequence[Draft], now: dt.datetime, *, push_state: str = "pending") -> list[uuid.UUID]:
    """Make the notifications not made yet (inside the caller's transaction); their ids."""
    unique: dict[uuid.UUID, Draft] = {}
    for d in drafts:
        unique.setdefault(notification_id(d.user_id, d.cause), d)
    if not unique:
        return []
    ids = list(unique)
    existing: set[uuid.UUID] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("{}" for _ in chunk)
        rows = await Notification.raw(f"SELECT id FROM notifications WHERE id IN ({marks})", *chunk)
        existing |= {_uuid(r["id"]) for r in rows}
    fresh = [(i, d) for i, d in unique.items() if i not in existing]
    if not fresh:
        return []
    who = await people(d.user_id for _, d in fresh)
    by_user: dict[str, list[tuple[uuid.UUID, Draft]]] = {}
    for i, d in fresh:
        if d.user_id in who:
            by_user.setdefault(d.user_id, []).append((i, d))
    made = []
    for user_id, items in by_user.items():
        last = await allocate_versions(user_scope(user_id), len(items))
        first = last - len(items) + 1
        language = who[user_id].language
        rows = []
        for n, (ident, d) in enumerate(items):
            title, body = render(d.kind, d.values, language)
            rows.append(
                (
                    ident,
                    first + n,
                    False,
                    now,
                    uuid.UUID(user_id),
                    _uuid(d.store_id),
                    d.kind,
                    d.cause[:200],
                    title,
                    body,
                    _uuid(d.customer_id),
                    _uuid(d.opportunity_id),
                    _uuid(d.task_id),
                    d.link,
                    d.critical or d.kind in CRITICAL_KINDS,
                    d.created_at or now,
                    None,
                    push_state,
                    None,
                    None,
                    None,
                )
            )
            made.append(ident)
        await db.insert_many("notifications", _COLUMNS, rows, on_conflict="id")
    return made


async def mark_read(
    *,
    user_id: uuid.UUID,
    ids: Sequence[uuid.UUID] | None = None,
    upto: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Mark the user's unread notifications read (these ``ids``, or all made up to ``upto``), inside
    the caller's transaction; how many changed. Each changed row moves in the user's change order."""
    now = now or dt.datetime.now(dt.UTC)
    params: list[Any] = [user_id]
    where = "user_id = {} AND read_at IS NULL AND deleted = false"
    if ids is not None:
        if not ids:
            return 0
        where += f" AND id IN ({', '.join('{}' for _ in ids)})"
        params += list(ids)
    if upto is not None:
        where += " AND created_at <= {}"
        params.append(upto)
    rows = await Notification.raw(f"SELECT id FROM notifications WHERE {where} ORDER BY created_at, id", *params)
    if not rows:
        return 0
    last = await allocate_versions(user_scope(user_id), len(rows))
    first = last - len(rows) + 1
    for n, r in enumerate(rows):
        await Notification.raw(
            "UPDATE notifications SET read_at = {}, version = {}, updated_at = {} WHERE id = {}",
            now,
            first + n,
            now,
            r["id"],
        )
    return len(rows)


# --- the feed: each store's change order since the last look ------------------------------------


def _dt(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _local(moment: dt.datetime | None, zone: str) -> str:
    return "" if moment is None else moment.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M")


async def _followers(customer_ids: Sequence[str]) -> dict[str, set[str]]:
    """customer → the users following it: its owner (unless they unfollowed) and explicit followers."""
    if not customer_ids:
        return {}
    out: dict[str, set[str]] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = [uuid.UUID(c) for c in customer_ids[start : start + 500]]
        marks = ", ".join("{}" for _ in chunk)
        for r in await Notification.raw(
            f"SELECT id, owner_id FROM customers WHERE id IN ({marks}) AND owner_id IS NOT NULL", *chunk
        ):
            out.setdefault(str(r["id"]), set()).add(str(r["owner_id"]))
        for r in await Notification.raw(
            f"SELECT customer_id, user_id, following FROM customer_follows WHERE customer_id IN ({marks}) "
            "AND deleted = false",
            *chunk,
        ):
            followers = out.setdefault(str(r["customer_id"]), set())
            if r["following"]:
                followers.add(str(r["user_id"]))
            else:
                followers.discard(str(r["user_id"]))
    return out


def _task_kind(row: dict[str, Any]) -> str | None:
    """What a new task tells its owner, or None (made by the owner themselves)."""
    key = row.get("dedupe_key") or ""
    if key.startswith(("complaint_history:", "complaint_solution:")):
        return "complaint_sla"
    if key.startswith("nudge:"):
        return "nudge"
    if row["source"] in ("rule", "reminder"):
        return "reminder"
    if row["created_by_id"] is not None and str(row["created_by_id"]) != str(row["owner_id"]):
        return "task_assigned"
    return None


async def _names(table: str, ids: Iterable[Any], column: str = "name") -> dict[str, Any]:
    wanted = sorted({str(i) for i in ids if i})
    out: dict[str, Any] = {}
    for start in range(0, len(wanted), 500):
        chunk = [uuid.UUID(i) for i in wanted[start : start + 500]]
        marks = ", ".join("{}" for _ in chunk)
        for r in await Notification.raw(f"SELECT id, {column} FROM {table} WHERE id IN ({marks})", *chunk):
            out[str(r["id"])] = r if "," in column else r[column]
    return out


async def _store_window(store_id: str, after: int, upto: int, now: dt.datetime) -> list[Draft]:
    """What the rows of one store numbered after < version <= upto tell whom."""
    since = now - FEED_LOOKBACK
    sid = uuid.UUID(store_id)
    zone = (await Notification.raw("SELECT time_zone FROM stores WHERE id = {}", sid) or [{}])[0].get("time_zone")
    zone = zone or DEFAULT_ZONE
    window = (sid, after, upto)
    scope = "store_id = {} AND version > {} AND version <= {} AND deleted = false"
    tasks = await Notification.raw(
        "SELECT id, owner_id, customer_id, opportunity_id, title, due_at, status, source, dedupe_key, created_by_id, "
        f"created_at FROM tasks WHERE {scope} AND owner_id IS NOT NULL AND status = 'open' AND created_at > {{}}",
        *window,
        since,
    )
    orders = await Notification.raw(
        f"SELECT id, customer_id, channel, amount, ordered_at FROM orders WHERE {scope} AND ordered_at > {{}}",
        *window,
        since,
    )
    complaints = await Notification.raw(
        f"SELECT id, customer_id, category, description, opened_at FROM complaints WHERE {scope} AND opened_at > {{}}",
        *window,
        since,
    )
    moves = await Notification.raw(
        "SELECT h.id, h.opportunity_id, h.stage_id, h.moved_by_id, h.entered_at, o.customer_id, o.title "
        "FROM stage_history h JOIN opportunities o ON o.id = h.opportunity_id "
        "WHERE h.store_id = {} AND h.version > {} AND h.version <= {} AND h.deleted = false "
        "AND h.moved_by_id IS NOT NULL AND h.entered_at > {} "
        # a move, not the deal's first stage (a new deal is not news of a move)
        "AND EXISTS (SELECT 1 FROM stage_history p WHERE p.opportunity_id = h.opportunity_id AND p.id <> h.id "
        "AND p.entered_at <= h.entered_at)",
        *window,
        since,
    )
    customers = await _names("customers", [r["customer_id"] for r in (*tasks, *orders, *complaints, *moves)])
    users = await _names(
        "users", [r["created_by_id"] for r in tasks] + [r["moved_by_id"] for r in moves], "display_name"
    )
    stages = await _names("pipeline_stages", [r["stage_id"] for r in moves], "name_zh, name_en")
    followers = await _followers(sorted({str(r["customer_id"]) for r in (*orders, *complaints, *moves)}))
    drafts: list[Draft] = []
    for r in tasks:
        kind = _task_kind(r)
        if kind is None:
            continue
        customer = customers.get(str(r["customer_id"]), "")
        drafts.append(
            Draft(
                user_id=str(r["owner_id"]),
                cause=f"task:{r['id']}",
                kind=kind,
                values={
                    "task": r["title"],
                    "customer": customer,
                    "by": users.get(str(r["created_by_id"]), ""),
                    "due": _local(_dt(r["due_at"]), zone),
                },
                store_id=store_id,
                customer_id=str(r["customer_id"]) if r["customer_id"] else None,
                opportunity_id=str(r["opportunity_id"]) if r["opportunity_id"] else None,
                task_id=str(r["id"]),
                link=f"/customers/{r['customer_id']}" if r["customer_id"] else "/",
            )
        )
    for r in orders:
        cid = str(r["customer_id"])
        zh, en = CHANNELS.get(r["channel"], (r["channel"], r["channel"]))
        amount = Decimal(str(r["amount"] or 0)).quantize(Decimal("1"))
        for user in followers.get(cid, ()):
            drafts.append(
                Draft(
                    user_id=user,
                    cause=f"order:{r['id']}",
                    kind="order",
                    values={"customer": customers.get(cid, ""), "channel": zh, "channel_en": en, "amount": amount},
                    store_id=store_id,
                    customer_id=cid,
                    link=f"/customers/{cid}",
                )
            )
    for r in complaints:
        cid = str(r["customer_id"])
        for user in followers.get(cid, ()):
            drafts.append(
                Draft(
                    user_id=user,
                    cause=f"complaint:{r['id']}",
                    kind="complaint",
                    values={
                        "customer": customers.get(cid, ""),
                        "category": r["category"] or "",
                        "description": (r["description"] or "")[:80],
                    },
                    store_id=store_id,
                    customer_id=cid,
                    link=f"/customers/{cid}",
                )
            )
    for r in moves:
        cid = str(r["customer_id"])
        stage = stages.get(str(r["stage_id"])) or {"name_zh": "", "name_en": ""}
        for user in followers.get(cid, ()):
            if user == str(r["moved_by_id"]):
                continue  # your own move tells you nothing
            drafts.append(
                Draft(
                    user_id=user,
                    cause=f"stage:{r['id']}",
                    kind="stage_moved",
                    values={
                        "customer": customers.get(cid, ""),
                        "opportunity": r["title"],
                        "stage": stage["name_zh"],
                        "stage_en": stage["name_en"],
                        "by": users.get(str(r["moved_by_id"]), ""),
                    },
                    store_id=store_id,
                    customer_id=cid,
                    opportunity_id=str(r["opportunity_id"]),
                    link=f"/opportunities/{r['opportunity_id']}",
                )
            )
    return drafts


async def feed(now: dt.datetime | None = None, *, stores: Sequence[uuid.UUID] | None = None) -> int:
    """Read every store's change order since the last look and notify; how many were made.
    A store seen for the first time starts at its current head (history notifies nobody)."""
    now = now or dt.datetime.now(dt.UTC)
    rows = await Notification.raw("SELECT id FROM stores WHERE deleted = false")
    wanted = {str(s) for s in stores} if stores is not None else None
    made = 0
    for r in rows:
        store_id = str(r["id"])
        if wanted is not None and store_id not in wanted:
            continue
        scope = store_scope(uuid.UUID(store_id))
        head = await current_version(scope)
        seen = await FeedCursor.select(FeedCursor.version).where(FeedCursor.scope == scope).first()
        if seen is None:
            await FeedCursor.raw(
                "INSERT INTO notification_feed_cursors (scope, version, updated_at) VALUES ({}, {}, {}) "
                "ON CONFLICT (scope) DO NOTHING",
                scope,
                head,
                now,
            )
            continue
        after = int(seen["version"])
        if head <= after:
            continue
        async with db.transaction():
            drafts = await _store_window(store_id, after, head, now)
            made += len(await write(drafts, now))
            await FeedCursor.raw(
                "UPDATE notification_feed_cursors SET version = {}, updated_at = {} WHERE scope = {} AND version = {}",
                head,
                now,
                scope,
                after,
            )
    return made


async def due(now: dt.datetime | None = None, *, stores: Sequence[uuid.UUID] | None = None) -> int:
    """Tell owners of open tasks whose due time has come (within DUE_LOOKBACK), once per due time
    (``stores``: only these)."""
    now = now or dt.datetime.now(dt.UTC)
    only = ""
    if stores is not None:
        only = f" AND t.store_id IN ({', '.join('{}' for _ in stores)})" if stores else " AND 1=0"
    rows = await Notification.raw(
        "SELECT t.id, t.owner_id, t.store_id, t.customer_id, t.opportunity_id, t.title, t.due_at, t.created_at, "
        "c.name AS customer, s.time_zone FROM tasks t LEFT JOIN customers c ON c.id = t.customer_id "
        "JOIN stores s ON s.id = t.store_id "
        "WHERE t.status = 'open' AND t.deleted = false AND t.owner_id IS NOT NULL AND t.due_at <= {} AND t.due_at > {}"
        f"{only} LIMIT 5000",
        now,
        now - DUE_LOOKBACK,
        *(stores or []),
    )
    drafts = []
    for r in rows:
        due_at, created = _dt(r["due_at"]), _dt(r["created_at"])
        if due_at is None or (created is not None and due_at <= created + DUE_AT_CREATION):
            continue
        drafts.append(
            Draft(
                user_id=str(r["owner_id"]),
                cause=f"due:{r['id']}:{int(due_at.timestamp())}",
                kind="task_due",
                values={"task": r["title"], "customer": r["customer"] or "", "due": _local(due_at, r["time_zone"])},
                store_id=str(r["store_id"]),
                customer_id=str(r["customer_id"]) if r["customer_id"] else None,
                opportunity_id=str(r["opportunity_id"]) if r["opportunity_id"] else None,
                task_id=str(r["id"]),
                link=f"/customers/{r['customer_id']}" if r["customer_id"] else "/",
                created_at=due_at,
            )
        )
    if not drafts:
        return 0
    async with db.transaction():
        return len(await write(drafts, now))


# --- push: respect the person -------------------------------------------------------------------------


def _minutes(text: str) -> int | None:
    if not text:
        return None
    hours, _, minutes = text.partition(":")
    return int(hours) * 60 + int(minutes)


def quiet_until(prefs: dict[str, Any], zone: str, now: dt.datetime) -> dt.datetime | None:
    """When the quiet hours around ``now`` end (UTC), or None when ``now`` is not in them."""
    start, end = _minutes(prefs.get("quiet_start") or ""), _minutes(prefs.get("quiet_end") or "")
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(ZoneInfo(zone))
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    end_day = local.date() if minute < end else local.date() + dt.timedelta(days=1)
    ends = dt.datetime.combine(end_day, dt.time(end // 60, end % 60), ZoneInfo(zone))
    return ends.astimezone(dt.UTC)


def day_start(zone: str, now: dt.datetime) -> dt.datetime:
    local = now.astimezone(ZoneInfo(zone))
    return dt.datetime.combine(local.date(), dt.time(0), ZoneInfo(zone)).astimezone(dt.UTC)


@dataclasses.dataclass
class PushPlan:
    pushed: int = 0
    held: int = 0
    digest: int = 0
    muted: int = 0
    digests: int = 0
    no_device: int = 0
    off: int = 0  # the user's store has switched push off


async def _active_subscriptions(user_ids: Iterable[str]) -> dict[str, list[str]]:
    ids = sorted({str(u) for u in user_ids})
    out: dict[str, list[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = [uuid.UUID(i) for i in ids[start : start + 500]]
        marks = ", ".join("{}" for _ in chunk)
        for r in await Notification.raw(
            f"SELECT id, user_id FROM push_subscriptions WHERE user_id IN ({marks}) AND removed_at IS NULL", *chunk
        ):
            out.setdefault(str(r["user_id"]), []).append(str(r["id"]))
    return out


async def _queue(notification: uuid.UUID, subscriptions: list[str], now: dt.datetime) -> None:
    rows = [(notification, uuid.UUID(s), "queued", 0, now, now) for s in subscriptions]
    await db.insert_many(
        "push_sends",
        ("notification_id", "subscription_id", "state", "attempts", "next_attempt_at", "created_at"),
        rows,
    )


async def _set_state(ident: Any, state: str, now: dt.datetime, **extra: Any) -> None:
    sets = ["push_state = {}"]
    params: list[Any] = [state]
    for column, value in extra.items():
        sets.append(f"{column} = {{}}")
        params.append(value)
    await Notification.raw(f"UPDATE notifications SET {', '.join(sets)} WHERE id = {{}}", *params, ident)


async def plan_pushes(now: dt.datetime | None = None, *, limit: int = 2000) -> PushPlan:
    """Decide the push of every notification waiting for it (new, or held and now free), and make
    the digests that are due. One transaction per user, so a crash leaves each user all or nothing."""
    now = now or dt.datetime.now(dt.UTC)
    waiting = await Notification.raw(
        "SELECT id, user_id, kind, critical, created_at, push_state FROM notifications WHERE "
        "(push_state = 'pending' OR (push_state = 'held' AND deliver_after <= {})) AND deleted = false "
        "ORDER BY created_at, id LIMIT {}",
        now,
        limit,
    )
    digest_users = {
        str(r["user_id"])
        for r in await Notification.raw(
            "SELECT DISTINCT user_id FROM notifications WHERE push_state = 'digest' AND deleted = false"
        )
    }
    by_user: dict[str, list[dict]] = {}
    for r in waiting:
        by_user.setdefault(str(r["user_id"]), []).append(r)
    users = set(by_user) | digest_users
    who = await people(users)
    devices = await _active_subscriptions(users)
    plan = PushPlan()
    for user_id in sorted(users):
        person = who.get(user_id)
        if person is None:
            continue
        async with db.transaction():
            await _plan_user(person, by_user.get(user_id, []), devices.get(user_id, []), now, plan)
    return plan


async def _plan_user(person: Person, rows: list[dict], devices: list[str], now: dt.datetime, plan: PushPlan) -> None:
    if not person.push:  # switched off for the store (critical ones too): the records stay in the message centre
        for r in rows:
            await _set_state(r["id"], "off", now)
            plan.off += 1
        return
    prefs, zone = person.prefs, person.zone
    quiet = quiet_until(prefs, zone, now)
    today = day_start(zone, now)
    counted = await Notification.raw(
        "SELECT count(*) AS n FROM notifications WHERE user_id = {} AND pushed_at >= {} AND critical = false",
        uuid.UUID(person.id),
        today,
    )
    pushed_today = int(counted[0]["n"])
    budget = int(prefs.get("daily_budget", DEFAULT_PREFS["daily_budget"]))
    muted = set(prefs.get("muted_kinds") or [])
    for r in rows:
        critical = bool(r["critical"])
        if not devices:
            await _set_state(r["id"], "none", now)
            plan.no_device += 1
        elif critical:
            await _set_state(r["id"], "sent", now, pushed_at=now)
            await _queue(r["id"], devices, now)
            plan.pushed += 1
        elif r["kind"] in muted:
            await _set_state(r["id"], "muted", now)
            plan.muted += 1
        elif quiet is not None:
            await _set_state(r["id"], "held", now, deliver_after=quiet)
            plan.held += 1
        elif pushed_today < budget:
            await _set_state(r["id"], "sent", now, pushed_at=now)
            await _queue(r["id"], devices, now)
            pushed_today += 1
            plan.pushed += 1
        else:
            await _set_state(r["id"], "digest", now)
            plan.digest += 1
    if quiet is None and devices:
        await _digest(person, devices, now, plan)


async def _digest(person: Person, devices: list[str], now: dt.datetime, plan: PushPlan) -> None:
    """One push for what the budget held back: when the oldest has waited DIGEST_WAIT and no
    digest went out in the last DIGEST_EVERY."""
    uid = uuid.UUID(person.id)
    rows = await Notification.raw(
        "SELECT id, title, created_at, store_id FROM notifications WHERE user_id = {} AND push_state = 'digest' "
        "AND deleted = false ORDER BY created_at, id",
        uid,
    )
    if not rows or _dt(rows[0]["created_at"]) > now - DIGEST_WAIT:
        return
    recent = await Notification.raw(
        "SELECT 1 AS x FROM notifications WHERE user_id = {} AND kind = 'digest' AND created_at > {}",
        uid,
        now - DIGEST_EVERY,
    )
    if recent:
        return
    titles = "；".join(r["title"] for r in rows[:3]) + ("…" if len(rows) > 3 else "")
    draft = Draft(
        user_id=person.id,
        cause=f"digest:{rows[0]['id']}",
        kind="digest",
        values={"n": len(rows), "titles": titles},
        link="/messages",
    )
    made = await write([draft], now, push_state="sent")
    if not made:
        return
    digest = made[0]
    await Notification.raw("UPDATE notifications SET pushed_at = {} WHERE id = {}", now, digest)
    await _queue(digest, devices, now)
    ids = [r["id"] for r in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        await Notification.raw(
            f"UPDATE notifications SET push_state = 'digested', digest_id = {{}} "
            f"WHERE id IN ({', '.join('{}' for _ in chunk)})",
            digest,
            *chunk,
        )
    plan.digests += 1


# --- what a user does: follow, preferences, devices --------------------------------------------------


async def set_follow(
    *,
    caller: Any,
    customer_id: uuid.UUID,
    following: bool,
    ident: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> uuid.UUID:
    """Follow (or stop following) a customer in the caller's scope; one row per (user, customer)."""
    from server.auth.scope import load_in_scope
    from server.customers.tables import Customer
    from server.errors import Invalid
    from shared.sync import follow_id

    now = now or dt.datetime.now(dt.UTC)
    expected = follow_id(caller.user_id, customer_id)
    if ident is not None and ident != expected:
        raise Invalid(f"follow_id must be follow_id(user, customer) = {expected}", field="follow_id")
    row = await load_in_scope(
        caller=caller,
        table=Customer,
        select="SELECT c.store_id FROM customers c",
        alias="c",
        ident=customer_id,
        what="customer",
    )
    version = await allocate_versions(user_scope(caller.user_id))
    await Notification.raw(
        "INSERT INTO customer_follows (id, version, deleted, updated_at, user_id, customer_id, store_id, following, "
        "created_at) VALUES ({}, {}, false, {}, {}, {}, {}, {}, {}) ON CONFLICT (id) DO UPDATE SET deleted = false, "
        "following = excluded.following, version = excluded.version, updated_at = excluded.updated_at",
        expected,
        version,
        now,
        caller.user_id,
        customer_id,
        row["store_id"],
        following,
        now,
    )
    return expected


async def update_prefs(*, caller: Any, values: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """Change the caller's push preferences (only the fields given); the whole row after."""
    from shared.sync import prefs_id

    now = now or dt.datetime.now(dt.UTC)
    current = (await people([str(caller.user_id)])).get(str(caller.user_id))
    merged = {**DEFAULT_PREFS, **(current.prefs if current else {})}
    merged["language"] = current.language if current else "zh-CN"
    merged.update(values)
    version = await allocate_versions(user_scope(caller.user_id))
    await Notification.raw(
        "INSERT INTO notification_prefs (id, version, deleted, updated_at, user_id, quiet_start, quiet_end, "
        "daily_budget, muted_kinds, language) VALUES ({}, {}, false, {}, {}, {}, {}, {}, {}, {}) "
        "ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at, "
        "quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end, daily_budget = excluded.daily_budget, "
        "muted_kinds = excluded.muted_kinds, language = excluded.language",
        prefs_id(caller.user_id),
        version,
        now,
        caller.user_id,
        merged["quiet_start"],
        merged["quiet_end"],
        int(merged["daily_budget"]),
        json.dumps(sorted(set(merged["muted_kinds"]))),
        merged["language"],
    )
    if "language" in values:
        await Notification.raw("UPDATE users SET language = {} WHERE id = {}", merged["language"], caller.user_id)
    return merged


async def subscribe(
    *,
    caller: Any,
    channel: str,
    address: str,
    p256dh: str = "",
    auth: str = "",
    label: str = "",
    now: dt.datetime | None = None,
) -> uuid.UUID:
    """Register a browser's Web Push subscription or an app's FCM token for the caller. The same
    endpoint/token again (a browser re-subscribing, or handed to another user) is taken over."""
    from shared.ids import uuid7

    now = now or dt.datetime.now(dt.UTC)
    existing = await Notification.raw("SELECT id FROM push_subscriptions WHERE address = {}", address)
    if existing:
        ident = _uuid(existing[0]["id"])
        await Notification.raw(
            "UPDATE push_subscriptions SET user_id = {}, channel = {}, p256dh = {}, auth = {}, label = {}, "
            "removed_at = NULL, removed_reason = '' WHERE id = {}",
            caller.user_id,
            channel,
            p256dh,
            auth,
            label,
            ident,
        )
        return ident
    ident = uuid7()
    await Notification.raw(
        "INSERT INTO push_subscriptions (id, user_id, channel, address, p256dh, auth, label, created_at, "
        "removed_reason) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, '')",
        ident,
        caller.user_id,
        channel,
        address,
        p256dh,
        auth,
        label,
        now,
    )
    return ident


async def unsubscribe(*, caller: Any, subscription_id: uuid.UUID, now: dt.datetime | None = None) -> None:
    from server.errors import NotFound
    from server.notifications.dispatch import remove_subscription

    rows = await Notification.raw(
        "SELECT id FROM push_subscriptions WHERE id = {} AND user_id = {} AND removed_at IS NULL",
        subscription_id,
        caller.user_id,
    )
    if not rows:
        raise NotFound(f"push subscription {subscription_id} not found")
    await remove_subscription(subscription_id, "unsubscribed by the user", now or dt.datetime.now(dt.UTC))


async def subscriptions(*, caller: Any) -> list[dict[str, Any]]:
    return await Notification.raw(
        "SELECT id, channel, label, created_at, last_sent_at FROM push_subscriptions WHERE user_id = {} "
        "AND removed_at IS NULL ORDER BY created_at",
        caller.user_id,
    )


async def listing(
    *, caller: Any, unread: bool = False, limit: int = 50, before: dt.datetime | None = None
) -> list[dict[str, Any]]:
    params: list[Any] = [caller.user_id]
    where = "user_id = {} AND deleted = false"
    if unread:
        where += " AND read_at IS NULL"
    if before is not None:
        where += " AND created_at < {}"
        params.append(before)
    params.append(limit)
    return await Notification.raw(
        "SELECT id, kind, title, body, link, customer_id, opportunity_id, task_id, critical, created_at, read_at "
        f"FROM notifications WHERE {where} ORDER BY created_at DESC, id DESC LIMIT {{}}",
        *params,
    )
