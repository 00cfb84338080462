"""What the receiving mail server found when it checked a message's sender (RFC 8601
Authentication-Results: SPF, DKIM, DMARC).

Anyone can write a From header; only the server that took the message from the
internet can tell whether the sender's domain vouches for it. That server adds its
result on top of the header block, so the topmost Authentication-Results is the one to
believe (lower ones may be the sender's own inventions), and with `[ingest]
authserv_id` set only one naming our server is. We never check signatures ourselves:
the message has left the SMTP session that could be checked.
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([a-z0-9-]+)(?:/\d+)?\s*=\s*([a-z]+)(.*)$", re.I)
_PROPERTY = re.compile(r"([a-z0-9-]+\.[a-z0-9-]+)\s*=\s*(\S+)", re.I)
FAILED = frozenset(("fail", "softfail"))


def _results(header: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """The authserv-id and each (method, result, properties) of one header."""
    text = header
    while _COMMENT.search(text):  # comments may nest; strip the innermost first
        text = _COMMENT.sub(" ", text)
    serv_id, *parts = text.split(";")
    results = []
    for part in parts:
        match = _RESULT.match(part)
        if match:
            method, result, rest = match.groups()
            properties = {k.lower(): v.strip('"').lower() for k, v in _PROPERTY.findall(rest)}
            results.append((method.lower(), result.lower(), properties))
    return serv_id.strip().split()[0].lower() if serv_id.strip() else "", results


def _aligned(domain: str, value: str | None) -> bool:
    """Whether VALUE (a domain or an address) is DOMAIN or one of its subdomains."""
    if not value:
        return False
    found = value.rpartition("@")[2].lower()
    return found == domain or found.endswith("." + domain)


def failed_authentication(header: str, from_address: str, authserv_id: str | None) -> str | None:
    """Why the server that received the message doubts FROM_ADDRESS's domain sent it
    ("dmarc=fail", "spf=fail, no DKIM pass"), or None: it passed, the server did not
    check, or HEADER is not our server's when AUTHSERV_ID names it."""
    if not header.strip():
        return None
    serv_id, results = _results(header)
    if authserv_id is not None and serv_id != authserv_id.lower():
        return None
    domain = from_address.rpartition("@")[2].lower()
    dmarc = [r for m, r, p in results if m == "dmarc" and _aligned(domain, p.get("header.from"))]
    dmarc += [r for m, r, p in results if m == "dmarc" and "header.from" not in p]
    if dmarc:
        return "dmarc=fail" if "fail" in dmarc else None
    dkim_pass = any(
        m == "dkim" and r == "pass" and _aligned(domain, p.get("header.d") or p.get("header.i"))
        for m, r, p in results
    )
    spf = [r for m, r, _ in results if m == "spf"]
    if not dkim_pass and any(r in FAILED for r in spf):
        return f"spf={next(r for r in spf if r in FAILED)}, no DKIM pass for {domain}"
    return None
