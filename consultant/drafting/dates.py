"""The date of service a question names, which every answer is judged for.

Coders write it many ways ("DOS 06/15/2025", "date of service: 2025-06-15", "seen on
6/15/25", "DOS June 15, 2025"); only a date tied to the service by its words counts,
never a bare date, which may be a birth date, a deadline or the date the mail was sent.
"""

from __future__ import annotations

import re
from datetime import date

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE = (
    r"(?P<us>(?P<m>\d{1,2})[/-](?P<d>\d{1,2})[/-](?P<y>\d{4}|\d{2}))"
    r"|(?P<iso>(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2}))"
    rf"|(?P<named>(?P<nm>{_MONTH})\.?\s+(?P<nd>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<ny>\d{{4}}))"
    rf"|(?P<euro>(?P<ed>\d{{1,2}})\s+(?P<em>{_MONTH})\.?,?\s+(?P<ey>\d{{4}}))"
)
# Words that tie the date after them to the service (a few filler words may follow).
_CUE = (
    r"\b(?:d\.?o\.?s\b\.?|(?:dates? of service|service dates?|date of (?:the )?(?:visit"
    r"|encounter|surgery|procedure|admission|discharge)|seen|admitted|discharged|performed"
    r"|treated|visit(?:ed)?|surgery|procedure|encounter)\b)"
)
_SERVICE_DATE = re.compile(
    rf"{_CUE}\s*(?:[:#=-]\s*|\b(?:was|is|of|on|at|dated|from)\b\s*){{0,3}}(?:{_DATE})(?![\d/])",
    re.I,
)


def date_of_service(text: str) -> date | None:
    """The first date TEXT names as the date of service; None when it names none."""
    for match in _SERVICE_DATE.finditer(text):
        if (day := _day(match)) is not None:
            return day
    return None


def _day(match: re.Match[str]) -> date | None:
    if match.group("us"):
        year, month, day = _year(match.group("y")), match.group("m"), match.group("d")
    elif match.group("iso"):
        year, month, day = int(match.group("iy")), match.group("im"), match.group("id")
    elif match.group("named"):
        month = str(_MONTHS[match.group("nm").lower()])
        year, day = int(match.group("ny")), match.group("nd")
    else:
        month = str(_MONTHS[match.group("em").lower()])
        year, day = int(match.group("ey")), match.group("ed")
    try:
        return date(year, int(month), int(day))
    except ValueError:
        return None


def _year(text: str) -> int:
    """'25' is 2025: a date of service is never a century ago."""
    return int(text) if len(text) == 4 else 2000 + int(text)
