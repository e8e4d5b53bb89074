"""Access tokens (JWT, HS256, at most 15 minutes) and opaque refresh tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

import jwt

ALGORITHM = "HS256"


def make_access_token(
    *, secret: str, user_id: uuid.UUID, session_id: uuid.UUID, role: str, minutes: int, now: dt.datetime
) -> str:
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),  # the refresh-token family: revoking it ends this token too
        "role": role,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=minutes)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_access_token(token: str, *, secret: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Return (user id, session id); raise jwt.InvalidTokenError on anything wrong."""
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub", "sid", "typ"]})
    if claims.get("typ") != "access":
        raise jwt.InvalidTokenError("not an access token")
    try:
        return uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])
    except (ValueError, TypeError) as exc:
        raise jwt.InvalidTokenError("malformed subject") from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # The token has 256 random bits: a plain SHA-256 is enough and lets us look it up.
    return hashlib.sha256(token.encode()).hexdigest()
