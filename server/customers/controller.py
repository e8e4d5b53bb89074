"""HTTP: customer search and the 360° card."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, QueryParameter

from server.customers import service
from server.deps import CallerDep
from shared.wire import NO_NUL, CustomerCard, CustomerPage

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="page size, at most 200")]


class CustomerController(Controller):
    path = "/api/customers"
    tags = ["customers"]

    @get("/")
    async def search(
        self,
        caller: CallerDep,
        q: Annotated[str, QueryParameter(max_length=100, pattern=NO_NUL, description="name or phone fragment")] = "",
        limit: Limit = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=400, pattern=NO_NUL)] = None,
    ) -> CustomerPage:
        """Customers in the caller's stores by name or phone fragment, one keyset page at a time."""
        return await service.search(caller=caller, q=q, limit=limit, cursor=cursor)

    @get("/{customer_id:uuid}")
    async def card(self, caller: CallerDep, customer_id: FromPath[uuid.UUID]) -> CustomerCard:
        """The card: profile, phones, value, orders, interactions, opportunities, tasks, complaints."""
        return await service.card(caller=caller, customer_id=customer_id)
