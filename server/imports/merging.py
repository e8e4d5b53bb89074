"""Merging two customers into one, and undoing it.

A merge keeps the survivor's row and everything of both:

- every child row of the merged-away customer (phones, tags, channel identities, orders,
  interactions, complaints, opportunities, tasks, the conflict log) moves to the survivor; a phone
  or tag the survivor already has is retired (a tombstone) rather than doubled. A moved rule task
  whose dedupe key names the merged-away customer (and any of its tombstoned ones) is re-keyed to
  the survivor, so the rules see their own work on the survivor and make nothing twice;
- the survivor's empty fields take the other's values, and so does a name that is empty or a
  placeholder (what the import cleaning rejects as a name, or the orders import's "待补充姓名");
- follows (``customer_follows``, one row per user and customer, keyed ``follow_id(user,
  customer)``, synced to the user's own devices): whoever followed either follows the survivor —
  the merged-away customer's rows become tombstones and the survivor's row of that user is made
  (or switched on) where they did not follow it yet, the merged-away customer's owner included,
  who followed it without a row;
- open review pairs (``merge_candidates``): a pair of these two is closed as ``merged``; a pair
  with a third customer is re-pointed at the survivor, or closed as ``superseded`` when the
  survivor and that customer are already a pair;
- aliases that pointed at the merged-away customer now point at the survivor (A→B, then B→C).

The merged-away customer becomes a tombstone and an alias row (synced) tells phones that its id now
means the survivor. Every touched synced row takes a new version, in the store's change order (the
user's own order for follows), so devices receive the merge with their next pull. Notifications
that name the merged-away customer are left as they were: they are what happened, and their
customer id resolves to the survivor through the alias on the server and on the phone.

The merge row records who or what decided, the score and reasons, and exactly what moved, was
retired, filled, re-keyed, re-pointed and closed, so :func:`undo` puts each row back as it was
(only versions and ``updated_at`` move on: they are the change order itself). What someone changed
since the merge is kept (a filled field edited, a follow switched, a pair decided). A follow row
that the merge made is a tombstone after the undo, like the alias: devices must be told to drop it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Iterator
from typing import Any

from server import db
from server.errors import Conflict, NotFound
from server.imports import cleaning
from server.imports.tables import CustomerMerge
from server.sync.service import allocate_versions, store_scope
from shared.ids import uuid7
from shared.sync import follow_id, user_scope

# Child tables whose rows follow their customer.
CHILDREN = (
    "customer_phones",
    "customer_tags",
    "customer_identities",
    "orders",
    "interactions",
    "complaints",
    "opportunities",
    "tasks",
    "sync_conflicts",
)
FILLABLE = ("gender", "birthday", "email", "province", "city", "district", "address")
# Names that stand for "no name yet" beyond what the import cleaning rejects: the orders import
# names a customer it could not find by phone this way until a person completes the card.
PLACEHOLDER_NAMES = frozenset({"待补充姓名"})


def _blank(value: Any) -> bool:
    return value is None or value == ""


@functools.lru_cache(maxsize=1 << 16)
def nameless(name: Any) -> bool:
    """Whether a customer's name is no real name: empty, a placeholder ("待补充姓名", 客户, 测试,
    "无", a phone number …) — what the import cleaning would refuse as a name. (Cached: an import
    asks it of every customer it loads.)"""
    text = cleaning.clean_text(name)
    if not text or text in PLACEHOLDER_NAMES:
        return True
    try:
        cleaning.clean_name(text)
    except cleaning.Rejected:
        return True
    return False


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))


async def _customer(ident: uuid.UUID, *, lock: bool) -> dict[str, Any]:
    sql = "SELECT * FROM customers WHERE id = {}"
    if lock and db.is_postgres():
        sql += " FOR UPDATE"
    rows = await CustomerMerge.raw(sql, ident)
    if not rows:
        raise NotFound(f"customer {ident} not found")
    return rows[0]


async def merge(
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    *,
    decided_by: str,
    score: float = 1.0,
    reasons: list[str] | tuple[str, ...] = (),
    now: dt.datetime | None = None,
) -> uuid.UUID:
    """Fold ``merged_id`` into ``survivor_id`` (same store, both live); the merge's id. Runs in
    the caller's transaction when there is one, else in its own."""
    if survivor_id == merged_id:
        raise Conflict("a customer cannot be merged into itself", field="merged_id")
    now = now or dt.datetime.now(dt.UTC)
    async with db.transaction():
        survivor = await _customer(survivor_id, lock=True)
        merged = await _customer(merged_id, lock=True)
        for row in (survivor, merged):
            if row["deleted"]:
                raise Conflict(f"customer {row['id']} was already merged or deleted", field="merged_id")
        if str(survivor["store_id"]) != str(merged["store_id"]):
            raise Conflict("customers of different stores are not merged (move one first)", field="merged_id")
        store = uuid.UUID(str(survivor["store_id"]))
        merge_id = uuid7()
        moved: dict[str, list[str]] = {}
        retired: dict[str, list[str]] = {}
        for table in CHILDREN:
            rows = await CustomerMerge.raw(
                f"SELECT id FROM {table} WHERE customer_id = {{}} AND deleted = false", merged_id
            )
            moved[table] = [str(r["id"]) for r in rows]
        # A phone or tag both have: the survivor's stays, the other's is retired (not doubled).
        for table, column in (("customer_phones", "digits"), ("customer_tags", "tag")):
            dup = await CustomerMerge.raw(
                f"SELECT m.id FROM {table} m WHERE m.customer_id = {{}} AND m.deleted = false AND EXISTS (SELECT 1 "
                f"FROM {table} s WHERE s.customer_id = {{}} AND s.deleted = false AND s.{column} = m.{column})",
                merged_id,
                survivor_id,
            )
            retired[table] = [str(r["id"]) for r in dup]
            moved[table] = [i for i in moved[table] if i not in set(retired[table])]
        filled = {f: _iso(survivor[f]) for f in FILLABLE if _blank(survivor[f]) and not _blank(merged[f])}
        if nameless(survivor["name"]) and not nameless(merged["name"]):
            filled = {"name": survivor["name"], **filled}
        versions = await _versions(store, moved, retired)
        await _move_children(moved, survivor_id, versions, now)
        await _set_deleted(retired, True, versions, now)
        rekeyed = await _rekey_tasks(merged_id, survivor_id)
        sets = ", ".join(f"{f} = {{}}" for f in filled)
        await CustomerMerge.raw(
            f"UPDATE customers SET {sets + ', ' if sets else ''}version = {{}}, updated_at = {{}} WHERE id = {{}}",
            *[merged[f] for f in filled],
            next(versions),
            now,
            survivor_id,
        )
        await CustomerMerge.raw(
            "UPDATE customers SET deleted = true, version = {}, updated_at = {} WHERE id = {}",
            next(versions),
            now,
            merged_id,
        )
        await CustomerMerge.raw(
            "INSERT INTO customer_aliases (id, version, deleted, updated_at, store_id, survivor_id, merge_id) "
            "VALUES ({}, {}, false, {}, {}, {}, {}) ON CONFLICT (id) DO UPDATE SET deleted = false, "
            "version = excluded.version, updated_at = excluded.updated_at, survivor_id = excluded.survivor_id, "
            "merge_id = excluded.merge_id",
            merged_id,
            next(versions),
            now,
            store,
            survivor_id,
            merge_id,
        )
        # Aliases that pointed at the merged-away customer now point at the survivor (A→B, then B→C).
        aliases = [
            str(r["id"])
            for r in await CustomerMerge.raw(
                "SELECT id FROM customer_aliases WHERE survivor_id = {} AND deleted = false", merged_id
            )
        ]
        await _point_aliases(store, aliases, survivor_id, now)
        follows = await _merge_follows(survivor, merged, now)
        candidates = await _close_candidates(survivor_id, merged_id, merge_id, now)
        snapshot = {
            "moved": moved,
            "retired": retired,
            "filled": filled,
            "rekeyed": rekeyed,
            "aliases": aliases,
            "follows": follows,
            "candidates": candidates,
        }
        await CustomerMerge.raw(
            "INSERT INTO customer_merges (id, store_id, survivor_id, merged_id, score, reasons, decided_by, snapshot, "
            "created_at, undone_by) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, '')",
            merge_id,
            store,
            survivor_id,
            merged_id,
            float(score),
            json.dumps(list(reasons), ensure_ascii=False),
            decided_by,
            json.dumps(snapshot, ensure_ascii=False),
            now,
        )
    return merge_id


async def undo(merge_id: uuid.UUID, *, by: str, now: dt.datetime | None = None) -> None:
    """Put both customers back as they were before the merge."""
    now = now or dt.datetime.now(dt.UTC)
    async with db.transaction():
        sql = "SELECT * FROM customer_merges WHERE id = {}"
        if db.is_postgres():
            sql += " FOR UPDATE"
        rows = await CustomerMerge.raw(sql, merge_id)
        if not rows:
            raise NotFound(f"merge {merge_id} not found")
        row = rows[0]
        if row["undone_at"] is not None:
            raise Conflict(f"merge {merge_id} was already undone", field="merge_id")
        later = await CustomerMerge.raw(
            "SELECT id FROM customer_merges WHERE merged_id = {} AND undone_at IS NULL AND created_at > {}",
            row["survivor_id"],
            row["created_at"],
        )
        if later:
            raise Conflict("the survivor was merged into another customer since: undo that merge first")
        snapshot = row["snapshot"] if isinstance(row["snapshot"], dict) else json.loads(row["snapshot"])
        survivor_id, merged_id = uuid.UUID(str(row["survivor_id"])), uuid.UUID(str(row["merged_id"]))
        store = uuid.UUID(str(row["store_id"]))
        moved, retired, filled = snapshot["moved"], snapshot["retired"], snapshot["filled"]
        versions = await _versions(store, moved, retired)
        await _move_children(moved, merged_id, versions, now)
        await _set_deleted(retired, False, versions, now)
        await _unkey_tasks(merged_id, survivor_id, snapshot.get("rekeyed", {}))
        # The survivor's fields the merge filled go back to empty (unless someone changed them since).
        survivor = await _customer(survivor_id, lock=True)
        merged = await _customer(merged_id, lock=True)
        back = {f: old for f, old in filled.items() if _iso(survivor[f]) == _iso(merged[f])}
        sets = ", ".join(f"{f} = {{}}" for f in back)
        await CustomerMerge.raw(
            f"UPDATE customers SET {sets + ', ' if sets else ''}version = {{}}, updated_at = {{}} WHERE id = {{}}",
            *[_typed(f, v) for f, v in back.items()],
            next(versions),
            now,
            survivor_id,
        )
        await CustomerMerge.raw(
            "UPDATE customers SET deleted = false, version = {}, updated_at = {} WHERE id = {}",
            next(versions),
            now,
            merged_id,
        )
        await CustomerMerge.raw(
            "UPDATE customer_aliases SET deleted = true, version = {}, updated_at = {} WHERE id = {}",
            next(versions),
            now,
            merged_id,
        )
        # The aliases this merge sent on to the survivor point at the merged-away customer again.
        aliases = [
            str(r["id"])
            for r in await CustomerMerge.raw(
                "SELECT id FROM customer_aliases WHERE survivor_id = {} AND deleted = false", survivor_id
            )
            if str(r["id"]) in set(snapshot.get("aliases", ()))
        ]
        await _point_aliases(store, aliases, merged_id, now)
        await _undo_follows(snapshot.get("follows", {}), now)
        await _reopen_candidates(snapshot.get("candidates", []), survivor_id, merged_id, merge_id)
        await CustomerMerge.raw(
            "UPDATE customer_merges SET undone_at = {}, undone_by = {} WHERE id = {}", now, by, merge_id
        )


async def _versions(store: uuid.UUID, moved: dict, retired: dict) -> Iterator[int]:
    """Versions for every row a merge or its undo touches (children, both customers, the alias)."""
    touched = sum(len(v) for v in moved.values()) + sum(len(v) for v in retired.values()) + 3
    last = await allocate_versions(store_scope(store), touched)
    return iter(range(last - touched + 1, last + 1))


async def _move_children(moved: dict[str, list[str]], to: uuid.UUID, versions: Iterator[int], now: dt.datetime) -> None:
    for table, ids in moved.items():
        for ident in ids:
            await CustomerMerge.raw(
                f"UPDATE {table} SET customer_id = {{}}, version = {{}}, updated_at = {{}} WHERE id = {{}}",
                to,
                next(versions),
                now,
                uuid.UUID(ident),
            )


async def _set_deleted(rows: dict[str, list[str]], deleted: bool, versions: Iterator[int], now: dt.datetime) -> None:
    for table, ids in rows.items():
        for ident in ids:
            await CustomerMerge.raw(
                f"UPDATE {table} SET deleted = {{}}, version = {{}}, updated_at = {{}} WHERE id = {{}}",
                deleted,
                next(versions),
                now,
                uuid.UUID(ident),
            )


def _typed(field: str, value: Any) -> Any:
    if field == "birthday" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def _marks(ids: list[Any]) -> str:
    return ", ".join("{}" for _ in ids)


# --- rule tasks' dedupe keys ------------------------------------------------------------------------


async def _rekey_tasks(merged_id: uuid.UUID, survivor_id: uuid.UUID) -> dict[str, str]:
    """Rule tasks whose key names the merged-away customer (``vip_silent:<customer>:<period>``,
    ``browse_interest:<customer>:<category>:<event>`` …) take the survivor's id in the key: the
    rules look for their own work under the survivor's id, so the events and orders that moved
    must not make their tasks again. The moved tasks and the merged-away customer's tombstoned
    ones (a task someone removed stays removed). A key the survivor already has stays as it was
    (both tasks are kept). Not a synced column: no new version. The old keys, by task id."""
    old, new = str(merged_id), str(survivor_id)
    rows = await CustomerMerge.raw(
        "SELECT id, dedupe_key FROM tasks WHERE customer_id IN ({}, {}) AND dedupe_key LIKE {}",
        merged_id,
        survivor_id,
        f"%{old}%",
    )
    rekeyed: dict[str, str] = {}
    for r in rows:
        key = r["dedupe_key"]
        if old not in key:
            continue
        fresh = key.replace(old, new)
        if await CustomerMerge.raw("SELECT id FROM tasks WHERE dedupe_key = {}", fresh):
            continue
        await CustomerMerge.raw("UPDATE tasks SET dedupe_key = {} WHERE id = {}", fresh, r["id"])
        rekeyed[str(r["id"])] = key
    return rekeyed


async def _unkey_tasks(merged_id: uuid.UUID, survivor_id: uuid.UUID, rekeyed: dict[str, str]) -> None:
    for ident, key in rekeyed.items():
        fresh = key.replace(str(merged_id), str(survivor_id))
        await CustomerMerge.raw(
            "UPDATE tasks SET dedupe_key = {} WHERE id = {} AND dedupe_key = {}", key, uuid.UUID(ident), fresh
        )


# --- aliases ----------------------------------------------------------------------------------------------


async def _point_aliases(store: uuid.UUID, ids: list[str], to: uuid.UUID, now: dt.datetime) -> None:
    for ident in ids:
        version = await allocate_versions(store_scope(store))
        await CustomerMerge.raw(
            "UPDATE customer_aliases SET survivor_id = {}, version = {}, updated_at = {} WHERE id = {}",
            to,
            version,
            now,
            uuid.UUID(ident),
        )


# --- follows ------------------------------------------------------------------------------------------------


async def _merge_follows(survivor: dict[str, Any], merged: dict[str, Any], now: dt.datetime) -> dict[str, list]:
    """Whoever followed either customer follows the survivor. A user follows a customer they own
    unless their row says otherwise, and any other customer only by a row that says so (what
    :func:`server.notifications.service._followers` reads). The merged-away customer's rows become
    tombstones; a user who followed it but not the survivor gets the survivor's row —
    ``follow_id(user, survivor)``, the id devices and the server expect — made, or switched on
    (a tombstone revived, an unfollow turned round). Versions in each user's own change order
    (users in id order, so two merges lock their counters in the same order)."""
    survivor_id, merged_id = uuid.UUID(str(survivor["id"])), uuid.UUID(str(merged["id"]))
    mine = {
        str(r["user_id"]): r
        for r in await CustomerMerge.raw(
            "SELECT id, user_id, following, created_at FROM customer_follows WHERE customer_id = {} "
            "AND deleted = false",
            merged_id,
        )
    }
    theirs = {
        str(r["user_id"]): r
        for r in await CustomerMerge.raw(
            "SELECT id, user_id, following, deleted FROM customer_follows WHERE customer_id = {}", survivor_id
        )
    }
    owner_m, owner_s = _str(merged["owner_id"]), _str(survivor["owner_id"])
    retired: list[dict[str, str]] = []
    written: list[dict[str, Any]] = []
    for user in sorted(set(mine) | ({owner_m} if owner_m else set())):
        m, s = mine.get(user), theirs.get(user)
        follows_m = bool(m["following"]) if m else user == owner_m
        follows_s = bool(s["following"]) if s is not None and not s["deleted"] else user == owner_s
        make = follows_m and not follows_s
        count = (m is not None) + make
        if not count:
            continue
        last = await allocate_versions(user_scope(user), count)
        versions = iter(range(last - count + 1, last + 1))
        if m is not None:
            await CustomerMerge.raw(
                "UPDATE customer_follows SET deleted = true, version = {}, updated_at = {} WHERE id = {}",
                next(versions),
                now,
                m["id"],
            )
            retired.append({"id": str(m["id"]), "user": user})
        if not make:
            continue
        if s is None:
            ident = follow_id(user, survivor_id)
            await CustomerMerge.raw(
                "INSERT INTO customer_follows (id, version, deleted, updated_at, user_id, customer_id, store_id, "
                "following, created_at) VALUES ({}, {}, false, {}, {}, {}, {}, true, {})",
                ident,
                next(versions),
                now,
                uuid.UUID(user),
                survivor_id,
                uuid.UUID(str(survivor["store_id"])),
                m["created_at"] if m is not None else now,
            )
            written.append({"id": str(ident), "user": user, "before": None})
        else:
            await CustomerMerge.raw(
                "UPDATE customer_follows SET following = true, deleted = false, version = {}, updated_at = {} "
                "WHERE id = {}",
                next(versions),
                now,
                s["id"],
            )
            before = {"following": bool(s["following"]), "deleted": bool(s["deleted"])}
            written.append({"id": str(s["id"]), "user": user, "before": before})
    return {"retired": retired, "written": written}


async def _undo_follows(follows: dict[str, list], now: dt.datetime) -> None:
    """The merged-away customer's rows come back; the survivor's rows the merge made become
    tombstones (devices drop them), those it switched on go back — unless the user has changed
    them since."""
    work: dict[str, list[tuple[str, bool, bool | None]]] = {}  # user → (row id, deleted, following)
    for r in follows.get("retired", ()):
        work.setdefault(r["user"], []).append((r["id"], False, None))
    for r in follows.get("written", ()):
        rows = await CustomerMerge.raw(
            "SELECT following, deleted FROM customer_follows WHERE id = {}", uuid.UUID(r["id"])
        )
        if not rows or not rows[0]["following"] or rows[0]["deleted"]:
            continue  # switched since: the user's word stands
        before = r["before"]
        if before is None:  # made by the merge
            work.setdefault(r["user"], []).append((r["id"], True, None))
        else:
            work.setdefault(r["user"], []).append((r["id"], bool(before["deleted"]), bool(before["following"])))
    for user in sorted(work):
        last = await allocate_versions(user_scope(user), len(work[user]))
        versions = iter(range(last - len(work[user]) + 1, last + 1))
        for ident, deleted, following in work[user]:
            if following is None:
                await CustomerMerge.raw(
                    "UPDATE customer_follows SET deleted = {}, version = {}, updated_at = {} WHERE id = {}",
                    deleted,
                    next(versions),
                    now,
                    uuid.UUID(ident),
                )
            else:
                await CustomerMerge.raw(
                    "UPDATE customer_follows SET deleted = {}, following = {}, version = {}, updated_at = {} "
                    "WHERE id = {}",
                    deleted,
                    following,
                    next(versions),
                    now,
                    uuid.UUID(ident),
                )


# --- the review queue -----------------------------------------------------------------------------------------


async def _close_candidates(
    survivor_id: uuid.UUID, merged_id: uuid.UUID, merge_id: uuid.UUID, now: dt.datetime
) -> list[dict[str, Any]]:
    """Open pairs naming the merged-away customer: a pair of these two is closed as ``merged``
    (this merge decided it); a pair with a third customer is re-pointed at the survivor, or closed
    as ``superseded`` when the survivor and that customer are a pair already (whatever its state:
    a person's decision on it stands). Not synced. What each was, for undo."""
    rows = []
    for side in ("customer_a", "customer_b"):  # one index each (the pair's, and 0016's)
        rows += await CustomerMerge.raw(
            "SELECT id, status, customer_a, customer_b, decided_by_id, decided_at, merge_id, created_at "
            f"FROM merge_candidates WHERE status = 'open' AND {side} = {{}}",
            merged_id,
        )
    rows.sort(key=lambda r: (str(r["created_at"]), str(r["id"])))
    out: list[dict[str, Any]] = []
    for r in rows:
        a, b = str(r["customer_a"]), str(r["customer_b"])
        before = {
            "status": r["status"],
            "customer_a": a,
            "customer_b": b,
            "decided_by_id": _str(r["decided_by_id"]),
            "decided_at": _iso(r["decided_at"]),
            "merge_id": _str(r["merge_id"]),
        }
        other = b if a == str(merged_id) else a
        if other in (str(survivor_id), str(merged_id)):
            action = "merged"
        else:
            pair = await CustomerMerge.raw(
                "SELECT id FROM merge_candidates WHERE (customer_a = {} AND customer_b = {}) "
                "OR (customer_a = {} AND customer_b = {})",
                survivor_id,
                uuid.UUID(other),
                uuid.UUID(other),
                survivor_id,
            )
            action = "superseded" if pair else "repointed"
        if action == "repointed":
            await CustomerMerge.raw(
                "UPDATE merge_candidates SET customer_a = {}, customer_b = {} WHERE id = {}",
                survivor_id if a == str(merged_id) else uuid.UUID(a),
                survivor_id if b == str(merged_id) else uuid.UUID(b),
                r["id"],
            )
        else:
            await CustomerMerge.raw(
                "UPDATE merge_candidates SET status = {}, decided_at = {}, merge_id = {} WHERE id = {}",
                action,
                now,
                merge_id,
                r["id"],
            )
        out.append({"id": str(r["id"]), "action": action, "before": before})
    return out


async def _reopen_candidates(
    candidates: list[dict[str, Any]], survivor_id: uuid.UUID, merged_id: uuid.UUID, merge_id: uuid.UUID
) -> None:
    """Each pair back as it was, unless decided since (a re-pointed pair a person decided is about
    the survivor, and stays)."""
    for c in reversed(candidates):
        ident, before = uuid.UUID(c["id"]), c["before"]
        rows = await CustomerMerge.raw(
            "SELECT status, customer_a, customer_b, merge_id FROM merge_candidates WHERE id = {}", ident
        )
        if not rows:
            continue
        now_row = rows[0]
        if c["action"] == "repointed":
            moved_to = [
                str(survivor_id) if x == str(merged_id) else x for x in (before["customer_a"], before["customer_b"])
            ]
            if now_row["status"] != "open" or [str(now_row["customer_a"]), str(now_row["customer_b"])] != moved_to:
                continue
            taken = await CustomerMerge.raw(
                "SELECT id FROM merge_candidates WHERE customer_a = {} AND customer_b = {}",
                uuid.UUID(before["customer_a"]),
                uuid.UUID(before["customer_b"]),
            )
            if taken:
                continue  # the pair was queued again meanwhile (the one index allows one)
            await CustomerMerge.raw(
                "UPDATE merge_candidates SET customer_a = {}, customer_b = {} WHERE id = {}",
                uuid.UUID(before["customer_a"]),
                uuid.UUID(before["customer_b"]),
                ident,
            )
            continue
        if now_row["status"] != c["action"] or _str(now_row["merge_id"]) != str(merge_id):
            continue
        decided_at = before["decided_at"]
        await CustomerMerge.raw(
            "UPDATE merge_candidates SET status = {}, decided_by_id = {}, decided_at = {}, merge_id = {} WHERE id = {}",
            before["status"],
            _uuid(before["decided_by_id"]),
            dt.datetime.fromisoformat(decided_at) if isinstance(decided_at, str) else decided_at,
            _uuid(before["merge_id"]),
            ident,
        )


async def survivor_of(customer_id: uuid.UUID) -> uuid.UUID | None:
    """The customer a merged-away id now is (None: not merged)."""
    rows = await CustomerMerge.raw(
        "SELECT survivor_id FROM customer_aliases WHERE id = {} AND deleted = false", customer_id
    )
    return uuid.UUID(str(rows[0]["survivor_id"])) if rows else None
