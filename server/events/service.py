"""Taking in behaviour events: each checked on its own, stored once, and evaluated at once.

A batch holds events from one or several source systems. Each event carries its source's event id
(a replay is a no-op answered 'duplicate') and an HMAC-SHA256 signature made with that source's key
over the event's canonical JSON (keys sorted, no spaces, UTF-8) without the signature itself. A
malformed, unsigned, mis-signed or unknown-customer event is rejected with its reason; the good
ones are stored as interactions (``source_event_id`` unique) in one transaction, and the rules that
react to behaviour run for the stores they touched before the answer goes back — the task exists
(and the rep's phone is poked) within the request, the minute sweep is only the safety net.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import uuid
from typing import Annotated, Any, Literal

import msgspec

from server import db
from server.interactions.tables import Interaction
from server.sync.service import allocate_versions, store_scope
from shared.ids import uuid7
from shared.phones import PhoneError, normalise

MAX_EVENTS = 500
SOURCE_CHANNEL = {"pos": "store", "online_shop": "online", "wechat": "wechat", "call_centre": "call_centre"}
IMMEDIATE_RULES = ("browse_interest",)  # rules an event can make due at once

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]


class Identity(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["pos_member", "online_shop", "wechat_openid", "wechat_unionid"]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00]*$")]


class Event(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    source: Literal["pos", "online_shop", "wechat", "call_centre"]
    event_id: Short
    type: Literal["browse", "cart", "visit", "call", "message"]
    occurred_at: dt.datetime
    signature: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
    customer_id: uuid.UUID | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    identity: Identity | None = None
    category: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    product: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    duration_seconds: Annotated[int, msgspec.Meta(ge=0, le=86_400)] | None = None
    body: Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^[^\x00]*$")] = ""


class EventResult(msgspec.Struct, omit_defaults=True):
    index: int
    status: Literal["stored", "duplicate", "rejected"]
    event_id: str | None = None
    reason: str | None = None
    field: str | None = None
    interaction_id: uuid.UUID | None = None


class IngestAnswer(msgspec.Struct):
    stored: int
    duplicates: int
    rejected: int
    tasks_created: int
    results: list[EventResult]


def canonical(event: dict[str, Any]) -> bytes:
    """What a source signs: the event without its signature, keys sorted, compact, UTF-8."""
    body = {k: v for k, v in event.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(event: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(event), hashlib.sha256).hexdigest()


@dataclasses.dataclass
class _Good:
    index: int
    event: Event
    key: str  # source:event_id
    customer_id: uuid.UUID | None = None
    store_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None


def _reject(index: int, event_id: Any, reason: str, field: str | None = None) -> EventResult:
    shown = str(event_id)[:100] if event_id is not None else None
    return EventResult(index, "rejected", event_id=shown, reason=reason, field=field)


async def ingest(raw_events: list[Any], *, keys: dict[str, bytes], now: dt.datetime | None = None) -> IngestAnswer:
    now = now or dt.datetime.now(dt.UTC)
    results: dict[int, EventResult] = {}
    good: list[_Good] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            results[index] = _reject(index, None, "an event is a JSON object")
            continue
        event_id = raw.get("event_id")
        key = keys.get(str(raw.get("source")))
        if key is None:
            results[index] = _reject(index, event_id, f"unknown source {raw.get('source')!r}", "source")
            continue
        given = raw.get("signature")
        if not isinstance(given, str) or not hmac.compare_digest(given, sign(raw, key)):
            results[index] = _reject(index, event_id, "bad signature: not signed with this source's key", "signature")
            continue
        try:
            event = msgspec.convert(raw, Event)
        except msgspec.ValidationError as exc:
            results[index] = _reject(index, event_id, str(exc), _field(str(exc)))
            continue
        if event.occurred_at.tzinfo is None:
            results[index] = _reject(index, event_id, "occurred_at needs a time zone offset", "occurred_at")
            continue
        if event.occurred_at > now + dt.timedelta(minutes=5):
            results[index] = _reject(index, event_id, "occurred_at is in the future", "occurred_at")
            continue
        if sum(x is not None for x in (event.customer_id, event.phone, event.identity)) != 1:
            reason = "name the customer by exactly one of customer_id, phone, identity"
            results[index] = _reject(index, event_id, reason, "customer_id")
            continue
        if event.type == "browse" and event.duration_seconds is None:
            results[index] = _reject(index, event_id, "a browse event needs duration_seconds", "duration_seconds")
            continue
        dedupe = f"{event.source}:{event.event_id}"
        if dedupe in seen:
            results[index] = EventResult(index, "duplicate", event_id=event.event_id)
            continue
        seen.add(dedupe)
        good.append(_Good(index, event, dedupe))

    await _resolve(good, results)
    good = [g for g in good if g.index not in results]
    stored_stores: set[uuid.UUID] = set()
    if good:
        existing = {
            r["source_event_id"]
            for r in await Interaction.raw(
                f"SELECT source_event_id FROM interactions WHERE source_event_id IN ({', '.join('{}' for _ in good)})",
                *[g.key for g in good],
            )
        }
        fresh = []
        for g in good:
            if g.key in existing:
                results[g.index] = EventResult(g.index, "duplicate", event_id=g.event.event_id)
            else:
                fresh.append(g)
        if fresh:
            await _store(fresh, now, results)
            stored_stores = {g.store_id for g in fresh if g.store_id is not None}
    created = 0
    if stored_stores:
        from server.rules.service import sweep

        created = (await sweep(now, codes=IMMEDIATE_RULES, stores=sorted(stored_stores, key=str))).total
    ordered = [results[i] for i in sorted(results)]
    return IngestAnswer(
        stored=sum(r.status == "stored" for r in ordered),
        duplicates=sum(r.status == "duplicate" for r in ordered),
        rejected=sum(r.status == "rejected" for r in ordered),
        tasks_created=created,
        results=ordered,
    )


def _field(message: str) -> str | None:
    if "at `$." in message:
        return message.rsplit("at `$.", 1)[1].split("`")[0].split(".")[0].split("[")[0]
    if "`" in message:
        return message.split("`")[1]
    return None


async def _resolve(good: list[_Good], results: dict[int, EventResult]) -> None:
    """Find each event's customer (by id, phone or channel identity) and its category / product."""
    ids = {g.event.customer_id for g in good if g.event.customer_id}
    phones: dict[int, str] = {}
    for g in good:
        if g.event.phone is not None:
            try:
                phones[g.index] = normalise(g.event.phone)[1]
            except PhoneError as exc:
                results[g.index] = _reject(g.index, g.event.event_id, str(exc), "phone")
    by_id: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    if ids:
        from server.customers.service import merged_ids

        # A customer merged into another since the source system learnt its id: the survivor.
        merged = await merged_ids(ids)
        wanted = ids | set(merged.values())
        for r in await Interaction.raw(
            f"SELECT id, store_id FROM customers WHERE deleted = false AND id IN ({', '.join('{}' for _ in wanted)})",
            *wanted,
        ):
            by_id[str(r["id"])] = (r["id"], r["store_id"])
        for old, survivor in merged.items():
            if str(survivor) in by_id:
                by_id[str(old)] = by_id[str(survivor)]
    by_phone: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    if phones:
        digits = sorted(set(phones.values()))
        for r in await Interaction.raw(
            "SELECT p.digits, c.id, c.store_id FROM customer_phones p JOIN customers c ON c.id = p.customer_id "
            f"WHERE p.deleted = false AND c.deleted = false AND p.digits IN ({', '.join('{}' for _ in digits)})",
            *digits,
        ):
            by_phone.setdefault(r["digits"], (r["id"], r["store_id"]))
    by_identity: dict[tuple[str, str], tuple[uuid.UUID, uuid.UUID]] = {}
    identities = sorted({(g.event.identity.kind, g.event.identity.value) for g in good if g.event.identity})
    for kind, value in identities:
        for r in await Interaction.raw(
            "SELECT c.id, c.store_id FROM customer_identities i JOIN customers c ON c.id = i.customer_id "
            "WHERE i.kind = {} AND i.value = {} AND i.deleted = false AND c.deleted = false",
            kind,
            value,
        ):
            by_identity[(kind, value)] = (r["id"], r["store_id"])
    categories = {r["code"]: r["id"] for r in await Interaction.raw("SELECT code, id FROM categories")}
    products = {
        r["sku"]: (r["id"], r["category_id"])
        for r in await Interaction.raw("SELECT sku, id, category_id FROM products")
    }
    for g in good:
        if g.index in results:
            continue
        e = g.event
        found = (
            by_id.get(str(e.customer_id))
            if e.customer_id
            else by_phone.get(phones.get(g.index, ""))
            if e.phone is not None
            else by_identity.get((e.identity.kind, e.identity.value))
            if e.identity
            else None
        )
        if found is None:
            field = "customer_id" if e.customer_id else "phone" if e.phone is not None else "identity"
            results[g.index] = _reject(g.index, e.event_id, "no customer with this " + field, field)
            continue
        g.customer_id, g.store_id = found
        if e.product is not None:
            if e.product not in products:
                results[g.index] = _reject(g.index, e.event_id, f"unknown product {e.product!r}", "product")
                continue
            g.product_id, g.category_id = products[e.product]
        if e.category is not None:
            if e.category not in categories:
                results[g.index] = _reject(g.index, e.event_id, f"unknown category {e.category!r}", "category")
                continue
            g.category_id = categories[e.category]


COLUMNS = (
    "id",
    "version",
    "deleted",
    "updated_at",
    "store_id",
    "customer_id",
    "user_id",
    "kind",
    "channel",
    "occurred_at",
    "duration_seconds",
    "body",
    "product_id",
    "category_id",
    "source_event_id",
    "created_at",
)


async def _store(fresh: list[_Good], now: dt.datetime, results: dict[int, EventResult]) -> None:
    by_store: dict[uuid.UUID, list[_Good]] = {}
    for g in fresh:
        by_store.setdefault(g.store_id, []).append(g)
    async with db.transaction():
        for store_id in sorted(by_store, key=str):
            entries = by_store[store_id]
            first = await allocate_versions(store_scope(store_id), len(entries)) - len(entries) + 1
            rows = []
            for n, g in enumerate(entries):
                ident = uuid7()
                e = g.event
                rows.append(
                    (ident, first + n, False, now, store_id, g.customer_id, None, e.type, SOURCE_CHANNEL[e.source],
                     e.occurred_at.astimezone(dt.UTC), e.duration_seconds, e.body.strip(), g.product_id, g.category_id,
                     g.key, now)
                )  # fmt: skip
                results[g.index] = EventResult(g.index, "stored", event_id=e.event_id, interaction_id=ident)
            await db.insert_many("interactions", COLUMNS, rows, on_conflict="source_event_id")
