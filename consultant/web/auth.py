"""Logging in and out. Login attempts are counted per address and per client before
the password is checked, and a run of failures locks the login out for a while (see
accounts.sessions). The client is the connection's peer, or the address a configured
proxy (`[web] trusted_proxies`, see app.py) forwards: never one a client names itself."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response

from consultant.accounts.sessions import (
    FAILURE_WINDOW,
    close_session,
    count_attempt,
    open_session,
    session_user,
)
from consultant.accounts.users import authenticate
from consultant.logs import log_event
from consultant.web.rendering import render
from consultant.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    checked_form,
    new_login_csrf,
    state,
)

log = logging.getLogger(__name__)
router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, next_path: str, error: str = "", status: int = 200) -> Response:
    token = new_login_csrf()
    config, _, _ = state(request)
    response = render(
        request, "web/login.html", None, status, csrf=token, next=next_path, error=error
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=config.web.secure_cookies,
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    _, engine, _ = state(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token and session_user(engine, token):
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, _safe_next(next))


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    config, engine, _ = state(request)
    target = _safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        return _login_page(request, target, "The login form expired; please try again.", 403)
    client = request.client.host if request.client else "unknown"
    attempt = count_attempt(engine, email, client)
    if attempt is None:
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        log_event(log, "login-locked", logging.WARNING, client=client)
        return _login_page(
            request,
            target,
            f"Too many failed logins. Wait {minutes} minutes, or ask an administrator.",
            429,
        )
    user = authenticate(engine, email, password)
    if user is None:  # the attempt stays counted as a failure
        log_event(log, "login-failed", logging.WARNING, client=client)
        return _login_page(request, target, "Wrong email address or password.", 401)
    assert user.id is not None
    token = open_session(engine, user.id, config.web.session_hours, attempt)
    log_event(log, "login", user=user.id, client=client)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(config.web.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=config.web.secure_cookies,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, form: Annotated[FormData, Depends(checked_form)]) -> Response:
    _, engine, _ = state(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        close_session(engine, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
