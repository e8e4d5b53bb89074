"""HTTP: log in, refresh, log out, who am I, (de)activate a user."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from server.auth import service
from server.deps import CallerDep, SettingsDep
from shared.wire import LoginRequest, LogoutRequest, RefreshRequest, TokenPair, UserOut


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/login", status_code=HTTP_200_OK, exclude_from_auth=True)
    async def login(self, request: Request, data: JSONBody[LoginRequest], settings: SettingsDep) -> TokenPair:
        """Exchange a username and password for an access token (≤ 15 min) and a refresh token."""
        address = request.client.host if request.client else "unknown"
        return await service.login(username=data.username, password=data.password, address=address, settings=settings)

    @post("/refresh", status_code=HTTP_200_OK, exclude_from_auth=True)
    async def refresh(self, data: JSONBody[RefreshRequest], settings: SettingsDep) -> TokenPair:
        """Rotate the refresh token and get a new access token."""
        return await service.refresh(refresh_token=data.refresh_token, settings=settings)

    @post("/logout", status_code=HTTP_204_NO_CONTENT, exclude_from_auth=True)
    async def logout(self, data: JSONBody[LogoutRequest]) -> None:
        """End the session: its refresh token and access tokens stop working."""
        await service.logout(refresh_token=data.refresh_token)

    @get("/me")
    async def me(self, caller: CallerDep) -> UserOut:
        return service.user_out(caller)


class UserController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/")
    async def list_users(self, caller: CallerDep) -> list[UserOut]:
        from server.stores.service import list_users

        return await list_users(caller=caller)

    @post("/{user_id:uuid}/deactivate", status_code=HTTP_200_OK)
    async def deactivate(self, caller: CallerDep, user_id: FromPath[uuid.UUID]) -> UserOut:
        """Cut a user off at once (lost phone, leaver): every session ends."""
        return await service.set_active(caller=caller, user_id=user_id, active=False)

    @post("/{user_id:uuid}/activate", status_code=HTTP_200_OK)
    async def activate(self, caller: CallerDep, user_id: FromPath[uuid.UUID]) -> UserOut:
        return await service.set_active(caller=caller, user_id=user_id, active=True)
