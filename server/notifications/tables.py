"""Tables of notifications: the records (one per user and cause), the user's preferences, the
customers a user follows, push subscriptions, and the send log that makes dispatch exactly once."""

from piccolo.columns import JSON, UUID, BigInt, Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.auth.tables import User
from server.customers.tables import Customer
from server.stores.tables import Store
from server.sync.columns import SyncColumns


class Notification(SyncColumns, Table, tablename="notifications"):
    """One per (user, cause): the id is uuid5 of both, so a sweep run twice makes nothing new.
    Synced to the user's own devices (scope ``u:<user id>``) for the message centre offline.

    ``push_state`` is the push side: pending (not decided yet) → sent (handed to the dispatcher) |
    held (quiet hours, until ``deliver_after``) | digest (over the day's budget, waiting for the
    next digest) | digested | muted (the kind is opted out) | none (no push wanted) | off (the store's push
    feature is switched off)."""

    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False, index=True)
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=True, default=None)
    kind = Varchar(length=30)
    cause = Varchar(length=200)
    title = Varchar(length=200)
    body = Text(default="")
    customer_id = UUID(null=True, default=None)
    opportunity_id = UUID(null=True, default=None)
    task_id = UUID(null=True, default=None)
    link = Varchar(length=200, default="")
    critical = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    read_at = Timestamptz(null=True, default=None)
    push_state = Varchar(length=10, default="pending", index=True)
    deliver_after = Timestamptz(null=True, default=None)
    pushed_at = Timestamptz(null=True, default=None)  # handed to the dispatcher (counts toward the budget)
    digest_id = UUID(null=True, default=None)


class NotificationPrefs(SyncColumns, Table, tablename="notification_prefs"):
    """A user's rules for push: quiet hours in the store's time zone ("22:00"–"08:00"; empty: none),
    a daily push budget (the rest goes into a digest), kinds opted out of. Critical kinds bypass all."""

    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False, unique=True)
    quiet_start = Varchar(length=5, default="22:00")
    quiet_end = Varchar(length=5, default="08:00")
    daily_budget = Integer(default=20)
    muted_kinds = JSON(default="[]")
    language = Varchar(length=10, default="zh-CN")


class CustomerFollow(SyncColumns, Table, tablename="customer_follows"):
    """A user following a customer (a rep follows their own customers without a row; a row with
    ``following`` false is an explicit unfollow of one of them)."""

    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False, index=True)
    customer_id = ForeignKey(Customer, on_delete=OnDelete.cascade, null=False, index=True)
    store_id = ForeignKey(Store, on_delete=OnDelete.restrict, null=False)
    following = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())


class PushSubscription(Table, tablename="push_subscriptions"):
    """A browser's Web Push subscription or an Android app's FCM token. ``address`` is the
    endpoint or the token (unique). Removed when the push service says it is gone."""

    id = UUID(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False, index=True)
    channel = Varchar(length=10)  # webpush | fcm
    address = Text(unique=True)
    p256dh = Varchar(length=200, default="")
    auth = Varchar(length=100, default="")
    label = Varchar(length=100, default="")  # "Chrome on Android", the device model
    created_at = Timestamptz(default=TimestamptzNow())
    last_sent_at = Timestamptz(null=True, default=None)
    removed_at = Timestamptz(null=True, default=None)
    removed_reason = Varchar(length=200, default="")


class PushSend(Table, tablename="push_sends"):
    """The send log: one row per (notification, subscription), unique, so each is sent once.
    state: queued → sending (claimed, with a lease) → sent | gone | failed; a transient failure
    goes back to queued with ``next_attempt_at`` (exponential backoff) until MAX_ATTEMPTS."""

    id = Serial(primary_key=True)
    notification_id = UUID(index=True)
    subscription_id = ForeignKey(PushSubscription, on_delete=OnDelete.cascade, null=False)
    state = Varchar(length=10, default="queued")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow(), index=True)
    lease_until = Timestamptz(null=True, default=None)
    last_status = Integer(null=True, default=None)
    last_error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)


class FeedCursor(Table, tablename="notification_feed_cursors"):
    """How far the follow feed has read each store's change order (versions follow commit order,
    so nothing committed late is skipped)."""

    scope = Varchar(length=64, primary_key=True)
    version = BigInt(default=0)
    updated_at = Timestamptz(default=TimestamptzNow())


__all__ = ["CustomerFollow", "FeedCursor", "Notification", "NotificationPrefs", "PushSend", "PushSubscription"]
