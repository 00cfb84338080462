"""Ticket references (CC-000123) as customers write them: in subjects, in any case,
with or without brackets."""

from __future__ import annotations

import re

from consultant.tickets.models import REFERENCE_PREFIX

_IN_TEXT = re.compile(rf"\b{REFERENCE_PREFIX}(\d{{6,12}})\b", re.I)
# The prefix's letters are optional as a whole, its dash on its own: CC-1, CC1, 1.
_WHOLE = re.compile(
    rf"\s*\[?(?:{re.escape(REFERENCE_PREFIX.rstrip('-'))}-?)?(\d{{1,12}})\]?\s*", re.I
)


def reference_in(text: str) -> int | None:
    """The ticket id of the last reference in TEXT (a forwarded subject keeps its
    newest tag at the end), or None."""
    found = _IN_TEXT.findall(text)
    return int(found[-1]) if found else None


def parse_reference(text: str) -> int:
    """The ticket id of a reference typed on the command line: CC-000123, cc-123 or 123."""
    match = _WHOLE.fullmatch(text)
    if not match:
        raise ValueError(
            f"{text[:40]!r} is not a ticket reference; write it like "
            f"{REFERENCE_PREFIX}000123 or 123"
        )
    return int(match.group(1))
