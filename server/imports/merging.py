"""Merging two customers into one, and undoing it.

A merge keeps the survivor's row and everything of both: every child row of the merged-away
customer (phones, tags, channel identities, orders, interactions, complaints, opportunities, tasks,
the conflict log) moves to the survivor; a phone or tag the survivor already has is retired
(a tombstone) rather than doubled; the survivor's empty fields take the other's values. The
merged-away customer becomes a tombstone and an alias row (synced) tells phones that its id now
means the survivor. Every touched row takes a new version in the store's change order, so devices
receive the merge with their next pull.

The merge row records who or what decided, the score and reasons, and exactly what moved, was
retired and was filled, so :func:`undo` puts each row back as it was (only versions and
``updated_at`` move on: they are the change order itself).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

from server import db
from server.errors import Conflict, NotFound
from server.imports.tables import CustomerMerge
from server.sync.service import allocate_versions, store_scope
from shared.ids import uuid7

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


def _blank(value: Any) -> bool:
    return value is None or value == ""


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


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
        versions = await _versions(store, moved, retired)
        await _move_children(moved, survivor_id, versions, now)
        await _set_deleted(retired, True, versions, now)
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
        merge_id = uuid7()
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
        for alias in await CustomerMerge.raw(
            "SELECT id FROM customer_aliases WHERE survivor_id = {} AND deleted = false", merged_id
        ):
            version = await allocate_versions(store_scope(store))
            await CustomerMerge.raw(
                "UPDATE customer_aliases SET survivor_id = {}, version = {}, updated_at = {} WHERE id = {}",
                survivor_id,
                version,
                now,
                alias["id"],
            )
        snapshot = {"moved": moved, "retired": retired, "filled": filled}
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


async def survivor_of(customer_id: uuid.UUID) -> uuid.UUID | None:
    """The customer a merged-away id now is (None: not merged)."""
    rows = await CustomerMerge.raw(
        "SELECT survivor_id FROM customer_aliases WHERE id = {} AND deleted = false", customer_id
    )
    return uuid.UUID(str(rows[0]["survivor_id"])) if rows else None
