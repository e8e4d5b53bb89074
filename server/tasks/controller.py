"""HTTP: tasks — list by view, create, complete, snooze, reassign."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from server.customers.service import decode_time_cursor, encode_cursor
from server.deps import CallerDep
from server.tasks import service
from shared.wire import NO_NUL, TaskCreate, TaskOut, TaskPage, TaskReassign, TaskSnooze


class TaskController(Controller):
    path = "/api/tasks"
    tags = ["tasks"]

    @get("/")
    async def list_tasks(
        self,
        caller: CallerDep,
        view: Annotated[
            str, QueryParameter(max_length=20, pattern=NO_NUL, description="mine | today | overdue | store")
        ] = "mine",
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL)] = None,
    ) -> TaskPage:
        after = decode_time_cursor(cursor)
        items, next_after = await service.list_tasks(caller=caller, view=view, limit=limit, cursor=after)
        return TaskPage(items=items, next_cursor=encode_cursor(*next_after) if next_after else None)

    @post("/")
    async def create(self, caller: CallerDep, data: JSONBody[TaskCreate]) -> TaskOut:
        return await service.create(caller=caller, data=data)

    @get("/{task_id:uuid}")
    async def get_one(self, caller: CallerDep, task_id: FromPath[uuid.UUID]) -> TaskOut:
        return await service.get(caller=caller, task_id=task_id)

    @post("/{task_id:uuid}/complete", status_code=HTTP_200_OK)
    async def complete(self, caller: CallerDep, task_id: FromPath[uuid.UUID]) -> TaskOut:
        return await service.complete(caller=caller, task_id=task_id)

    @post("/{task_id:uuid}/snooze", status_code=HTTP_200_OK)
    async def snooze(self, caller: CallerDep, task_id: FromPath[uuid.UUID], data: JSONBody[TaskSnooze]) -> TaskOut:
        return await service.snooze(caller=caller, task_id=task_id, until=data.until)

    @post("/{task_id:uuid}/reassign", status_code=HTTP_200_OK)
    async def reassign(self, caller: CallerDep, task_id: FromPath[uuid.UUID], data: JSONBody[TaskReassign]) -> TaskOut:
        return await service.reassign(caller=caller, task_id=task_id, owner_id=data.owner_id)
