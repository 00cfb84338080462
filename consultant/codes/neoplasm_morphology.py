"""A tumor's histology read as the Table of Neoplasms reads it: by its behavior and site.

Coders write "adenocarcinoma of the RUL", "tubular adenoma of colon", "brain tumor". No
tabular title names a histology, so such words match nothing or the wrong thing (the few
index rows "Adenocarcinoma, follicular, unspecified site" lead to the thyroid). The
Alphabetic Index sends them on: "Adenocarcinoma - see also Neoplasm, malignant, by site",
"Adenoma - see also Neoplasm, benign, by site", "Tumor - see also Neoplasm, unspecified
behavior, by site". The index import keeps each such main term as a row that leads to the
neoplasm's unspecified-site code of that behavior; this module reads those rows back as a
map from the histology word to the behavior, and rewrites a query's histology word into
the words titles and the Table of Neoplasms use ("malignant neoplasm of ... lung").
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from consultant.codes.systems import ICD10CM

# Behavior (as a "Neoplasm, <behavior>, by site" reference says it) -> the Table of
# Neoplasms' "unspecified site" code of that column, and the words of its titles.
UNSPECIFIED_SITE: dict[str, tuple[str, str]] = {
    "malignant": ("C80.1", "malignant neoplasm"),
    "benign": ("D36.9", "benign neoplasm"),
    "in situ": ("D09.9", "carcinoma in situ"),
    "uncertain behavior": ("D48.9", "neoplasm of uncertain behavior"),
    "unspecified behavior": ("D49.9", "neoplasm of unspecified behavior"),
}
_BEHAVIOR = {code: behavior for behavior, (code, _) in UNSPECIFIED_SITE.items()}
# "see also Neoplasm, malignant, by site" and "see Neoplasm, by site, malignant"
_BY_SITE = re.compile(r"^neoplasm,\s*(?:by site,\s*)?(?P<behavior>[a-z ]+?)(?:,\s*by site)?$", re.I)
# Words that state a behavior: a query that states another than its histology's ("benign
# tumor") is left as it is; a spread malignancy ("metastatic adenocarcinoma to the liver")
# is still malignant.
_STATED = {
    "benign": re.compile(r"\bbenign\b", re.I),
    "in situ": re.compile(r"\bin situ\b", re.I),
    "uncertain behavior": re.compile(r"\buncertain\b", re.I),
    "malignant": re.compile(r"\b(?:malignan\w*|metasta\w*|mets|secondary|cancer\w*|ca)\b", re.I),
}
# How a pathologist qualifies a histology ("invasive ductal", "poorly differentiated
# small cell"): the site's code does not depend on them. A histology that has codes of its
# own (basal cell, Merkel cell, neuroendocrine) is found by the query's own words, and so
# is squamous cell carcinoma of the skin (C44.x2): a reading leaves the skin to them.
_QUALIFIERS = re.compile(
    r"\b(?:(?:non[- ]?)?small[- ]cell|squamous(?:[- ]cell)?|large[- ]cell|clear[- ]cell|"
    r"transitional(?:[- ]cell)?|urothelial|oat[- ]cell|invasive|infiltrating|ductal|duct|"
    r"lobular|papillary|follicular|medullary|anaplastic|mucinous|serous|endometrioid|"
    r"signet[- ]ring(?:[- ]cell)?|(?:poorly|moderately|well)[- ]differentiated|"
    r"undifferentiated|(?:high|low)[- ]grade)\b",
    re.I,
)
# "Carcinoma (malignant) (see also Neoplasm, by site, malignant)": the main term's words
_ROW = re.compile(r"^(?P<term>[^,(]+?)(?: \([^)]*\))* \(see(?: also)? Neoplasm")
# "lung ca": the synonyms read "ca" as the neoplasm, not as the histology it abbreviates
_ALIASES = {"ca": "carcinoma"}
_WORD = re.compile(r"[a-z]{2,}", re.I)
_CONNECTIVES = frozenset(
    ["of", "the", "in", "at", "on", "with", "and", "primary", "site", "unspecified", "nos"]
)
_SKIN_HISTOLOGY = re.compile(r"\bsquamous\b", re.I)


@dataclass(frozen=True)
class Reading:
    text: str  # the query in the words of titles and the Table of Neoplasms
    # The skin's codes are not this reading's to give: the query named a histology the
    # skin has codes for, and its own words find them.
    leaves_skin: bool
    # The query names more than the histology ("cecal adenocarcinoma"): a site, which an
    # unspecified site's code would contradict even where the site's word is unknown.
    names_site: bool

    def gives(self, code: str) -> bool:
        if self.names_site and code in _BEHAVIOR:
            return False
        return not (self.leaves_skin and code.startswith("C44"))


def behavior_of(reference: str) -> str | None:
    """The behavior a generic by-site reference to the Table of Neoplasms names, if it is
    one ("Neoplasm, benign, by site" -> "benign"; "Neoplasm, skin, benign" -> None)."""
    match = _BY_SITE.match(" ".join(reference.split()))
    if match is None or "by site" not in reference.lower():
        return None
    behavior = match["behavior"].strip().lower()
    return behavior if behavior in UNSPECIFIED_SITE else None


class Morphology:
    """Histology words of the loaded index, each with its behavior, and the abbreviations
    that stand for one."""

    def __init__(self, conn: sqlite3.Connection, synonyms: dict[str, list[str]]) -> None:
        self.words: dict[str, str] = {}  # histology word -> its behavior
        rows = conn.execute(
            "SELECT text, code FROM search_terms WHERE system = ? AND source = 'index'"
            " AND text LIKE '%(see%Neoplasm%by site%)' AND code IN (?, ?, ?, ?, ?)",
            (ICD10CM, *_BEHAVIOR),
        )
        for text, code in rows:
            if match := _ROW.match(text):
                self.words[match["term"].lower()] = _BEHAVIOR[code]
        alternatives = "|".join(re.escape(w) for w in sorted(self.words, key=len, reverse=True))
        self._pattern = re.compile(rf"\b(?:{alternatives})\b", re.I) if self.words else None
        # "SCC of the esophagus", "lung ca": abbreviations that stand for a histology
        self._aliases = {
            word: readings[0]
            for word, readings in synonyms.items()
            if " " not in word and self._pattern and self._pattern.search(readings[0])
        } | _ALIASES
        self._alias = re.compile(rf"\b(?:{'|'.join(map(re.escape, self._aliases))})\b", re.I)

    def reading(self, text: str) -> Reading | None:
        """TEXT with its histology word in the titles' words, when it names one and states
        no other behavior, and without the histology's qualifiers: "small cell carcinoma of
        the RUL" -> "malignant neoplasm of the RUL"; None otherwise."""
        if self._pattern is None:
            return None
        text = self._alias.sub(lambda m: self._aliases[m[0].lower()], text)
        if (found := self._pattern.search(text)) is None:
            return None
        term = found[0].lower()
        behavior = self.words[term]
        before, after = text[: found.start()], text[found.end() :]
        if any(p.search(before + after) for b, p in _STATED.items() if b != behavior):
            return None
        before = _QUALIFIERS.sub("", before)
        site = any(w.lower() not in _CONNECTIVES for w in _WORD.findall(before + after))
        words = " ".join(f"{before} {UNSPECIFIED_SITE[behavior][1]} {after}".split())
        return Reading(words, bool(_SKIN_HISTOLOGY.search(text[: found.start()])), site)
