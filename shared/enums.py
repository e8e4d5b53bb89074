"""Enumerations shared by the server, the wire and the phone app. Values never change meaning."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    REP = "rep"
    STORE_MANAGER = "store_manager"
    REGIONAL_MANAGER = "regional_manager"
    ADMIN = "admin"


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class IdentityKind(StrEnum):
    POS_MEMBER = "pos_member"
    ONLINE_SHOP = "online_shop"
    WECHAT_OPENID = "wechat_openid"
    WECHAT_UNIONID = "wechat_unionid"


class PhoneKind(StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"


class OrderChannel(StrEnum):
    STORE = "store"
    ONLINE = "online"
    MINI_PROGRAM = "mini_program"


class PaymentMethod(StrEnum):
    WECHAT_PAY = "wechat_pay"
    ALIPAY = "alipay"
    UNIONPAY = "unionpay"
    CARD = "card"
    CASH = "cash"
    INSTALLMENT = "installment"


class InteractionKind(StrEnum):
    VISIT = "visit"
    CALL = "call"
    BROWSE = "browse"
    CART = "cart"
    NOTE = "note"
    MESSAGE = "message"


# What a person logs by hand; browse and cart events come from the shop systems.
LOGGABLE_INTERACTIONS = frozenset(
    {InteractionKind.VISIT, InteractionKind.CALL, InteractionKind.NOTE, InteractionKind.MESSAGE}
)


class InteractionChannel(StrEnum):
    STORE = "store"
    PHONE = "phone"
    ONLINE = "online"
    MINI_PROGRAM = "mini_program"
    WECHAT = "wechat"
    CALL_CENTRE = "call_centre"


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class TaskKind(StrEnum):
    FOLLOW_UP = "follow_up"
    STAGE_REMINDER = "stage_reminder"
    COMPLAINT_CALLBACK = "complaint_callback"
    CALL = "call"
    VISIT = "visit"
    OTHER = "other"


class TaskSource(StrEnum):
    MANUAL = "manual"
    RULE = "rule"
    REMINDER = "reminder"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class ComplaintCategory(StrEnum):
    QUALITY = "quality"
    DELIVERY = "delivery"
    INSTALLATION = "installation"
    SERVICE = "service"
    PRICE = "price"
    OTHER = "other"


class ComplaintStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    SOLVED = "solved"
    CLOSED = "closed"


class ValueTier(StrEnum):
    HIGH = "high"  # more than 5,000 spent in the last twelve months (REQUIREMENTS §7)
    REGULAR = "regular"
    NEW = "new"  # no purchase yet


class Group(StrEnum):
    """A customer's lifecycle group (REQUIREMENTS §7; shared/segments.py decides it)."""

    NEW = "new"  # no order yet, or one order in the last half year
    REPEAT = "repeat"  # two orders or more, recently
    HIGH_VALUE = "high_value"  # more than 5,000 in twelve months, recently
    DORMANT = "dormant"  # no order for 180 days
    LOST = "lost"  # no order for a year


class Health(StrEnum):
    HEALTHY = "healthy"
    WATCH = "watch"
    AT_RISK = "at_risk"
