"""The review app: `create_app(config)` gives the FastAPI application.

Pages are rendered on the server from `templates/web/` (an operator's templates_dir
overrides them as it does the emails); the few scripts and the stylesheet are served
by the app itself. Every page but the login page needs a session; the API needs a
token. Each response carries a strict Content-Security-Policy.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from consultant.config import Config
from consultant.database.migrate import open_database
from consultant.delivery.compose import Composer
from consultant.delivery.outbox import reply_queuer
from consultant.templating import packaged_templates, template_environment
from consultant.web import api, auth, codes, queue, ticket_page
from consultant.web.rendering import render_error
from consultant.web.secret import secret_key
from consultant.web.security import CONTENT_SECURITY_POLICY, LoginRequired, login_url
from workers.app import make_celery


def create_app(config: Config, engine: Engine | None = None) -> FastAPI:
    app = FastAPI(
        title="CaseConsultant",
        summary="Tickets and codes for the review app and scripts; every call needs a token.",
        docs_url=None,  # Swagger UI loads from a CDN; the schema is at /api/openapi.json
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.config = config
    app.state.engine = engine or open_database(config.database_url)
    app.state.secret = secret_key(config)
    app.state.templates = Jinja2Templates(env=template_environment(config.drafting.templates_dir))
    app.state.composer = Composer.from_config(config)
    app.state.queue_reply = reply_queuer(app.state.composer, config.delivery.from_address)
    app.state.celery = make_celery(config)
    static = packaged_templates() / "web" / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    for module in (auth, queue, ticket_page, codes, api):
        app.include_router(module.router)

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
        wants_json = request.url.path.startswith("/api/") or "json" in request.headers.get(
            "accept", ""
        )
        if wants_json:
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        return render_error(request, exc.status_code, str(exc.detail))

    return app
