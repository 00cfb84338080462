"""HTML bodies made safe to show a consultant.

Mail HTML is written by strangers: it may run script, track the reader with remote
images, or carry javascript: links. Only nh3's allow-list of tags and attributes is kept,
script and style go with their content, and images load only from the message itself
(cid:), so opening a ticket never tells a sender (or a tracker) that it was read.
"""

from __future__ import annotations

import lxml.html
import nh3
from lxml import etree

# html5ever, under nh3, takes time quadratic in the nesting depth of block elements
# (100,000 nested <div> take half a minute). Larger bodies are first re-serialized by
# lxml, whose parser nests at most 255 deep; the few hostile bodies deeper than that
# lose their deepest content from the display (never from the text, see html_to_text).
_REPARSE_ABOVE = 20_000  # characters

_CLEANER = nh3.Cleaner(
    clean_content_tags={"script", "style", "title"},
    url_schemes=nh3.ALLOWED_URL_SCHEMES | {"cid"},
    attribute_filter=lambda tag, attribute, value: (
        None
        if tag == "img" and attribute == "src" and not value.lower().startswith("cid:")
        else value
    ),
)


def sanitize_html(markup: str) -> str:
    """MARKUP with only harmless tags and attributes; remote images lose their src."""
    if len(markup) > _REPARSE_ABOVE:
        try:
            root = lxml.html.document_fromstring(
                markup.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8")
            )
            markup = lxml.html.tostring(root, encoding="unicode")
        except (etree.ParserError, ValueError):  # nothing but white space or comments
            return ""
    cleaned = _CLEANER.clean(markup)
    return cleaned.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
