"""The Litestar application factory: routes, authentication, error mapping, lifecycle."""

from __future__ import annotations

import logging

from litestar import Litestar, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from server import db
from server.analytics.controller import ReportController
from server.auth import service as auth_service
from server.auth.controller import AuthController, UserController
from server.auth.scope import Caller
from server.complaints.controller import ComplaintController
from server.customers.controller import CustomerController
from server.errors import DomainError, RateLimited, Unauthorized
from server.events.controller import EventController
from server.imports.controller import ImportController, MergeController
from server.interactions.controller import InteractionController
from server.kb.controller import KbController
from server.notifications.controller import NotificationController, PushController
from server.opportunities.controller import OpportunityController, PipelineController
from server.rollout.activity import Flusher
from server.rollout.controller import FeedbackController, RolloutController
from server.rules.controller import RuleController
from server.settings import Settings
from server.stores.controller import StoreController
from server.sync.controller import SyncController
from server.sync.pokes import PokeHub
from server.tasks.controller import TaskController

log = logging.getLogger("floorwalker")

PUBLIC_PATHS = ["^/health$", "^/schema"]


class BearerAuth(AbstractAuthenticationMiddleware):
    """Every /api route needs `Authorization: Bearer <access token>` unless marked public."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException(
                "missing access token: send 'Authorization: Bearer <access_token>' from POST /api/auth/login",
                headers={"WWW-Authenticate": "Bearer"},
            )
        settings: Settings = connection.app.state.settings
        try:
            caller = await auth_service.caller_for_token(token.strip(), settings=settings)
        except Unauthorized as exc:
            raise NotAuthorizedException(exc.detail, headers={"WWW-Authenticate": "Bearer"}) from None
        return AuthenticationResult(user=caller, auth=token)


def domain_error_handler(request: Request, exc: DomainError) -> Response:
    extra = dict(exc.extra)
    if exc.field:
        extra["field"] = exc.field
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    body = {"status_code": exc.status_code, "detail": exc.detail}
    if extra:
        body["extra"] = extra
    return Response(body, status_code=exc.status_code, headers=headers)


@get("/health", tags=["ops"], exclude_from_auth=True)
async def health() -> dict[str, str]:
    """Liveness and database reachability."""
    from server.sync.tables import ScopeVersion

    await ScopeVersion.raw("SELECT 1")
    return {"status": "ok", "database": "postgresql" if db.is_postgres() else "sqlite"}


def provide_caller(request: Request) -> Caller:
    return request.user


def create_app(settings: Settings) -> Litestar:
    pokes = PokeHub.from_settings(settings)  # with settings.redis_url: pokes cross processes via Redis
    activity = Flusher()  # writes the pulls counted for the adoption figures

    async def startup() -> None:
        await db.start(settings)
        pokes.start()
        activity.start()

    async def shutdown() -> None:
        await activity.stop()
        await pokes.stop()
        await db.stop()

    def provide_settings() -> Settings:
        return settings

    async def after_response(request: Request) -> None:
        # Any write (a task made over HTTP, a customer edited, a push) may have moved a change
        # counter: look now rather than at the next poll, so listeners hear of it at once.
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            pokes.wake()

    app = Litestar(
        route_handlers=[
            health,
            AuthController,
            UserController,
            StoreController,
            CustomerController,
            OpportunityController,
            PipelineController,
            TaskController,
            ComplaintController,
            KbController,
            InteractionController,
            SyncController,
            RuleController,
            EventController,
            NotificationController,
            PushController,
            ImportController,
            MergeController,
            ReportController,
            RolloutController,
            FeedbackController,
        ],
        dependencies={
            "caller": Provide(provide_caller, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
        },
        middleware=[DefineMiddleware(BearerAuth, exclude=PUBLIC_PATHS)],
        exception_handlers={DomainError: domain_error_handler},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Floorwalker API",
            version="0.1.0",
            path="/schema",
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
            ),
            security=[{"BearerToken": []}],
        ),
        after_response=after_response,
        on_startup=[startup],
        on_shutdown=[shutdown],
        debug=False,
    )
    app.state.settings = settings
    app.state.pokes = pokes
    return app
