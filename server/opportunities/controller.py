"""HTTP: opportunities and the pipeline's stages."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK

from server.auth.scope import Caller
from server.opportunities import service
from shared.wire import OpportunityCreate, OpportunityOut, OpportunityPage, OpportunityUpdate, StageMove, StageOut


class OpportunityController(Controller):
    path = "/api/opportunities"
    tags = ["opportunities"]

    @get("/")
    async def list_opportunities(
        self,
        caller: Caller,
        customer_id: uuid.UUID | None = None,
        owner_id: uuid.UUID | None = None,
        stage: Annotated[str | None, Parameter(max_length=40)] = None,
        open_only: bool = True,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: uuid.UUID | None = None,
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
    async def create(self, caller: Caller, data: OpportunityCreate) -> OpportunityOut:
        return await service.create(caller=caller, data=data)

    @get("/{opportunity_id:uuid}")
    async def get_one(self, caller: Caller, opportunity_id: uuid.UUID) -> OpportunityOut:
        """One opportunity with its stage history."""
        return await service.get(caller=caller, opportunity_id=opportunity_id)

    @patch("/{opportunity_id:uuid}")
    async def update(self, caller: Caller, opportunity_id: uuid.UUID, data: OpportunityUpdate) -> OpportunityOut:
        return await service.update(caller=caller, opportunity_id=opportunity_id, data=data)

    @post("/{opportunity_id:uuid}/stage", status_code=HTTP_200_OK)
    async def move_stage(self, caller: Caller, opportunity_id: uuid.UUID, data: StageMove) -> OpportunityOut:
        """Move to another stage; unknown stage, closed deal or missing lost reason answer 422."""
        return await service.move_stage(caller=caller, opportunity_id=opportunity_id, data=data)


class PipelineController(Controller):
    path = "/api/pipeline"
    tags = ["opportunities"]

    @get("/stages")
    async def list_stages(self, caller: Caller) -> list[StageOut]:
        return await service.stages()
