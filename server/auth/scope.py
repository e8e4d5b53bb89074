"""The scoping layer every read and write goes through: which stores a caller may see.

rep and store manager → their store; regional manager → the stores of their region;
admin → every store. Anything outside answers 404 (`NotFound`), never 403, so an id from
another store reveals nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from server.errors import NotFound
from shared.enums import Role


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: uuid.UUID
    username: str
    display_name: str
    role: Role
    store_id: uuid.UUID | None
    region_id: uuid.UUID | None
    language: str
    # None means every store (admin).
    store_ids: frozenset[uuid.UUID] | None

    @property
    def sees_all(self) -> bool:
        return self.store_ids is None

    def sees(self, store_id: uuid.UUID | str | None) -> bool:
        if store_id is None:
            return False
        if self.store_ids is None:
            return True
        return uuid.UUID(str(store_id)) in self.store_ids

    def require(self, store_id: uuid.UUID | str | None, what: str, ident: object) -> None:
        """Raise NotFound unless ``store_id`` is in scope."""
        if not self.sees(store_id):
            raise NotFound(f"{what} {ident} not found")

    def store_filter(self, column: str, params: list[object]) -> str:
        """A SQL condition restricting ``column`` to the caller's stores ('1=1' for admin).

        Appends the store ids to ``params`` for Piccolo's ``{}`` placeholders."""
        if self.store_ids is None:
            return "1=1"
        if not self.store_ids:
            return "1=0"
        params.extend(self.store_ids)
        return f"{column} IN ({', '.join('{}' for _ in self.store_ids)})"

    @property
    def sees_full_phones(self) -> bool:
        # Frontline staff call their store's customers; head office sees masked numbers.
        return self.role in (Role.REP, Role.STORE_MANAGER)


async def load_in_scope(
    *, caller: Caller, table: type, select: str, alias: str, ident: uuid.UUID, what: str, lock: bool = False
) -> dict:
    """One live row by id through ``select`` (a SELECT ... FROM ... with ``alias`` for the row's
    table), or NotFound when absent, deleted or outside the caller's stores. ``lock`` takes the
    row lock on PostgreSQL for a read-modify-write inside a transaction."""
    from server.db import is_postgres

    params: list[object] = [ident]
    sql = (
        f"{select} WHERE {alias}.id = {{}} AND {alias}.deleted = false "
        f"AND {caller.store_filter(f'{alias}.store_id', params)}"
    )
    if lock and is_postgres():
        sql += f" FOR UPDATE OF {alias}"
    rows = await table.raw(sql, *params)
    if not rows:
        raise NotFound(f"{what} {ident} not found")
    return rows[0]
