"""Change order and the pull side of sync (DESIGN.md, "Sync protocol").

Every synced row carries ``version``, its position in its scope's change order. Versions come
from a per-scope counter row bumped inside the writing transaction, so they follow commit order:
a client that pulled up to version N can never miss a row numbered below N committed later.

A pull walks the caller's scopes (org, catalog, then each store it sees) from the cursor it sent,
in version order, and answers at most ``limit`` rows. The cursor is an opaque token holding, per
scope, the last version delivered and, during a first sync (snapshot), the scope's version when
the snapshot began: tombstones up to that version are skipped (the device never had those rows).
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

import msgspec

from server.auth.scope import Caller
from server.errors import Invalid
from server.rollout import activity
from server.sync.tables import ScopeVersion, SyncClient
from server.values import money
from shared.phones import mask
from shared.sync import (
    CATALOG_SCOPE,
    MAX_PULL_LIMIT,
    MIN_SCHEMA_VERSION,
    ORG_SCOPE,
    SCHEMA_VERSION,
    TABLES,
    TABLES_BY_NAME,
    USER_SCOPE_PREFIX,
    PullRequest,
    PullResponse,
    TableRows,
    TableSpec,
    user_scope,
)

PULL_SEEN_EVERY = dt.timedelta(minutes=5)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


__all__ = ["CATALOG_SCOPE", "ORG_SCOPE", "allocate_versions", "current_version", "pull", "store_scope"]


def store_scope(store_id: uuid.UUID) -> str:
    return str(store_id)


async def allocate_versions(scope: str, count: int = 1) -> int:
    """Reserve ``count`` consecutive versions in ``scope`` and return the last one.

    Must run inside the writing transaction: on PostgreSQL the UPDATE locks the scope's counter
    row until commit, so a transaction that takes a later number commits later, and a client
    that pulled up to version N can never miss a row numbered below N committed afterwards.
    (On SQLite writers are serialised by BEGIN IMMEDIATE.)
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    rows = await ScopeVersion.raw(
        "UPDATE scope_versions SET version = version + {} WHERE scope = {} RETURNING version", count, scope
    )
    if not rows:
        await ScopeVersion.raw(
            "INSERT INTO scope_versions (scope, version, purged_version) VALUES ({}, 0, 0) "
            "ON CONFLICT (scope) DO NOTHING",
            scope,
        )
        rows = await ScopeVersion.raw(
            "UPDATE scope_versions SET version = version + {} WHERE scope = {} RETURNING version", count, scope
        )
    return int(rows[0]["version"])


async def current_version(scope: str) -> int:
    row = await ScopeVersion.select(ScopeVersion.version).where(ScopeVersion.scope == scope).first()
    return int(row["version"]) if row else 0


async def scope_versions(scopes: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(version, purged_version) per scope; absent scopes are (0, 0)."""
    wanted = list(scopes)
    rows = await ScopeVersion.select().where(ScopeVersion.scope.is_in(wanted)) if wanted else []
    found = {r["scope"]: (int(r["version"]), int(r["purged_version"])) for r in rows}
    return {s: found.get(s, (0, 0)) for s in wanted}


async def scopes_of(caller: Caller) -> list[str]:
    """The scopes a caller's device holds: org, catalog, its stores (sorted), then its own rows."""
    from server.stores.tables import Store

    if caller.store_ids is None:
        rows = await Store.select(Store.id).where(Store.deleted.eq(False))
        stores = sorted(str(r["id"]) for r in rows)
    else:
        stores = sorted(str(s) for s in caller.store_ids)
    return [ORG_SCOPE, CATALOG_SCOPE, *stores, user_scope(caller.user_id)]


# --- cursor -------------------------------------------------------------------------------------


class _ScopePosition(msgspec.Struct, array_like=True):
    version: int
    snapshot: int  # during a first sync: the scope's version when it began (0 when done)


class _Cursor(msgspec.Struct):
    s: int  # schema version of the rows delivered so far
    p: dict[str, _ScopePosition]
    m: bool = False  # the rows were masked (head office: no full phones, no addresses)


_cursor_encoder = msgspec.json.Encoder()
_cursor_decoder = msgspec.json.Decoder(_Cursor)


def encode_cursor(cursor: _Cursor) -> str:
    return base64.urlsafe_b64encode(_cursor_encoder.encode(cursor)).decode().rstrip("=")


def decode_cursor(token: str) -> _Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor = _cursor_decoder.decode(raw)
    except (ValueError, msgspec.DecodeError):
        raise Invalid("cursor is not valid: send back the cursor of the last pull, or null", field="cursor") from None
    if any(not (0 <= p.version <= 2**62 and 0 <= p.snapshot <= 2**62) for p in cursor.p.values()):
        raise Invalid("cursor is not valid: send back the cursor of the last pull, or null", field="cursor")
    return cursor


# --- reading rows -------------------------------------------------------------------------------

_SCOPED = [t for t in TABLES if t.scope == "store"]
_BY_SCOPE_KIND = {kind: [t for t in TABLES if t.scope == kind] for kind in ("org", "catalog", "store", "user")}


def _scope_kind(scope: str) -> str:
    if scope in (ORG_SCOPE, CATALOG_SCOPE):
        return scope
    return "user" if scope.startswith(USER_SCOPE_PREFIX) else "store"


def _select_list(spec: TableSpec) -> str:
    return ", ".join(f'"{c}"' for c in spec.column_names)


def _scope_condition(spec: TableSpec, params: list[Any], scope: str) -> str:
    if spec.scope == "user":
        params.append(uuid.UUID(scope.removeprefix(USER_SCOPE_PREFIX)))
        return "user_id = {}"
    if spec.scope != "store":
        return "1=1"
    params.append(uuid.UUID(scope))
    return "store_id = {}"


async def _boundary(scope: str, after: int, snapshot: int, limit: int) -> int | None:
    """The version of the ``limit``-th change after ``after`` in ``scope`` (None: fewer remain)."""
    from server.sync.tables import ScopeVersion as _any_table

    params: list[Any] = []
    parts = []
    for n, spec in enumerate(_BY_SCOPE_KIND[_scope_kind(scope)]):
        cond = _scope_condition(spec, params, scope)
        params.extend([after, snapshot, limit])
        parts.append(
            f"SELECT version FROM (SELECT version FROM {spec.name} WHERE {cond} AND version > {{}} "
            f"AND (deleted = false OR version > {{}}) ORDER BY version LIMIT {{}}) AS p{n}"
        )
    params.append(limit - 1)
    sql = f"SELECT version FROM ({' UNION ALL '.join(parts)}) AS u ORDER BY version LIMIT 1 OFFSET {{}}"
    rows = await _any_table.raw(sql, *params)
    return int(rows[0]["version"]) if rows else None


async def read_rows(spec: TableSpec, *, where: str, params: list[Any], caller: Caller | None = None) -> list[list[Any]]:
    """Rows of ``spec`` as wire lists (columns in the spec's order), masked for ``caller``."""
    from server.db import fetch_lists, is_postgres

    rows = await fetch_lists(f"SELECT {_select_list(spec)} FROM {spec.name} WHERE {where}", params)
    masked = caller is not None and not caller.sees_full_phones and spec.name in ("customers", "customer_phones")
    if is_postgres() and not masked and not _TS[spec.name]:
        return rows  # asyncpg already hands back bools, Decimals of two places, JSON as text
    return [_to_wire(spec, row, caller) for row in rows]


_MONEY = {spec.name: [i for i, (_, kind) in enumerate(spec.columns) if kind == "money"] for spec in TABLES}
_BOOL = {spec.name: [i for i, (_, kind) in enumerate(spec.columns) if kind == "bool"] for spec in TABLES}
_JSON = {spec.name: [i for i, (_, kind) in enumerate(spec.columns) if kind == "json"] for spec in TABLES}
_TS = {spec.name: [i for i, (_, kind) in enumerate(spec.columns) if kind == "ts"] for spec in TABLES}


def wire_time(moment: object) -> str:
    """A timestamp as it travels: UTC, always microseconds, 'Z' (the same text PostgreSQL's page
    JSON and the phone write, so equal instants compare equal and text order is time order)."""
    value = moment if isinstance(moment, dt.datetime) else dt.datetime.fromisoformat(str(moment))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_PHONE_NUMBER = TABLES_BY_NAME["customer_phones"].column_names.index("number")
_PHONE_DIGITS = TABLES_BY_NAME["customer_phones"].column_names.index("digits")
_ADDRESS = TABLES_BY_NAME["customers"].column_names.index("address")


def _to_wire(spec: TableSpec, row: list[Any], caller: Caller | None) -> list[Any]:
    """Normalise engine differences (SQLite hands back floats and 0/1) and mask personal data."""
    for i in _MONEY[spec.name]:
        if row[i] is not None:
            row[i] = money(row[i])
    for i in _BOOL[spec.name]:
        if row[i] is not None:
            row[i] = bool(row[i])
    for i in _JSON[spec.name]:
        if row[i] is not None and not isinstance(row[i], str):
            row[i] = msgspec.json.encode(row[i]).decode()
    for i in _TS[spec.name]:
        if row[i] is not None:
            row[i] = wire_time(row[i])
    if caller is not None and not caller.sees_full_phones:
        if spec.name == "customer_phones":
            row[_PHONE_NUMBER] = mask(row[_PHONE_NUMBER])
            row[_PHONE_DIGITS] = ""
        elif spec.name == "customers":
            row[_ADDRESS] = ""
    return row


async def _changes(
    scope: str, after: int, upto: int, snapshot: int, caller: Caller
) -> tuple[list[TableRows], int, int]:
    """Every change in ``scope`` with after < version <= upto: pages per table, row count, upto."""
    from server.db import fetch_lists

    pages = []
    count = 0
    for spec in _BY_SCOPE_KIND[_scope_kind(scope)]:
        params: list[Any] = []
        where = [_scope_condition(spec, params, scope), "version > {}", "version <= {}"]
        where.append("(deleted = false OR version > {})")
        params.extend([after, upto, snapshot])
        if _json_from_database(spec, caller):
            # PostgreSQL writes the page's JSON itself; it travels to the phone as it is.
            sql = (
                f"SELECT count(*), coalesce(json_agg(json_build_array({_JSON_COLUMNS[spec.name]}) ORDER BY version), "
                f"'[]')::text FROM {spec.name} WHERE {' AND '.join(where)}"
            )
            n, text = (await fetch_lists(sql, params))[0]
            if n:
                rows: Any = msgspec.Raw(text.encode())
                pages.append(TableRows(table=spec.name, columns=list(spec.column_names), rows=rows))
                count += n
            continue
        rows = await read_rows(spec, where=" AND ".join(where) + " ORDER BY version", params=params, caller=caller)
        if rows:
            pages.append(TableRows(table=spec.name, columns=list(spec.column_names), rows=rows))
            count += len(rows)
    return pages, count, upto


def _json_expression(name: str, kind: str) -> str:
    if kind == "ts":  # RFC 3339 in UTC whatever the session's time zone
        return f"""to_char("{name}" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    if kind in ("money", "json"):  # a decimal string; JSON as its text
        return f'"{name}"::text'
    return f'"{name}"'


_JSON_COLUMNS = {spec.name: ", ".join(_json_expression(n, k) for n, k in spec.columns) for spec in TABLES}


def _json_from_database(spec: TableSpec, caller: Caller) -> bool:
    from server.db import is_postgres

    masked = not caller.sees_full_phones and spec.name in ("customers", "customer_phones")
    return is_postgres() and not masked


# --- pull ---------------------------------------------------------------------------------------


async def register_client(*, caller: Caller, client_id: uuid.UUID, schema_version: int, lock: bool = False) -> dict:
    """The device's row (made on first contact). A client id belongs to one user. ``lock`` (in
    the push transaction) takes the row lock on PostgreSQL, so copies of one push queue."""
    from server.db import is_postgres
    from server.errors import Conflict

    if schema_version < MIN_SCHEMA_VERSION or schema_version > SCHEMA_VERSION:
        raise Conflict(
            f"this app speaks sync schema {schema_version}; the server speaks {MIN_SCHEMA_VERSION}.."
            f"{SCHEMA_VERSION}: update the app",
            field="schema_version",
        )
    sql = "SELECT id, user_id, last_mutation_id, last_pull_at FROM sync_clients WHERE id = {}"
    if lock and is_postgres():
        sql += " FOR UPDATE"
    rows = await SyncClient.raw(sql, client_id)
    if not rows:  # first contact (a pull is otherwise read-only: it never waits for a writer)
        await SyncClient.raw(
            "INSERT INTO sync_clients (id, user_id, last_mutation_id, schema_version, created_at) "
            "VALUES ({}, {}, 0, {}, {}) ON CONFLICT (id) DO NOTHING",
            client_id,
            caller.user_id,
            schema_version,
            dt.datetime.now(dt.UTC),
        )
        rows = await SyncClient.raw(sql, client_id)
    if not rows or uuid.UUID(str(rows[0]["user_id"])) != caller.user_id:
        raise Invalid(
            "this client_id belongs to another user's replica: make a new client id for this user",
            field="client_id",
        )
    return rows[0]


async def pull(*, caller: Caller, request: PullRequest) -> PullResponse:
    response = await _pull(caller=caller, request=request)
    # Counted for the adoption figures; written later, so a pull still never waits for a writer.
    activity.count_pull(user_id=caller.user_id, store_id=caller.store_id, now=dt.datetime.now(dt.UTC))
    return response


async def _pull(*, caller: Caller, request: PullRequest) -> PullResponse:
    if request.limit > MAX_PULL_LIMIT:
        raise Invalid(f"limit is at most {MAX_PULL_LIMIT} rows per page, got {request.limit}", field="limit")
    client = await register_client(caller=caller, client_id=request.client_id, schema_version=request.schema_version)
    now = dt.datetime.now(dt.UTC)
    scopes = await scopes_of(caller)
    masked = not caller.sees_full_phones
    cursor = decode_cursor(request.cursor) if request.cursor else _Cursor(s=SCHEMA_VERSION, p={}, m=masked)
    last_mutation_id = int(client["last_mutation_id"])

    def reset(reason: str) -> PullResponse:
        return PullResponse(
            changes=[],
            cursor=encode_cursor(_Cursor(s=SCHEMA_VERSION, p={}, m=masked)),
            has_more=True,
            last_mutation_id=last_mutation_id,
            scopes_removed=[],
            reset_required=True,
            reset_reason=reason,
            server_time=now.isoformat(),
        )

    if cursor.s != SCHEMA_VERSION:
        return reset(f"the replica holds rows of sync schema {cursor.s}; the server now sends {SCHEMA_VERSION}")
    if cursor.m != masked and cursor.p:
        # A role change: rows already on the phone were masked differently (a store manager moved
        # to head office must not keep full phone numbers).
        return reset("your role changed what personal data this phone may hold; a fresh copy is needed")
    versions = await scope_versions(scopes)
    positions: dict[str, _ScopePosition] = {}
    for scope in scopes:
        position = cursor.p.get(scope)
        head, purged = versions[scope]
        if position is None or (position.version == 0 and position.snapshot == 0):
            position = _ScopePosition(version=0, snapshot=head)  # first sync of this scope
        if position.version > head:
            return reset(f"the cursor is ahead of the server in scope {scope} (was the database restored?)")
        if purged > max(position.version, position.snapshot):
            return reset(f"deletions older than the cursor were purged in scope {scope}; a fresh copy is needed")
        positions[scope] = position
    removed = sorted(
        s for s in cursor.p if s not in positions and s not in (ORG_SCOPE, CATALOG_SCOPE) and _scope_kind(s) == "store"
    )

    started = {scope: max(p.version, p.snapshot) for scope, p in positions.items()}
    changes: list[TableRows] = []
    budget = request.limit
    has_more = False
    for scope in scopes:
        position = positions[scope]
        head = versions[scope][0]
        if position.version >= head:
            continue
        # The boundary is read in one statement, so every version below it was committed (versions
        # follow commit order). Without one (fewer than `budget` changes remain), read up to the head
        # read before: a later commit in one table may be visible while an earlier one in another
        # table, read a moment before, was not yet.
        boundary = await _boundary(scope, position.version, position.snapshot, budget)
        upto = head if boundary is None else boundary
        pages, count, _ = await _changes(scope, position.version, upto, position.snapshot, caller)
        changes.extend(pages)
        budget -= count
        position.version = upto
        if position.snapshot and position.version >= position.snapshot:
            position.snapshot = 0
        if boundary is not None:
            has_more = True
            break
    # A purge that committed while this page was read may have removed a tombstone the page was
    # about to carry (it commits the deletion and the horizon together, so the horizon shows it).
    for scope, (_, purged) in (await scope_versions(scopes)).items():
        if purged > started[scope]:
            return reset(f"deletions were purged in scope {scope} while this page was read; a fresh copy is needed")
    seen = client["last_pull_at"]
    if seen is None or now - _aware(seen) > PULL_SEEN_EVERY:  # for adoption figures; rarely a write
        await SyncClient.update({SyncClient.last_pull_at: now}).where(SyncClient.id == request.client_id)
    return PullResponse(
        changes=_merge_pages(changes),
        cursor=encode_cursor(_Cursor(s=SCHEMA_VERSION, p=positions, m=masked)),
        has_more=has_more,
        last_mutation_id=last_mutation_id,
        scopes_removed=removed,
        reset_required=False,
        server_time=now.isoformat(),
    )


def _merge_pages(pages: list[TableRows]) -> list[TableRows]:
    """One page per table (rows of several scopes of the same table travel together)."""
    merged: dict[str, TableRows] = {}
    for page in pages:
        if isinstance(page.rows, msgspec.Raw):  # already encoded: travels as its own page
            merged[f"{page.table} {len(merged)}"] = page
        elif page.table in merged:
            merged[page.table].rows.extend(page.rows)
        else:
            merged[page.table] = page
    return list(merged.values())
