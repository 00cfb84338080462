"""The queue: tickets ready for review first, then by due time, with filters by status,
assignee and age, and counts per status. The page refreshes its rows in place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from consultant.database.engine import read_transaction
from consultant.database.types import utcnow
from consultant.tickets.models import TICKET_STATUSES
from consultant.tickets.queries import OPEN_WORK, review_queue
from consultant.web.rendering import render
from consultant.web.security import PageViewer, state

router = APIRouter()
AGES = {"": None, "4h": 4, "24h": 24, "72h": 72}  # "older than"


@dataclass(frozen=True)
class QueueFilter:
    status: str  # "" = open work, or one status
    assignee: str  # "" anyone, "me", "none", or an address
    age: str

    @classmethod
    def of(cls, request: Request) -> QueueFilter:
        params = request.query_params
        chosen = cls(params.get("status", ""), params.get("assignee", ""), params.get("age", ""))
        if chosen.status not in ("", *TICKET_STATUSES) or chosen.age not in AGES:
            raise HTTPException(400, "Unknown status or age filter.")
        return chosen

    def query(self, session: Session, me: str) -> dict:
        hours = AGES[self.age]
        return review_queue(
            session,
            statuses=(self.status,) if self.status else OPEN_WORK,
            assignee=me if self.assignee == "me" else (self.assignee or None),
            unassigned=self.assignee == "none",
            older_than=utcnow() - timedelta(hours=hours) if hours else None,
        )


def _queue(request: Request, viewer: PageViewer, name: str) -> HTMLResponse:
    _, engine, _ = state(request)
    chosen = QueueFilter.of(request)
    with read_transaction(engine) as session:
        found = chosen.query(session, viewer.user.email)
    return render(
        request,
        name,
        viewer,
        filter=chosen,
        statuses=TICKET_STATUSES,
        ages=list(AGES),
        open_work=OPEN_WORK,
        **found,
    )


@router.get("/")
def queue_page(request: Request, viewer: PageViewer) -> HTMLResponse:
    return _queue(request, viewer, "web/queue.html")


@router.get("/queue/rows")
def queue_rows(request: Request, viewer: PageViewer) -> HTMLResponse:
    """The rows and counts alone, for the page's refresh."""
    return _queue(request, viewer, "web/queue_rows.html")
