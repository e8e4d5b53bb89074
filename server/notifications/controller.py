"""HTTP: the message centre (list, mark read), push preferences, follows, push subscriptions."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Annotated
from urllib.parse import urlsplit

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.db import transaction
from server.deps import CallerDep, SettingsDep
from server.errors import Invalid, NotFound
from server.notifications import service
from server.values import as_uuid, utc
from shared.sync import NOTIFICATION_KINDS
from shared.wire import (
    FollowSet,
    NotificationOut,
    NotificationPage,
    NotificationPrefsOut,
    NotificationPrefsUpdate,
    NotificationsRead,
    PushSubscribe,
    PushSubscriptionOut,
    VapidKey,
)


def _out(row: dict) -> NotificationOut:
    return NotificationOut(
        id=as_uuid(row["id"]),
        kind=row["kind"],
        title=row["title"],
        body=row["body"] or "",
        link=row["link"] or "",
        customer_id=as_uuid(row["customer_id"]),
        opportunity_id=as_uuid(row["opportunity_id"]),
        task_id=as_uuid(row["task_id"]),
        critical=bool(row["critical"]),
        created_at=utc(row["created_at"]),
        read_at=utc(row["read_at"]),
    )


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class NotificationController(Controller):
    path = "/api/notifications"
    tags = ["notifications"]

    @get("/")
    async def list_notifications(
        self,
        caller: CallerDep,
        unread: Annotated[bool, QueryParameter(description="only the unread ones")] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        before: Annotated[dt.datetime | None, QueryParameter(description="the page before this time")] = None,
    ) -> NotificationPage:
        """The caller's notifications, newest first (``before``: the page after that time)."""
        if before is not None and before.tzinfo is None:
            raise Invalid("before needs a time zone offset (RFC 3339)", field="before")
        rows = await service.listing(caller=caller, unread=unread, limit=limit, before=before)
        unread_rows = await service.Notification.raw(
            "SELECT count(*) AS n FROM notifications WHERE user_id = {} AND read_at IS NULL AND deleted = false",
            caller.user_id,
        )
        return NotificationPage(items=[_out(r) for r in rows], unread=int(unread_rows[0]["n"]))

    @post("/read", status_code=HTTP_200_OK)
    async def read(self, caller: CallerDep, data: JSONBody[NotificationsRead]) -> dict[str, int]:
        """Mark read: the ids given, or every unread one up to ``upto`` with ``all``."""
        if not data.all and not data.ids:
            raise Invalid("name the notifications to mark read (ids), or send all=true", field="ids")
        if data.upto is not None and data.upto.tzinfo is None:
            raise Invalid("upto needs a time zone offset (RFC 3339)", field="upto")
        async with transaction():
            if data.ids:
                marks = ", ".join("{}" for _ in data.ids)
                mine = await service.Notification.raw(
                    f"SELECT id FROM notifications WHERE user_id = {{}} AND id IN ({marks})", caller.user_id, *data.ids
                )
                missing = {str(i) for i in data.ids} - {str(r["id"]) for r in mine}
                if missing:
                    raise NotFound(f"notification {sorted(missing)[0]} not found")
            count = await service.mark_read(
                user_id=caller.user_id,
                ids=None if data.all else data.ids,
                upto=(data.upto or dt.datetime.now(dt.UTC)) if data.all else None,
            )
        return {"read": count}

    @get("/preferences")
    async def preferences(self, caller: CallerDep) -> NotificationPrefsOut:
        person = (await service.people([str(caller.user_id)]))[str(caller.user_id)]
        return NotificationPrefsOut(**{**person.prefs, "language": person.language})

    @put("/preferences")
    async def set_preferences(self, caller: CallerDep, data: JSONBody[NotificationPrefsUpdate]) -> NotificationPrefsOut:
        """Quiet hours (HH:MM in the store's time zone; both empty: none), the daily push budget,
        kinds opted out of (critical ones cannot be), the language notifications are written in."""
        values = {k: v for k, v in json.loads(_encode(data)).items() if v is not None}
        unknown = set(values.get("muted_kinds", [])) - set(NOTIFICATION_KINDS)
        if unknown:
            raise Invalid(
                f"unknown kind {sorted(unknown)[0]!r}; kinds are {', '.join(NOTIFICATION_KINDS)}", field="muted_kinds"
            )
        if bool(values.get("quiet_start", "x")) != bool(values.get("quiet_end", "x")):
            raise Invalid("quiet_start and quiet_end are both set or both empty", field="quiet_end")
        async with transaction():
            merged = await service.update_prefs(caller=caller, values=values)
        return NotificationPrefsOut(**{k: merged[k] for k in NotificationPrefsOut.__struct_fields__})

    @put("/follows/{customer_id:uuid}")
    async def follow(self, caller: CallerDep, customer_id: FromPath[uuid.UUID], data: JSONBody[FollowSet]) -> dict:
        """Follow a customer in scope (or, with following=false, stop — also one of your own)."""
        async with transaction():
            ident = await service.set_follow(caller=caller, customer_id=customer_id, following=data.following)
        return {"id": str(ident), "customer_id": str(customer_id), "following": data.following}


class PushController(Controller):
    path = "/api/push"
    tags = ["notifications"]

    @get("/vapid-key")
    async def vapid_key(self, settings: SettingsDep) -> VapidKey:
        """The application server key a browser subscribes with (PushManager.subscribe)."""
        from server.notifications.dispatch import vapid_key
        from server.notifications.webpush import WebPushSender

        key = vapid_key(settings)
        if not key:
            raise NotFound("Web Push is not configured on this server (FLOORWALKER_VAPID_PRIVATE_KEY)")
        return VapidKey(public_key=WebPushSender(key, settings.vapid_subject).public_key)

    @get("/subscriptions")
    async def list_subscriptions(self, caller: CallerDep) -> list[PushSubscriptionOut]:
        return [
            PushSubscriptionOut(
                id=as_uuid(r["id"]),
                channel=r["channel"],
                label=r["label"] or "",
                created_at=utc(r["created_at"]),
                last_sent_at=utc(r["last_sent_at"]),
            )
            for r in await service.subscriptions(caller=caller)
        ]

    @post("/subscriptions", status_code=HTTP_201_CREATED)
    async def subscribe(self, caller: CallerDep, settings: SettingsDep, data: JSONBody[PushSubscribe]) -> dict:
        """Register this browser (Web Push) or this phone (FCM token) for the caller's pushes."""
        if data.channel == "webpush":
            if not data.endpoint or data.keys is None:
                raise Invalid("a webpush subscription needs endpoint and keys {p256dh, auth}", field="endpoint")
            parts = urlsplit(data.endpoint)
            loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
            if parts.scheme != "https" and not (parts.scheme == "http" and loopback and settings.mode != "production"):
                raise Invalid("endpoint must be an https URL of a push service", field="endpoint")
            try:
                point, secret = _b64(data.keys.p256dh), _b64(data.keys.auth)
            except ValueError:
                raise Invalid("keys must be base64url", field="keys") from None
            if len(point) != 65 or point[0] != 4:
                raise Invalid("keys.p256dh must be an uncompressed P-256 point (65 bytes)", field="keys.p256dh")
            if len(secret) != 16:
                raise Invalid("keys.auth must be 16 bytes", field="keys.auth")
            async with transaction():
                ident = await service.subscribe(
                    caller=caller,
                    channel="webpush",
                    address=data.endpoint,
                    p256dh=data.keys.p256dh,
                    auth=data.keys.auth,
                    label=data.label,
                )
        else:
            if not data.token:
                raise Invalid("an fcm subscription needs the registration token", field="token")
            async with transaction():
                ident = await service.subscribe(caller=caller, channel="fcm", address=data.token, label=data.label)
        return {"id": str(ident), "channel": data.channel}

    @delete("/subscriptions/{subscription_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def unsubscribe(self, caller: CallerDep, subscription_id: FromPath[uuid.UUID]) -> None:
        async with transaction():
            await service.unsubscribe(caller=caller, subscription_id=subscription_id)


def _encode(data: NotificationPrefsUpdate) -> bytes:
    import msgspec

    return msgspec.json.encode(data)
