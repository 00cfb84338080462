"""Who may open tickets, and how fast: the allowlist, the rate limit and our own addresses.

Rules decide; they never store. The intake records what they decided.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from consultant.config import IngestConfig
from consultant.database.types import utcnow
from consultant.tickets.models import Message


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def is_allowed(address: str, allow: tuple[str, ...]) -> bool:
    """Whether ADDRESS may open tickets: an empty list allows everyone; entries are
    addresses, or domains ("clinic.example" or "@clinic.example") that also admit
    their subdomains."""
    if not allow:
        return True
    address = address.lower()
    domain = domain_of(address)
    for entry in allow:
        if "@" in entry.lstrip("@"):
            if address == entry:
                return True
            continue
        allowed = entry.lstrip("@")
        if domain == allowed or domain.endswith("." + allowed):
            return True
    return False


def is_ours(address: str | None, config: IngestConfig) -> bool:
    return address is not None and address.lower() in config.our_addresses


def over_rate_limit(session: Session, address: str, config: IngestConfig) -> int | None:
    """How many messages ADDRESS sent in the window when that reaches the limit, else None."""
    if config.rate_limit <= 0:
        return None
    since = utcnow() - timedelta(minutes=config.rate_window_minutes)
    count = session.exec(
        select(func.count())
        .select_from(Message)
        .where(
            Message.from_address == address,
            Message.direction == "inbound",
            Message.received_at >= since,
        )
    ).one()
    return count if count >= config.rate_limit else None
