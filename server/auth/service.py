"""Login, token refresh and logout, login throttling, and turning a token into a Caller."""

from __future__ import annotations

import datetime as dt
import uuid

import jwt

from server.auth import tokens
from server.auth.passwords import verify_password
from server.auth.scope import Caller
from server.auth.tables import LoginAttempt, RefreshToken, User
from server.db import transaction
from server.errors import NotFound, RateLimited, Unauthorized
from server.settings import Settings
from server.stores.tables import Store
from server.values import as_uuid
from shared.enums import Role
from shared.ids import uuid7
from shared.wire import TokenPair, UserOut


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _check_throttle(*, username: str, address: str, settings: Settings, now: dt.datetime) -> None:
    since = now - dt.timedelta(seconds=settings.login_window_seconds)
    for column, value, limit, what in (
        (LoginAttempt.username, username, settings.login_max_failures_per_account, "this account"),
        (LoginAttempt.address, address, settings.login_max_failures_per_address, "this address"),
    ):
        rows = await (
            LoginAttempt.select(LoginAttempt.at)
            .where((column == value) & (LoginAttempt.at > since) & (LoginAttempt.success.eq(False)))
            .order_by(LoginAttempt.at)
            .limit(limit)
        )
        if len(rows) >= limit:
            retry_after = max(1, int((rows[0]["at"] - since).total_seconds()) + 1)
            raise RateLimited(
                f"too many failed logins for {what}; try again in {retry_after} s", retry_after=retry_after
            )


async def _record_failure(*, username: str, address: str, now: dt.datetime) -> None:
    await LoginAttempt.insert(LoginAttempt(username=username, address=address, at=now, success=False))
    await LoginAttempt.delete().where(LoginAttempt.at < now - dt.timedelta(days=1))


async def store_ids_for(*, role: Role, store_id: uuid.UUID | None, region_id: uuid.UUID | None) -> frozenset | None:
    if role == Role.ADMIN:
        return None
    if role == Role.REGIONAL_MANAGER:
        if region_id is None:
            return frozenset()
        rows = await Store.select(Store.id).where((Store.region_id == region_id) & (Store.deleted.eq(False)))
        return frozenset(r["id"] for r in rows)
    return frozenset({store_id}) if store_id else frozenset()


def user_out(caller: Caller) -> UserOut:
    return UserOut(
        id=caller.user_id,
        username=caller.username,
        display_name=caller.display_name,
        role=caller.role,
        store_id=caller.store_id,
        region_id=caller.region_id,
        language=caller.language,
        store_ids=sorted(caller.store_ids or (), key=str),
    )


async def _caller_from_row(row: dict) -> Caller:
    role = Role(row["role"])
    return Caller(
        user_id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=role,
        store_id=row["store_id"],
        region_id=row["region_id"],
        language=row["language"],
        store_ids=await store_ids_for(role=role, store_id=row["store_id"], region_id=row["region_id"]),
    )


_USER_COLUMNS = (
    User.id,
    User.username,
    User.display_name,
    User.role,
    User.store_id,
    User.region_id,
    User.language,
    User.active,
)


async def _issue(*, user_row: dict, family_id: uuid.UUID, settings: Settings, now: dt.datetime) -> tuple[str, str]:
    refresh = tokens.new_refresh_token()
    await RefreshToken.insert(
        RefreshToken(
            id=uuid7(),
            user_id=user_row["id"],
            family_id=family_id,
            token_hash=tokens.hash_refresh_token(refresh),
            issued_at=now,
            expires_at=now + dt.timedelta(days=settings.refresh_token_days),
        )
    )
    access = tokens.make_access_token(
        secret=settings.secret_key,
        user_id=user_row["id"],
        session_id=family_id,
        role=user_row["role"],
        minutes=settings.access_token_minutes,
        now=now,
    )
    return access, refresh


async def login(*, username: str, password: str, address: str, settings: Settings) -> TokenPair:
    now = _now()
    username = username.strip()
    await _check_throttle(username=username, address=address, settings=settings, now=now)
    row = await User.select(*_USER_COLUMNS, User.password_hash).where(User.username == username).first()
    if not verify_password(row["password_hash"] if row else None, password) or row is None:
        await _record_failure(username=username, address=address, now=now)
        raise Unauthorized("wrong username or password")
    if not row["active"]:
        raise Unauthorized("this account is deactivated; ask your store manager")
    await LoginAttempt.delete().where((LoginAttempt.username == username) & (LoginAttempt.success.eq(False)))
    async with transaction():
        access, refresh = await _issue(user_row=row, family_id=uuid7(), settings=settings, now=now)
    caller = await _caller_from_row(row)
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=settings.access_token_minutes * 60,
        user=user_out(caller),
    )


async def refresh(*, refresh_token: str, settings: Settings) -> TokenPair:
    """Rotate a refresh token. Reusing an already-rotated token revokes its whole family."""
    now = _now()
    token_hash = tokens.hash_refresh_token(refresh_token)
    async with transaction():
        stored = await RefreshToken.select().where(RefreshToken.token_hash == token_hash).first()
        if stored is None:
            raise Unauthorized("unknown refresh token; log in again")
        if stored["revoked_at"] is not None:
            await RefreshToken.update({RefreshToken.revoked_at: now}).where(
                (RefreshToken.family_id == stored["family_id"]) & RefreshToken.revoked_at.is_null()
            )
            revoked = Unauthorized("this refresh token was revoked; log in again")
        elif stored["expires_at"] <= now:
            revoked = Unauthorized("refresh token expired; log in again")
        else:
            revoked = None
        if revoked is None:
            # Only one of two concurrent refreshes with the same token can win this update.
            won = (
                await RefreshToken.update({RefreshToken.revoked_at: now})
                .where((RefreshToken.id == stored["id"]) & RefreshToken.revoked_at.is_null())
                .returning(RefreshToken.id)
            )
            if not won:
                revoked = Unauthorized("this refresh token was revoked; log in again")
        if revoked is None:
            user = await User.select(*_USER_COLUMNS).where(User.id == stored["user_id"]).first()
            if user is None or not user["active"]:
                revoked = Unauthorized("this account is deactivated; ask your store manager")
            else:
                access, new_refresh = await _issue(
                    user_row=user, family_id=stored["family_id"], settings=settings, now=now
                )
    if revoked is not None:
        raise revoked
    caller = await _caller_from_row(user)
    return TokenPair(
        access_token=access,
        refresh_token=new_refresh,
        expires_in=settings.access_token_minutes * 60,
        user=user_out(caller),
    )


async def logout(*, refresh_token: str) -> None:
    """End the session the refresh token belongs to (its access tokens stop working too)."""
    stored = await (
        RefreshToken.select(RefreshToken.family_id)
        .where(RefreshToken.token_hash == tokens.hash_refresh_token(refresh_token))
        .first()
    )
    if stored is None:
        raise Unauthorized("unknown refresh token")
    await RefreshToken.update({RefreshToken.revoked_at: _now()}).where(
        (RefreshToken.family_id == stored["family_id"]) & RefreshToken.revoked_at.is_null()
    )


async def caller_for_token(access_token: str, *, settings: Settings) -> Caller:
    """Authenticate a request: a valid token, a live session, an active user."""
    try:
        user_id, session_id = tokens.read_access_token(access_token, secret=settings.secret_key)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("access token expired; refresh it") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid access token") from None
    # One statement per request: the user and whether the session is alive.
    rows = await User.raw(
        "SELECT u.id, u.username, u.display_name, u.role, u.store_id, u.region_id, u.language, u.active, "
        "EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = {} AND t.user_id = u.id "
        "AND t.revoked_at IS NULL AND t.expires_at > {}) AS live FROM users u WHERE u.id = {}",
        session_id,
        _now(),
        user_id,
    )
    row = rows[0] if rows else None
    if row is None or not row["active"]:
        raise Unauthorized("this account is deactivated; ask your store manager")
    if not row["live"]:
        raise Unauthorized("session ended (logged out or revoked); log in again")
    row["store_id"], row["region_id"] = as_uuid(row["store_id"]), as_uuid(row["region_id"])
    row["id"] = as_uuid(row["id"])
    return await _caller_from_row(row)


# Which roles each role may (de)activate, within its own stores.
_MANAGES: dict[Role, frozenset[Role]] = {
    Role.REP: frozenset(),
    Role.STORE_MANAGER: frozenset({Role.REP}),
    Role.REGIONAL_MANAGER: frozenset({Role.REP, Role.STORE_MANAGER}),
    Role.ADMIN: frozenset(Role),
}


async def set_active(*, caller: Caller, user_id: uuid.UUID, active: bool) -> UserOut:
    """Deactivate (lost phone, leaver) or reactivate a user in the caller's scope.

    Only admins and managers may; deactivation also ends every session of the user."""
    row = await User.select(*_USER_COLUMNS).where(User.id == user_id).first()
    if row is None or row["id"] == caller.user_id:
        raise NotFound(f"user {user_id} not found")
    target_role = Role(row["role"])
    if target_role not in _MANAGES[caller.role]:
        raise NotFound(f"user {user_id} not found")
    if not caller.sees_all:
        target_stores = await store_ids_for(role=target_role, store_id=row["store_id"], region_id=row["region_id"])
        if not target_stores or not target_stores <= (caller.store_ids or frozenset()):
            raise NotFound(f"user {user_id} not found")
    from server.sync.service import ORG_SCOPE, allocate_versions

    async with transaction():
        # A new org version: phones see the colleague's new state at their next pull.
        version = await allocate_versions(ORG_SCOPE)
        await User.update({User.active: active, User.updated_at: _now(), User.version: version}).where(
            User.id == user_id
        )
        if not active:
            await RefreshToken.update({RefreshToken.revoked_at: _now()}).where(
                (RefreshToken.user_id == user_id) & RefreshToken.revoked_at.is_null()
            )
    row["active"] = active
    return user_out(await _caller_from_row(row))
