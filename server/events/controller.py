"""HTTP: behaviour events in (store systems, online shop, WeChat, call centre)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.status_codes import HTTP_200_OK

from server.deps import SettingsDep
from server.errors import Invalid
from server.events import service


class EventBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[Any]


class EventController(Controller):
    path = "/api/events"
    tags = ["events"]

    @post("/", status_code=HTTP_200_OK, exclude_from_auth=True)
    async def ingest(self, request: Request, settings: SettingsDep) -> service.IngestAnswer:
        """A batch of up to 500 events, each signed by its source (HMAC-SHA256 of the event's
        canonical JSON without ``signature``, with the source's key). Each event is answered:
        stored, duplicate (its source event id was seen before: nothing changes) or rejected with
        the reason; matching rules run at once for the stores the stored events touched."""
        try:
            batch = msgspec.json.decode(await request.body(), type=EventBatch)
        except msgspec.DecodeError as exc:
            raise Invalid(f'the body must be {{"events": [...]}}: {exc}', field="events") from None
        if not batch.events:
            raise Invalid("no events", field="events")
        if len(batch.events) > service.MAX_EVENTS:
            raise Invalid(f"at most {service.MAX_EVENTS} events per batch", field="events")
        answer = await service.ingest(batch.events, keys=settings.event_key_map)
        if answer.stored:
            request.app.state.pokes.wake()
        return answer
