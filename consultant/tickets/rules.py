"""Who may open tickets: the allowlist and our own addresses (the rate limit's count is
kept by rows.RowWriter.sent_recently).

Rules decide; they never store. The intake records what they decided.
"""

from __future__ import annotations

from consultant.config import IngestConfig


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
