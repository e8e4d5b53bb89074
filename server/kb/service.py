"""The knowledge base: search (shared/kb.py, the same function the phone runs offline), read, and
head office's edits — each edit a new version of the catalog scope, so phones pick it up on their
next pull."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from server.auth.scope import Caller
from server.db import transaction
from server.errors import Conflict, Forbidden, Invalid, NotFound
from server.kb.tables import KbArticle
from server.sync.service import CATALOG_SCOPE, allocate_versions
from server.values import as_uuid
from shared import kb
from shared.enums import Role
from shared.ids import uuid7
from shared.wire import KbArticleIn, KbArticleOut, KbArticlePatch

CODE = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")


def _article(r: dict) -> kb.Article:
    return kb.Article(
        id=str(r["id"]),
        code=r["code"],
        topic=r["topic"],
        title=r["title"],
        title_en=r["title_en"] or "",
        body=r["body"],
        tags=r["tags"] or "",
    )


def _out(a: kb.Article) -> KbArticleOut:
    return KbArticleOut(
        id=as_uuid(a.id),
        code=a.code,
        topic=a.topic,
        title=a.title,
        title_en=a.title_en,
        body=a.body,
        tags=[t for t in a.tags.split(",") if t],
    )


async def _all() -> list[kb.Article]:
    return [_article(r) for r in await KbArticle.select().where(KbArticle.deleted.eq(False))]


async def search(*, query: str, topic: str | None, limit: int) -> list[KbArticleOut]:
    if topic is not None and topic not in kb.TOPICS:
        raise Invalid(f"topic must be one of {', '.join(kb.TOPICS)}, got {topic!r}", field="topic")
    return [_out(a) for a in kb.search(await _all(), query, topic=topic, limit=limit)]


async def get(*, article_id: uuid.UUID) -> KbArticleOut:
    row = await KbArticle.select().where((KbArticle.id == article_id) & KbArticle.deleted.eq(False)).first()
    if row is None:
        raise NotFound(f"article {article_id} not found")
    return _out(_article(row))


def _head_office(caller: Caller) -> None:
    if caller.role != Role.ADMIN:
        raise Forbidden("only head office edits the knowledge base")


def _tags(tags: list[str]) -> str:
    cleaned = [t.strip() for t in tags if t.strip()]
    if any("," in t for t in cleaned):
        raise Invalid("a tag must not contain a comma", field="tags")
    return ",".join(dict.fromkeys(cleaned))


async def create(*, caller: Caller, data: KbArticleIn) -> KbArticleOut:
    _head_office(caller)
    if not CODE.fullmatch(data.code):
        raise Invalid("code must be 2–40 lower-case letters, digits or dashes, e.g. sofa-care", field="code")
    if data.topic not in kb.TOPICS:
        raise Invalid(f"topic must be one of {', '.join(kb.TOPICS)}, got {data.topic!r}", field="topic")
    article_id = uuid7()
    async with transaction():
        if await KbArticle.exists().where(KbArticle.code == data.code):
            raise Conflict(f"an article with code {data.code!r} exists already", field="code")
        await KbArticle.insert(
            KbArticle(
                id=article_id,
                version=await allocate_versions(CATALOG_SCOPE),
                updated_at=dt.datetime.now(dt.UTC),
                code=data.code,
                topic=data.topic,
                title=data.title.strip(),
                title_en=data.title_en.strip(),
                body=data.body.strip(),
                tags=_tags(data.tags),
            )
        )
    return await get(article_id=article_id)


async def update(*, caller: Caller, article_id: uuid.UUID, data: KbArticlePatch) -> KbArticleOut:
    _head_office(caller)
    changes: dict = {}
    if data.topic is not None:
        if data.topic not in kb.TOPICS:
            raise Invalid(f"topic must be one of {', '.join(kb.TOPICS)}, got {data.topic!r}", field="topic")
        changes[KbArticle.topic] = data.topic
    texts = ((KbArticle.title, data.title), (KbArticle.title_en, data.title_en), (KbArticle.body, data.body))
    for column, value in texts:
        if value is not None:
            changes[column] = value.strip()
    if data.tags is not None:
        changes[KbArticle.tags] = _tags(data.tags)
    if data.deleted:
        changes[KbArticle.deleted] = True
    async with transaction():
        await get(article_id=article_id)  # 404 first
        if changes:
            changes[KbArticle.version] = await allocate_versions(CATALOG_SCOPE)
            changes[KbArticle.updated_at] = dt.datetime.now(dt.UTC)
            await KbArticle.update(changes).where(KbArticle.id == article_id)
    if data.deleted:
        return KbArticleOut(id=article_id, code="", topic="", title="", title_en="", body="", tags=[], deleted=True)
    return await get(article_id=article_id)
