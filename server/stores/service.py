"""Stores and users as the caller may see them."""

from __future__ import annotations

from server.auth.scope import Caller
from server.auth.tables import User
from server.stores.tables import Store
from server.values import as_uuid, json_obj
from shared.enums import Role
from shared.wire import StoreOut, UserOut


async def list_stores(*, caller: Caller) -> list[StoreOut]:
    params: list[object] = []
    rows = await Store.raw(
        "SELECT id, code, name, city, region_id, time_zone, opening_hours FROM stores "
        f"WHERE deleted = false AND {caller.store_filter('id', params)} ORDER BY code",
        *params,
    )
    return [
        StoreOut(
            id=as_uuid(r["id"]),
            code=r["code"],
            name=r["name"],
            city=r["city"],
            region_id=as_uuid(r["region_id"]),
            time_zone=r["time_zone"],
            opening_hours=json_obj(r["opening_hours"]),
        )
        for r in rows
    ]


async def list_users(*, caller: Caller) -> list[UserOut]:
    """Active and inactive staff of the caller's stores (reassignment pickers, managers' lists)."""
    params: list[object] = []
    rows = await User.raw(
        "SELECT id, username, display_name, role, store_id, region_id, language FROM users "
        f"WHERE deleted = false AND {caller.store_filter('store_id', params)} ORDER BY username",
        *params,
    )
    return [
        UserOut(
            id=as_uuid(r["id"]),
            username=r["username"],
            display_name=r["display_name"],
            role=Role(r["role"]),
            store_id=as_uuid(r["store_id"]),
            region_id=as_uuid(r["region_id"]),
            language=r["language"],
        )
        for r in rows
    ]
