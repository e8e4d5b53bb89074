"""HTTP: opportunities and the pipeline's stages."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from server.deps import CallerDep
from server.opportunities import service
from server.tasks.service import nudge as nudge_owner
from shared.wire import (
    NO_NUL,
    Nudge,
    NudgeOut,
    OpportunityCreate,
    OpportunityOut,
    OpportunityPage,
    OpportunityUpdate,
    StageMove,
    StageOut,
)


class OpportunityController(Controller):
    path = "/api/opportunities"
    tags = ["opportunities"]

    @get("/")
    async def list_opportunities(
        self,
        caller: CallerDep,
        customer_id: FromQuery[uuid.UUID | None] = None,
        owner_id: FromQuery[uuid.UUID | None] = None,
        stage: Annotated[str | None, QueryParameter(max_length=40, pattern=NO_NUL)] = None,
        open_only: FromQuery[bool] = True,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[uuid.UUID | None] = None,
    ) -> OpportunityPage:
        items, next_cursor = await service.list_opportunities(
            caller=caller,
            customer_id=customer_id,
            owner_id=owner_id,
            stage=stage,
            open_only=open_only,
            limit=limit,
            cursor=cursor,
        )
        return OpportunityPage(items=items, next_cursor=next_cursor)

    @post("/")
    async def create(self, caller: CallerDep, data: JSONBody[OpportunityCreate]) -> OpportunityOut:
        return await service.create(caller=caller, data=data)

    @get("/{opportunity_id:uuid}")
    async def get_one(self, caller: CallerDep, opportunity_id: FromPath[uuid.UUID]) -> OpportunityOut:
        """One opportunity with its stage history."""
        return await service.get(caller=caller, opportunity_id=opportunity_id)

    @patch("/{opportunity_id:uuid}")
    async def update(
        self, caller: CallerDep, opportunity_id: FromPath[uuid.UUID], data: JSONBody[OpportunityUpdate]
    ) -> OpportunityOut:
        return await service.update(caller=caller, opportunity_id=opportunity_id, data=data)

    @post("/{opportunity_id:uuid}/stage", status_code=HTTP_200_OK)
    async def move_stage(
        self, caller: CallerDep, opportunity_id: FromPath[uuid.UUID], data: JSONBody[StageMove]
    ) -> OpportunityOut:
        """Move to another stage; unknown stage, closed deal or missing lost reason answer 422."""
        return await service.move_stage(caller=caller, opportunity_id=opportunity_id, data=data)

    @post("/{opportunity_id:uuid}/nudge", status_code=HTTP_200_OK)
    async def nudge(self, caller: CallerDep, opportunity_id: FromPath[uuid.UUID], data: JSONBody[Nudge]) -> NudgeOut:
        """A manager asks the deal's owner to move it: a task due today and a notification (once a
        day per deal; again the same day answers the same task with created=false)."""
        task, created = await nudge_owner(caller=caller, opportunity_id=opportunity_id, note=data.note)
        return NudgeOut(task=task, created=created)


class PipelineController(Controller):
    path = "/api/pipeline"
    tags = ["opportunities"]

    @get("/stages")
    async def list_stages(self, caller: CallerDep) -> list[StageOut]:
        return await service.stages()
