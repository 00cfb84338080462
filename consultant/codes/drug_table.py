"""The Table of Drugs and Chemicals as a coder reads it: find the substance, then the column.

"Accidental Norco overdose" is hydrocodone, column "poisoning, accidental"; "angioedema
from lisinopril" is lisinopril, column "adverse effect" (the angioedema is coded first,
as the manifestation). A search that only matched words would rank the manifestation or
the wrong intent first, so a phrase naming a substance and a column is resolved straight
to that cell, and searched as such beside the phrase itself.
"""

from __future__ import annotations

import re
import sqlite3

from consultant.codes.drug_names import generic_of
from consultant.codes.query_cues import CAUSED_BY, adverse_cue, drug_column

# "Lisinopril adverse effect" -> the substance before the column's words.
_COLUMN = re.compile(
    r"\s+(?:poisoning\b.*|adverse effect|underdosing)$",
    re.I,
)
_WORD = re.compile(r"[a-z0-9][a-z0-9\-']*")
_PARENTHESES = re.compile(r"\([^)]*\)")
_LONGEST = 4  # words in the longest substance name matched
_UNNAMED = frozenset(("drug", "medication", "medicament", "medicine", "med", "substance"))
_CAUSE_GAP = 3  # words between "due to" and the drug it names ("after taking her amoxicillin")
_SHORT = 3  # letters up to which a word ending in "s" is no plural


class DrugTable:
    """The substances of the loaded Table of Drugs, and the brand names that lead to them."""

    def __init__(self, conn: sqlite3.Connection, synonyms: dict[str, list[str]]) -> None:
        self.conn = conn
        self.synonyms = synonyms
        # "insulin" -> "Insulin (amorphous) (globin) ...": the name as a coder says it,
        # to the table's own entry (whose words a cell query then matches exactly).
        self.substances: dict[str, str] = {}
        # substance -> the T-code of its accidental poisoning (its Table of Drugs category)
        self.poisonings: dict[str, str] = {}
        self._generics: dict[str, str | None] = {}
        for text, code in conn.execute(
            "SELECT DISTINCT text, code FROM search_terms WHERE source = 'drug'"
            " AND text LIKE '% poisoning accidental%'"
        ):
            entry = _COLUMN.sub("", text)
            words = _WORD.findall(_PARENTHESES.sub(" ", entry).lower())
            key = " ".join(w for w in words if w not in ("nec", "nos"))
            if key and (key not in self.substances or len(entry) < len(self.substances[key])):
                self.substances[key] = entry
                self.poisonings[key] = code
        # The same names as coders word them: "ACE inhibitors" for "Inhibitor,
        # angiotensin-converting enzyme" (inverted at its comma, hyphens and plurals aside).
        self._spellings: dict[str, str] = {}
        for key, entry in self.substances.items():
            head, comma, rest = _PARENTHESES.sub(" ", entry).partition(",")
            inverted = f"{rest} {head}" if comma and "," not in rest else None
            for spelling in (key, inverted):
                if spelling:
                    self._spellings.setdefault(_spelled(spelling), key)

    def substance_in(self, text: str) -> str | None:
        """The substance TEXT names: a drug named itself (generic or brand) before a class
        word ("NSAID gastritis from Motrin" is ibuprofen), else the first named."""
        found = self._named(text)
        return found[0] if found else None

    def _named(self, text: str) -> tuple[str, str] | None:
        """substance_in's substance, and TEXT up to where it is named."""
        spans = [(m.group(), m.start()) for m in _WORD.finditer(text.lower())]
        words = [word for word, _ in spans]
        found: tuple[int, str, int] | None = None
        for i in range(len(words)):
            for size in range(min(_LONGEST, len(words) - i), 0, -1):
                name = " ".join(words[i : i + size])
                for rank, candidate in self._readings(name):
                    key = self._spellings.get(_spelled(candidate))
                    if key is None:
                        continue
                    if found is None or rank < found[0]:
                        found = (rank, key, spans[i][1])
                    break
        return (found[1], text[: found[2]]) if found else None

    def _readings(self, name: str) -> list[tuple[int, str]]:
        """NAME's readings, each with its rank: the name or the generic of a brand (0),
        what the synonyms make of it, a class of drugs as often as not (1), and a word
        naming no drug at all (2)."""
        # "drug" is the table's "Drug NEC": the substance of last resort ("sulfa drugs")
        readings = [(2 if _spelled(name) in _UNNAMED else 0, name)]
        generic = self.generic(name) if " " not in name else None
        if generic and "/" in generic:
            # a combination ("Bactrim": trimethoprim/sulfamethoxazole) is the table's entry
            # for the two together ("Sulfamethoxazole with trimethoprim"), else each alone
            first, _, second = generic.partition("/")
            readings += [(0, f"{first} with {second}"), (0, f"{second} with {first}")]
            readings += [(1, first), (1, second)]
        elif generic:
            readings.append((0, generic))
            if " " in generic:
                # a form the table lists under its drug: "Lantus" is insulin glargine, the
                # table's Insulin
                readings.append((1, generic.split()[0]))
        readings += [(1, reading) for reading in self.synonyms.get(name, [])]
        return readings

    def generic(self, name: str) -> str | None:
        """The generic NAME stands for, looked up once per word: every search asks again."""
        if name not in self._generics:
            self._generics[name] = generic_of(self.conn, name)
        return self._generics[name]

    def cell_query(self, text: str) -> str | None:
        """ "<substance> <column>" for a phrase naming both, as the table's entries read."""
        if not self.substances:
            return None
        column = drug_column(text)
        if column is None or (found := self._named(text)) is None:
            return None
        substance, before = found
        if column == "adverse effect" and not adverse_cue(text):
            # "rash after amoxicillin": the cause is told just before the drug
            cue = list(CAUSED_BY.finditer(before))
            if not cue or len(before[cue[-1].end() :].split()) > _CAUSE_GAP:
                return None
        return f"{self.substances[substance]} {column}"


def _spelled(name: str) -> str:
    """NAME as compared with the table's: lower case, hyphens as spaces, singular."""
    words = _WORD.findall(name.lower().replace("-", " "))
    # "Hes" (hydroxyethyl starch) is no plural of "he"
    last = words[-1] if words else ""
    if len(last) > _SHORT and last.endswith("s") and not last.endswith("ss"):
        words[-1] = words[-1][:-1]
    return " ".join(w for w in words if w not in ("nec", "nos"))
