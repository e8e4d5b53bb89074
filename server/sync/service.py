"""Change order: versions allocated from a per-scope counter inside the writing transaction."""

from __future__ import annotations

import uuid

from server.sync.tables import ScopeVersion

ORG_SCOPE = "org"  # regions, stores, users
CATALOG_SCOPE = "catalog"  # categories, products, pipeline stages


def store_scope(store_id: uuid.UUID) -> str:
    return str(store_id)


async def allocate_versions(scope: str, count: int = 1) -> int:
    """Reserve ``count`` consecutive versions in ``scope`` and return the last one.

    Must run inside the writing transaction: on PostgreSQL the UPDATE locks the scope's counter
    row until commit, so a transaction that takes a later number commits later, and a client
    that pulled up to version N can never miss a row numbered below N committed afterwards.
    (On SQLite writers are serialised by BEGIN IMMEDIATE.)
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    rows = await ScopeVersion.raw(
        "UPDATE scope_versions SET version = version + {} WHERE scope = {} RETURNING version", count, scope
    )
    if not rows:
        await ScopeVersion.raw(
            "INSERT INTO scope_versions (scope, version) VALUES ({}, 0) ON CONFLICT (scope) DO NOTHING", scope
        )
        rows = await ScopeVersion.raw(
            "UPDATE scope_versions SET version = version + {} WHERE scope = {} RETURNING version", count, scope
        )
    return int(rows[0]["version"])


async def current_version(scope: str) -> int:
    row = await ScopeVersion.select(ScopeVersion.version).where(ScopeVersion.scope == scope).first()
    return int(row["version"]) if row else 0
