"""What counts as an address we may write to, or an account may log in as.

A customer's From may be anything a mail client produced; we only ever put a plain
RFC 5322 addr-spec in a header we write: a dot-atom local part and a host name, no
empty labels, no quotes, comments or display names. The email package refuses less
(`bob@clinic..test` parses, then fails when the message is built), so the check is made
here, before anything is queued.
"""

from __future__ import annotations

import re

MAX_LENGTH = 254  # RFC 5321's path limit, less the angle brackets

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_SPEC = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def is_addr_spec(value: str) -> bool:
    """Whether VALUE is a plain addr-spec fit for a header we write."""
    return len(value) <= MAX_LENGTH and _ADDR_SPEC.fullmatch(value) is not None
