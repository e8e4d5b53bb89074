"""Segmentation and value of one customer (REQUIREMENTS §7, and the card's §1): RFM scores, the
lifecycle group, the health score, the predicted next purchase and whether a lapsed customer is
worth winning back.

One pure function of a few facts about the customer (``Facts``: counts and sums the server reads
with one aggregate query and the phone reads from its replica), so the server's nightly scoring,
its card and the phone's offline card say the same thing. The bands are data, stated here once.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from shared.enums import Group, Health, ValueTier
from shared.wire import Standing

GROUPS = tuple(Group)

# --- the bands ---------------------------------------------------------------------------------
# RFM, 1 (worst) to 5 (best). Furniture is bought seldom, so the bands are wide.
RECENCY_DAYS = (30, 90, 180, 365)  # days since the last order: ≤30 → 5, ≤90 → 4, ≤180 → 3, ≤365 → 2, else 1
FREQUENCY_12M = (1, 2, 3, 5)  # orders in twelve months: 0 → 1, 1 → 2, 2 → 3, 3–4 → 4, ≥5 → 5
MONETARY_12M = (Decimal(2000), Decimal(5000), Decimal(10000), Decimal(20000))  # spent in 12 months

HIGH_VALUE_12M = Decimal(5000)  # REQUIREMENTS §7: high-value = more than 5,000 a year
DORMANT_DAYS = 180  # no order for this long: dormant
LOST_DAYS = 365  # … and for this long: lost
WIN_BACK_AMOUNT = Decimal(5000)  # a lapsed customer who spent this much in all is worth winning back

# Health, 0–100 from three parts (REQUIREMENTS §7: purchase frequency, complaint rate,
# interaction frequency); 80 or more is healthy.
HEALTH_PURCHASES = {0: 0, 1: 20, 2: 30}  # orders in 12 months → points; 3 or more: 40
HEALTH_PURCHASES_MAX = 40
HEALTH_COMPLAINTS_MAX = 30  # all of it with no complaint; less by complaints per order in 12 months
HEALTH_CONTACTS = {0: 0, 1: 10, 2: 20}  # interactions in 90 days → points; 3 or more: 30
HEALTH_CONTACTS_MAX = 30
HEALTHY = 80
WATCH = 60  # 60–79: watch; below: at risk
CONTACT_DAYS = 90


class Facts(msgspec.Struct, frozen=True):
    """What the scores are made of, as of one moment."""

    orders: int = 0
    amount_total: Decimal = Decimal(0)
    orders_12m: int = 0
    amount_12m: Decimal = Decimal(0)
    first_order_at: dt.datetime | None = None
    last_order_at: dt.datetime | None = None
    complaints_12m: int = 0
    interactions_90d: int = 0


def tier(orders: int, amount_12m: Decimal) -> ValueTier:
    """The value tier on the card: new before the first order, high above 5,000 in twelve months."""
    if not orders:
        return ValueTier.NEW
    return ValueTier.HIGH if amount_12m > HIGH_VALUE_12M else ValueTier.REGULAR


def _band(value: float | Decimal, bounds: tuple, *, smaller_is_better: bool = False) -> int:
    """1–5: how many of the four bounds ``value`` reaches (or, for recency, stays within)."""
    if smaller_is_better:
        return 5 - sum(1 for bound in bounds if value > bound)
    return 1 + sum(1 for bound in bounds if value >= bound)


def _health(facts: Facts) -> int:
    purchases = HEALTH_PURCHASES.get(facts.orders_12m, HEALTH_PURCHASES_MAX)
    rate = facts.complaints_12m / max(facts.orders_12m, 1)
    complaints = round(HEALTH_COMPLAINTS_MAX * (1 - min(rate, 1.0)))
    contacts = HEALTH_CONTACTS.get(facts.interactions_90d, HEALTH_CONTACTS_MAX)
    return purchases + complaints + contacts


def standing(facts: Facts, now: dt.datetime) -> Standing:
    """The customer's standing as of ``now`` (aware)."""
    health = _health(facts)
    level = Health.HEALTHY if health >= HEALTHY else Health.WATCH if health >= WATCH else Health.AT_RISK
    last = facts.last_order_at
    if not facts.orders or last is None:
        return Standing(
            group=Group.NEW,
            health=health,
            health_level=level,
            recency=None,
            frequency=None,
            monetary=None,
            days_since_order=None,
            next_purchase_on=None,
            win_back=False,
        )
    days = max((now - last).days, 0)
    if days > LOST_DAYS:
        group = Group.LOST
    elif days > DORMANT_DAYS:
        group = Group.DORMANT
    elif facts.amount_12m > HIGH_VALUE_12M:
        group = Group.HIGH_VALUE
    elif facts.orders >= 2:
        group = Group.REPEAT
    else:
        group = Group.NEW
    next_on = None
    first = facts.first_order_at
    if facts.orders >= 2 and first is not None and last > first:
        next_on = (last + (last - first) / (facts.orders - 1)).date()
    lapsed = group in (Group.DORMANT, Group.LOST)
    return Standing(
        group=group,
        health=health,
        health_level=level,
        recency=_band(days, RECENCY_DAYS, smaller_is_better=True),
        frequency=_band(facts.orders_12m, FREQUENCY_12M),
        monetary=_band(facts.amount_12m, MONETARY_12M),
        days_since_order=days,
        next_purchase_on=next_on,
        win_back=lapsed and (facts.amount_total >= WIN_BACK_AMOUNT or facts.orders >= 2),
    )
