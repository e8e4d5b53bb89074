"""HTTP: the rules — list, change for the chain (admin), switch per store (managers)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, put
from litestar.params import FromPath, JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK

from server.deps import CallerDep
from server.rules import service
from shared.wire import RuleOut, RulePatch, RuleStoreSwitch

Code = Annotated[str, PathParameter(max_length=40, pattern=r"^[a-z_]+$")]


class RuleController(Controller):
    path = "/api/rules"
    tags = ["rules"]

    @get("/")
    async def list_rules(self, caller: CallerDep) -> list[RuleOut]:
        """Every rule with its thresholds, title templates, cooldown and the per-store switches
        of the stores the caller sees."""
        return await service.list_rules(caller=caller)

    @patch("/{code:str}")
    async def patch_rule(self, caller: CallerDep, code: Code, data: JSONBody[RulePatch]) -> RuleOut:
        """Change a rule for the whole chain (admin)."""
        return await service.patch_rule(caller=caller, code=code, data=data)

    @put("/{code:str}/stores/{store_id:uuid}", status_code=HTTP_200_OK)
    async def switch_store(
        self, caller: CallerDep, code: Code, store_id: FromPath[uuid.UUID], data: JSONBody[RuleStoreSwitch]
    ) -> RuleOut:
        """Switch a rule on or off for one store (and override its thresholds there)."""
        return await service.switch_store(caller=caller, code=code, store_id=store_id, data=data)

    @delete("/{code:str}/stores/{store_id:uuid}", status_code=HTTP_200_OK)
    async def reset_store(self, caller: CallerDep, code: Code, store_id: FromPath[uuid.UUID]) -> RuleOut:
        """The store follows the rule's chain-wide setting again."""
        return await service.switch_store(caller=caller, code=code, store_id=store_id, data=None)
