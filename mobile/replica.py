"""The phone's replica: one SQLite file per user and device holding the synced rows of the user's
scopes, the outbox of mutations not yet acknowledged, and the conflict log the UI shows.

What the UI reads is the server's state (as of the stored cursor) with the pending mutations
re-applied on top (Replicache-style rebase): every page, push reply or reset rewrites server rows
and then replays the outbox, so the user's unsynced edits stay visible and never fight the server.
Every change to the file happens in one local transaction, so a crash mid-page leaves the previous
page and its cursor in place (a dropped first sync loses at most one page).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from mobile import mutators, times
from mobile.mutators import Context, MutationError, fetch_all, fetch_one
from shared import sync as proto
from shared.ids import uuid7

_SQL_TYPES = {"int": "INTEGER", "bool": "INTEGER"}  # everything else is TEXT (ids, times, money, json)

_LOCAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, args TEXT NOT NULL, hlc TEXT NOT NULL,
    created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
    mutation_id INTEGER, mutation TEXT, table_name TEXT, row_id TEXT, customer_id TEXT, field TEXT,
    my_value TEXT, kept_value TEXT, kept_by TEXT, kept_by_name TEXT, kept_at TEXT, reason TEXT,
    seen INTEGER NOT NULL DEFAULT 0, my_hlc TEXT, source_id TEXT
);
CREATE INDEX IF NOT EXISTS conflicts_seen ON conflicts (seen, id);
"""

# Columns added to the local tables after the first release: (table, column, type). A file made
# by an older app gets them (null in its old rows) when opened; indexes on them come after.
_LOCAL_COLUMNS = (
    ("conflicts", "my_hlc", "TEXT"),  # the HLC of my losing edit (its mutation's stamp)
    ("conflicts", "source_id", "TEXT"),  # the sync_conflicts row an entry came from
)
_LOCAL_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS conflicts_source ON conflicts (source_id);
CREATE INDEX IF NOT EXISTS conflicts_field ON conflicts (customer_id, field)
"""

# meta keys
CURSOR = "cursor"
SCHEMA = "schema_version"
CLIENT_ID = "client_id"
USER_ID = "user_id"
STORE_ID = "store_id"
ROLE = "role"
LAST_ACKED = "last_mutation_id"  # the server has applied every mutation up to this id
LAST_USED = "last_mutation_id_used"  # the id of the newest mutation ever queued here
LAST_SYNCED = "last_synced_at"
HLC_LAST = "hlc_last"


class OutboxEntry(msgspec.Struct, frozen=True):
    id: int
    name: str
    args: dict[str, Any]
    hlc: str
    created_at: str
    attempts: int

    def to_mutation(self) -> proto.Mutation:
        return proto.Mutation(id=self.id, name=self.name, args=self.args, hlc=self.hlc)  # type: ignore[arg-type]


class ConflictEntry(msgspec.Struct, frozen=True):
    """A change of mine the server did not keep: a field another edit won ('lost_field') or a
    whole mutation refused ('rejected', with the server's reason)."""

    id: int
    at: str
    kind: str  # 'lost_field' | 'rejected'
    mutation_id: int | None
    mutation: str | None
    table_name: str | None
    row_id: str | None
    customer_id: str | None
    field: str | None
    my_value: str | None
    kept_value: str | None
    kept_by: str | None
    kept_by_name: str | None
    kept_at: str | None
    reason: str | None
    seen: bool

    @property
    def message(self) -> str:
        """An English sentence for logs and tests (the UI builds its own, translated)."""
        if self.kind == "lost_field":
            who = self.kept_by_name or self.kept_by or "another edit"
            return f"your change to {self.field} was replaced by {who}'s ({self.kept_value!r}) at {self.kept_at}"
        return f"{self.mutation} was refused: {self.reason}"


def _column_sql(name: str, kind: str) -> str:
    if name == "id":
        return "id TEXT PRIMARY KEY"
    return f"{name} {_SQL_TYPES.get(kind, 'TEXT')}"


def _wall_ms() -> float:
    return time.time() * 1000


class Replica:
    """A local SQLite replica. ``clock_ms`` (milliseconds since the epoch) is injectable so a test
    can skew the phone's clock; it stamps HLCs and local timestamps."""

    def __init__(self, path: str | Path, *, clock_ms: Callable[[], float] | None = None) -> None:
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA temp_store=MEMORY")
        self._savepoints = itertools.count(1)
        self._upsert_sql: dict[tuple[str, tuple[str, ...]], str] = {}
        self._clock_ms = clock_ms or _wall_ms
        with self.transaction():
            for statement in _LOCAL_SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self._migrate_local_tables()
            if self.get_meta(CLIENT_ID) is None:
                self.set_meta(CLIENT_ID, str(uuid.uuid4()))
            self.client_id = uuid.UUID(self.get_meta(CLIENT_ID))
            self.clock = proto.HybridClock(
                node=self.client_id.hex, wall_ms=self._clock_ms, last=self.get_meta(HLC_LAST)
            )
            if self.get_meta(SCHEMA) != str(proto.SCHEMA_VERSION):
                self._recreate_synced_tables()
                self.rebase()  # the pending edits stay visible (those whose rows still exist)
            else:
                self._create_synced_tables()
        # Called (no arguments) after each local mutation: the engine subscribes to push soon.
        self.on_mutation: list[Callable[[], None]] = []

    def close(self) -> None:
        self.db.close()

    # --- schema -----------------------------------------------------------------------------------

    def _migrate_local_tables(self) -> None:
        """Bring the local tables of a file an older app made up to date (columns are only ever
        added, so its outbox and conflict log stay as they are)."""
        for table, column, kind in _LOCAL_COLUMNS:
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        for statement in _LOCAL_INDEXES.split(";"):
            if statement.strip():
                self.db.execute(statement)

    def _create_synced_tables(self) -> None:
        for spec in proto.TABLES:
            columns = ", ".join(_column_sql(name, kind) for name, kind in spec.columns)
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {spec.name} ({columns})")
            for index in spec.indexes:
                self.db.execute(
                    f"CREATE INDEX IF NOT EXISTS {spec.name}_{'_'.join(index)} ON {spec.name} ({', '.join(index)})"
                )

    def _recreate_synced_tables(self) -> None:
        """A replica made for another sync schema: its rows mean something else now. Drop them
        (and the cursor) and start over; the outbox, the mutation counter and the conflict log stay."""
        existing = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for spec in proto.TABLES:
            if spec.name in existing:
                self.db.execute(f"DROP TABLE {spec.name}")
        self._create_synced_tables()
        self.db.execute("DELETE FROM meta WHERE key = ?", (CURSOR,))
        self.set_meta(SCHEMA, str(proto.SCHEMA_VERSION))

    # --- transactions and meta --------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One local transaction (a savepoint when nested): all of it, or nothing."""
        if self.db.in_transaction:
            name = f"sp{next(self._savepoints)}"
            self.db.execute(f"SAVEPOINT {name}")
            try:
                yield self.db
            except BaseException:
                self.db.execute(f"ROLLBACK TO {name}")
                self.db.execute(f"RELEASE {name}")
                raise
            self.db.execute(f"RELEASE {name}")
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def cursor(self) -> str | None:
        return self.get_meta(CURSOR)

    @property
    def last_acked(self) -> int:
        return int(self.get_meta(LAST_ACKED) or 0)

    @property
    def last_synced_at(self) -> str | None:
        return self.get_meta(LAST_SYNCED)

    def set_identity(
        self, user_id: uuid.UUID | str, *, store_id: uuid.UUID | str | None = None, role: str | None = None
    ):
        """Who uses this replica (from the login's user). A replica belongs to one user: its outbox
        holds that user's edits, so opening it for another user is refused."""
        current = self.get_meta(USER_ID)
        if current is not None and current != str(user_id):
            raise ValueError(f"this replica belongs to user {current}; open a separate file for {user_id}")
        with self.transaction():
            self.set_meta(USER_ID, str(user_id))
            if store_id is not None:
                self.set_meta(STORE_ID, str(store_id))
            if role is not None:
                self.set_meta(ROLE, role)

    @property
    def user_id(self) -> str | None:
        return self.get_meta(USER_ID)

    def now(self) -> str:
        return times.utc_text(times.from_ms(self._clock_ms()))

    def context(self) -> Context:
        user_id = self.get_meta(USER_ID)
        store_id, role = self.get_meta(STORE_ID), self.get_meta(ROLE)
        if user_id is not None and (store_id is None or role is None):
            row = fetch_one(self.db, "SELECT store_id, role FROM users WHERE id = ?", (user_id,))
            if row is not None:
                store_id = store_id or row["store_id"]
                role = role or row["role"]
        return Context(user_id=user_id, store_id=store_id, role=role, now=self.now())

    # --- pulling --------------------------------------------------------------------------------

    def _upsert_statement(self, table: str, columns: tuple[str, ...]) -> str:
        key = (table, columns)
        sql = self._upsert_sql.get(key)
        if sql is None:
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "id")
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT(id) DO UPDATE SET {updates}"
            )
            self._upsert_sql[key] = sql
        return sql

    def _write_rows(self, page: proto.TableRows) -> None:
        """Upsert a page of one table's rows; tombstones delete (they are never stored)."""
        spec = proto.TABLES_BY_NAME.get(page.table)
        if spec is None or not page.rows:
            return  # a table this app does not know (a newer server): nothing shows it
        columns = tuple(page.columns)
        rows: list[list[Any]] = page.rows
        known = spec.column_names
        if any(c not in known for c in columns):
            keep = [i for i, c in enumerate(columns) if c in known]
            columns = tuple(columns[i] for i in keep)
            rows = [[row[i] for i in keep] for row in rows]
        ident = columns.index("id")
        if "deleted" in columns:
            flag = columns.index("deleted")
            dead = [(row[ident],) for row in rows if row[flag]]
            if dead:
                self.db.executemany(f"DELETE FROM {page.table} WHERE id = ?", dead)
                rows = [row for row in rows if not row[flag]]
        if rows:
            # bool is an int in Python: sqlite3 stores True/False as 1/0 with no conversion here.
            self.db.executemany(self._upsert_statement(page.table, columns), rows)

    def apply_page(self, response: proto.PullResponse) -> None:
        """Apply one pull page in one local transaction: rows, tombstones, removed scopes, the
        cursor, acknowledged mutations, then the pending mutations re-applied on top."""
        with self.transaction():
            if self.cursor is None:
                # The first page of a first sync (or of a reset): the snapshot is the truth. Rows
                # held from before (push answers, optimistic edits) go; a tombstone the snapshot
                # skips could otherwise leave a deleted row here forever. The outbox is rebased below.
                for spec in proto.TABLES:
                    self.db.execute(f"DELETE FROM {spec.name}")
            for page in response.changes:
                self._write_rows(page)
            self._log_synced_losses(response.changes)
            if response.scopes_removed:
                self._delete_scopes(response.scopes_removed)
            self.set_meta(CURSOR, response.cursor)
            self._acknowledge(response.last_mutation_id)
            self.rebase()

    def _log_synced_losses(self, changes: list[proto.TableRows]) -> None:
        """My customer-field edits the server replaced, as the store's synced ``sync_conflicts``
        rows tell (the only word of a loss when my edit reached the server first and a later,
        unseeing edit replaced it): one conflict entry per row, ever — re-pulls, resets and
        snapshots find the row's id in the log — and none for a loss a push reply already
        logged (the same customer, field and stamp of mine). Runs after the page's rows are
        written, so the winner's name is there when the same page brings it."""
        me = self.user_id
        for page in changes:
            if page.table == "users" and page.rows:
                self.db.execute(
                    "UPDATE conflicts SET kept_by_name = (SELECT display_name FROM users WHERE id = kept_by) "
                    "WHERE kept_by IS NOT NULL AND kept_by_name IS NULL"
                )
        if me is None:
            return
        now = None
        for page in changes:
            if page.table != "sync_conflicts" or not page.rows or "id" not in page.columns:
                continue
            for values in page.rows:
                found = dict(zip(page.columns, values, strict=False))
                if found.get("deleted") or str(found.get("loser_user_id")) != me:
                    continue
                source_id = str(found["id"])
                customer_id = None if found.get("customer_id") is None else str(found["customer_id"])
                field, my_hlc = found.get("field"), found.get("loser_hlc")
                known = self.db.execute(
                    "SELECT id, source_id FROM conflicts WHERE source_id = ? OR (kind = 'lost_field' AND "
                    "customer_id IS ? AND field IS ? AND my_hlc IS NOT NULL AND my_hlc = ?) LIMIT 1",
                    (source_id, customer_id, field, my_hlc),
                ).fetchone()
                if known is not None:
                    if known[1] is None:  # logged from the push reply: remember the row too
                        self.db.execute("UPDATE conflicts SET source_id = ? WHERE id = ?", (source_id, known[0]))
                    continue
                kept_by = None if found.get("winner_user_id") is None else str(found["winner_user_id"])
                user = (
                    fetch_one(self.db, "SELECT display_name FROM users WHERE id = ?", (kept_by,)) if kept_by else None
                )
                mutation = self.db.execute("SELECT id FROM outbox WHERE hlc = ?", (my_hlc,)).fetchone()
                now = now or self.now()
                self.db.execute(
                    "INSERT INTO conflicts (at, kind, mutation_id, mutation, table_name, row_id, customer_id, field, "
                    "my_value, kept_value, kept_by, kept_by_name, kept_at, my_hlc, source_id) "
                    "VALUES (?, 'lost_field', ?, 'customer.update', 'customers', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        now,
                        None if mutation is None else mutation[0],
                        customer_id,
                        customer_id,
                        field,
                        found.get("loser_value"),
                        found.get("winner_value"),
                        kept_by,
                        user["display_name"] if user else None,
                        found.get("at"),
                        my_hlc,
                        source_id,
                    ),
                )

    def _delete_scopes(self, stores: list[str]) -> None:
        marks = ", ".join("?" * len(stores))
        for spec in proto.TABLES:
            if spec.scope == "store":
                self.db.execute(f"DELETE FROM {spec.name} WHERE store_id IN ({marks})", stores)
        # Losses name values other people kept for those customers: personal data the user may no
        # longer see. (Refusals of the user's own edits stay: they explain where an edit went.)
        self.db.execute(
            "DELETE FROM conflicts WHERE kind = 'lost_field' AND customer_id IS NOT NULL "
            "AND customer_id NOT IN (SELECT id FROM customers)"
        )

    def reset(self) -> None:
        """The server asked for a fresh copy: forget every synced row and the cursor; keep the
        outbox (re-applied on top of the new snapshot as it arrives)."""
        with self.transaction():
            for spec in proto.TABLES:
                self.db.execute(f"DELETE FROM {spec.name}")
            self.set_meta(CURSOR, None)
            self.rebase()

    def wipe(self) -> None:
        """The user was signed out by the server (account deactivated, session revoked): forget
        everything — synced rows, the outbox, the conflict log, the identity — and start as a new
        replica (a new client id, so a later sign-in begins afresh on the server too)."""
        with self.transaction():
            for spec in proto.TABLES:
                self.db.execute(f"DELETE FROM {spec.name}")
            self.db.execute("DELETE FROM outbox")
            self.db.execute("DELETE FROM conflicts")
            self.db.execute("DELETE FROM meta")
            self.set_meta(SCHEMA, str(proto.SCHEMA_VERSION))
            self.set_meta(CLIENT_ID, str(uuid.uuid4()))
            self.client_id = uuid.UUID(self.get_meta(CLIENT_ID))
            self.clock = proto.HybridClock(node=self.client_id.hex, wall_ms=self._clock_ms)
        # Deleted rows linger in free pages and the write-ahead log until overwritten: rewrite both.
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def mark_synced(self, at: str | None = None) -> None:
        with self.transaction():
            self.set_meta(LAST_SYNCED, at or self.now())

    # --- outbox ---------------------------------------------------------------------------------

    def _acknowledge(self, last_mutation_id: int) -> None:
        """The server has applied every mutation up to ``last_mutation_id``: drop them."""
        if last_mutation_id > self.last_acked:
            self.set_meta(LAST_ACKED, str(last_mutation_id))
        self.db.execute("DELETE FROM outbox WHERE id <= ?", (last_mutation_id,))

    def _next_mutation_id(self) -> int:
        used = int(self.get_meta(LAST_USED) or 0)
        row = self.db.execute("SELECT max(id) FROM outbox").fetchone()
        return max(used, self.last_acked, row[0] or 0) + 1

    def pending(self, limit: int | None = None) -> list[OutboxEntry]:
        sql = "SELECT id, name, args, hlc, created_at, attempts FROM outbox ORDER BY id"
        rows = self.db.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        return [OutboxEntry(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5]) for r in rows]

    def _entries(self, ids: list[int]) -> dict[int, OutboxEntry]:
        found: dict[int, OutboxEntry] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT id, name, args, hlc, created_at, attempts FROM outbox WHERE id IN ({marks})"
            for r in self.db.execute(sql, chunk):
                found[r[0]] = OutboxEntry(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5])
        return found

    def pending_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def mark_attempt(self, ids: list[int]) -> None:
        with self.transaction():
            self.db.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", [(i,) for i in ids])

    def rebase(self) -> None:
        """Re-apply every pending mutation, oldest first, on top of the rows as they are now.
        Must run inside a transaction. A mutation that no longer applies is skipped here: the
        server's answer decides (and is logged) when it arrives."""
        context = self.context()
        for entry in self.pending():
            try:
                args = msgspec.convert(entry.args, proto.MUTATION_ARGS[entry.name])
            except (KeyError, msgspec.ValidationError):
                continue  # the server will reject it with a reason
            with self.transaction():
                mutators.apply(self.db, entry.name, args, entry.hlc, context, validate=False)

    def mutate(self, name: str, args: Mapping[str, Any] | msgspec.Struct) -> int:
        """Validate, stamp, queue and apply a mutation locally, all in one transaction; returns
        its mutation id. Raises :class:`MutationError` (nothing queued) when the server would
        obviously refuse it."""
        kind = proto.MUTATION_ARGS.get(name)
        if kind is None:
            raise MutationError(f"unknown mutation {name!r}")
        try:
            data = msgspec.to_builtins(args) if isinstance(args, msgspec.Struct) else dict(args)
            struct = msgspec.convert(data, kind)
        except (msgspec.ValidationError, TypeError) as exc:
            raise MutationError(f"{name} arguments: {exc}") from None
        with self.transaction():
            struct = self._prepare(name, struct)
            hlc = self.clock.now()
            context = self.context()
            mutators.apply(self.db, name, struct, hlc, context, validate=True)
            mutation_id = self._next_mutation_id()
            self.db.execute(
                "INSERT INTO outbox (id, name, args, hlc, created_at, attempts) VALUES (?, ?, ?, ?, ?, 0)",
                (mutation_id, name, msgspec.json.encode(struct).decode(), hlc, context.now),
            )
            self.set_meta(LAST_USED, str(mutation_id))
            self.set_meta(HLC_LAST, hlc)
        for callback in list(self.on_mutation):
            callback()
        return mutation_id

    def _prepare(self, name: str, struct: Any) -> Any:
        """Fill what the device must decide before queueing: the phone row's id of a new customer,
        the values a customer edit was based on; and let the clock see the stamps it overrides
        (an edit made after seeing a value is later than that value's stamp, whatever the clock)."""
        if name == "customer.create" and struct.phone and struct.phone_id is None:
            struct = msgspec.structs.replace(struct, phone_id=uuid7())
        if name == "customer.update":
            row = fetch_one(self.db, "SELECT * FROM customers WHERE id = ?", (str(struct.customer_id),))
            if row is not None:
                fields = [f for f in proto.CUSTOMER_MERGE_FIELDS if getattr(struct.fields, f) is not msgspec.UNSET]
                base = dict(struct.base)
                for field in fields:
                    base.setdefault(field, row[field])
                struct = msgspec.structs.replace(struct, base=base)
                try:
                    clocks = json.loads(row["field_clocks"] or "{}")
                except ValueError:
                    clocks = {}
                for stamp in clocks.values():
                    if isinstance(stamp, dict) and isinstance(stamp.get("hlc"), str):
                        with contextlib.suppress(ValueError):
                            self.clock.observe(stamp["hlc"])
        return struct

    # --- push replies ---------------------------------------------------------------------------

    def apply_push(self, response: proto.PushResponse) -> list[ConflictEntry]:
        """Apply a push reply in one transaction: acknowledged mutations leave the outbox, the
        server's rows replace the optimistic ones, losses and refusals go to the conflict log, a
        refused create's row disappears, and the still-pending mutations are re-applied."""
        sent = self._entries([r.id for r in response.results])
        new_conflicts: list[int] = []
        now = self.now()
        with self.transaction():
            for result in response.results:
                entry = sent.get(result.id)
                for page in result.rows:
                    self._write_rows(page)
                if entry is None:
                    continue  # answered before (a duplicate reply): the rows above are still the newest
                args = self._args(entry)
                if result.status == "applied":
                    for loss in result.lost_fields:
                        if self._loss_logged(args, loss.field, entry.hlc):
                            continue  # the synced sync_conflicts row told of it first
                        my_value = None
                        if args is not None:
                            value = getattr(args.fields, loss.field, None)
                            my_value = None if value in (None, msgspec.UNSET) else str(value)
                        new_conflicts.append(
                            self._log_conflict(
                                now,
                                "lost_field",
                                entry,
                                args,
                                field=loss.field,
                                my_value=my_value,
                                kept_value=loss.kept_value,
                                kept_by=None if loss.kept_by is None else str(loss.kept_by),
                                kept_at=_hlc_time(loss.kept_hlc),
                                my_hlc=entry.hlc,
                            )
                        )
                else:
                    returned = {page.table for page in result.rows if page.rows}
                    if args is not None and entry.name in mutators.CREATES:
                        for table, ident in mutators.target_ids(entry.name, args):
                            if table not in returned:
                                self.db.execute(f"DELETE FROM {table} WHERE id = ?", (ident,))
                    new_conflicts.append(
                        self._log_conflict(
                            now,
                            "rejected",
                            entry,
                            args,
                            field=result.field,
                            my_value=json.dumps(entry.args, ensure_ascii=False),
                            reason=result.reason,
                        )
                    )
                self.db.execute("DELETE FROM outbox WHERE id = ?", (result.id,))
            self._acknowledge(response.last_mutation_id)
            self.rebase()
        if not new_conflicts:
            return []
        marks = ", ".join("?" * len(new_conflicts))
        return self._conflicts(f"WHERE id IN ({marks}) ORDER BY id", new_conflicts)

    @staticmethod
    def _args(entry: OutboxEntry) -> Any:
        try:
            return msgspec.convert(entry.args, proto.MUTATION_ARGS[entry.name])
        except (KeyError, msgspec.ValidationError):
            return None

    def _loss_logged(self, args: Any, field: str, my_hlc: str) -> bool:
        customer_id = getattr(args, "customer_id", None) if args is not None else None
        if customer_id is None:
            return False
        found = self.db.execute(
            "SELECT 1 FROM conflicts WHERE kind = 'lost_field' AND customer_id = ? AND field = ? AND my_hlc = ?",
            (str(customer_id), field, my_hlc),
        ).fetchone()
        return found is not None

    def _log_conflict(self, now: str, kind: str, entry: OutboxEntry, args: Any, **values: Any) -> int:
        targets = mutators.target_ids(entry.name, args) if args is not None else []
        table, row_id = targets[0] if targets else (None, None)
        customer_id = getattr(args, "customer_id", None) if args is not None else None
        if customer_id is None and table == "customers":
            customer_id = row_id
        kept_by = values.get("kept_by")
        name = None
        if kept_by:
            user = fetch_one(self.db, "SELECT display_name FROM users WHERE id = ?", (kept_by,))
            name = user["display_name"] if user else None
        cursor = self.db.execute(
            "INSERT INTO conflicts (at, kind, mutation_id, mutation, table_name, row_id, customer_id, field, my_value, "
            "kept_value, kept_by, kept_by_name, kept_at, reason, my_hlc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now,
                kind,
                entry.id,
                entry.name,
                table,
                row_id,
                None if customer_id is None else str(customer_id),
                values.get("field"),
                values.get("my_value"),
                values.get("kept_value"),
                kept_by,
                name,
                values.get("kept_at"),
                values.get("reason"),
                values.get("my_hlc"),
            ),
        )
        return int(cursor.lastrowid or 0)

    # --- the conflict log -----------------------------------------------------------------------

    def _conflicts(self, tail: str, params: list[Any] | tuple = ()) -> list[ConflictEntry]:
        rows = fetch_all(
            self.db,
            "SELECT id, at, kind, mutation_id, mutation, table_name, row_id, customer_id, field, my_value, kept_value, "
            f"kept_by, kept_by_name, kept_at, reason, seen FROM conflicts {tail}",
            params,
        )
        return [ConflictEntry(**{**r, "seen": bool(r["seen"])}) for r in rows]

    def conflicts(self, unseen_only: bool = False) -> list[ConflictEntry]:
        """The conflict log, newest first."""
        return self._conflicts(("WHERE seen = 0 " if unseen_only else "") + "ORDER BY id DESC")

    def mark_conflicts_seen(self, ids: list[int] | None = None) -> None:
        with self.transaction():
            if ids is None:
                self.db.execute("UPDATE conflicts SET seen = 1 WHERE seen = 0")
            else:
                self.db.executemany("UPDATE conflicts SET seen = 1 WHERE id = ?", [(i,) for i in ids])

    # --- convenience helpers for the UI ---------------------------------------------------------

    def create_customer(self, name: str, *, phone: str | None = None, **fields: Any) -> uuid.UUID:
        ident = uuid7()
        args = {"id": ident, "name": name, "phone": phone, "phone_id": uuid7() if phone else None, **fields}
        self.mutate("customer.create", args)
        return ident

    def update_customer(self, customer_id: uuid.UUID | str, **fields: Any) -> int:
        """Change customer-card fields; ``base`` is what this phone shows now."""
        row = fetch_one(self.db, "SELECT * FROM customers WHERE id = ?", (str(customer_id),))
        base = {f: row[f] for f in fields if row is not None and f in row}
        return self.mutate("customer.update", {"customer_id": customer_id, "fields": fields, "base": base})

    def add_phone(self, customer_id: uuid.UUID | str, number: str, kind: str = "mobile") -> uuid.UUID:
        ident = uuid7()
        self.mutate("phone.add", {"id": ident, "customer_id": customer_id, "number": number, "kind": kind})
        return ident

    def add_tag(self, customer_id: uuid.UUID | str, tag: str) -> uuid.UUID:
        ident = uuid7()
        self.mutate("tag.add", {"id": ident, "customer_id": customer_id, "tag": tag})
        return ident

    def remove_tag(self, tag_id: uuid.UUID | str) -> int:
        return self.mutate("tag.remove", {"tag_id": tag_id})

    def log_interaction(self, customer_id: uuid.UUID | str, kind: str, body: str = "", **extra: Any) -> uuid.UUID:
        ident = uuid7()
        self.mutate("interaction.log", {"id": ident, "customer_id": customer_id, "kind": kind, "body": body, **extra})
        return ident

    def log_visit(self, customer_id: uuid.UUID | str, body: str = "") -> uuid.UUID:
        return self.log_interaction(customer_id, "visit", body)

    def create_task(self, title: str, due_at: str, **extra: Any) -> uuid.UUID:
        ident = uuid7()
        self.mutate("task.create", {"id": ident, "title": title, "due_at": due_at, **extra})
        return ident

    def complete_task(self, task_id: uuid.UUID | str) -> int:
        return self.mutate("task.complete", {"task_id": task_id})

    def snooze_task(self, task_id: uuid.UUID | str, until: str) -> int:
        return self.mutate("task.snooze", {"task_id": task_id, "until": until})

    def open_complaint(self, customer_id: uuid.UUID | str, category: str, description: str) -> uuid.UUID:
        """A complaint logged on the phone, opened now (the phone's time goes with it: the service
        clocks run from when the customer complained, not from when the phone was back online)."""
        ident = uuid7()
        self.mutate(
            "complaint.open",
            {
                "id": ident,
                "customer_id": customer_id,
                "category": category,
                "description": description,
                "opened_at": self.now(),
            },
        )
        return ident

    def complaint_step(
        self, complaint_id: uuid.UUID | str, step: str, text: str = "", satisfaction: int | None = None
    ) -> int:
        """One step of the complaint loop (shared/complaints.py), done now."""
        args: dict[str, Any] = {"complaint_id": complaint_id, "step": step, "text": text, "at": self.now()}
        if satisfaction is not None:
            args["satisfaction"] = satisfaction
        return self.mutate("complaint.step", args)

    def create_opportunity(self, customer_id: uuid.UUID | str, title: str, **extra: Any) -> uuid.UUID:
        ident = uuid7()
        self.mutate("opportunity.create", {"id": ident, "customer_id": customer_id, "title": title, **extra})
        return ident

    def update_opportunity(self, opportunity_id: uuid.UUID | str, **fields: Any) -> int:
        return self.mutate("opportunity.update", {"opportunity_id": opportunity_id, **fields})

    def move_opportunity(self, opportunity_id: uuid.UUID | str, stage: str, lost_reason: str | None = None) -> int:
        args: dict[str, Any] = {"opportunity_id": opportunity_id, "stage": stage}
        if lost_reason is not None:
            args["lost_reason"] = lost_reason
        return self.mutate("opportunity.move", args)


def _hlc_time(stamp: str) -> str | None:
    try:
        wall, _, _ = proto.hlc_parse(stamp)
    except ValueError:
        return None
    return times.utc_text(times.from_ms(wall))
