"""Customers: scoped search with keyset pages, and the 360° card in one call."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator

from server.analytics import segments
from server.auth.scope import Caller
from server.complaints import service as complaints
from server.customers.tables import Customer
from server.errors import Invalid, NotFound
from server.interactions import service as interactions
from server.opportunities import service as opportunities
from server.orders.tables import Order
from server.tasks import service as tasks
from server.values import as_date, as_uuid, json_obj, like_pattern, money, utc
from shared.enums import Gender, IdentityKind, OrderChannel, PaymentMethod, PhoneKind, Role
from shared.ids import uuid7
from shared.phones import PhoneError, mask, normalise
from shared.segments import standing, tier
from shared.sync import FieldLoss
from shared.wire import (
    CustomerCard,
    CustomerPage,
    CustomerProfile,
    CustomerSummary,
    CustomerValue,
    IdentityOut,
    OrderLineOut,
    OrderOut,
    PhoneOut,
)

CARD_ORDERS = 20

_PRIMARY_PHONE = (
    "(SELECT p.number FROM customer_phones p WHERE p.customer_id = c.id AND p.deleted = false "
    "ORDER BY p.is_primary DESC, p.created_at LIMIT 1)"
)


def encode_cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps([str(v) for v in values]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != parts or not all(isinstance(v, str) for v in values):
            raise ValueError
        return values
    except ValueError:
        raise Invalid("cursor is not valid; pass back the next_cursor of the previous page", field="cursor") from None


def decode_time_cursor(cursor: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    """A (timestamp, id) keyset cursor — lists ordered by a time, then id (tasks, complaints)."""
    if not cursor:
        return None
    moment, ident = decode_cursor(cursor, 2)
    try:
        return dt.datetime.fromisoformat(moment), uuid.UUID(ident)
    except ValueError:
        raise Invalid("cursor is not valid", field="cursor") from None


async def resolve_merged(customer_id: uuid.UUID) -> uuid.UUID:
    """The customer an id means now: itself, or, after a merge, the survivor (aliases are kept
    pointing at the last survivor of a chain of merges)."""
    rows = await Customer.raw(
        "SELECT a.survivor_id FROM customer_aliases a WHERE a.id = {} AND a.deleted = false", customer_id
    )
    return as_uuid(rows[0]["survivor_id"]) if rows else customer_id


async def merged_ids(customer_ids: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Of these ids, the merged-away ones and their survivors (one query)."""
    ids = sorted(customer_ids, key=str)
    if not ids:
        return {}
    marks = ", ".join("{}" for _ in ids)
    rows = await Customer.raw(
        f"SELECT id, survivor_id FROM customer_aliases WHERE deleted = false AND id IN ({marks})", *ids
    )
    return {as_uuid(r["id"]): as_uuid(r["survivor_id"]) for r in rows}


async def load_customer_scope(*, caller: Caller, customer_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID | None]:
    """The customer's (store id, owner id), or NotFound when absent or outside the caller's scope."""
    row = await (
        Customer.select(Customer.store_id, Customer.owner_id)
        .where((Customer.id == customer_id) & Customer.deleted.eq(False))
        .first()
    )
    if row is None or not caller.sees(row["store_id"]):
        raise NotFound(f"customer {customer_id} not found")
    return as_uuid(row["store_id"]), as_uuid(row["owner_id"])


async def search(*, caller: Caller, q: str, limit: int, cursor: str | None) -> CustomerPage:
    """Customers in scope whose name contains ``q`` or one of whose phones contains its digits,
    ordered by name, one keyset page at a time."""
    params: list[object] = []
    where = ["c.deleted = false", caller.store_filter("c.store_id", params)]
    q = q.strip()
    if q:
        digits = re.sub(r"[\s\-()+]", "", q)
        if digits.isdigit() and len(digits) >= 3:
            where.append(
                "c.id IN (SELECT p.customer_id FROM customer_phones p "
                "WHERE p.digits LIKE {} ESCAPE '\\' AND p.deleted = false)"
            )
            params.append(like_pattern(digits))
        else:
            where.append("lower(c.name) LIKE {} ESCAPE '\\'")
            params.append(like_pattern(q.lower()))
    if cursor:
        name, last_id = decode_cursor(cursor, 2)
        try:
            last_uuid = uuid.UUID(last_id)
        except ValueError:
            raise Invalid("cursor is not valid", field="cursor") from None
        where.append("(c.name > {} OR (c.name = {} AND c.id > {}))")
        params.extend([name, name, last_uuid])
    params.append(limit + 1)
    rows = await Customer.raw(
        f"SELECT c.id, c.name, c.store_id, c.owner_id, {_PRIMARY_PHONE} AS phone FROM customers c "
        f"WHERE {' AND '.join(where)} ORDER BY c.name, c.id LIMIT {{}}",
        *params,
    )
    page = rows[:limit]
    tags = await _tags_of([r["id"] for r in page])
    items = [
        CustomerSummary(
            id=as_uuid(r["id"]),
            name=r["name"],
            phone=r["phone"] if caller.sees_full_phones else mask(r["phone"]),
            store_id=as_uuid(r["store_id"]),
            owner_id=as_uuid(r["owner_id"]),
            tags=tags.get(as_uuid(r["id"]), []),
        )
        for r in page
    ]
    next_cursor = encode_cursor(page[-1]["name"], page[-1]["id"]) if len(rows) > limit else None
    return CustomerPage(items=items, next_cursor=next_cursor)


async def _tags_of(customer_ids: list) -> dict[uuid.UUID, list[str]]:
    if not customer_ids:
        return {}
    rows = await Customer.raw(
        f"SELECT customer_id, tag FROM customer_tags WHERE deleted = false AND customer_id IN "
        f"({', '.join('{}' for _ in customer_ids)}) ORDER BY created_at, tag",
        *customer_ids,
    )
    out: dict[uuid.UUID, list[str]] = {}
    for r in rows:
        out.setdefault(as_uuid(r["customer_id"]), []).append(r["tag"])
    return out


async def card(*, caller: Caller, customer_id: uuid.UUID, now: dt.datetime | None = None) -> CustomerCard:
    """Everything the chain knows about one person, in one call. A merged-away customer's id
    answers with the customer it was merged into (a link or a phone that still holds the old id)."""
    now = now or dt.datetime.now(dt.UTC)
    customer_id = await resolve_merged(customer_id)
    rows = await Customer.raw(
        "SELECT c.id, c.name, c.gender, c.birthday, c.email, c.province, c.city, c.district, c.address, "
        "c.consents, c.store_id, c.owner_id, c.created_at, s.code AS store_code, u.display_name AS owner_name "
        "FROM customers c JOIN stores s ON s.id = c.store_id LEFT JOIN users u ON u.id = c.owner_id "
        "WHERE c.id = {} AND c.deleted = false",
        customer_id,
    )
    if not rows or not caller.sees(rows[0]["store_id"]):
        raise NotFound(f"customer {customer_id} not found")
    c = rows[0]
    phones = await Customer.raw(
        "SELECT id, number, kind, is_primary FROM customer_phones WHERE customer_id = {} AND deleted = false "
        "ORDER BY is_primary DESC, created_at",
        customer_id,
    )
    identities = await Customer.raw(
        "SELECT kind, value FROM customer_identities WHERE customer_id = {} AND deleted = false ORDER BY kind",
        customer_id,
    )
    profile = CustomerProfile(
        id=as_uuid(c["id"]),
        name=c["name"],
        gender=Gender(c["gender"]) if c["gender"] else None,
        birthday=as_date(c["birthday"]),
        email=c["email"],
        province=c["province"],
        city=c["city"],
        district=c["district"],
        address=c["address"] if caller.sees_full_phones else "",
        consents=json_obj(c["consents"]),
        store_id=as_uuid(c["store_id"]),
        store_code=c["store_code"],
        owner_id=as_uuid(c["owner_id"]),
        owner_name=c["owner_name"],
        created_at=utc(c["created_at"]),
    )
    return CustomerCard(
        profile=profile,
        phones=[
            PhoneOut(
                id=as_uuid(p["id"]),
                number=p["number"] if caller.sees_full_phones else mask(p["number"]),
                kind=PhoneKind(p["kind"]),
                is_primary=bool(p["is_primary"]),
            )
            for p in phones
        ],
        identities=[IdentityOut(kind=IdentityKind(i["kind"]), value=i["value"]) for i in identities],
        tags=(await _tags_of([customer_id])).get(customer_id, []),
        value=await _value(customer_id, now),
        orders=await _orders(customer_id),
        interactions=await interactions.for_customer(customer_id=customer_id),
        opportunities=await opportunities.for_customer(customer_id=customer_id),
        tasks=await tasks.for_customer(customer_id=customer_id),
        complaints=await complaints.for_customer(customer_id=customer_id),
    )


async def _value(customer_id: uuid.UUID, now: dt.datetime) -> CustomerValue:
    sql, params = segments.one_customer_sql(customer_id, now)
    r = (await Order.raw(sql, *params))[0]
    facts = segments.facts_from(r)
    in_store = money(r["in_store"])
    return CustomerValue(
        tier=tier(facts.orders, facts.amount_12m),
        amount_12m=facts.amount_12m,
        amount_total=facts.amount_total,
        order_count=facts.orders,
        last_order_at=facts.last_order_at,
        store_amount=in_store,
        online_amount=facts.amount_total - in_store,
        standing=standing(facts, now),
    )


async def _orders(customer_id: uuid.UUID) -> list[OrderOut]:
    orders = await Order.raw(
        "SELECT o.id, o.channel, o.ordered_at, o.amount, o.payment_method, s.code AS sold_by "
        "FROM orders o LEFT JOIN stores s ON s.id = o.sold_by_store_id "
        "WHERE o.customer_id = {} AND o.deleted = false ORDER BY o.ordered_at DESC LIMIT {}",
        customer_id,
        CARD_ORDERS,
    )
    if not orders:
        return []
    ids = [o["id"] for o in orders]
    lines = await Order.raw(
        "SELECT l.order_id, l.product_id, l.product_name, g.code AS category, l.quantity, l.unit_price, l.amount "
        "FROM order_lines l LEFT JOIN categories g ON g.id = l.category_id "
        f"WHERE l.deleted = false AND l.order_id IN ({', '.join('{}' for _ in ids)}) ORDER BY l.id",
        *ids,
    )
    by_order: dict[uuid.UUID, list[OrderLineOut]] = {}
    for line in lines:
        by_order.setdefault(as_uuid(line["order_id"]), []).append(
            OrderLineOut(
                product_id=as_uuid(line["product_id"]),
                product_name=line["product_name"],
                category=line["category"] or "",
                quantity=line["quantity"],
                unit_price=money(line["unit_price"]),
                amount=money(line["amount"]),
            )
        )
    return [
        OrderOut(
            id=as_uuid(o["id"]),
            channel=OrderChannel(o["channel"]),
            ordered_at=utc(o["ordered_at"]),
            amount=money(o["amount"]),
            payment_method=PaymentMethod(o["payment_method"]),
            sold_by_store_code=o["sold_by"],
            lines=by_order.get(as_uuid(o["id"]), []),
        )
        for o in orders
    ]


# --- edits (the phone's mutations; DESIGN.md "Merging") -----------------------------------------

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _node(stamp: str) -> str:
    """The device part of a hybrid logical clock stamp."""
    return stamp.split("-", 2)[-1] if stamp.count("-") >= 2 else ""


def _field_text(value: object) -> str | None:
    """A card field's value as the text devices compare (dates as ISO, None stays None)."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _clean_field(field: str, value: object) -> object:
    """Validate one mergeable field; the value to store."""
    if field == "name":
        text = str(value).strip()
        if not text:
            raise Invalid("name must not be blank", field="name")
        return text
    if field == "birthday":
        if value is None:
            return None
        try:
            day = dt.date.fromisoformat(str(value))
        except ValueError:
            raise Invalid(f"birthday must be a date like 1985-04-12, got {value!r}", field="birthday") from None
        if not (dt.date(1900, 1, 1) <= day <= dt.date.today()):
            raise Invalid("birthday must lie between 1900 and today", field="birthday")
        return day
    if field == "email":
        if value is None or str(value).strip() == "":
            return None
        text = str(value).strip()
        if not EMAIL.match(text):
            raise Invalid(f"not an e-mail address: {text!r}", field="email")
        return text
    if field == "gender":
        return None if value is None else Gender(value).value
    return str(value).strip()


async def _next_versions(store_id: uuid.UUID, count: int) -> Iterator[int]:
    from server.sync.service import allocate_versions, store_scope

    last = await allocate_versions(store_scope(store_id), count)
    return iter(range(last - count + 1, last + 1))


async def create_customer(
    *,
    caller: Caller,
    ident: uuid.UUID,
    name: str,
    phone: str | None = None,
    phone_id: uuid.UUID | None = None,
    store_id: uuid.UUID | None = None,
    gender: str | None = None,
    email: str | None = None,
    city: str = "",
    hlc: str,
) -> None:
    """A new customer in the caller's store (or a store in scope), owned by the caller when a rep."""
    from server.customers.tables import CustomerPhone
    from server.db import transaction

    store = store_id or caller.store_id
    if store is None:
        raise Invalid("name the customer's store: you do not belong to one", field="store_id")
    if not caller.sees(store):
        raise NotFound(f"store {store} not found")
    clean = {"name": _clean_field("name", name), "gender": _clean_field("gender", gender)}
    clean["email"] = _clean_field("email", email)
    number = digits = None
    if phone is not None and phone.strip():
        try:
            number, digits = normalise(phone)
        except PhoneError as exc:
            raise Invalid(str(exc), field="phone") from None
    now = dt.datetime.now(dt.UTC)
    clocks = {f: {"hlc": hlc, "by": str(caller.user_id)} for f in ("name", "gender", "email", "city")}
    async with transaction():
        versions = await _next_versions(store, 2 if number else 1)
        await Customer.insert(
            Customer(
                id=ident,
                version=next(versions),
                updated_at=now,
                store_id=store,
                owner_id=caller.user_id if caller.role == Role.REP else None,
                name=clean["name"],
                gender=clean["gender"],
                email=clean["email"],
                city=city.strip(),
                consents="{}",
                field_clocks=json.dumps(clocks),
                created_at=now,
            )
        )
        if number:
            await CustomerPhone.insert(
                CustomerPhone(
                    id=phone_id or uuid7(),
                    version=next(versions),
                    updated_at=now,
                    store_id=store,
                    customer_id=ident,
                    number=number,
                    digits=digits,
                    kind=PhoneKind.MOBILE,
                    is_primary=True,
                    created_at=now,
                )
            )


async def merge_fields(
    *, caller: Caller, customer_id: uuid.UUID, fields: dict[str, object], base: dict[str, object], hlc: str
) -> list[FieldLoss]:
    """Per-field last-writer-wins by hybrid logical clock. A field whose stored clock is later
    keeps its value (the loss is returned and logged); a later clock replaces the value, and when
    the device had not seen the value it replaces (a concurrent edit), the replaced one is logged.
    """
    from server.auth.scope import load_in_scope
    from server.db import transaction
    from server.sync.tables import SyncConflict

    if not fields:
        raise Invalid("nothing to change: send at least one field", field="fields")
    clean = {field: _clean_field(field, value) for field, value in fields.items()}
    now = dt.datetime.now(dt.UTC)
    me = str(caller.user_id)
    async with transaction():
        row = await load_in_scope(
            caller=caller,
            table=Customer,
            select="SELECT c.* FROM customers c",
            alias="c",
            ident=customer_id,
            what="customer",
            lock=True,
        )
        store_id = as_uuid(row["store_id"])
        clocks = json_obj(row["field_clocks"])
        changes: dict = {}
        conflicts: list[dict] = []
        losses: list[FieldLoss] = []
        for field, value in clean.items():
            current = _field_text(row[field])
            stamp = clocks.get(field) or {}
            # A device's own mutations arrive in order (exactly once each), so its later edit wins
            # over its earlier one even when capping gave both the same clock.
            same_device = bool(stamp) and _node(stamp.get("hlc", "")) == _node(hlc)
            if not stamp or same_device or hlc > stamp.get("hlc", ""):
                changes[field] = value
                clocks[field] = {"hlc": hlc, "by": me}
                seen = _field_text(base[field]) if field in base else current
                if stamp and seen != current and current != _field_text(value) and stamp.get("by") != me:
                    conflicts.append(
                        {
                            "field": field,
                            "winner_value": _field_text(value),
                            "loser_value": current,
                            "winner_user_id": caller.user_id,
                            "loser_user_id": as_uuid(stamp.get("by")),
                            "winner_hlc": hlc,
                            "loser_hlc": stamp.get("hlc", ""),
                        }
                    )
            elif current != _field_text(value):  # (an older edit to the value kept has nothing to tell)
                losses.append(
                    FieldLoss(
                        field=field, kept_value=current, kept_by=as_uuid(stamp.get("by")), kept_hlc=stamp.get("hlc", "")
                    )
                )
                conflicts.append(
                    {
                        "field": field,
                        "winner_value": current,
                        "loser_value": _field_text(value),
                        "winner_user_id": as_uuid(stamp.get("by")),
                        "loser_user_id": caller.user_id,
                        "winner_hlc": stamp.get("hlc", ""),
                        "loser_hlc": hlc,
                    }
                )
        versions = await _next_versions(store_id, 1 + len(conflicts))
        await Customer.update(
            {
                **{getattr(Customer, f): v for f, v in changes.items()},
                Customer.field_clocks: json.dumps(clocks),
                Customer.version: next(versions),
                Customer.updated_at: now,
            }
        ).where(Customer.id == customer_id)
        for conflict in conflicts:
            await SyncConflict.insert(
                SyncConflict(
                    id=uuid7(),
                    version=next(versions),
                    updated_at=now,
                    store_id=store_id,
                    customer_id=customer_id,
                    at=now,
                    **conflict,
                )
            )
    return losses


async def add_phone(*, caller: Caller, ident: uuid.UUID, customer_id: uuid.UUID, number: str, kind: str) -> None:
    """Append a phone (child rows never conflict); the first phone becomes the primary one."""
    from server.customers.tables import CustomerPhone
    from server.db import transaction

    try:
        e164, digits = normalise(number)
    except PhoneError as exc:
        raise Invalid(str(exc), field="number") from None
    now = dt.datetime.now(dt.UTC)
    async with transaction():
        store_id, _ = await load_customer_scope(caller=caller, customer_id=customer_id)
        existing = await CustomerPhone.select(CustomerPhone.number).where(
            (CustomerPhone.customer_id == customer_id) & CustomerPhone.deleted.eq(False)
        )
        if any(r["number"] == e164 for r in existing):
            raise Invalid(f"the customer already has the phone {e164}", field="number")
        versions = await _next_versions(store_id, 1)
        await CustomerPhone.insert(
            CustomerPhone(
                id=ident,
                version=next(versions),
                updated_at=now,
                store_id=store_id,
                customer_id=customer_id,
                number=e164,
                digits=digits,
                kind=PhoneKind(kind),
                is_primary=not existing,
                created_at=now,
            )
        )


async def add_tag(*, caller: Caller, ident: uuid.UUID, customer_id: uuid.UUID, tag: str) -> uuid.UUID:
    """Tag a customer (a new row under the device's id; a removed tag's tombstone stays apart)."""
    from server.customers.tables import CustomerTag
    from server.db import transaction

    text = tag.strip()
    if not text:
        raise Invalid("tag must not be blank", field="tag")
    now = dt.datetime.now(dt.UTC)
    async with transaction():
        store_id, _ = await load_customer_scope(caller=caller, customer_id=customer_id)
        live = await CustomerTag.exists().where(
            (CustomerTag.customer_id == customer_id) & (CustomerTag.tag == text) & CustomerTag.deleted.eq(False)
        )
        if live:
            raise Invalid(f"the customer already has the tag {text!r}", field="tag")
        versions = await _next_versions(store_id, 1)
        await CustomerTag.insert(
            CustomerTag(
                id=ident,
                version=next(versions),
                updated_at=now,
                store_id=store_id,
                customer_id=customer_id,
                tag=text,
                created_at=now,
            )
        )
    return ident


async def remove_tag(*, caller: Caller, tag_id: uuid.UUID) -> None:
    """A tombstone: the row stays (deleted) until the retention window purges it."""
    from server.auth.scope import load_in_scope
    from server.customers.tables import CustomerTag
    from server.db import transaction

    now = dt.datetime.now(dt.UTC)
    async with transaction():
        row = await load_in_scope(
            caller=caller,
            table=CustomerTag,
            select="SELECT t.id, t.store_id FROM customer_tags t",
            alias="t",
            ident=tag_id,
            what="tag",
            lock=True,
        )
        versions = await _next_versions(as_uuid(row["store_id"]), 1)
        await CustomerTag.update(
            {CustomerTag.deleted: True, CustomerTag.version: next(versions), CustomerTag.updated_at: now}
        ).where(CustomerTag.id == tag_id)
