"""The review app: `create_app(config)` gives the FastAPI application.

Pages are rendered on the server from `templates/web/` (an operator's templates_dir
overrides them as it does the emails); the few scripts and the stylesheet are served
by the app itself. Every page but the login page needs a session; the API needs a
token. Each response carries a strict Content-Security-Policy.

Pages read without taking SQLite's write lock, and a write waits for it at most
WRITE_WAIT_S: a database that is busy or down is a 503 that says to try again.
X-Forwarded-For is believed only from the configured `[web] trusted_proxies`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from consultant.config import Config
from consultant.database.engine import (
    DatabaseUnavailable,
    driver_error,
    is_unavailable,
    with_lock_wait,
)
from consultant.database.migrate import open_database
from consultant.delivery.compose import Composer
from consultant.delivery.outbox import reply_queuer
from consultant.logs import log_event
from consultant.templating import packaged_templates, template_environment
from consultant.web import api, auth, codes, queue, ticket_page
from consultant.web.rendering import render_error
from consultant.web.secret import secret_key
from consultant.web.security import CONTENT_SECURITY_POLICY, LoginRequired, login_url
from workers.app import make_celery

log = logging.getLogger(__name__)
WRITE_WAIT_S = 5  # for SQLite's write lock (or a PostgreSQL lock), then "busy"
RETRY_AFTER_S = 5
UNAVAILABLE = (
    "The database is busy or unavailable right now, so this could not be done. "
    "Try again in a moment; if it keeps happening, tell your administrator."
)


def error_response(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """JSON for the API and the page's own requests, else the error page."""
    if request.url.path.startswith("/api/") or "json" in request.headers.get("accept", ""):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    response = render_error(request, status, detail)
    response.headers.update(headers or {})
    return response


def create_app(config: Config, engine: Engine | None = None) -> FastAPI:
    app = FastAPI(
        title="CaseConsultant",
        summary="Tickets and codes for the review app and scripts; every call needs a token.",
        docs_url=None,  # Swagger UI loads from a CDN; the schema is at /api/openapi.json
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.config = config
    app.state.engine = with_lock_wait(engine or open_database(config.database_url), WRITE_WAIT_S)
    app.state.secret = secret_key(config)
    app.state.templates = Jinja2Templates(env=template_environment(config.drafting.templates_dir))
    app.state.composer = Composer.from_config(config)
    app.state.queue_reply = reply_queuer(
        app.state.composer, config.delivery.from_address, config.delivery.max_recipients
    )
    app.state.celery = make_celery(config)
    static = packaged_templates() / "web" / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    for module in (auth, queue, ticket_page, codes, api):
        app.include_router(module.router)
    if config.web.trusted_proxies:
        # Only these peers may say whom they forward for; everyone else is their address.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(config.web.trusted_proxies))

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"  # pages hold patient data
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET" and not request.url.path.startswith("/api/"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(login_url(target), status_code=303)
        return JSONResponse({"detail": "Log in first."}, status_code=401)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(DatabaseUnavailable)
    @app.exception_handler(DBAPIError)
    async def unavailable(request: Request, exc: Exception) -> Response:
        """A database locked past WRITE_WAIT_S, or down: a 503 that says so."""
        if isinstance(exc, DBAPIError) and not is_unavailable(exc):
            raise exc  # a bug, not an outage
        log_event(
            log,
            "web-database-unavailable",
            logging.WARNING,
            path=request.url.path,
            error=driver_error(exc),
        )
        return error_response(request, 503, UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_S)})

    return app
