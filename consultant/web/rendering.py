"""Rendering pages: every template gets the viewer and their CSRF token."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from consultant.web.security import Viewer


def render(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        name,
        {
            "viewer": viewer,
            "service_name": request.app.state.config.drafting.service_name,
            **context,
        },
        status_code=status_code,
    )


def render_error(request: Request, status_code: int, message: str) -> HTMLResponse:
    return render(request, "web/error.html", None, status_code, status=status_code, message=message)
