"""Transport accidents read the way the tabular arranges them: who, in what, against what.

A coder writes "restrained driver, car hit by a pickup on the highway"; the code is the
one whose title names the same injured person's role (driver), their vehicle (car), the
counterpart (pick-up truck) and whether it was on a public highway (traffic): V43.53XA.
A bag of words cannot tell the car the patient was in from the truck that hit it, so a
word search ranks the truck driver's codes as high as the car driver's. Here both the
phrase and every V00-V99 title are read into those axes with one vocabulary
(external_cause_words.toml), and titles are ranked by how well each axis agrees: what
the phrase states must match, what it leaves open takes the index's default (traffic;
the pedestrian on foot; the unspecified occupant, or the driver of a ridden vehicle).

Any other cause is looked up as a coder uses the External Cause Index: the main term
the phrase names ("fell" -> Fall, "bitten" -> Bite), then the path whose subterms say
the most of the phrase and the least beyond it (coders' words mapped to the index's in
the same TOML). Such a path raises its code where the word search already read a cause;
it leads only when the phrase asks for the cause by name ("ext cause", "place of
occurrence"), since many index main terms are conditions too ("Dehydration").

Codes are read from the loaded tabular and index, so every suggestion is a billable code
of the release, with the 7th character the phrase's encounter words pick (A when none).
"""

from __future__ import annotations

import math
import re
import sqlite3
import tomllib
from bisect import bisect_left
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from consultant.codes.search_index import stem
from consultant.codes.specifics import contradicts, leaves_unspecified, stated
from consultant.codes.systems import ICD10CM

WORDS_FILE = Path(__file__).with_name("external_cause_words.toml")

_SEVENTH = {"initial": "A", "subsequent": "D", "sequela": "S"}
_TOKEN = re.compile(r"[a-z0-9]+|[,;.]")
_BREAKS = frozenset({",", ";", ".", "while", "when", "after", "then", "was", "pt", "patient"})
# A vehicle the injured person sits astride: named alone, its rider is its driver.
_RIDDEN = frozenset({"pedal", "ebike", "motorcycle", "dirtbike", "atv", "snowmobile", "animal"})
# A counterpart the titles do not list by name collides as "other motor vehicles".
_MOTOR = frozenset(
    {
        "car",
        "suv",
        "pickup",
        "van",
        "heavy",
        "bus",
        "motorcycle",
        "three",
        "ambulance",
        "military",
        "agricultural",
        "construction",
        "industrial",
        "atv",
        "offroad",
        "dunebuggy",
        "snowmobile",
        "dirtbike",
    }
)
_VEHICLES = _MOTOR | {"pedal", "ebike", "train", "streetcar", "animaldrawn", "nonmotor", "motor"}
# Collisions only a vehicle has: its occupant was hurt.
_VEHICLE_STRUCK = re.compile(r"\b(?:rear ended|t boned|sideswiped)\b")
_ROLE_ORDER = ("pedestrian", "boarding", "outside", "passenger", "driver", "occupant")
# A value counts as its broader one when a title does not name it ("SUV" is a car).
_BROADER = {"suv": "car", "ebike": "pedal", "dirtbike": "motorcycle"}
# How much an axis costs a title when it agrees less than exactly.
_BROADER_FIT = 0.7  # below a title that names the vehicle but not the counterpart
_DEFAULT_MISS = 0.9  # the title takes another value than the index's default
_UNSTATED_AXIS = 0.8  # the title does not distinguish what the phrase says
_GROUPED = 0.02  # per further value a title's counterpart groups ("car, pick-up or van")
_MIN_FIT = 0.5
_UNSTATED = 0.1  # what search.py takes off a code that leaves a stated side unspecified


@dataclass(frozen=True)
class CauseCandidate:
    """One billable external cause code, how well it fits (at most 1) and its title."""

    code: str
    title: str
    score: float


@dataclass(frozen=True)
class _Title:
    """One tabular code's axes, read from its title."""

    code: str  # the billable code with 7th character A
    title: str
    role: str  # driver, passenger, unspecified, any, boarding, outside, pedestrian, person
    vehicles: frozenset[str]
    conveyance: str | None
    counterparts: frozenset[str]  # {"noncollision"}, or what was hit; empty: not stated
    traffic: str | None  # traffic, nontraffic, unspecified; None: no such axis


@dataclass
class _Mention:
    position: int
    values: dict[str, frozenset[str]]  # slot -> values
    victim: bool  # named on the injured person's side of the phrase


@dataclass
class _Reading:
    """What a phrase says about a transport accident."""

    role: str | None = None
    vehicle: str | None = None
    conveyance: str | None = None
    counterpart: frozenset[str] | None = None
    traffic: str | None = None


class ExternalCauseResolver:
    """Reads transport-accident phrases into V00-V99 codes; load once per database."""

    def __init__(self, conn: sqlite3.Connection, words_file: Path = WORDS_FILE) -> None:
        with words_file.open("rb") as fh:
            words = tomllib.load(fh)
        self._phrases: dict[tuple[str, ...], dict[str, frozenset[str]]] = {}
        for section, slot in (
            ("vehicles", "vehicle"),
            ("objects", "object"),
            ("roles", "role"),
            ("conveyances", "conveyance"),
        ):
            for key, value in words[section].items():
                values = frozenset([value] if isinstance(value, str) else value)
                self._phrases.setdefault(_key(key), {})[slot] = values
        self._lists: dict[str, frozenset[tuple[str, ...]]] = {
            "noncollision": frozenset(_key(w) for w in words["noncollision"]["words"]),
            "traffic": frozenset(_key(w) for w in words["traffic"]["traffic"]),
            "nontraffic": frozenset(_key(w) for w in words["traffic"]["nontraffic"]),
            "cue": frozenset(_key(w) for w in words["cues"]["words"]),
            "possessive": frozenset(_key(w) for w in words["cues"]["possessive"]),
            "accident": frozenset(_key(w) for w in words["cues"]["accident"]),
        }
        self._longest = max(
            len(k) for k in [*self._phrases, *(p for s in self._lists.values() for p in s)]
        )
        self._singular = {w for k in self._phrases for w in k}
        self._titles = self._load_titles(conn)
        self._index = _IndexPaths(conn, words)

    @property
    def available(self) -> bool:
        """The tabular's transport codes are loaded."""
        return bool(self._titles)

    # -- the tabular --------------------------------------------------------------------

    def _load_titles(self, conn: sqlite3.Connection) -> list[_Title]:
        rows = conn.execute(
            "SELECT code, title FROM codes WHERE system = ? AND code >= 'V00' AND code < 'W'"
            " AND billable = 1 AND length(code) = 8 AND code LIKE '%A'",
            (ICD10CM,),
        ).fetchall()
        titles = []
        for code, title in rows:
            read = self._read_title(code, re.sub(r", initial encounter$", "", title))
            if read is not None:
                titles.append(read)
        return titles

    def _read_title(self, code: str, title: str) -> _Title | None:
        low = title.lower()
        if " injured " not in low:
            return None
        victim, event = low.split(" injured ", 1)
        role = _title_role(victim)
        mentions = self._scan(_tokens(victim))
        vehicles = {v for m in mentions for v in m.values.get("vehicle", ())}
        vehicles |= {v for m in mentions for v in m.values.get("object", ()) if v == "animal"}
        conveyance = next(
            (next(iter(m.values["conveyance"])) for m in mentions if "conveyance" in m.values),
            None,
        )
        if role == "pedestrian":
            vehicles = set()
        if "unspecified whether traffic" in event:
            traffic: str | None = "unspecified"
        elif "nontraffic" in event:
            traffic = "nontraffic"
        elif "traffic" in event:
            traffic = "traffic"
        else:
            traffic = None
        tokens = _tokens(event)
        counterparts: set[str] = set()
        if (
            "noncollision" in event
            or "fall from" in event
            or "thrown from" in event
            or "fall in" in event
        ):
            counterparts = {"noncollision"}
            if not vehicles and role != "pedestrian":
                vehicles = {v for m in self._scan(tokens) for v in m.values.get("vehicle", ())}
        elif "collision" in event:
            after = tokens[tokens.index("collision") + 1 :]
            for mention in self._scan(after):
                for slot in ("vehicle", "object"):
                    counterparts |= mention.values.get(slot, frozenset())
            if not counterparts:
                return None  # "other object", "other pedestrian conveyance": nothing to read
        return _Title(
            code,
            title,
            role,
            frozenset(vehicles),
            conveyance,
            frozenset(counterparts),
            traffic,
        )

    # -- phrases ------------------------------------------------------------------------

    def _scan(self, tokens: list[str]) -> list[_Mention]:
        """The vocabulary's phrases in TOKENS, longest first, with their slot values."""
        found: list[_Mention] = []
        i = 0
        while i < len(tokens):
            for size in range(min(self._longest, len(tokens) - i), 0, -1):
                values = self._phrases.get(self._singular_of(tokens[i : i + size]))
                if values:
                    found.append(_Mention(i, values, True))
                    i += size
                    break
            else:
                i += 1
        return found

    def _singular_of(self, words: list[str]) -> tuple[str, ...]:
        last = words[-1]
        if last.endswith("s") and last not in self._singular and last[:-1] in self._singular:
            return (*words[:-1], last[:-1])
        return tuple(words)

    def _has(self, tokens: list[str], kind: str) -> list[int]:
        """Positions just after each phrase of list KIND in TOKENS."""
        phrases = self._lists[kind]
        ends = []
        for i in range(len(tokens)):
            for size in range(1, min(self._longest, len(tokens) - i) + 1):
                if tuple(tokens[i : i + size]) in phrases:
                    ends.append(i + size)
        return ends

    def read(self, text: str) -> _Reading | None:
        """The axes TEXT states, or None when it describes no transport accident."""
        tokens = _tokens(text.lower())
        mentions = self._scan(tokens)
        if not mentions:
            return None
        cues = sorted(set(self._has(tokens, "cue")))
        possessive = set(self._has(tokens, "possessive"))
        # Each cue opens the counterpart's side until the clause ends.
        side = [True] * len(tokens)
        for start in cues:
            j = start
            while j < len(tokens) and tokens[j] not in _BREAKS:
                side[j] = False
                j += 1
        owned = [m for m in mentions if m.position in possessive and "vehicle" in m.values]
        for mention in mentions:
            mention.victim = side[mention.position] or mention.position in possessive
            if owned and mention is not owned[0] and "vehicle" in mention.values:
                # "a semi rear-ended her car": the car named as hers is the one she was in
                mention.victim = False
        victim = [m for m in mentions if m.victim]
        other = [m for m in mentions if not m.victim]
        reading = _Reading()
        roles = [r for m in victim for r in m.values.get("role", ())]
        ridden = [
            v
            for m in victim
            for v in sorted(m.values.get("vehicle") or m.values.get("object", frozenset()))
            if "vehicle" in m.values or v == "animal"
        ]
        reading.vehicle = ridden[0] if ridden else None
        conveyances = [c for m in mentions for c in m.values.get("conveyance", ())]
        if conveyances:
            reading.conveyance = conveyances[0]
        if roles:
            # The most telling role named: "restrained passenger" is a passenger, "cyclist
            # on the sidewalk, walking his bike" a pedestrian.
            reading.role = min(roles, key=_ROLE_ORDER.index)
        elif _VEHICLE_STRUCK.search(" ".join(tokens)):
            reading.role = "occupant"  # "rear-ended by a pickup": someone in a vehicle
        for m in other:
            values = m.values.get("vehicle") or m.values.get("object")
            if values:
                reading.counterpart = values
                break
        noncollision = bool(self._has(tokens, "noncollision"))
        accident = bool(self._has(tokens, "accident"))
        if reading.counterpart is None and noncollision:
            reading.counterpart = frozenset({"noncollision"})
        struck = reading.counterpart is not None and bool(reading.counterpart & _VEHICLES)
        if reading.role == "pedestrian" or (
            reading.vehicle is None and reading.role is None and struck
        ):
            # "hit by a car" with nobody else named: the person was on foot.
            if reading.counterpart is None or "noncollision" in reading.counterpart:
                return None
            reading.role, reading.vehicle = "pedestrian", None
        if reading.vehicle is None and reading.role in ("driver", "passenger", "occupant"):
            if not (accident or reading.counterpart):
                return None
            reading.vehicle = "car"
        if reading.vehicle is None and reading.role != "pedestrian":
            return None
        if reading.counterpart is None and not accident and not _hurt(text):
            # "finger slammed in car door": a vehicle, but no accident; "DOT physical for
            # a truck driver": a job
            return None
        if self._has(tokens, "nontraffic"):
            reading.traffic = "nontraffic"
        elif self._has(tokens, "traffic"):
            reading.traffic = "traffic"
        return reading

    # -- ranking ------------------------------------------------------------------------

    def resolve(self, text: str, limit: int = 5) -> list[CauseCandidate]:
        """The likeliest external cause codes for TEXT, best first: a transport accident
        read axis by axis, else the External Cause Index's best paths; [] for neither."""
        return self._resolve(text, limit)[0]

    def _resolve(self, text: str, limit: int = 5) -> tuple[list[CauseCandidate], bool]:
        """The candidates, and whether they are a transport accident's."""
        if limit <= 0:
            return [], False
        seventh = _SEVENTH.get(stated(text).encounter or "initial", "A")
        reading = self.read(text) if self._titles else None
        if reading is not None:
            scored = [
                (fit, title.code[:-1] + "_", title.title)
                for title in self._titles
                if (fit := _fit(reading, title)) >= _MIN_FIT
            ]
            scored.sort(key=lambda item: (-item[0], item[1]))
        else:
            scored = [item for item in self._index.resolve(text, limit) if item[0] >= _MIN_FIT]
        return [
            CauseCandidate(code[:-1] + seventh, title + _ENCOUNTER_SUFFIX[seventh], round(fit, 4))
            if code.endswith("_")
            else CauseCandidate(code, title, round(fit, 4))
            for fit, code, title in scored[:limit]
        ], reading is not None

    def merge(self, best: dict[tuple[str, str], tuple[float, int, str]], text: str) -> None:
        """Put TEXT's external cause codes into BEST, a search's (system, code) -> (score,
        source rank, title). A transport accident's codes, and the codes of a phrase that
        asks for the cause by name, lead, as the PCS builder's lead a procedure's search;
        an index path otherwise only raises its code to the path's fit. When TEXT names
        the injury too ("dog bite R calf"), the injury stays first: an external cause
        code is never listed first (ICD-10-CM I.C.20)."""
        mine, transport = self._resolve(text)
        if not mine:
            return
        leads = transport or bool(_ASKED.search(text))
        if not leads:
            # Many index main terms are conditions too ("Disease", "Dehydration"): the
            # index counts only where the word search, too, found a cause first.
            top = max(best.items(), key=lambda kv: kv[1][0], default=None)
            if top is None or not EXTERNAL_CAUSE.match(top[0][1]):
                return
        said = stated(text)
        injury = 0.0
        if _injury_named(text):
            # as the search will rank them: without the other side's codes, and a code
            # that leaves the stated side unspecified lower
            injury = max(
                (
                    hit[0] - (_UNSTATED if leaves_unspecified(said, hit[2]) else 0.0)
                    for (_, code), hit in best.items()
                    if not EXTERNAL_CAUSE.match(code) and not contradicts(said, hit[2])
                ),
                default=0.0,
            )
        if injury:
            # The cause follows the injury: one code for it, below the injury's.
            ceiling = injury - 0.001
            for key, hit in list(best.items()):
                if EXTERNAL_CAUSE.match(key[1]) and hit[0] >= ceiling:
                    best[key] = (ceiling - 0.01, *hit[1:])
            mine = mine[:1]
        elif not leads:
            for candidate in mine:
                key = (ICD10CM, candidate.code)
                if key not in best or best[key][0] < candidate.score:
                    best[key] = (candidate.score, 0, candidate.title)
            return
        else:
            ceiling = mine[0].score
            keys = {(ICD10CM, candidate.code) for candidate in mine}
            rival = max((hit[0] for key, hit in best.items() if key not in keys), default=0.0)
            if rival >= ceiling:
                shrink = ceiling * 0.99 / rival
                for key, hit in list(best.items()):
                    if key not in keys:
                        best[key] = (hit[0] * shrink, *hit[1:])
        previous = ceiling + 0.001
        for candidate in mine:
            previous = min(candidate.score, previous - 0.001)
            best[(ICD10CM, candidate.code)] = (previous, 0, candidate.title)


class _IndexPaths:
    """The External Cause Index's paths, matched the way a coder looks a cause up: the
    main term the phrase names ("fell" -> Fall), then the subterms that say the most of
    the phrase and the least beyond it (", from, off, out of, ladder" -> W11)."""

    def __init__(self, conn: sqlite3.Connection, words: dict) -> None:
        self._rewrites = {_key(k): v for k, v in words["index_words"].items()}
        self._ignore = frozenset(_key(w) for w in words["index_ignore"]["words"])
        self._longest = max(len(k) for k in [*self._rewrites, *self._ignore])
        self._ignored_stems = frozenset(stem(k[0]) for k in self._ignore if len(k) == 1)
        self._entries: list[_Path] = []
        self._postings: dict[str, list[int]] = {}  # main term's word -> entries
        self._holding: dict[str, set[int]] = {}  # any word -> entries
        rows = conn.execute(
            "SELECT code, text FROM search_terms WHERE system = ? AND source = 'eindex'",
            (ICD10CM,),
        ).fetchall()
        billable = _Billable(conn)
        # A main term's nonessential modifiers hold for its subterms too: "Slipping (on
        # same level) (with fall), on ice" is a fall on the same level.
        modifiers: dict[str, set[str]] = {}
        for _, text in rows:
            parts = _split_top(_SEE.sub(" ", text))
            if len(parts) == 1:
                head = _MODIFIER.sub(" ", parts[0]).strip().lower()
                modifiers.setdefault(head, set()).update(
                    self._stems(" ".join(_MODIFIER.findall(parts[0])))
                )
        for code, text in rows:
            full = billable.complete(code)
            if full is None:
                continue
            path = self._path(full[0], full[1], text, modifiers)
            if path is None:
                continue
            for term in path.main:
                self._postings.setdefault(term, []).append(len(self._entries))
            for term in path.words:
                self._holding.setdefault(term, set()).add(len(self._entries))
            self._entries.append(path)
        self.vocabulary = frozenset(self._holding)
        # A rare word ("trampoline") says more of what the phrase is about than a common
        # one ("jumping"): words count by how few paths hold them.
        counts: dict[str, int] = {}
        for entry in self._entries:
            for term in entry.words:
                counts[term] = counts.get(term, 0) + 1
        total = len(self._entries) + 1
        self._weight = {term: math.log(total / n) for term, n in counts.items()}

    def _path(
        self, code: str, title: str, text: str, modifiers: dict[str, set[str]]
    ) -> _Path | None:
        # A cross reference's words are where the coder is sent: they may match, but an
        # entry is not wrong for having them.
        see = " ".join(m.group(1) for m in _SEE.finditer(text))
        parts = _split_top(_SEE.sub(" ", text))
        head = _MODIFIER.sub(" ", parts[0])
        main = self._stems(head)
        if not main:
            return None
        essential: set[str] = set()
        optional = set(modifiers.get(head.strip().lower(), ())) | self._stems(see)
        groups: list[frozenset[str]] = []
        for part in parts:
            plain = _MODIFIER.sub(" ", part)
            essential |= self._stems(plain)
            optional |= self._stems(" ".join(_MODIFIER.findall(part)))
            # "ice or snow": either word is the subterm's
            for alternatives in _ALTERNATIVES.findall(plain.lower()):
                group = frozenset(self._stems(alternatives.replace(" or ", " ")))
                if len(group) > 1:
                    groups.append(group)
        leaf = self._stems(_MODIFIER.sub(" ", parts[-1])) if len(parts) > 1 else main
        return _Path(
            code,
            title,
            frozenset(main),
            frozenset(essential),
            frozenset(optional),
            frozenset(leaf),
            tuple(groups),
        )

    def _stems(self, text: str) -> set[str]:
        return {
            stem(t)
            for t in _tokens(text)
            if t.isalpha() and len(t) > 1 and stem(t) not in self._ignored_stems
        }

    def query(self, text: str) -> set[str]:
        """TEXT's stems in the index's words, without what asks for the code."""
        tokens = [t for t in _tokens(text.lower()) if t not in ",;."]
        out: list[str] = []
        i = 0
        while i < len(tokens):
            for size in range(min(self._longest, len(tokens) - i), 0, -1):
                key = tuple(tokens[i : i + size])
                if key in self._rewrites:
                    out.extend(_tokens(self._rewrites[key]))
                    i += size
                    break
                if key in self._ignore:
                    i += size
                    break
            else:
                out.append(tokens[i])
                i += 1
        return {
            stem(t)
            for t in out
            if t.isalpha() and len(t) > 1 and stem(t) not in self._ignored_stems
        }

    def resolve(self, text: str, limit: int) -> list[tuple[float, str, str]]:
        """(fit, code awaiting its 7th character or billable, title), best first."""
        asked = self.query(text)
        known = asked & self.vocabulary
        if not known:
            return []
        ids = {i for term in known for i in self._postings.get(term, ())}
        if len(ids) > _MAX_SCORED:
            # A main term with thousands of paths ("Accident, transport, ..."): only those
            # holding the phrase's rarest other word can be its best.
            others = [t for t in known if t in self._holding and t not in self._postings]
            if others:
                rarest = min(others, key=lambda t: len(self._holding[t]))
                ids &= self._holding[rarest]
        weight = self._weight
        asked_weight = sum(weight.get(t, _UNKNOWN_WEIGHT) for t in asked)
        best: dict[str, tuple[float, str]] = {}
        for i in ids:
            entry = self._entries[i]
            covered = sum(weight[t] for t in known & entry.words)
            unasked = entry.essential - asked
            for group in entry.groups:
                if unasked and group & asked:
                    unasked -= group
            # What the phrase says beyond the path (a place, a body part) weighs less
            # than what the path says beyond the phrase: a coder reads the cause alone,
            # and passes through a subterm ("residence, house") to reach the one it names.
            extra = sum(_PATH_EXTRA if t in entry.leaf else _PATH_PASSED for t in unasked)
            fit = 1.0 - _PATH_UNCOVERED * (1 - covered / asked_weight) - extra
            if fit > best.get(entry.code, (-1.0, ""))[0]:
                best[entry.code] = (fit, entry.title)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [(fit, code, title) for code, (fit, title) in ranked[:limit]]


@dataclass(frozen=True)
class _Path:
    code: str
    title: str
    main: frozenset[str]
    essential: frozenset[str]
    optional: frozenset[str]
    leaf: frozenset[str]  # the last subterm's words
    groups: tuple[frozenset[str], ...]  # words of which one is enough ("ice or snow")

    @cached_property
    def words(self) -> frozenset[str]:
        return self.essential | self.optional


class _Billable:
    """The billable code an index code stands for: itself, its 7th-character code (A),
    or its unspecified (else only) descendant."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._codes: dict[str, tuple[str, bool]] = {
            code: (title, bool(billable))
            for code, title, billable in conn.execute(
                "SELECT code, title, billable FROM codes WHERE system = ?"
                " AND code >= 'V00' AND code < 'Z'",
                (ICD10CM,),
            )
        }
        self._sorted = sorted(self._codes)
        self._done: dict[str, tuple[str, str] | None] = {}

    def complete(self, code: str) -> tuple[str, str] | None:
        """(code, title), the code ending in "_" when an encounter letter completes it."""
        if code not in self._done:
            self._done[code] = self._complete(code)
        return self._done[code]

    def _complete(self, code: str) -> tuple[str, str] | None:
        found = self._codes.get(code)
        if found and found[1]:
            return code, found[0]
        if found is None:
            return None
        seventh = (code if "." in code else code + ".").ljust(7, "X") + "A"
        if self._codes.get(seventh, ("", False))[1]:
            return seventh[:-1] + "_", found[0]
        start = bisect_left(self._sorted, code)
        below = []
        for other in self._sorted[start + 1 :]:
            if not other.startswith(code):
                break
            title, billable = self._codes[other]
            if billable or len(other) == 7:
                below.append((other, title))
        if not below:
            return None
        pick = next((b for b in below if "unspecified" in b[1].lower()), None)
        if pick is None and len({b[0][:7] for b in below}) == 1:
            pick = below[0]
        if pick is None:
            return None
        return self._complete(pick[0]) if not self._codes[pick[0]][1] else pick


def _split_top(text: str) -> list[str]:
    """TEXT's comma-separated parts, ignoring commas inside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SEE = re.compile(r"\((?:see|see also)\b([^)]*)\)", re.I)
_MODIFIER = re.compile(r"\(([^)]*)\)")
_PATH_EXTRA = 0.12
_PATH_PASSED = 0.04
# A phrase's word no path holds ("lap"): it counts as much as a common index word.
_UNKNOWN_WEIGHT = 2.0
_ALTERNATIVES = re.compile(r"\b[\w-]+(?: [\w-]+)?(?: or [\w-]+(?: [\w-]+)?)+")
_PATH_UNCOVERED = 0.5
_MAX_SCORED = 300


def _injury_named(text: str) -> bool:
    """Whether TEXT names the injury itself (its nature, or the side it is on)."""
    return names_injury(text) or stated(text).side is not None


def _hurt(text: str) -> bool:
    """Whether TEXT tells someone was hurt: an injury named, or injured in so many words."""
    return _injury_named(text) or _INJURED.search(text) is not None


_INJURED = re.compile(r"\b(?:injur\w*|hurt|trauma\w*|wounded)\b", re.I)


def names_injury(text: str) -> bool:
    """Whether TEXT names the nature of an injury ("fx", "lac", "sprain", "bite of")."""
    return bool(_INJURY.search(text))


def injury_at(text: str) -> int | None:
    """Where TEXT first names the nature of an injury, when words come before it: "fell
    off his bike closed fx of L distal radius" tells the cause, then the injury."""
    found = _INJURY.search(text)
    return found.start() if found and found.start() > 0 else None


# an external cause code (V00-Y99): a cause, its place, activity or status
EXTERNAL_CAUSE = re.compile(r"^[V-Y]\d")
# The phrase asks for the cause, its place, activity or status by name.
_ASKED = re.compile(
    r"\b(?:ext(?:ernal)?\.?\s*cause|e[\s-]?codes?|place\s+of\s+occurrence|place\s+code"
    r"|activity\s*(?:code|:)|ext(?:ernal)?\.?\s*(?:cause\s+)?status|y9[2-9])",
    re.I,
)
_INJURY = re.compile(
    r"\b(?:fx|fractur\w*|sprain\w*|strain|contusion|bruise[sd]?|lac|laceration|abrasion"
    r"|dislocat\w*|concussion|wound|tear|degree\s+burn|(?:burn|bite)\s+(?:of|to)|broke\w*)\b",
    re.I,
)

_ENCOUNTER_SUFFIX = {
    "A": ", initial encounter",
    "D": ", subsequent encounter",
    "S": ", sequela",
}


def _fit(reading: _Reading, title: _Title) -> float:
    """How well TITLE's axes agree with READING's: 1 for all, 0 for a contradiction."""
    fit = _role_fit(reading, title)
    if not fit:
        return 0.0
    if reading.role == "pedestrian":
        wanted = reading.conveyance or "foot"
        if title.conveyance is None:
            fit *= _UNSTATED_AXIS
        elif title.conveyance != wanted:
            return 0.0
    elif reading.vehicle is not None:
        if reading.vehicle in title.vehicles:
            pass
        elif _BROADER.get(reading.vehicle) in title.vehicles:
            fit *= _BROADER_FIT
        elif title.vehicles or title.role != "person":
            return 0.0
        else:
            fit *= _UNSTATED_AXIS * _UNSTATED_AXIS
    fit *= _counterpart_fit(reading.counterpart, title.counterparts)
    wanted_traffic = reading.traffic or "traffic"
    if title.traffic == "unspecified":
        fit *= _DEFAULT_MISS if reading.traffic is None else _UNSTATED_AXIS
    elif title.traffic is not None and title.traffic != wanted_traffic:
        return 0.0
    return fit


def _role_fit(reading: _Reading, title: _Title) -> float:
    wanted = reading.role
    if title.role == "pedestrian" or wanted == "pedestrian":
        return 1.0 if title.role == wanted else 0.0
    if title.role in ("boarding", "outside") or wanted in ("boarding", "outside"):
        return 1.0 if title.role == wanted else 0.0
    if title.role == "person":
        return _UNSTATED_AXIS if wanted is None else _UNSTATED_AXIS * _UNSTATED_AXIS
    if wanted in ("driver", "passenger"):
        if title.role == wanted:
            return 1.0
        return {"any": 0.95, "unspecified": 0.85}.get(title.role, 0.0)
    # an occupant, or nobody named: the unspecified occupant; the driver of what is ridden
    if reading.vehicle in _RIDDEN and wanted is None:
        return {"driver": 1.0, "any": 0.95, "unspecified": 0.9}.get(title.role, 0.8)
    return {"unspecified": 1.0, "any": 0.98}.get(title.role, 0.85)


def _counterpart_fit(wanted: frozenset[str] | None, offered: frozenset[str]) -> float:
    if wanted is None:
        return 1.0 if not offered else (0.85 if offered & {"motor"} else 0.0)
    if wanted & offered:
        return 1.0 - _GROUPED * (len(offered) - 1)
    if {_BROADER.get(v) for v in wanted} & offered:
        return _BROADER_FIT - _GROUPED * (len(offered) - 1)
    if not offered:
        return _UNSTATED_AXIS
    if wanted & _MOTOR and "othermotor" in offered:
        return _UNSTATED_AXIS
    if wanted & _MOTOR and "motor" in offered:
        return _UNSTATED_AXIS * _DEFAULT_MISS
    return 0.0


def _title_role(victim: str) -> str:
    if "boarding or alighting" in victim:
        return "boarding"
    if "on outside of" in victim:
        return "outside"
    if victim.startswith("pedestrian"):
        return "pedestrian"
    if "(driver) (passenger)" in victim:
        return "any"
    if victim.startswith("unspecified"):
        return "unspecified"
    if "driver" in victim:
        return "driver"
    if "passenger" in victim:
        return "passenger"
    if victim in ("person", "civilian"):
        return "person"
    return "any"


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def _key(phrase: str) -> tuple[str, ...]:
    return tuple(t for t in _tokens(phrase) if t not in ",;.")
