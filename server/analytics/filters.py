"""Report filters: a period and a store / region / rep, resolved against the caller's scope.

The period is a span of local dates in the chain's time zone (``CHAIN_TZ``): ``start`` and
``end`` inclusive, turned into a half-open UTC interval ``[since, until)``. A store, region or rep
outside the caller's scope answers 404 like any id from another store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from server.auth.scope import Caller
from server.db import REPORT_PARTS
from server.errors import Forbidden, Invalid, NotFound
from shared.enums import Role

CHAIN_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclasses.dataclass(frozen=True, slots=True)
class Filters:
    start: dt.date  # first local day of the period
    end: dt.date  # last local day (inclusive)
    # The stores the figures cover: the caller's scope narrowed by store / region. None: every store.
    store_ids: frozenset[uuid.UUID] | None
    owner_id: uuid.UUID | None = None  # one rep
    store_code: str | None = None
    region_code: str | None = None
    rep_name: str | None = None

    @property
    def since(self) -> dt.datetime:
        return local_midnight(self.start)

    @property
    def until(self) -> dt.datetime:
        return local_midnight(self.end + dt.timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def parts(self) -> int:
        """How many ways a report's heaviest queries split by customer or deal (``db.id_ranges``):
        the tables' statistics cut the whole chain's ids evenly, but a few stores' customers may
        all sit in one range (a store's customers are often created together), so those run whole."""
        return REPORT_PARTS if self.store_ids is None else 1

    def previous(self) -> Filters:
        """The same-length period just before this one (for period-over-period change)."""
        length = dt.timedelta(days=self.days)
        return dataclasses.replace(self, start=self.start - length, end=self.end - length)

    def store_filter(self, column: str, params: list[object]) -> str:
        """SQL restricting ``column`` to the covered stores, appending Piccolo ``{}`` params."""
        if self.store_ids is None:
            return "1=1"
        if not self.store_ids:
            return "1=0"
        params.extend(sorted(self.store_ids, key=str))
        return f"{column} IN ({', '.join('{}' for _ in self.store_ids)})"

    def owner_filter(self, column: str, params: list[object]) -> str:
        if self.owner_id is None:
            return "1=1"
        params.append(self.owner_id)
        return f"{column} = {{}}"

    def described(self) -> dict[str, str | None]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "store": self.store_code,
            "region": self.region_code,
            "rep": self.rep_name,
        }


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), CHAIN_TZ).astimezone(dt.UTC)


def today(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(CHAIN_TZ).date()


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} must be a date like 2026-11-01, got {value!r}", field=name) from None


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def resolve(
    caller: Caller,
    *,
    start: str | None = None,
    end: str | None = None,
    store: str | None = None,
    region: str | None = None,
    rep: str | None = None,
    now: dt.datetime | None = None,
) -> Filters:
    """Check and resolve the query's filters. ``store``/``region`` take a code or an id, ``rep`` a
    username or a user id. Reps have no reports (403); anything out of scope is 404."""
    from server.stores.tables import Store

    if caller.role == Role.REP:
        raise Forbidden("reports are for managers")
    last = _date(end, "to") or today(now)
    first = _date(start, "from") or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise Invalid(f"from ({first}) is after to ({last})", field="from")
    if (last - first).days + 1 > MAX_DAYS:
        raise Invalid(f"the period is {(last - first).days + 1} days; at most {MAX_DAYS}", field="from")

    store_ids = caller.store_ids
    store_code = region_code = rep_name = None
    if region:
        ident = _uuid(region)
        where = "id = {}" if ident else "code = {}"
        rows = await Store.raw(f"SELECT id, code FROM regions WHERE {where} AND deleted = false", ident or region)
        if not rows:
            raise NotFound(f"region {region} not found")
        region_code = rows[0]["code"]
        in_region = {
            uuid.UUID(str(r["id"]))
            for r in await Store.raw("SELECT id FROM stores WHERE region_id = {} AND deleted = false", rows[0]["id"])
        }
        visible = in_region if store_ids is None else in_region & store_ids
        if not visible:
            raise NotFound(f"region {region} not found")
        store_ids = frozenset(visible)
    if store:
        ident = _uuid(store)
        where = "id = {}" if ident else "code = {}"
        rows = await Store.raw(f"SELECT id, code FROM stores WHERE {where} AND deleted = false", ident or store)
        found = uuid.UUID(str(rows[0]["id"])) if rows else None
        if found is None or (store_ids is not None and found not in store_ids):
            raise NotFound(f"store {store} not found")
        store_code = rows[0]["code"]
        store_ids = frozenset({found})
    owner_id = None
    if rep:
        ident = _uuid(rep)
        where = "id = {}" if ident else "username = {}"
        rows = await Store.raw(
            f"SELECT id, username, store_id FROM users WHERE {where} AND deleted = false", ident or rep
        )
        home = rows[0]["store_id"] if rows else None
        if home is None or (store_ids is not None and uuid.UUID(str(home)) not in store_ids):
            raise NotFound(f"rep {rep} not found")
        owner_id = uuid.UUID(str(rows[0]["id"]))
        rep_name = rows[0]["username"]
    return Filters(
        start=first,
        end=last,
        store_ids=store_ids,
        owner_id=owner_id,
        store_code=store_code,
        region_code=region_code,
        rep_name=rep_name,
    )
