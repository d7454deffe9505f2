"""The web application: pages and the JSON API over the warehouse snapshot and the operational store."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from familycard.settings import Settings
from familycard.web.context import AppContext
from familycard.web.render import STATIC, error_response, http_error, validation_error
from familycard.web.snapshot import NoSnapshot
from familycard.web.views import admin, auth, citizen, families, home, oidc, overview, records

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SecurityHeaders:
    """Headers every response carries (pure ASGI, so streaming and errors get them too)."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        if https:
            self.headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(self.headers)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: Settings | None = None, context: AppContext | None = None) -> FastAPI:
    """The application for ``settings`` (or an already opened ``context``)."""
    ctx = context or AppContext.open(settings or Settings())
    app = FastAPI(
        title="familycard",
        summary="Digital Family Card: find families in hardship before they apply for help",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)

    async def no_snapshot(request: Request, exc: Exception) -> Response:
        return error_response(request, 503, str(exc))

    app.add_exception_handler(NoSnapshot, no_snapshot)
    for module in (home, auth, overview, families, records, admin, citizen, oidc):
        app.include_router(module.pages)
        app.include_router(module.api)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeaders, https=ctx.settings.cookie_secure)
    return app


def route_table(app: FastAPI) -> list[tuple[str, str, bool]]:
    """Every (method, path, in the OpenAPI) the app answers, walking included routers.

    Recent FastAPI versions keep included routers as nested objects rather than flattening them into
    ``app.routes``; tests and docs enumerate endpoints through this function instead.
    """
    from fastapi.routing import APIRoute

    out: list[tuple[str, str, bool]] = []

    def walk(routes: list[object]) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(list(inner.routes))
            elif isinstance(route, APIRoute):
                methods = (route.methods or set()) - {"HEAD"}
                out.extend((m, route.path, route.include_in_schema) for m in sorted(methods))

    walk(list(app.routes))
    return sorted(set(out))
