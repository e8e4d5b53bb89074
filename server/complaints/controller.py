"""HTTP: complaints — list in scope, open, one, and the loop's steps (history, respond, solve,
call-back)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from server.complaints import service
from server.customers.service import decode_time_cursor, encode_cursor
from server.deps import CallerDep
from shared.wire import NO_NUL, ComplaintCreate, ComplaintOut, ComplaintPage, ComplaintStep


class ComplaintController(Controller):
    path = "/api/complaints"
    tags = ["complaints"]

    @get("/")
    async def list_complaints(
        self,
        caller: CallerDep,
        status: Annotated[
            str | None,
            QueryParameter(max_length=20, pattern=NO_NUL, description="open | in_progress | solved | closed | live"),
        ] = None,
        late: Annotated[bool, QueryParameter(description="only those past a step's time")] = False,
        customer_id: Annotated[uuid.UUID | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=service.MAX_LIST)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL)] = None,
    ) -> ComplaintPage:
        after = decode_time_cursor(cursor)
        items, next_after = await service.list_complaints(
            caller=caller, status=status, late=late, customer_id=customer_id, limit=limit, cursor=after
        )
        return ComplaintPage(items=items, next_cursor=encode_cursor(*next_after) if next_after else None)

    @post("/")
    async def open_complaint(self, caller: CallerDep, data: JSONBody[ComplaintCreate]) -> ComplaintOut:
        return await service.open_complaint(caller=caller, data=data)

    @get("/{complaint_id:uuid}")
    async def get_one(self, caller: CallerDep, complaint_id: FromPath[uuid.UUID]) -> ComplaintOut:
        return await service.get(caller=caller, complaint_id=complaint_id)

    @post("/{complaint_id:uuid}/steps", status_code=HTTP_200_OK)
    async def step(
        self, caller: CallerDep, complaint_id: FromPath[uuid.UUID], data: JSONBody[ComplaintStep]
    ) -> ComplaintOut:
        return await service.step(caller=caller, complaint_id=complaint_id, data=data)
