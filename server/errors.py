"""Domain errors services raise; the app maps each to one HTTP status. No Litestar here."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400

    def __init__(self, detail: str, *, field: str | None = None, extra: dict | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra or {}


class Conflict(DomainError):
    """The request cannot be served in this state (e.g. an app too old for the sync schema)."""

    status_code = 409


class NotFound(DomainError):
    """Absent, deleted, or outside the caller's scope: the caller cannot tell which."""

    status_code = 404


class Invalid(DomainError):
    """Well-formed but refused by a business rule (unknown stage, closed deal, negative amount)."""

    status_code = 422


class TooLarge(DomainError):
    """An upload over its size limit (the limit is in the message)."""

    status_code = 413


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class RateLimited(DomainError):
    status_code = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, extra={"retry_after": retry_after})
        self.retry_after = retry_after
