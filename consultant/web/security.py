"""Who is asking: the browser's session cookie (pages) or a bearer token (the API);
CSRF tokens for every form; the headers every response carries.

A CSRF token is an HMAC of the session id under the app's secret key: it cannot be
read by another site, and needs no storage. The login form, before any session,
uses a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Header, HTTPException, Request
from fastapi.datastructures import FormData
from sqlalchemy import Engine

from consultant.accounts.models import User
from consultant.accounts.sessions import session_user
from consultant.accounts.users import user_for_token
from consultant.config import Config

SESSION_COOKIE = "cc_session"
LOGIN_CSRF_COOKIE = "cc_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

# Scripts only from the app itself. Inline styles are allowed for the email previews
# (our own reply template styles its HTML); customer HTML is sanitized and shown in a
# sandboxed frame without scripts.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)


class LoginRequired(Exception):
    """A page was asked for without a valid session."""


@dataclass(frozen=True)
class Viewer:
    """The logged-in user of a page request, with their CSRF token."""

    user: User
    csrf: str


def state(request: Request) -> tuple[Config, Engine, str]:
    app = request.app
    return app.state.config, app.state.engine, app.state.secret


def csrf_for(secret: str, session_token: str) -> str:
    return hmac.new(secret.encode(), session_token.encode(), hashlib.sha256).hexdigest()


def page_viewer(request: Request) -> Viewer:
    """The session's user; a missing or expired session goes to the login page."""
    _, engine, secret = state(request)
    token = request.cookies.get(SESSION_COOKIE)
    user = session_user(engine, token) if token else None
    if user is None or token is None:
        raise LoginRequired
    return Viewer(user, csrf_for(secret, token))


PageViewer = Annotated[Viewer, Depends(page_viewer)]


async def checked_form(request: Request, viewer: PageViewer) -> FormData:
    """The posted form, once its CSRF token proves it came from our own page."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, viewer.csrf):
        raise HTTPException(
            403, "This form is out of date or did not come from this site; reload the page."
        )
    return form


def checked_header(
    viewer: PageViewer, token: Annotated[str | None, Header(alias=CSRF_HEADER)] = None
) -> Viewer:
    """For the page's own JSON requests: the CSRF token comes in a header."""
    if token is None or not hmac.compare_digest(token, viewer.csrf):
        raise HTTPException(403, "Missing or wrong CSRF token; reload the page.")
    return viewer


def api_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> User:
    """The user an API token belongs to (`Authorization: Bearer <token>`)."""
    _, engine, _ = state(request)
    scheme, _, token = (authorization or "").partition(" ")
    user = user_for_token(engine, token.strip()) if scheme.lower() == "bearer" and token else None
    if user is None:
        raise HTTPException(
            401,
            "An API token is required: `Authorization: Bearer <token>` "
            "(make one with `consultant users token EMAIL`).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


ApiUser = Annotated[User, Depends(api_user)]


def admin_api_user(user: ApiUser) -> User:
    if not user.is_admin:
        raise HTTPException(403, "This needs an administrator's token.")
    return user


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def login_url(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='/')}"
