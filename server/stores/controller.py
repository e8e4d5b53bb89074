"""HTTP: the stores the caller may see."""

from __future__ import annotations

from litestar import Controller, get

from server.deps import CallerDep
from server.stores import service
from shared.wire import StoreOut


class StoreController(Controller):
    path = "/api/stores"
    tags = ["stores"]

    @get("/")
    async def list_stores(self, caller: CallerDep) -> list[StoreOut]:
        return await service.list_stores(caller=caller)
