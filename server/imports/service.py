"""Importing customers from CSV and XLSX files: mapping, cleaning, identity resolution, batches.

A file is read as a stream of rows (CSV in UTF-8, UTF-8 with BOM or GBK/GB18030; XLSX through
openpyxl's read-only mode), mapped to fields by a saved template or by the headers' names, and
processed in batches of ``BATCH`` rows, each in one transaction that also moves the job's counters
and ``next_row`` — so a run that stops (a crash, Ctrl-C) resumes at the first batch not committed.

Each row ends as exactly one of:
- **created** — a new customer (with phones, channel identities, tags);
- **updated** — it is a customer we have (same phone, identity or e-mail, and a similar name) and
  brought something new (a phone, an identity, an empty field filled);
- **unchanged** — it is a customer we have and brought nothing new (re-importing a file);
- **merged** — it is a customer we have, recognised without a shared key (name, address, birthday
  scored by :mod:`server.imports.matching`), or it showed that two customers we have are one
  person, who were then merged (reversibly, :mod:`server.imports.merging`);
- **rejected** — kept with its reason in ``import_rejections`` (downloadable), never dropped.

created + updated + unchanged + merged + rejected = the file's rows. Possible duplicates in the
band below automatic merging are queued (``merge_candidates``) for a person to decide.
A dry run does all of it in memory and writes only the job and its rejections.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import csv
import dataclasses
import datetime as dt
import functools
import gc
import hashlib
import io
import itertools
import json
import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from server import db
from server.errors import Conflict, Invalid, NotFound
from server.imports import cleaning, matching, merging
from server.imports.tables import ImportJob
from server.sync.service import allocate_versions, store_scope
from shared import imports as shared_imports
from shared.ids import uuid7, uuid7_texts
from shared.imports import mapping_problem

log = logging.getLogger("floorwalker.imports")

BATCH = 5000
PARALLEL_FROM = 3 * BATCH  # rows from which a file is cleaned in a worker process
AHEAD = 2  # batches the worker cleans ahead of the one being resolved
# Resolving is CPU work on the event loop: it lets the write of the previous batch (a task on
# the same loop) send its next statement this often, or that write would wait for the whole batch.
YIELD_EVERY = 50
KEYS_UP_FRONT_RATIO = 4  # read every key up front when the file has ≥ a quarter as many rows as we have customers
LATE_MARGIN = dt.timedelta(seconds=10)  # clocks of other writers (app servers) may lag a little
IDENTITY_FIELDS = shared_imports.IDENTITY_FIELDS
# The mapping's field → the kind stored in customer_identities (shared.enums.IdentityKind).
IDENTITY_KIND = {
    "pos_member_id": "pos_member",
    "online_shop_id": "online_shop",
    "wechat_unionid": "wechat_unionid",
    "wechat_openid": "wechat_openid",
}
PERSON_FIELDS = (
    "name",
    "phone",
    "phone2",
    "email",
    "address",
    "province",
    "city",
    "district",
    "gender",
    "birthday",
    "store_code",
    "owner_username",
    "notes",
    "tags",
    *IDENTITY_FIELDS,
)


# --- reading files ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Table:
    headers: list[str]
    rows: Iterator[list[str]]
    encoding: str
    total: int


def read_table(data: bytes, file_name: str) -> Table:
    """The header row and a stream of data rows (lists of text) of a CSV or XLSX file."""
    if file_name.lower().endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    text, encoding = cleaning.decode_bytes(data)
    total = max(0, sum(1 for line in text.splitlines() if line.strip()) - 1)
    reader = csv.reader(io.StringIO(text))
    headers = next(reader, [])
    if not any(h.strip() for h in headers):
        raise Invalid("the file has no header row (the first row names the columns)", field="file")
    return Table([h.strip() for h in headers], (r for r in reader if any(c.strip() for c in r)), encoding, total)


def _read_xlsx(data: bytes) -> Table:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # not a workbook, or a damaged one
        raise Invalid(f"not a readable XLSX workbook: {exc}", field="file") from None
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    first = next(rows, None)
    if not first or not any(first):
        raise Invalid("the first sheet has no header row", field="file")

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ")
        if isinstance(value, float) and value.is_integer():
            return str(int(value))  # a phone typed as a number: 13812345678.0
        return str(value)

    total = max(0, (sheet.max_row or 1) - 1)
    data_rows = ([text(v) for v in r] for r in rows if r and any(v not in (None, "") for v in r))
    return Table([text(h).strip() for h in first], data_rows, "xlsx", total)


# --- one row -------------------------------------------------------------------------------------------


class Record(msgspec.Struct, array_like=True):
    """One cleaned row (a msgspec struct: a worker process hands batches of them over as
    MessagePack, read back in C rather than unpickled object by object)."""

    row_number: int
    name: str
    phones: list[tuple[str, str, str]]  # (E.164, digits, kind)
    email: str | None
    province: str
    city: str
    district: str
    address: str
    gender: str | None
    birthday: dt.date | None
    identities: list[tuple[str, str]]
    tags: list[str]
    store_code: str
    owner_username: str
    # Worked out with the cleaning (in the worker process, for big files): the record's
    # matching.search_keys. None: work them out when needed.
    keys: frozenset[str] | None = None

    def person(self, ident: str = "", store_id: str = "") -> matching.Person:
        return matching.Person(
            id=ident,
            name=self.name,
            phones=tuple(p[1] for p in self.phones),
            emails=(self.email,) if self.email else (),
            identities=tuple(self.identities),
            province=self.province,
            city=self.city,
            district=self.district,
            address=self.address,
            birthday=self.birthday.isoformat() if self.birthday else "",
            gender=self.gender or "",
            store_id=store_id,
        )


def clean_row(row_number: int, raw: dict[str, str]) -> Record:
    """A mapped row, cleaned; raises cleaning.Rejected naming the field and why. (Empty cells are
    passed over without cleaning them, and the columns with few values — store, city, tags —
    are cleaned once per value: an import cleans hundreds of thousands of rows.)"""
    get = raw.get
    name = cleaning.clean_name(get("name", ""))
    phones = []
    for field in ("phone", "phone2"):
        value = get(field)
        if not value or cleaning.is_blank_text(cleaning.clean_text(value)):
            continue  # no number here (a row still needs a phone or an identity: checked below)
        try:
            phones.append(cleaning.clean_phone(value))
        except cleaning.Rejected as exc:  # a bad second number too: the row comes back to be fixed, whole
            raise cleaning.Rejected(field, exc.reason.replace("phone", field, 1)) from None
    identities = []
    for field in IDENTITY_FIELDS:
        value = get(field)
        if value and not cleaning.is_blank_text(text := cleaning.clean_text(value)):
            identities.append((IDENTITY_KIND[field], text[:128]))
    if not phones and not identities:
        raise cleaning.Rejected("phone", "phone is empty (and no channel identity): nothing to know the customer by")
    email = cleaning.clean_email(get("email")) if get("email") else None
    address = cleaning.split_address(get("address")) if get("address") else _NO_ADDRESS
    province = _few(get("province") or "") or address.province
    city = _few(get("city") or "") or address.city
    district = _few(get("district") or "") or address.district
    birthday = None
    if get("birthday") and not cleaning.is_blank_marker(raw["birthday"]):
        birthday = cleaning.parse_date(raw["birthday"])
    return Record(
        row_number=row_number,
        name=name,
        phones=list(dict.fromkeys(phones)),
        email=email,
        province=province[:32],
        city=city[:32],
        district=district[:32],
        address=(address.rest or "")[:200],
        gender=cleaning.parse_gender(get("gender")) if get("gender") else None,
        birthday=birthday,
        identities=identities,
        tags=list(_tags(get("tags"))) if get("tags") else [],
        store_code=_few(get("store_code") or ""),
        owner_username=_few(get("owner_username") or ""),
    )


_NO_ADDRESS = cleaning.Address()
# Columns with few values (store codes, cities, tags, reps): each value cleaned once.
_few = functools.lru_cache(maxsize=4096)(cleaning.clean_text)


@functools.lru_cache(maxsize=4096)
def _tags(text: str) -> tuple[str, ...]:
    return tuple(t[:32] for t in [t for t in map(cleaning.clean_text, _split_tags(text)) if t][:10])


def clean_rows(mapped: list[str | None], rows: list[tuple[int, list[str]]]) -> list[Record | tuple[int, str, str]]:
    """Each row (its number and its cells) mapped and cleaned: a Record, or (number, field,
    reason) when it is refused. Pure, so it runs in a worker process for big files."""
    out: list[Record | tuple[int, str, str]] = []
    for number, values in rows:
        fields = {f: values[i] for i, f in enumerate(mapped) if f and i < len(values)}
        try:
            record = clean_row(number, fields)
        except cleaning.Rejected as exc:
            out.append((number, exc.field, exc.reason))
            continue
        record.keys = frozenset(matching.search_keys(record.person()))
        out.append(record)
    return out


def clean_in_worker(mapped: list[str | None], rows: list[tuple[int, list[str]]]) -> bytes:
    """:func:`clean_rows` in a worker process, with a supply of new ids for the rows' customers,
    phones, identities and tags (made there too: CPU work the event loop need not do); as
    MessagePack for :func:`_from_worker`."""
    gc.disable()  # the worker's garbage is freed as it goes (no cycles); its caches need no walking
    cleaned = clean_rows(mapped, rows)
    records = [r for r in cleaned if isinstance(r, Record)]
    refused = [r for r in cleaned if not isinstance(r, Record)]
    wanted = sum(1 + len(r.phones) + len(r.identities) + len(r.tags) for r in records)  # the most they use
    return msgspec.msgpack.encode((records, refused, uuid7_texts(wanted)))


_WORKER_OUTPUT = msgspec.msgpack.Decoder(tuple[list[Record], list[tuple[int, str, str]], list[str]])


def _from_worker(data: bytes) -> tuple[list[Record | tuple[int, str, str]], list[str]]:
    records, refused, ids = _WORKER_OUTPUT.decode(data)
    cleaned: list[Record | tuple[int, str, str]] = [*records, *refused]
    cleaned.sort(key=lambda r: r.row_number if isinstance(r, Record) else r[0])
    return cleaned, ids


def _split_tags(text: str) -> list[str]:
    for sep in ("，", "、", ";", "；", "|"):
        text = text.replace(sep, ",")
    return text.split(",")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- what we know of customers (from the database, and made by this run) ---------------------------------


@dataclasses.dataclass(slots=True)
class Known:
    id: str
    store_id: str
    name: str
    fields: dict[str, Any]  # email, province, city, district, address, gender, birthday
    phones: set[str]  # digits
    identities: set[tuple[str, str]]
    tags: set[str]
    new: bool = False  # made by this run (not in the database before it)
    cached: matching.Person | None = None  # person(), until something changes

    def person(self) -> matching.Person:
        if self.cached is None:
            self.cached = self._person()
        return self.cached

    def _person(self) -> matching.Person:
        birthday = self.fields.get("birthday")
        return matching.Person(
            id=self.id,
            # A placeholder (待补充姓名, 客户 …) is no name to compare: not a conflicting one.
            name="" if not self.new and merging.nameless(self.name) else self.name,
            phones=tuple(sorted(self.phones)),
            emails=(self.fields["email"],) if self.fields.get("email") else (),
            identities=tuple(sorted(self.identities)),
            province=self.fields.get("province") or "",
            city=self.fields.get("city") or "",
            district=self.fields.get("district") or "",
            address=self.fields.get("address") or "",
            birthday=birthday.isoformat() if isinstance(birthday, dt.date) else (birthday or ""),
            gender=self.fields.get("gender") or "",
            store_id=self.store_id,
        )


FILL = ("email", "province", "city", "district", "address", "gender", "birthday")


def _in(values: list[Any]) -> str:
    return ", ".join("{}" for _ in values)


async def _chunks(sql: str, values: list[Any], *extra: Any) -> list[Any]:
    """``sql`` with one ``IN (%s)`` filled by ``values``: on PostgreSQL one array parameter
    (``= ANY``: one statement, prepared once, whatever the count), on SQLite in chunks (its
    parameter limit). Rows are read by column name."""
    if not values:
        return []
    if db.is_postgres():
        kind = "uuid" if isinstance(values[0], uuid.UUID) else "text"
        return await db.fetch_records(sql.replace("IN (%s)", f"= ANY({{}}::{kind}[])"), [values, *extra])
    out: list[dict[str, Any]] = []
    for start in range(0, len(values), 1000):
        chunk = values[start : start + 1000]
        out += await ImportJob.raw(sql % _in(chunk), *chunk, *extra)
    return out


async def load_known(ids: set[str]) -> dict[str, Known]:
    if not ids:
        return {}
    keys = [uuid.UUID(i) for i in ids]
    out: dict[str, Known] = {}
    for r in await _chunks(
        "SELECT id, store_id, name, email, province, city, district, address, gender, birthday FROM customers "
        "WHERE id IN (%s) AND deleted = false",
        keys,
    ):
        birthday = r["birthday"]
        if isinstance(birthday, str):
            birthday = dt.date.fromisoformat(birthday[:10])
        fields = {f: r[f] for f in FILL}
        fields["birthday"] = birthday
        out[str(r["id"])] = Known(str(r["id"]), str(r["store_id"]), r["name"], fields, set(), set(), set())
    for r in await _chunks(
        "SELECT customer_id, digits FROM customer_phones WHERE customer_id IN (%s) AND deleted = false", keys
    ):
        if str(r["customer_id"]) in out:
            out[str(r["customer_id"])].phones.add(r["digits"])
    for r in await _chunks(
        "SELECT customer_id, kind, value FROM customer_identities WHERE customer_id IN (%s) AND deleted = false", keys
    ):
        if str(r["customer_id"]) in out:
            out[str(r["customer_id"])].identities.add((r["kind"], r["value"]))
    for r in await _chunks(
        "SELECT customer_id, tag FROM customer_tags WHERE customer_id IN (%s) AND deleted = false", keys
    ):
        if str(r["customer_id"]) in out:
            out[str(r["customer_id"])].tags.add(r["tag"])
    return out


@dataclasses.dataclass
class KeysInDb:
    """The keys the database's live customers can be found by (what :func:`candidates_in_db`
    looks up), read once when a big import starts: a batch then asks the database only for the
    keys it holds — none, for people new to the chain — instead of probing the indexes 5,000
    times a batch. Customers others add while the import runs are checked at its end
    (:meth:`Importer._late_arrivals`)."""

    phones: set[str]
    values: set[str]
    emails: set[str]
    names: set[str]  # of customers a namesake could be found for (an address or a birthday)


async def keys_in_db() -> KeysInDb:
    async def column(sql: str) -> set[str]:
        return {row[0] for row in await db.fetch_lists(sql, [])}

    return KeysInDb(
        phones=await column("SELECT digits FROM customer_phones WHERE deleted = false"),
        values=await column("SELECT value FROM customer_identities WHERE deleted = false"),
        emails=await column("SELECT email FROM customers WHERE email IS NOT NULL AND deleted = false"),
        names=await column(
            "SELECT DISTINCT name FROM customers WHERE deleted = false AND (address <> '' OR birthday IS NOT NULL)"
        ),
    )


async def candidates_in_db(records: list[Record], present: KeysInDb | None = None) -> set[str]:
    """Customers sharing a blocking key with any of ``records``: a phone, an identity, an e-mail, a
    name (its city checked by the scorer). ``present``: the keys the database holds (only those
    are looked up)."""
    digits = sorted({p[1] for r in records for p in r.phones})
    values = sorted({v for r in records for _, v in r.identities})
    emails = sorted({r.email for r in records if r.email})
    # Names alone are weak keys (张伟 is everywhere): with a city, only that city's namesakes; and
    # only for records a namesake could be found for (with an address or a birthday:
    # matching.search_keys says why).
    # A name is looked up under each spelling that folds like it (王方 finds 王芳: the name keys
    # fold them alike), a city under its spellings with and without 市.
    named = [(r, matching.spellings(r.name)) for r in records if r.name and (r.address or r.birthday)]
    if present is not None:
        digits = [d for d in digits if d in present.phones]
        values = [v for v in values if v in present.values]
        emails = [e for e in emails if e in present.emails]
        named = [(r, [n for n in spelt if n in present.names]) for r, spelt in named]
    names = sorted({n for r, spelt in named if not r.city for n in spelt})
    named_in = sorted({n for r, spelt in named if r.city for n in spelt})
    cities = sorted(
        {c for r, _ in named if r.city for c in (r.city, r.city.removesuffix("市"), r.city.removesuffix("市") + "市")}
        | {""}
    )
    found: set[str] = set()
    if digits:
        found |= {
            str(r["customer_id"])
            for r in await _chunks(
                "SELECT customer_id FROM customer_phones WHERE digits IN (%s) AND deleted = false", digits
            )
        }
    if values:
        kinds = sorted({k for r in records for k, _ in r.identities})  # (kind, value) is indexed
        marks = ", ".join("{}" for _ in kinds)
        found |= {
            str(r["customer_id"])
            for r in await _chunks(
                f"SELECT customer_id FROM customer_identities WHERE value IN (%s) AND kind IN ({marks}) "
                "AND deleted = false",
                values,
                *kinds,
            )
        }
    if emails:
        found |= {
            str(r["id"])
            for r in await _chunks("SELECT id FROM customers WHERE email IN (%s) AND deleted = false", emails)
        }
    if names:
        found |= {str(r["id"]) for r in await _chunks(
            "SELECT id FROM customers WHERE name IN (%s) AND deleted = false", names)}  # fmt: skip
    if named_in:
        marks = ", ".join("{}" for _ in cities)
        found |= {str(r["id"]) for r in await _chunks(
            f"SELECT id FROM customers WHERE name IN (%s) AND city IN ({marks}) AND deleted = false", named_in, *cities
        )}  # fmt: skip
    return found


# --- a run -------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    rejected: int = 0
    review: int = 0

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.merged + self.rejected


@dataclasses.dataclass
class Plan:
    """What one batch writes."""

    customers: list[tuple] = dataclasses.field(default_factory=list)
    phones: list[tuple] = dataclasses.field(default_factory=list)
    identities: list[tuple] = dataclasses.field(default_factory=list)
    tags: list[tuple] = dataclasses.field(default_factory=list)
    fills: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # customer → fields
    merges: list[tuple[str, str, float, tuple[str, ...]]] = dataclasses.field(default_factory=list)
    reviews: list[tuple[str, str, str, float, tuple[str, ...]]] = dataclasses.field(default_factory=list)
    rejections: list[tuple[int, str, str, dict]] = dataclasses.field(default_factory=list)
    orders: list[tuple] = dataclasses.field(
        default_factory=list
    )  # (id, store, customer, channel, sold by, at, payment, ref)
    lines: list[tuple] = dataclasses.field(
        default_factory=list
    )  # (id, store, order, product, category, name, qty, price, amount)


class Importer:
    """One run over one file (customers). ``progress(done, total, counts)`` is told after each batch."""

    def __init__(
        self,
        job: dict[str, Any],
        *,
        stores: dict[str, str],
        users: dict[str, tuple[str, str]],
        progress: Callable[[int, int, Counts], None] | None = None,
        now: dt.datetime | None = None,
        workers: int = 1,
        runner: uuid.UUID | None = None,
    ) -> None:
        self.job = job
        self.runner = runner  # the token each commit checks (run_job)
        self.job_id = uuid.UUID(str(job["id"]))
        self.dry_run = bool(job["dry_run"])
        self.default_store = str(job["store_id"]) if job["store_id"] else None
        self.stores = stores  # code → id
        self.users = users  # username → (id, store id)
        self.progress = progress
        self.now = now or dt.datetime.now(dt.UTC)
        self.counts = Counts(
            **{f: int(job[f]) for f in ("created", "updated", "unchanged", "merged", "rejected", "review")}
        )
        self.known: dict[str, Known] = {}
        self.index: dict[str, set[str]] = {}  # blocking key → customers made or changed by this run
        self.gone: set[str] = set()  # merged away during this run
        self.identity_owner: dict[tuple[str, str], str] = {}  # a channel identity belongs to one customer
        self.queued: set[tuple[str, str]] = set()  # pairs queued for review by this run (lower id first)
        self._ids: collections.deque[str] = collections.deque()
        self.workers = workers
        self.present: KeysInDb | None = None
        self.timings: collections.Counter[str] = collections.Counter()  # seconds by stage (bench/imports.py)
        self.pipelined = False
        self._writing: asyncio.Task | None = None
        self._writing_done: tuple[int, int, Counts] = (0, 0, self.counts)
        self.headers: list[str] = []
        self.columns: dict[str, str | None] = {}

    def _new_id(self) -> str:
        """A fresh UUIDv7 as text (made a few thousand at a time)."""
        try:
            return self._ids.popleft()
        except IndexError:
            self._ids.extend(uuid7_texts(4096))
            return self._ids.popleft()

    def _remember(self, known: Known, keys: Iterable[str] | None = None) -> None:
        """Index ``known`` under its blocking keys (``keys`` when the caller has them already)."""
        self.known[known.id] = known
        index = self.index
        for key in keys if keys is not None else matching.search_keys(known.person()):
            found = index.get(key)
            if found is None:
                index[key] = {known.id}
            else:
                found.add(known.id)
        for identity in known.identities:
            self.identity_owner.setdefault(identity, known.id)

    async def run(self, table: Table, columns: dict[str, str | None]) -> Counts:
        start = int(self.job["next_row"])
        self.headers, self.columns = table.headers, columns
        mapped = [columns.get(h) for h in table.headers]
        batches = self._batches(table, start)
        number = start
        # Big customer files: the cleaning runs in a worker process a batch or two ahead, and each
        # batch's writes (PostgreSQL) overlap the next batch's resolution. Order files, small files
        # and SQLite (one writer) go one batch after the other.
        pool = None
        if type(self) is Importer and table.total - start >= PARALLEL_FROM and self.workers:
            pool = _cleaning_pool(self.workers)
        self.pipelined = pool is not None and db.is_postgres()
        since = dt.datetime.now(dt.UTC) - LATE_MARGIN
        if pool is not None and await self._worth_reading_keys(table.total - start):
            started = time.perf_counter()
            self.present = await keys_in_db()
            self.timings["reading the keys in the database"] += time.perf_counter() - started
        ahead: collections.deque = collections.deque()
        try:
            if pool is None:
                for batch in batches:
                    number = batch[-1][0]
                    await self._batch(batch, number, table.total, None)
            else:
                loop = asyncio.get_running_loop()
                for batch in itertools.islice(batches, AHEAD):
                    ahead.append((batch, loop.run_in_executor(pool, clean_in_worker, mapped, batch)))
                while ahead:
                    batch, cleaned = ahead.popleft()
                    following = next(batches, None)
                    if following is not None:
                        ahead.append((following, loop.run_in_executor(pool, clean_in_worker, mapped, following)))
                    number = batch[-1][0]
                    waited = time.perf_counter()
                    rows, ids = _from_worker(await cleaned)
                    self._ids.extend(ids)
                    self.timings["waiting for cleaning"] += time.perf_counter() - waited
                    await self._batch(batch, number, table.total, rows)
                    # What this run knows grows by a batch of long-lived objects each time: the
                    # cyclic collector would walk all of them again and again (a third of the
                    # time of a big import). Frozen, it leaves them be (unfrozen when it ends).
                    gc.freeze()
            await self._drain()
            if self.present is not None and not self.dry_run:
                await self._late_arrivals(since, number, table.total)
        finally:
            if pool is not None:
                gc.unfreeze()
            if self._writing is not None and not self._writing.done():
                self._writing.cancel()
            for _, cleaning_ahead in ahead:  # stopped half-way: the worker drops what is queued
                cleaning_ahead.cancel()
            if pool is not None:
                await _release_pool(self.workers)
        async with db.transaction():
            await self._record(
                "status = 'done', finished_at = {}, total_rows = {}",
                dt.datetime.now(dt.UTC),
                max(number, int(self.job["next_row"])),
            )
            await ImportJob.raw("DELETE FROM import_files WHERE job_id = {}", self.job_id)
        return self.counts

    async def _worth_reading_keys(self, rows: int) -> bool:
        """Whether to read every key up front: when the file is big next to the customers we have
        (reading 500,000 customers' keys for a file of 6,000 rows costs more than it saves)."""
        have = (await ImportJob.raw("SELECT count(*) AS n FROM customers WHERE deleted = false"))[0]["n"]
        return rows * KEYS_UP_FRONT_RATIO >= int(have)

    async def _late_arrivals(self, since: dt.datetime, last: int, total: int) -> None:
        """Customers someone else made or changed while the import ran (a rep on the shop floor)
        were not in the keys read at its start: each is resolved against the customers this run
        made, and a possible duplicate goes to the review queue (a person decides: the import
        does not merge what it did not see when it decided)."""
        rows = await ImportJob.raw(
            "SELECT id FROM customers WHERE updated_at >= {} AND updated_at <> {} AND deleted = false",
            since,
            self.now,  # what this run wrote carries its time
        )
        others = {str(r["id"]) for r in rows} - self.known.keys()
        if not others:
            return
        plan = Plan()
        for other in (await load_known(others)).values():
            person = other.person()
            ids: set[str] = set()
            for key in matching.search_keys(person):
                ids |= self.index.get(key, set())
            mine = [self.known[i] for i in ids if self.known[i].new and i not in self.gone]
            if not mine:
                continue
            target, match, review = matching.resolve(person, [m.person() for m in mine])
            pairs = [(target, match), *review] if target is not None and match is not None else review
            for made, m in pairs:
                if self.known[made.id].store_id == other.store_id:
                    self._queue(plan, other.store_id, other.id, made.id, m)
        if plan.reviews:
            await self._commit(plan, last, dataclasses.replace(self.counts))

    def _batches(self, table: Table, start: int) -> Iterator[list[tuple[int, list[str]]]]:
        """The file's rows after ``start`` (done by an earlier run of this job), BATCH at a time."""
        batch: list[tuple[int, list[str]]] = []
        for number, values in enumerate(table.rows, start=1):
            if number <= start:
                continue
            batch.append((number, values))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _original(self, values: list[str]) -> dict[str, str]:
        """A row as it was in the file, header → cell (kept with a rejection)."""
        return {h: (values[i] if i < len(values) else "") for i, h in enumerate(self.headers)}

    async def _batch(
        self,
        batch: list[tuple[int, list[str]]],
        last: int,
        total: int,
        cleaned: list[Record | tuple[int, str, str]] | None,
    ) -> None:
        plan = Plan()
        records: list[Record] = []
        if cleaned is None:
            started = time.perf_counter()
            cleaned = clean_rows([self.columns.get(h) for h in self.headers], batch)
            self.timings["cleaning"] += time.perf_counter() - started
        for (number, values), record in zip(batch, cleaned, strict=True):
            if isinstance(record, tuple):
                plan.rejections.append((number, record[1], record[2], self._original(values)))
                continue
            try:
                if record.store_code and record.store_code not in self.stores:
                    raise cleaning.Rejected("store_code", f"no store with code {record.store_code!r}")
                if not record.store_code and self.default_store is None:
                    raise cleaning.Rejected("store_code", "no store: give a store column or choose the import's store")
                if record.owner_username:
                    owner = self.users.get(record.owner_username)
                    store = self.stores.get(record.store_code) if record.store_code else self.default_store
                    if owner is None or owner[1] != store:
                        raise cleaning.Rejected(
                            "owner_username", f"no rep {record.owner_username!r} in the customer's store"
                        )
                records.append(record)
            except cleaning.Rejected as exc:
                plan.rejections.append((number, exc.field, exc.reason, self._original(values)))
        started = time.perf_counter()
        async with db.reading(db.PROBES):
            in_db = await candidates_in_db(records, self.present)
            loaded = await load_known(in_db - self.known.keys() - self.gone)
        self.timings["reading candidates"] += time.perf_counter() - started
        started = time.perf_counter()
        for known in loaded.values():
            self._remember(known)
        for n, record in enumerate(records, start=1):
            self._decide(record, plan)
            if self.pipelined and n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the previous batch's write sends its next statement
        self.timings["resolving"] += time.perf_counter() - started
        await self._write(plan, last, total)

    def _decide(self, record: Record, plan: Plan) -> None:
        _, outcome = self._resolve(record, plan)
        setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)

    def _resolve(self, record: Record, plan: Plan, *, may_create: bool = True) -> tuple[Known | None, str]:
        """The customer the record is (found, or made): with created | updated | unchanged | merged."""
        keys = record.keys if record.keys is not None else matching.search_keys(record.person())
        index, known, gone = self.index, self.known, self.gone
        ids: set[str] = set()
        for key in keys:
            found = index.get(key)
            if found:
                ids |= found
        candidates = [known[i] for i in ids if i in known and i not in gone]
        if not candidates:
            target, review = None, []
        else:
            person = record.person()
            target, _match, review = matching.resolve(person, [c.person() for c in candidates])
        if target is None:
            if not may_create:
                return None, "rejected"
            made = self._create(record, plan, keys)
            for other, m in review:
                if known[other.id].store_id == made.store_id:
                    self._queue(plan, made.store_id, other.id, made.id, m)
            return made, "created"
        existing = known[target.id]
        strong = _shares(existing, record)
        changed = self._attach(existing, record, plan)
        # Other customers this row proves to be the same person (scored at merge level by
        # matching.resolve): merged into the target. Those it resembles (the review band): for a
        # person to decide against the target — when the row brought the target something (a row
        # that brings nothing is what the target was when the pair was last looked at: a second
        # import of a file queues nothing).
        folded = False
        for other_person, m in review:
            other = known[other_person.id]
            if other.id in gone or other.store_id != existing.store_id:
                continue
            if m.decision == "merge" and not other.new:
                plan.merges.append((existing.id, other.id, m.score, m.reasons))
                gone.add(other.id)
                folded = True
            elif m.decision == "merge" or changed:
                self._queue(plan, existing.store_id, existing.id, other.id, m)
        if existing.cached is None:  # it took something new (person() was cached as a candidate above)
            self._remember(existing)
        if folded or not strong:
            return existing, "merged"
        return existing, "updated" if changed else "unchanged"

    def _queue(self, plan: Plan, store: str, a: str, b: str, m: matching.Match) -> None:
        """Queue the pair (a, b) for a person to decide, once a run whichever way round (a pair
        queued before, or decided, is left as it is: :func:`_unqueued`)."""
        pair = (a, b) if a < b else (b, a)
        if pair in self.queued:
            return
        self.queued.add(pair)
        plan.reviews.append((store, a, b, m.score, m.reasons))
        self.counts.review += 1

    def _store_of(self, record: Record) -> str:
        return self.stores[record.store_code] if record.store_code else str(self.default_store)

    def _create(self, record: Record, plan: Plan, keys: Iterable[str] | None = None) -> Known:
        """A new customer from ``record`` (``keys``: the record's blocking keys, when known)."""
        ident = self._new_id()
        store = self._store_of(record)
        owner = self.users[record.owner_username][0] if record.owner_username else None
        fields = {
            "email": record.email,
            "province": record.province,
            "city": record.city,
            "district": record.district,
            "address": record.address,
            "gender": record.gender,
            "birthday": record.birthday,
        }
        plan.customers.append((ident, store, owner, record.name, fields))
        known = Known(ident, store, record.name, fields, set(), set(), set(), new=True)
        for n, (number, digits, kind) in enumerate(record.phones):
            plan.phones.append((self._new_id(), store, ident, number, digits, kind, n == 0))
            known.phones.add(digits)
        taken = []
        for kind, value in record.identities:
            if not self._identity_taken(kind, value):
                plan.identities.append((self._new_id(), store, ident, kind, value))
                known.identities.add((kind, value))
            else:
                taken.append(matching.identity_key(kind, value))
        for tag in record.tags:
            plan.tags.append((self._new_id(), store, ident, tag))
            known.tags.add(tag)
        if keys is not None and taken:  # an identity someone else has is not this customer's key
            keys = set(keys) - set(taken)
        self._remember(known, keys)
        return known

    def _identity_taken(self, kind: str, value: str) -> bool:
        return (kind, value) in self.identity_owner

    def _attach(self, existing: Known, record: Record, plan: Plan) -> bool:
        """What the row brings to a customer we have; whether anything changed."""
        changed = False
        for number, digits, kind in record.phones:
            if digits not in existing.phones:
                plan.phones.append((self._new_id(), existing.store_id, existing.id, number, digits, kind, False))
                existing.phones.add(digits)
                changed = True
        for kind, value in record.identities:
            if (kind, value) not in existing.identities and not self._identity_taken(kind, value):
                plan.identities.append((self._new_id(), existing.store_id, existing.id, kind, value))
                existing.identities.add((kind, value))
                changed = True
        for tag in record.tags:
            if tag not in existing.tags:
                plan.tags.append((self._new_id(), existing.store_id, existing.id, tag))
                existing.tags.add(tag)
                changed = True
        values = {
            "email": record.email,
            "province": record.province,
            "city": record.city,
            "district": record.district,
            "address": record.address,
            "gender": record.gender,
            "birthday": record.birthday,
        }
        for field, value in values.items():
            if value not in (None, "") and existing.fields.get(field) in (None, ""):
                existing.fields[field] = value
                existing.cached = None
                if existing.new:  # not written yet: the insert carries it
                    continue
                plan.fills.setdefault(existing.id, {})[field] = value
                changed = True
        if record.name and not existing.new and existing.name != record.name and merging.nameless(existing.name):
            # A customer we know only by a placeholder (an order file's 待补充姓名, 客户, a number)
            # takes the real name a row brings. (Customers this run makes always have one.)
            existing.name = record.name
            plan.fills.setdefault(existing.id, {})["name"] = record.name
            changed = True
        if changed:
            existing.cached = None
        return changed

    async def _write(self, plan: Plan, last: int, total: int) -> None:
        """Write one batch with the job's counters and position, in one transaction. Pipelined,
        the previous batch's write is awaited first (so batches commit in order, and a failed
        write stops the run) and this one goes on while the caller resolves the next batch."""
        self.counts.rejected += len(plan.rejections)
        counts = dataclasses.replace(self.counts)  # as of this batch: what resume starts from
        started = time.perf_counter()
        if not self.pipelined:
            await self._commit(plan, last, counts)
            self.timings["writing"] += time.perf_counter() - started
            self._told(last, total, counts)
            return
        await self._drain()
        self.timings["waiting for the previous write"] += time.perf_counter() - started
        self._writing = asyncio.get_running_loop().create_task(self._commit(plan, last, counts))
        self._writing_done = (last, total, counts)

    async def _drain(self) -> None:
        """Wait for the write under way; then tell the caller's ``progress`` (from this task, not
        the write's: a Ctrl-C it raises stops the run here, after the write committed)."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing
            self._told(*self._writing_done)

    def _told(self, last: int, total: int, counts: Counts) -> None:
        if self.progress:
            self.progress(last, total, counts)

    async def _commit(self, plan: Plan, last: int, c: Counts) -> None:
        async with db.transaction():
            if db.is_postgres():
                # A batch that a crash loses is a batch the job has not counted either (its position
                # commits with it): resume does it again. So the commit need not wait for the disk.
                await ImportJob.raw("SET LOCAL synchronous_commit = off")
            if plan.reviews:
                fresh = await _unqueued(plan.reviews)
                c.review -= len(plan.reviews) - len(fresh)  # the job counts what it queued
                self.counts.review -= len(plan.reviews) - len(fresh)
                plan.reviews = fresh
            if not self.dry_run:
                await self._write_rows(plan)
            rejections = [
                (uuid7(), self.job_id, number, field[:40], reason, json.dumps(raw, ensure_ascii=False))
                for number, field, reason, raw in plan.rejections
            ]
            await db.insert_many(
                "import_rejections", ("id", "job_id", "row_number", "field", "reason", "raw"), rejections
            )
            await self._record(
                "next_row = {}, created = {}, updated = {}, unchanged = {}, merged = {}, rejected = {}, review = {}",
                last, c.created, c.updated, c.unchanged, c.merged, c.rejected, c.review,
            )  # fmt: skip

    async def _record(self, sets: str, *values: Any) -> None:
        """Update the job (and its heartbeat) while it is this runner's: else the batch is rolled
        back and the run stops (another runner resumed the job, taking it for stopped)."""
        now = dt.datetime.now(dt.UTC)
        fence = "runner = {}" if self.runner is not None else "runner IS NULL"
        done = await ImportJob.raw(
            f"UPDATE import_jobs SET {sets}, heartbeat_at = {{}} WHERE id = {{}} AND {fence} RETURNING id",
            *values, now, self.job_id, *([self.runner] if self.runner is not None else []),
        )  # fmt: skip
        if not done:
            raise Superseded(f"import {self.job_id} is run by another runner now")

    async def _write_orders(self, plan: Plan, counters: dict[str, Iterator[int]]) -> None:
        raise NotImplementedError  # only order files have orders

    async def _write_rows(self, plan: Plan) -> None:
        now = self.now
        per_store: dict[str, int] = {}
        for rows in (plan.customers, plan.phones, plan.identities, plan.tags, plan.orders, plan.lines):
            for row in rows:
                per_store[row[1]] = per_store.get(row[1], 0) + 1
        for ident in plan.fills:
            store = self.known[ident].store_id
            per_store[store] = per_store.get(store, 0) + 1
        for store, _, _, _, _ in plan.reviews:
            per_store.setdefault(store, 0)
        counters: dict[str, Iterator[int]] = {}
        for store, count in sorted(per_store.items()):
            if count:
                last = await allocate_versions(store_scope(uuid.UUID(store)), count)
                counters[store] = iter(range(last - count + 1, last + 1))
        await _copy(
            "customers",
            ("id", "version", "deleted", "updated_at", "store_id", "owner_id", "name", "gender", "birthday", "email",
             "province", "city", "district", "address", "consents", "field_clocks", "created_at"),
            [
                (i, next(counters[s]), False, now, s, o, name,
                 f["gender"], f["birthday"], f["email"], f["province"] or "", f["city"] or "", f["district"] or "",
                 f["address"] or "", "{}", "{}", now)
                for i, s, o, name, f in plan.customers
            ],
        )  # fmt: skip
        await _copy(
            "customer_phones",
            ("id", "version", "deleted", "updated_at", "store_id", "customer_id", "number", "digits", "kind",
             "is_primary", "created_at"),
            [(i, next(counters[s]), False, now, s, c, n, d, k, p, now)
             for i, s, c, n, d, k, p in plan.phones],
        )  # fmt: skip
        await _copy_identities(
            ("id", "version", "deleted", "updated_at", "store_id", "customer_id", "kind", "value", "created_at"),
            [(i, next(counters[s]), False, now, s, c, k, v, now)
             for i, s, c, k, v in plan.identities],
        )  # fmt: skip
        await _copy(
            "customer_tags",
            ("id", "version", "deleted", "updated_at", "store_id", "customer_id", "tag", "created_at"),
            [(i, next(counters[s]), False, now, s, c, t, now)
             for i, s, c, t in plan.tags],
        )  # fmt: skip
        if plan.orders or plan.lines:
            await self._write_orders(plan, counters)
        for ident, fields in plan.fills.items():
            sets = ", ".join(f"{f} = {{}}" for f in fields)
            await ImportJob.raw(
                f"UPDATE customers SET {sets}, version = {{}}, updated_at = {{}} WHERE id = {{}}",
                *fields.values(),
                next(counters[self.known[ident].store_id]),
                now,
                uuid.UUID(ident),
            )
        for survivor, merged, score, reasons in plan.merges:
            await merging.merge(
                uuid.UUID(survivor),
                uuid.UUID(merged),
                decided_by=f"import:{self.job_id}",
                score=score,
                reasons=list(reasons),
                now=now,
            )
        await db.insert_many(
            "merge_candidates",
            ("id", "store_id", "customer_a", "customer_b", "score", "reasons", "job_id", "status", "created_at"),
            [(uuid7(), uuid.UUID(store), uuid.UUID(a), uuid.UUID(b), float(score),
              json.dumps(list(reasons), ensure_ascii=False), self.job_id, "open", now)
             for store, a, b, score, reasons in plan.reviews],
            on_conflict=("customer_a", "customer_b"),
        )  # fmt: skip


_pools: dict[int, concurrent.futures.ProcessPoolExecutor] = {}
_pool_users: collections.Counter[int] = collections.Counter()


@atexit.register
def _shut_pools() -> None:
    for pool in _pools.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _pools.clear()
    _pool_users.clear()


def _cleaning_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """Worker processes for cleaning (started with "spawn": the importer may run inside the API
    server, whose event loop and connections a forked child must not share), shared by the imports
    running at once in this process; each gives it back with :func:`_release_pool`."""
    pool = _pools.get(workers)
    if pool is None or getattr(pool, "_broken", False):
        pool = _pools[workers] = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
    _pool_users[workers] += 1
    return pool


async def _release_pool(workers: int) -> None:
    """The last import using the workers stops them (an API server keeps no idle worker of about
    100 MB between imports; starting one costs a second, next to a file of thousands of rows)."""
    _pool_users[workers] -= 1
    if _pool_users[workers] > 0:
        return
    del _pool_users[workers]
    pool = _pools.pop(workers, None)
    if pool is not None:
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


async def _copy_identities(columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Channel identities are unique (kind, value). One that someone else gave a customer after
    this run looked (a rep, a feed; with the keys read up front, after the run started) would fail
    the whole batch: it is left to its owner instead, and the run's end check (late arrivals)
    finds the two customers by it for a person to decide."""
    if not rows:
        return
    if not db.is_postgres():
        await db.insert_many("customer_identities", columns, rows, on_conflict=("kind", "value"))
        return
    connection = db.engine().current_transaction.get().connection
    try:
        async with connection.transaction():  # a savepoint: the COPY alone is undone
            await _copy("customer_identities", columns, rows)
    except asyncpg.UniqueViolationError:
        await db.insert_many("customer_identities", columns, rows, on_conflict=("kind", "value"))


async def _unqueued(reviews: list[tuple[str, str, str, float, tuple[str, ...]]]) -> list:
    """The review pairs not in the queue yet, either way round (a pair queued by an earlier run,
    or one a person has decided, is not asked again)."""
    ids = sorted({uuid.UUID(i) for _, a, b, _, _ in reviews for i in (a, b)})
    there = {
        frozenset((str(r["customer_a"]), str(r["customer_b"])))
        for r in await _chunks("SELECT customer_a, customer_b FROM merge_candidates WHERE customer_a IN (%s)", ids)
    }
    return [r for r in reviews if frozenset((r[1], r[2])) not in there]


async def _copy(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """COPY on PostgreSQL (ids may be given as text: both drivers take UUIDs written out)."""
    await db.insert_many(table, columns, rows, copy=True)


def _shares(known: Known, record: Record) -> bool:
    """A key both have exactly: a phone, a channel identity or an e-mail."""
    return bool(
        known.phones & {p[1] for p in record.phones}
        or known.identities & set(record.identities)
        or (record.email and known.fields.get("email") == record.email)
    )


# --- jobs ------------------------------------------------------------------------------------------------


async def _stores_and_users() -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    stores = {r["code"]: str(r["id"]) for r in await ImportJob.raw("SELECT id, code FROM stores WHERE deleted = false")}
    users = {
        r["username"]: (str(r["id"]), str(r["store_id"]))
        for r in await ImportJob.raw("SELECT id, username, store_id FROM users WHERE active = true AND deleted = false")
    }
    return stores, users


async def mapping_for(name: str | None, headers: list[str], kind: str) -> tuple[dict[str, str | None], str]:
    """The template's columns (by name), else the suggestion from the headers; and its name."""
    if name:
        rows = await ImportJob.raw("SELECT columns, kind FROM import_mappings WHERE name = {}", name)
        if not rows:
            raise NotFound(f"no mapping template named {name!r}")
        columns = rows[0]["columns"]
        columns = columns if isinstance(columns, dict) else json.loads(columns)
        return {h: columns.get(h) for h in headers}, name
    return cleaning.suggest_mapping(headers, kind), ""


def check_mapping(columns: dict[str, str | None], kind: str) -> None:
    """Refuse a mapping that cannot run, saying why (the rule: shared.imports.mapping_problem,
    which the app also checks while the columns are mapped)."""
    known = list(cleaning.TARGET_FIELDS[kind])
    found = mapping_problem(columns, kind, known)
    if found is None:
        return
    problem, field = found
    message = {
        "unknown": f"unknown field {field!r} in the mapping; fields are {', '.join(sorted(known))}",
        "twice": f"two columns are mapped to {field!r}",
        "missing": f"no column is mapped to {field}"
        if kind == "orders"
        else "no column is mapped to the customer's name",
        "no_amount": "no column is mapped to an amount or a unit price",
        "no_contact": "no column is mapped to a phone or a channel identity",
    }[problem]
    raise Invalid(message, field="columns")


async def create_job(
    data: bytes,
    file_name: str,
    *,
    kind: str = "customers",
    mapping: str | None = None,
    columns: dict[str, str | None] | None = None,
    store_code: str | None = None,
    dry_run: bool = False,
    source: str = "excel",
    created_by: uuid.UUID | None = None,
    keep_file: bool = False,
) -> tuple[dict[str, Any], Table, dict[str, str | None]]:
    """A job for ``data`` (not run yet: :func:`run_job`). ``keep_file``: the file is kept with the job
    until it is done, so that another process can resume it (:func:`resume_stale`): imports
    started from the app (the command line has the file, and resumes with ``--resume``)."""
    if kind not in ("customers", "orders"):
        raise Invalid("kind is customers or orders", field="kind")
    table = read_table(data, file_name)
    if columns is None:
        columns, mapping = await mapping_for(mapping, table.headers, kind)
    else:
        columns = {h: columns.get(h) for h in table.headers}
    check_mapping(columns, kind)
    stores, _ = await _stores_and_users()
    store_id = None
    if store_code:
        if store_code not in stores:
            raise Invalid(f"no store with code {store_code!r}", field="store")
        store_id = uuid.UUID(stores[store_code])
    job_id = uuid7()
    now = dt.datetime.now(dt.UTC)
    await ImportJob.raw(
        "INSERT INTO import_jobs (id, kind, source, file_name, file_sha256, encoding, columns, mapping_name, store_id, "
        "dry_run, status, total_rows, next_row, created, updated, unchanged, merged, rejected, review, error, "
        "created_by_id, created_at, heartbeat_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 'running', {}, 0, 0, "
        "0, 0, 0, 0, 0, '', {}, {}, {})",
        job_id, kind, source, file_name[:200], _sha256(data), table.encoding,
        json.dumps(columns, ensure_ascii=False), mapping or "", store_id, dry_run, table.total, created_by,
        now, now,  # a fresh job is nobody's to resume (its runner starts now)
    )  # fmt: skip
    if keep_file:
        await ImportJob.raw("INSERT INTO import_files (job_id, data) VALUES ({}, {})", job_id, data)
    return await job(job_id), table, columns


async def job(job_id: uuid.UUID) -> dict[str, Any]:
    """The job's row, with ``kept``: whether its file is kept (started from the app, not done)."""
    rows = await ImportJob.raw(
        "SELECT j.*, EXISTS (SELECT 1 FROM import_files f WHERE f.job_id = j.id) AS kept FROM import_jobs j "
        "WHERE j.id = {}",
        job_id,
    )
    if not rows:
        raise NotFound(f"import {job_id} not found")
    return rows[0]


async def run_job(
    job_row: dict[str, Any],
    table: Table,
    progress: Callable[[int, int, Counts], None] | None = None,
    timings: collections.Counter[str] | None = None,
    *,
    runner: uuid.UUID | None = None,
) -> Counts:
    """Run a job made by :func:`create_job`; ``timings`` (if given) receives seconds by stage.
    ``runner``: the token a caller claimed the job with (:func:`resume_stale`); else the job is
    claimed here. Each batch commits only while the job is still this runner's (:class:`Superseded`).

    A run that is cancelled (its server stops) stays ``running``: its heartbeat goes stale and the
    scheduler's leader resumes it when the file was kept. Any other stop — an error, a Ctrl-C —
    marks it ``failed`` with the reason (a person resumes it)."""
    if runner is None:
        runner = uuid7()
        await ImportJob.raw(
            "UPDATE import_jobs SET runner = {}, heartbeat_at = {} WHERE id = {}",
            runner, dt.datetime.now(dt.UTC), uuid.UUID(str(job_row["id"])),
        )  # fmt: skip
    stores, users = await _stores_and_users()
    columns = job_row["columns"] if isinstance(job_row["columns"], dict) else json.loads(job_row["columns"])
    kind = OrderImporter if job_row["kind"] == "orders" else Importer
    importer = kind(job_row, stores=stores, users=users, progress=progress, runner=runner)
    try:
        counts = await importer.run(table, columns)
        if timings is not None:
            timings.update(importer.timings)
        return counts
    except (asyncio.CancelledError, Superseded):
        raise  # left running (resumed later), or taken over (the other runner goes on)
    except BaseException as exc:
        await ImportJob.raw(
            "UPDATE import_jobs SET status = 'failed', error = {} WHERE id = {} AND runner = {}",
            f"{type(exc).__name__}: {exc}"[:2000],
            importer.job_id,
            runner,
        )
        raise


class Superseded(Exception):
    """Another runner took this import over (this one was thought stopped): its batch is rolled back."""


STALE_AFTER = dt.timedelta(minutes=2)  # a runner commits a batch every few seconds


async def resume_stale(now: dt.datetime | None = None) -> int:
    """Resume the imports whose runner stopped — an API server restarted or died mid-file: still
    ``running``, no batch committed for STALE_AFTER, the file kept. Each is claimed first (one
    resumer only, however many ask), then run from its position. Answers how many it resumed."""
    now = now or dt.datetime.now(dt.UTC)
    rows = await ImportJob.raw(
        "SELECT j.id FROM import_jobs j JOIN import_files f ON f.job_id = j.id WHERE j.status = 'running' "
        "AND (j.heartbeat_at IS NULL OR j.heartbeat_at < {}) ORDER BY j.created_at",
        now - STALE_AFTER,
    )
    resumed = 0
    for row in rows:
        runner = uuid7()
        claimed = await ImportJob.raw(
            "UPDATE import_jobs SET runner = {}, heartbeat_at = {} WHERE id = {} AND status = 'running' "
            "AND (heartbeat_at IS NULL OR heartbeat_at < {}) RETURNING id",
            runner, dt.datetime.now(dt.UTC), row["id"], now - STALE_AFTER,
        )  # fmt: skip
        if not claimed:
            continue  # someone else took it
        job_row = await job(row["id"])
        log.info("resuming import %s (%s) from row %s", job_row["id"], job_row["file_name"], job_row["next_row"])
        try:
            await run_job(job_row, read_table(await _kept_file(row["id"]), job_row["file_name"]), runner=runner)
        except Superseded:
            continue
        except Exception:  # marked failed with the reason; the next job is resumed all the same
            log.exception("resumed import %s failed", job_row["id"])
        resumed += 1
    return resumed


async def _kept_file(job_id: Any) -> bytes:
    rows = await ImportJob.raw("SELECT data FROM import_files WHERE job_id = {}", job_id)
    if not rows:
        raise Invalid("the file of this import was not kept (it was started from the command line)", field="job")
    return bytes(rows[0]["data"])


async def claim_to_resume(job_id: uuid.UUID) -> tuple[dict[str, Any], Table, uuid.UUID]:
    """Claim a failed (or stopped) import started from the app to resume it from its position:
    the job, its file and the runner token (a running import whose runner is alive is refused)."""
    row = await job(job_id)
    if row["status"] == "done":
        raise Conflict("this import is finished")
    data = await _kept_file(job_id)
    runner = uuid7()
    now = dt.datetime.now(dt.UTC)
    claimed = await ImportJob.raw(
        "UPDATE import_jobs SET status = 'running', error = '', runner = {}, heartbeat_at = {} WHERE id = {} "
        "AND (status = 'failed' OR heartbeat_at IS NULL OR heartbeat_at < {}) RETURNING id",
        runner, now, job_id, now - STALE_AFTER,
    )  # fmt: skip
    if not claimed:
        raise Conflict("this import is running")
    return await job(job_id), read_table(data, row["file_name"]), runner


async def resume(
    job_id: uuid.UUID, data: bytes, file_name: str, progress: Callable[[int, int, Counts], None] | None = None
) -> Counts:  # the command line's --resume
    """Go on with a job that stopped, from its first uncommitted batch (the same file only)."""
    row = await job(job_id)
    if row["file_sha256"] != _sha256(data):
        raise Invalid("this is not the file the import started with (its SHA-256 differs)", field="file")
    if row["status"] == "done":
        raise Invalid("this import is finished", field="job")
    await ImportJob.raw("UPDATE import_jobs SET status = 'running', error = '' WHERE id = {}", job_id)
    return await run_job(await job(job_id), read_table(data, file_name), progress)


async def import_bytes(data: bytes, file_name: str, **options: Any) -> tuple[dict[str, Any], Counts]:
    progress = options.pop("progress", None)
    timings = options.pop("timings", None)
    job_row, table, _ = await create_job(data, file_name, **options)
    counts = await run_job(job_row, table, progress, timings)
    return await job(job_row["id"]), counts


async def rejections_csv(job_id: uuid.UUID) -> str:
    """The rejected rows as they were in the file, with 行号 row, 字段 field and the reason, in English
    (原因 reason) and in Chinese (原因（中文）), first (UTF-8 with BOM, so Excel opens it in Chinese)."""
    from shared.import_reasons import zh

    row = await job(job_id)
    headers = list((row["columns"] if isinstance(row["columns"], dict) else json.loads(row["columns"])).keys())
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(["行号 row", "字段 field", "原因 reason", "原因（中文）", *headers])
    for r in await ImportJob.raw(
        "SELECT row_number, field, reason, raw FROM import_rejections WHERE job_id = {} ORDER BY row_number", job_id
    ):
        raw = r["raw"] if isinstance(r["raw"], dict) else json.loads(r["raw"])
        writer.writerow([r["row_number"], r["field"], r["reason"], zh(r["reason"]), *[raw.get(h, "") for h in headers]])
    return out.getvalue()


def read_file(path: Path) -> bytes:
    return path.read_bytes()


# --- order files -------------------------------------------------------------------------------------

CHANNELS = {
    "store": ("门店", "线下", "实体店", "pos", "store", "offline", "店铺"),
    "online": (
        "网店",
        "线上",
        "网上",
        "电商",
        "淘宝",
        "天猫",
        "京东",
        "拼多多",
        "online",
        "ecommerce",
        "e-commerce",
        "web",
    ),
    "mini_program": ("小程序", "微信小程序", "mini program", "mini_program", "miniprogram", "wechat"),
}
SOURCE_CHANNEL = {"pos": "store", "online_shop": "online", "wechat": "mini_program"}
PAYMENTS = {
    "wechat_pay": ("微信", "微信支付", "wechat", "wechat pay", "wechat_pay", "wxpay"),
    "alipay": ("支付宝", "alipay", "花呗"),
    "unionpay": ("银联", "云闪付", "unionpay"),
    "card": ("刷卡", "银行卡", "信用卡", "借记卡", "card", "pos刷卡", "credit card"),
    "cash": ("现金", "cash"),
    "installment": ("分期", "分期付款", "installment"),
}


def _lookup(table: dict[str, tuple[str, ...]], text: str) -> str | None:
    key = cleaning.clean_text(text).lower()
    return next((code for code, words in table.items() if key == code or key in words), None)


@dataclasses.dataclass
class OrderRow:
    ref: str
    ordered_at: dt.datetime
    channel: str
    payment: str
    product_name: str
    sku: str
    category: str
    quantity: int
    unit_price: Any
    amount: Any


def clean_order_row(raw: dict[str, str], source: str) -> OrderRow:
    from decimal import Decimal

    ref = cleaning.clean_text(raw.get("order_ref", ""))
    if cleaning.is_blank_marker(ref):
        raise cleaning.Rejected("order_ref", "order number is empty")
    if len(ref) > 48:
        raise cleaning.Rejected("order_ref", "order number is longer than 48 characters")
    ordered_at = cleaning.parse_datetime(raw.get("ordered_at"))
    if ordered_at is None:
        raise cleaning.Rejected("ordered_at", "order date is empty")
    if ordered_at > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        raise cleaning.Rejected("ordered_at", "order date is in the future")
    channel = SOURCE_CHANNEL.get(source, "store")
    if cleaning.clean_text(raw.get("channel", "")):
        channel = _lookup(CHANNELS, raw["channel"]) or ""
        if not channel:
            raise cleaning.Rejected("channel", f"unknown channel {raw['channel']!r}: store, online or mini program")
    payment = "card"  # a file without payments: recorded as card (the commonest in the stores)
    if cleaning.clean_text(raw.get("payment", "")):
        payment = _lookup(PAYMENTS, raw["payment"]) or ""
        if not payment:
            raise cleaning.Rejected("payment", f"unknown payment method {raw['payment']!r}")
    quantity = 1
    if cleaning.clean_text(raw.get("quantity", "")):
        try:
            quantity = int(Decimal(cleaning.clean_text(raw["quantity"])))
        except ArithmeticError:
            raise cleaning.Rejected("quantity", f"quantity is not a number: {raw['quantity']!r}") from None
        if not 1 <= quantity <= 10_000:
            raise cleaning.Rejected("quantity", f"quantity must be 1 to 10000, not {quantity}")
    unit_price = amount = None
    if cleaning.clean_text(raw.get("unit_price", "")):
        unit_price = cleaning.parse_money(raw["unit_price"], field="unit_price")
    for field in ("line_amount", "amount"):
        if amount is None and cleaning.clean_text(raw.get(field, "")):
            amount = cleaning.parse_money(raw[field], field=field)
    if amount is None and unit_price is None:
        raise cleaning.Rejected("amount", "neither an amount nor a unit price")
    if amount is None:
        amount = unit_price * quantity
    if unit_price is None:
        unit_price = (amount / quantity).quantize(Decimal("0.01"))
    name = cleaning.clean_text(raw.get("product_name", ""))[:100]
    sku = cleaning.clean_text(raw.get("sku", ""))[:32]
    if not name and not sku:
        raise cleaning.Rejected("product_name", "no product name and no SKU")
    return OrderRow(ref, ordered_at, channel, payment, name, sku, cleaning.clean_text(raw.get("category", "")),
                    quantity, unit_price, amount)  # fmt: skip


class OrderImporter(Importer):
    """An order file: one row per order line (rows of one order share its number). Each row's
    customer is found (or made) as in a customer file; an order already imported (the same
    source and number) is left as it is: re-importing changes nothing. Rows end as created (a
    line of a new order), unchanged (its order was imported before) or rejected."""

    def __init__(self, job: dict[str, Any], **options: Any) -> None:
        super().__init__(job, **options)
        self.source = str(job["source"])
        self.catalog: tuple[dict[str, tuple[str, str]], dict[str, str]] | None = None
        self.orders: dict[str, tuple[str, str]] = {}  # ref → (order id, store) made by this run

    async def _catalog(self) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
        if self.catalog is None:
            products = {r["sku"]: (str(r["id"]), str(r["category_id"])) for r in await ImportJob.raw(
                "SELECT id, sku, category_id FROM products")}  # fmt: skip
            categories: dict[str, str] = {}
            for r in await ImportJob.raw("SELECT id, code, name_zh, name_en FROM categories"):
                for key in (r["code"], r["name_zh"], (r["name_en"] or "").lower()):
                    if key:
                        categories[key] = str(r["id"])
            self.catalog = (products, categories)
        return self.catalog

    def _ref(self, ref: str) -> str:
        return f"{self.source}:{ref}"[:64]

    async def _batch(
        self,
        batch: list[tuple[int, list[str]]],
        last: int,
        total: int,
        cleaned: list[Record | tuple[int, str, str]] | None,
    ) -> None:
        products, categories = await self._catalog()
        plan = Plan()
        good: list[tuple[int, dict, Record, OrderRow]] = []
        mapped = [self.columns.get(h) for h in self.headers]
        for number, values in batch:
            original = self._original(values)
            fields = {f: values[i] for i, f in enumerate(mapped) if f and i < len(values)}
            try:
                order = clean_order_row(fields, self.source)
                try:
                    record = clean_row(number, fields)
                except cleaning.Rejected as exc:
                    if exc.field != "name" or cleaning.clean_text(fields.get("name", "")):
                        raise
                    record = clean_row(number, {**fields, "name": "待补充姓名"})  # found by phone, or refused below
                    record.name = ""
                if record.store_code and record.store_code not in self.stores:
                    raise cleaning.Rejected("store_code", f"no store with code {record.store_code!r}")
                if not record.store_code and self.default_store is None:
                    raise cleaning.Rejected("store_code", "no store: give a store column or choose the import's store")
                good.append((number, original, record, order))
            except cleaning.Rejected as exc:
                plan.rejections.append((number, exc.field, exc.reason, original))
        refs = sorted({self._ref(o.ref) for *_, o in good})
        done = {r["external_ref"] for r in await _chunks(
            "SELECT external_ref FROM orders WHERE external_ref IN (%s)", refs)} if refs else set()  # fmt: skip
        in_db = await candidates_in_db([r for _, _, r, o in good if self._ref(o.ref) not in done])
        for known in (await load_known(in_db - set(self.known) - self.gone)).values():
            self._remember(known)
        for number, original, record, order in good:
            ref = self._ref(order.ref)
            if ref in done and ref not in self.orders:
                self.counts.unchanged += 1
                continue
            if ref not in self.orders:
                customer, _ = self._resolve(record, plan, may_create=bool(record.name))
                if customer is None:
                    plan.rejections.append((number, "name", "a new customer needs a name (no one has this phone)",
                                            original))  # fmt: skip
                    continue
                order_id = str(uuid7())
                sold_by = self.stores[record.store_code] if record.store_code else str(self.default_store)
                self.orders[ref] = (order_id, customer.store_id)
                plan.orders.append((order_id, customer.store_id, customer.id, order.channel, sold_by, order.ordered_at,
                                    order.payment, ref))  # fmt: skip
            order_id, store = self.orders[ref]
            product = products.get(order.sku)
            category = (
                product[1] if product else categories.get(order.category) or categories.get(order.category.lower())
            )
            plan.lines.append(
                (str(uuid7()), store, order_id, product[0] if product else None, category,
                 order.product_name or order.sku, order.quantity, order.unit_price, order.amount)
            )  # fmt: skip
            self.counts.created += 1
        await self._write(plan, last, total)

    async def _write_orders(self, plan: Plan, counters: dict[str, Iterator[int]]) -> None:
        from decimal import Decimal

        now = self.now
        totals: dict[str, Decimal] = {}
        for line in plan.lines:
            totals[line[2]] = totals.get(line[2], Decimal(0)) + line[8]
        await _copy(
            "orders",
            ("id", "version", "deleted", "updated_at", "store_id", "customer_id", "channel", "sold_by_store_id",
             "ordered_at", "amount", "payment_method", "external_ref"),
            [(uuid.UUID(o), next(counters[s]), False, now, uuid.UUID(s), uuid.UUID(c), ch, uuid.UUID(sb), at,
              totals.pop(o, Decimal(0)), pay, ref) for o, s, c, ch, sb, at, pay, ref in plan.orders],
        )  # fmt: skip
        await _copy(
            "order_lines",
            ("id", "version", "deleted", "updated_at", "store_id", "order_id", "product_id", "category_id",
             "product_name", "quantity", "unit_price", "amount"),
            [(uuid.UUID(i), next(counters[s]), False, now, uuid.UUID(s), uuid.UUID(o), uuid.UUID(p) if p else None,
              uuid.UUID(c) if c else None, name, q, price, amount)
             for i, s, o, p, c, name, q, price, amount in plan.lines],
        )  # fmt: skip
        for order_id, extra in totals.items():  # lines of an order an earlier batch of this run made
            store = self.orders_store(order_id)
            await ImportJob.raw(
                "UPDATE orders SET amount = amount + {}, version = {}, updated_at = {} WHERE id = {}",
                extra, await allocate_versions(store_scope(uuid.UUID(store))), now, uuid.UUID(order_id),
            )  # fmt: skip

    def orders_store(self, order_id: str) -> str:
        return next(store for oid, store in self.orders.values() if oid == order_id)
