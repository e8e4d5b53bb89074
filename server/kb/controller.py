"""HTTP: the knowledge base — search (everyone), one article, head office's edits."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from server.deps import CallerDep
from server.kb import service
from shared.wire import NO_NUL, KbArticleIn, KbArticleOut, KbArticlePatch


class KbController(Controller):
    path = "/api/kb"
    tags = ["knowledge base"]

    @get("/")
    async def search(
        self,
        caller: CallerDep,
        q: Annotated[str, QueryParameter(max_length=100, pattern=NO_NUL, description="words, in Chinese or not")] = "",
        topic: Annotated[
            str | None, QueryParameter(max_length=20, pattern=NO_NUL, description="policy | care | delivery | …")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> list[KbArticleOut]:
        return await service.search(query=q, topic=topic, limit=limit)

    @get("/{article_id:uuid}")
    async def get_one(self, caller: CallerDep, article_id: FromPath[uuid.UUID]) -> KbArticleOut:
        return await service.get(article_id=article_id)

    @post("/")
    async def create(self, caller: CallerDep, data: JSONBody[KbArticleIn]) -> KbArticleOut:
        return await service.create(caller=caller, data=data)

    @patch("/{article_id:uuid}")
    async def update(
        self, caller: CallerDep, article_id: FromPath[uuid.UUID], data: JSONBody[KbArticlePatch]
    ) -> KbArticleOut:
        return await service.update(caller=caller, article_id=article_id, data=data)
