"""HTTP: log an interaction; a customer's timeline."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromQuery, JSONBody, QueryParameter

from server.customers.service import load_customer_scope
from server.deps import CallerDep
from server.interactions import service
from shared.wire import InteractionCreate, InteractionOut


class InteractionController(Controller):
    path = "/api/interactions"
    tags = ["interactions"]

    @post("/")
    async def log(self, caller: CallerDep, data: JSONBody[InteractionCreate]) -> InteractionOut:
        """Log a visit, call, note or message for a customer in the caller's stores."""
        return await service.log(caller=caller, data=data)

    @get("/")
    async def timeline(
        self,
        caller: CallerDep,
        customer_id: FromQuery[uuid.UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[InteractionOut]:
        await load_customer_scope(caller=caller, customer_id=customer_id)
        return await service.for_customer(customer_id=customer_id, limit=limit)
