"""Build an ICD-10-PCS code axis by axis from a coder's words: "lap chole" -> 0FT44ZZ.

Searching long titles word by word misses how coders speak: "lap chole" shares no word
with "Resection of Gallbladder, Percutaneous Endoscopic Approach". A coder names a
procedure word that means a root operation (as the PCS definitions define it), a body
part, an approach and perhaps a device or qualifier. `PcsBuilder` reads those axes from
the text, walks the rows of the PCS tables (the `icd10pcs-tables` release) for that root
operation, and fills each axis the text left open with the usual value, naming it in
`open_axes` so a draft can say what it assumed ("0FT44ZZ assumes laparoscopic").

The vocabulary comes from the definitions XML (each root operation's "includes"
examples, each body part's anatomical terms, each device's brand names) and from
`pcs_words.toml` (coders' shorthand, procedure-word suffixes and organ stems). Besides
Medical and Surgical and Obstetrics, coders' words for Administration ("PRBC via
peripheral IV"), Measurement ("left heart cath"), Extracorporeal Assistance ("vent 72
hrs": the hours choose the duration), Imaging, Placement and the mental health and
substance abuse sections build their tables' codes. Spinal level ranges count joints as
the tables do ("T4-T10": 2 to 7 thoracic joints). A question about a status, a finding,
a cause or a supply ("ESRD on HD", "CPAP mask") builds nothing unless PCS is asked for.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import snowballstemmer

from consultant.codes.systems import ICD10PCS

WORDS_FILE = Path(__file__).with_name("pcs_words.toml")

BODY, APPROACH, DEVICE, QUALIFIER = "body part", "approach", "device", "qualifier"
# Sections whose tables are built from coders' procedure words: all but New Technology,
# whose codes are never guessed. Root operations are derived from the definitions for
# Medical and Surgical only; the other sections' operations come from pcs_words.toml
# entries that name their section ("PRBC transfusion", "vent 72 hours", "CT head").
_SECTIONS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "B", "C", "D", "F", "G", "H")
_STEMMER = snowballstemmer.stemmer("english")
_SIDES = {"right": "right", "left": "left", "bilateral": "bilateral", "both": "bilateral"}
_SIDE_STEMS = frozenset(_STEMMER.stemWord(w) for w in _SIDES)
_LABEL_STOP = frozenset(("and", "or", "of", "with", "to", "the", "in", "on", "from"))
_NO_VALUE = "Z"  # "No Device" / "No Qualifier" in sections 0 and 1
_GENERIC = frozenset(("devic",))  # in most device labels, so it tells none apart
_OPEN = "0"
# Words of a duration label that say no more than its number ("Less than 24 Hours").
_MEASURE = frozenset(
    _STEMMER.stemWord(w) for w in ["less", "greater", "than", "per", "day", "hours", "consecutive"]
)
# What a negation denies ("no biopsy", "without mesh"); a body part it cannot.
_DENIABLE = ("device", "qualifier", "approach", "operation", "object")
_TOKEN = re.compile(r"[a-z0-9]+(?:[&/\-][a-z0-9]+)*")
_SENTENCE = re.compile(r"(?<=[.;?!])\s+|\n\s*\n")  # not a wrapped line's newline

# How much each way of filling an axis is trusted; the product of a candidate's factors
# is its score, 1.0 when every axis was stated and matched.
_SIDE_UNSTATED = 0.9  # a left/right body part chosen when the text names no side
_SIDE_BILATERAL_UNSTATED = 0.85
_SIDE_NOT_NEEDED = 0.9  # the text names a side; this body part has none
_SIDE_HALF = 0.7  # "bilateral" stated, a one-sided value (a second code is needed)
_INCLUDES = 0.95  # body part matched by an anatomical term its key includes
_DEFAULT_OPEN = 0.9  # approach assumed open; a body part guessed
_SITE = 0.95  # body part taken from the scope ("colonoscopy with biopsy": the colon)
_TARGET_UNUSED = 0.99  # per word of the procedure word's organ the body part leaves out
_DEFAULT_NONE = 0.95  # "No Device" / "No Qualifier" assumed
_DEFAULT_PREFERRED = 0.96  # the value a procedure word makes likely
_DEFAULT_FIRST = 0.85  # the row's first value, for want of anything better
_OTHER_VALUE = 0.8  # alternatives to the default, for the list after the first
_CONTRADICTED = 0.55  # the text said something this row does not offer
_SECOND_READING = 0.85  # a procedure word's less likely root operation
_UNMATCHED_WORD = 0.85  # per word of the text that no axis explains
_FLOOR = 0.3
_BONES = 0.85  # a fracture named, the body part not a bone


@dataclass(frozen=True)
class PcsCandidate:
    """One complete, valid code; `open_axes` names the axes the text did not settle."""

    code: str
    title: str
    score: float
    open_axes: tuple[str, ...]


@lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def _raw_tokens(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    text = re.sub(r"'s\b", "", text)
    text = re.sub(r"\b([a-z])\s*&\s*([a-z])\b", r"\1&\2", text)
    return _TOKEN.findall(text)


def _words(text: str) -> tuple[str, ...]:
    """Stems of TEXT's words, split at hyphens, slashes and ampersands (no expansion)."""
    return tuple(_stem(part) for token in _raw_tokens(text) for part in re.split(r"[&/\-]", token))


def _label_tokens(label: str) -> frozenset[str]:
    """A body-part label's words without its side: "Knee Joint, Left" -> knee, joint."""
    label = re.sub(r"\([^)]*\)", " ", label)
    return frozenset(w for w in _words(label) if w not in _LABEL_STOP and w not in _SIDE_STEMS)


def _side_of(label: str) -> str | None:
    words = set(_raw_tokens(label))
    if {"right", "left"} <= words:  # "Heart, Right and Left"
        return "bilateral"
    for word in ("bilateral", "right", "left"):
        if word in words:
            return word
    return None


@dataclass(frozen=True)
class _Procedure:
    """What a procedure word says about the axes."""

    operations: tuple[str, ...]
    body: tuple[str, ...] = ()
    approach: tuple[str, ...] = ()  # approach characters, likeliest first
    device: str | None = None
    qualifier: str | None = None
    prefer_device: str | None = None
    prefer_qualifier: str | None = None
    weak: bool = False  # a scope or exploration: not coded beside a definitive procedure
    generic: bool = False  # "removal", "insertion": gives way to a specific word
    # A thing, not an act ("IUD", "insulin", "CPAP"): alone it may ask for the supply or
    # the drug, so it is built only when the text also names an act, a site, an approach
    # or a duration ("IUD insertion", "insulin drip peripheral IV", "BiPAP 72 hrs").
    noun: bool = False
    site: str | None = None  # body part a weak procedure hands to a definitive one
    guess: str | None = None  # the likeliest body part when the text names none
    section: str = "0"
    side: str | None = None  # the side the word implies when the text names none
    prefer_approach: tuple[str, ...] = ()  # the likelier approach when none is named
    duration: str | None = None  # a 5th character that is no approach, as stated
    prefer_duration: str | None = None


@dataclass(frozen=True)
class _Label:
    """A body-part value's label, shared by every row that offers it."""

    text: str
    tokens: frozenset[str]
    weight: float
    side: str | None
    includes: tuple[frozenset[str], ...]


@dataclass(frozen=True)
class _Row:
    tbl: str
    operation: str
    body_system: str
    approaches: tuple[str, ...]
    # The 5th character's labels when it is not an approach (a duration, a contrast)
    durations: tuple[tuple[str, frozenset[str], str], ...]
    devices: tuple[tuple[str, frozenset[str]], ...]
    qualifiers: tuple[tuple[str, frozenset[str]], ...]


@dataclass
class _OpIndex:
    """The body parts one root operation's tables offer, found by their words."""

    labels_by_word: dict[str, list[_Label]] = field(default_factory=lambda: defaultdict(list))
    places: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    sided: set[frozenset[str]] = field(default_factory=set)  # body parts with a side value


@dataclass
class _Parsed:
    """The axes a question names."""

    mentions: list[_Procedure] = field(default_factory=list)
    approach: tuple[str, ...] = ()
    sides: set[str] = field(default_factory=set)
    devices: list[str] = field(default_factory=list)
    qualifiers: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)  # words of the indication
    objects: list[str] = field(default_factory=list)
    object_approach: tuple[str, ...] = ()  # "foreign body": external, where offered
    partial: bool = False
    whole: bool = False
    fracture: bool = False
    history: bool = False  # the next procedure named is the patient's history
    status: bool = False  # "on" the next procedure named: the patient's status ("on HD")
    diagnosis: bool = False  # a status, a finding or a supply is asked about, no procedure
    caused: bool = False  # procedures named from here on caused a condition ("due to chemo")
    doubtful: list[_Procedure] = field(default_factory=list)  # so named: built if asked
    hours: list[float] = field(default_factory=list)  # "vent 72 hrs", "> 96 hours"

    @property
    def side(self) -> str | None:
        if "bilateral" in self.sides or {"right", "left"} <= self.sides:
            return "bilateral"
        return next(iter(self.sides), None)


@dataclass(frozen=True)
class _Choice:
    value: str
    factor: float
    open: bool
    used: frozenset[str] = frozenset()


class PcsBuilder:
    """Builds PCS codes from a coder's words; load once, then `build` per question."""

    def __init__(self, conn: sqlite3.Connection, words_file: Path = WORDS_FILE) -> None:
        self.conn = conn
        with words_file.open("rb") as fh:
            words = tomllib.load(fh)
        self._rows: list[_Row] = []
        self._ops: dict[tuple[str, str], _OpIndex] = {}
        self._body_words: set[str] = set()
        self._decomposed: dict[str, _Procedure | None] = {}
        self._canonical: dict[str, str] = {}
        self._load_tables()
        self._load_aggregation()
        self._load_vocabulary(words)

    @property
    def available(self) -> bool:
        """The PCS tables are loaded (`consultant codes import icd10pcs-tables FILE`)."""
        return bool(self._rows)

    def _canon(self, word: str) -> str:
        """WORD as the body-part labels spell its stem: the stemmer makes "ureter" of
        "ureteral" but "uret" of "Ureter", "ovarian" but "ovari" of "Ovary"."""
        if word in self._body_words or len(word) < 4:
            return word
        if word not in self._canonical:
            # The label word nearest in length that one spelling begins with: "urethr"
            # is "urethra", not "uret" (of "Ureters").
            near = [
                t
                for t in self._body_words
                if (len(t) >= 4 and word.startswith(t) and len(word) - len(t) <= 3)
                or (len(word) >= 5 and t.startswith(word) and len(t) - len(word) <= 3)
            ]
            self._canonical[word] = (
                min(near, key=lambda t: (abs(len(t) - len(word)), -len(t))) if near else word
            )
        return self._canonical[word]

    # -- loading ------------------------------------------------------------------------

    def _load_tables(self) -> None:
        includes: dict[str, list[frozenset[str]]] = defaultdict(list)
        query = "SELECT term, includes FROM pcs_definitions WHERE section = '0' AND pos = 4"
        for term, listed in self.conn.execute(query):
            for entry in json.loads(listed):
                tokens = _label_tokens(entry)
                if tokens:
                    includes[term].append(tokens)
        heads = {
            tbl: (operation, body_system)
            for tbl, operation, body_system in self.conn.execute(
                "SELECT tbl, operation, body_system FROM pcs_tables"
            )
        }
        axes: dict[tuple[str, int], dict[int, list[tuple[str, str]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        not_approach: set[str] = set()  # tables whose 5th character is no approach
        self._duration_words: set[str] = set()  # "intermittent", "continuous"
        for tbl, seq, pos, value, label, axis in self.conn.execute(
            "SELECT tbl, row_seq, pos, value, label, axis FROM pcs_axis_values"
            f" WHERE substr(tbl, 1, 1) IN ({', '.join('?' * len(_SECTIONS))})"
            " ORDER BY tbl, row_seq, pos, value",
            _SECTIONS,
        ):
            axes[tbl, seq][pos].append((value, label))
            if pos == 5 and axis != "Approach":
                not_approach.add(tbl)
                if axis == "Duration":
                    self._duration_words.update(
                        t for t in _value_tokens(label) if t.isalpha() and t not in _MEASURE
                    )
        texts = {label for row in axes.values() for _, label in row[4]}
        frequency: dict[str, int] = defaultdict(int)
        for text in texts:
            for token in _label_tokens(text):
                frequency[token] += 1
        self._weight = {t: math.log(1 + len(texts) / n) for t, n in frequency.items()}
        self._body_words = set(frequency)
        labels: dict[str, _Label] = {}
        for text in texts:
            tokens = _label_tokens(text)
            labels[text] = _Label(
                text,
                tokens,
                sum(self._weight[t] for t in tokens) or 1.0,
                _side_of(text),
                tuple(frozenset(map(self._canon, s)) for s in includes.get(text, ())),
            )
        for (tbl, _seq), row in axes.items():
            if tbl not in heads:
                continue
            operation, body_system = heads[tbl]
            index = self._ops.setdefault((tbl[0], operation), _OpIndex())
            self._rows.append(
                _Row(
                    tbl,
                    operation,
                    body_system,
                    () if tbl in not_approach else tuple(value for value, _ in row[5]),
                    tuple(
                        (value, _value_tokens(label), label)
                        for value, label in (row[5] if tbl in not_approach else ())
                    ),
                    tuple((value, _value_tokens(label)) for value, label in row[6]),
                    tuple((value, _value_tokens(label)) for value, label in row[7]),
                )
            )
            number = len(self._rows) - 1
            for value, text in row[4]:
                label = labels[text]
                if label.side is not None:
                    index.sided.add(label.tokens)
                if text not in index.places:
                    for token in label.tokens.union(*label.includes):
                        index.labels_by_word[token].append(label)
                index.places[text].append((number, value))

    def _load_aggregation(self) -> None:
        self._aggregates: dict[frozenset[str], list[tuple[str, str, str]]] = defaultdict(list)
        for device, operation, body_system, parent in self.conn.execute(
            "SELECT device, operation, body_system, parent FROM pcs_device_aggregation"
        ):
            self._aggregates[_value_tokens(device)].append((operation, body_system, parent))

    def _general(
        self, devices: list[str], row: _Row, offered: list[tuple[str, frozenset[str]]]
    ) -> list[str]:
        """The general device values ROW codes the named specific ones as, by the device
        aggregation table ("Autologous Arterial Tissue" -> Autologous Tissue Substitute),
        unless the table OFFERS the specific one ("Intramedullary" in 0QS)."""
        labels = {tokens for _, tokens in offered}
        return [
            parent
            for device in devices
            if _value_tokens(device) not in labels
            for operation, body_system, parent in self._aggregates.get(_value_tokens(device), ())
            if body_system == row.body_system and operation in ("All applicable", row.operation)
        ]

    def _load_vocabulary(self, words: dict) -> None:
        approaches = words["approaches"]["values"]

        def approach_chars(names: str | list[str] | None) -> tuple[str, ...]:
            if names is None:
                return ()
            return tuple(approaches[n] for n in ([names] if isinstance(names, str) else names))

        def procedure(entry: dict) -> _Procedure:
            operations = entry["operation"]
            body = entry.get("body", ())
            return _Procedure(
                operations=(operations,) if isinstance(operations, str) else tuple(operations),
                body=(body,) if isinstance(body, str) else tuple(body),
                approach=approach_chars(entry.get("approach")),
                device=entry.get("device"),
                qualifier=entry.get("qualifier"),
                prefer_device=entry.get("prefer_device"),
                prefer_qualifier=entry.get("prefer_qualifier"),
                weak=entry.get("weak", False),
                generic=entry.get("generic", False),
                noun=entry.get("noun", False),
                site=entry.get("site"),
                guess=entry.get("guess"),
                section=entry.get("section", "0"),
                side=entry.get("side"),
                prefer_approach=approach_chars(entry.get("prefer_approach")),
                duration=entry.get("duration"),
                prefer_duration=entry.get("prefer_duration"),
            )

        self._procedure = procedure
        self._suffixes = sorted(words["suffixes"].items(), key=lambda kv: -len(kv[0]))
        self._stems = dict(sorted(words["stems"].items(), key=lambda kv: -len(kv[0])))
        self._abbreviations = {
            tuple(_raw_tokens(key)): _raw_tokens(value)
            for key, value in words["abbreviations"].items()
        }
        # One dictionary of phrases; the first kind to claim a phrase keeps it.
        phrases: dict[tuple[str, ...], tuple[str, object]] = {}

        def claim(kind: str, key: str, payload: object) -> None:
            phrases.setdefault(_words(key), (kind, payload))

        for phrase in words["history"]["phrases"]:
            claim("history", phrase, None)
        # Matched unstemmed: "tubing" is no "tube", "needing" no "need", "uses" no "using".
        self._raw_kinds = {
            tuple(_raw_tokens(phrase)): (kind, None)
            for kind, key in (("status", "status"), ("diagnosis", "words"), ("cause", "cause"))
            for phrase in words["diagnosis"][key]
        }
        for key, entry in words["operations"].items():
            claim("operation", key, procedure(entry))
        for key, names in words["approaches"]["words"].items():
            claim("approach", key, approach_chars(names))
        for key, value in words["devices"].items():
            claim("device", key, value)
        for key, value in words["qualifiers"].items():
            claim("qualifier", key, value)
        for key, value in words["objects"].items():  # an operation, or one with its approach
            if isinstance(value, dict):
                value = (value["operation"], approach_chars(value.get("prefer_approach")))
            claim("object", key, value if isinstance(value, tuple) else (value, ()))
        for key, value in words["body"].items():
            claim("body", key, value)
        for word in words["negation"]["words"]:
            claim("negation", word, None)
        for word in words["indication"]["words"]:
            claim("indication", word, None)
        for word in words["ignore"]["words"]:
            claim("ignore", word, None)
        for word in _SIDES:
            claim("side", word, _SIDES[word])
        self._derive_operations(phrases)
        self._derive_devices(phrases)
        self._phrases = phrases
        self._fracture_words = {_stem(w) for w in words["fracture"]["words"]}
        self._fracture = {
            _words(key): value for key, value in words["fracture"].items() if key != "words"
        }
        self._longest = max(len(key) for key in [*phrases, *self._fracture, *self._raw_kinds])
        self._partial = {_stem(w) for w in words["partial"]["words"]}
        self._whole = {_stem(w) for w in words["whole"]["words"]}
        self._with_substitute = words["with_substitute"]

    def _derive_operations(self, phrases: dict) -> None:
        """Root operation words from the definitions: each operation's name, and the head
        word of each of its "includes" examples ("liver biopsy" -> biopsy: Excision)."""
        readings: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for term, listed in self.conn.execute(
            "SELECT term, includes FROM pcs_definitions WHERE section = '0' AND pos = 3"
        ):
            readings[_words(term)].append(term)
            for entry in json.loads(listed):
                for example in entry.split(","):
                    head = example.lower().split(" of ")[0]
                    if any(self._decompose(w) for w in _raw_tokens(head)):
                        continue  # "partial nephrectomy": the suffix rules read it
                    run = self._head_words(_words(head), phrases)
                    if run and term not in readings[run]:
                        readings[run].append(term)
        for key, operations in readings.items():
            if key not in phrases:
                phrases[key] = ("operation", _Procedure(operations=tuple(operations)))

    def _head_words(self, words: tuple[str, ...], phrases: dict) -> tuple[str, ...]:
        """The last run of WORDS that names no body part, approach, device or side."""
        if len(words) > 5:
            return ()
        run: list[str] = []
        for word in reversed(words):
            kind = phrases.get((word,), (None,))[0]
            if word in self._body_words or kind not in (None, "operation"):
                if run:
                    break
                continue
            run.insert(0, word)
        return tuple(run)

    def _derive_devices(self, phrases: dict) -> None:
        """Brand and generic names from the device key ("Xience" -> Intraluminal Device,
        Drug-eluting); a term's " in <body system>" ending is dropped."""
        for term, listed in self.conn.execute(
            "SELECT term, includes FROM pcs_definitions WHERE section = '0' AND pos = 6"
        ):
            label = re.split(r" (?:in|for) ", term)[0]
            for entry in json.loads(listed):
                name = re.sub(r"\((R|TM)\)|\([^)]*\)", " ", entry)
                key = _words(name)
                if not key or len(key) > 4 or key in phrases or self._names_procedure(key, phrases):
                    continue
                if len(key) == 1 and key[0] in self._body_words:
                    continue
                phrases[key] = ("device", label)

    @staticmethod
    def _names_procedure(key: tuple[str, ...], phrases: dict) -> bool:
        """KEY holds a procedure or approach phrase ("percutaneous endoscopic
        gastrostomy tube"), which must stay one, not become a device name."""
        spans = (key[i:j] for i in range(len(key)) for j in range(i + 1, len(key) + 1))
        found = [phrases.get(span, ("", None)) for span in spans]
        return any(
            kind == "approach" or (kind == "operation" and not payload.noun)
            for kind, payload in found
        )

    # -- reading the question -------------------------------------------------------------

    def _expand(self, text: str) -> list[str]:
        """Raw tokens with coders' shorthand spelled out, hyphenated words joined when
        joined they are a procedure word ("salpingo-oophorectomy"), else split."""
        raw = _raw_tokens(text)
        expanded: list[str] = []
        i = 0
        longest = max(len(k) for k in self._abbreviations)
        while i < len(raw):
            for size in range(min(longest, len(raw) - i), 0, -1):
                replacement = self._abbreviations.get(tuple(raw[i : i + size]))
                if replacement is not None:
                    expanded.extend(replacement)
                    i += size
                    break
            else:
                expanded.append(raw[i])
                i += 1
        tokens: list[str] = []
        for token in expanded:
            if tokens and tokens[-1] == "hemi" and self._decompose("hemi" + token):
                tokens[-1] = "hemi" + token  # "hemi colectomy"
                continue
            if not re.search(r"[&/\-]", token):
                tokens.append(token)
                continue
            joined = token.replace("-", "")
            if "-" in token and re.fullmatch(r"[a-z]+", joined) and self._decompose(joined):
                tokens.append(joined)
            else:
                tokens.extend(t for t in re.split(r"[&/\-]", token) if t)
        return tokens

    def _parse(self, text: str) -> _Parsed:
        text = _COUNT.sub(" ", text)  # "lancets, 100 ct": a count, not a CT scan
        text, hours = _hours(_levels(text))
        tokens = self._expand(text)
        stems = [_stem(t) for t in tokens]
        parsed = _Parsed(hours=hours)
        parsed.fracture = any(s in self._fracture_words for s in stems)
        parsed.partial = any(s in self._partial for s in stems)
        parsed.whole = any(s in self._whole for s in stems)
        i, negated, indicated = 0, False, False
        while i < len(stems):
            for size in range(min(self._longest, len(stems) - i), 0, -1):
                key = tuple(stems[i : i + size])
                if parsed.fracture and key in self._fracture:
                    parsed.content.extend(_words(self._fracture[key]))
                    break
                found = self._raw_kinds.get(tuple(tokens[i : i + size])) or self._phrases.get(key)
                if found is not None:
                    kind = found[0]
                    if kind == "negation":
                        negated = True
                    elif kind == "indication":
                        indicated = True
                        # "naropin for nerve block": what is asked about comes first; a
                        # procedure after "for" is then its use, not a procedure done.
                        if not parsed.mentions and any(not w.isdigit() for w in parsed.content):
                            parsed.caused = True
                    elif not (negated and kind in _DENIABLE):
                        self._take(parsed, *found)
                    if kind not in ("status", "ignore"):
                        parsed.status = parsed.status and kind == "operation"
                    negated = negated and kind in ("negation", "ignore")
                    indicated = indicated and kind in ("indication", "ignore")
                    break
            else:
                size, denied, negated = 1, negated, False
                procedure = self._decompose(tokens[i])
                if procedure is not None:
                    if not denied:
                        self._mention(parsed, procedure)
                    indicated = False
                elif denied:  # "w/o contrast", "no hardware": not a body part
                    pass
                elif indicated or parsed.caused:  # "for acute appendicitis": maybe the site
                    parsed.optional.append(stems[i])
                elif stems[i] not in self._fracture_words:
                    parsed.content.append(stems[i])
                if procedure is None:
                    parsed.status = False
            i += size
        return parsed

    @staticmethod
    def _mention(parsed: _Parsed, procedure: _Procedure) -> None:
        """A procedure the text names, unless it names it as history ("s/p", "h/o"), as
        the patient's status ("ESRD on HD") or as a cause ("nausea due to chemo")."""
        if parsed.history:
            parsed.history = False
        elif parsed.status or parsed.caused:
            parsed.doubtful.append(procedure)
            parsed.diagnosis = parsed.diagnosis or parsed.status
            parsed.status = False
        else:
            parsed.mentions.append(procedure)

    def _take(self, parsed: _Parsed, kind: str, payload: Any) -> None:
        if kind == "operation":
            self._mention(parsed, payload)
        elif kind == "approach":
            parsed.approach = payload  # the last: "laparoscopic converted to open"
        elif kind == "device":
            parsed.devices.append(payload)
        elif kind == "qualifier":
            parsed.qualifiers.append(payload)
        elif kind == "object":
            operation, approach = payload
            parsed.objects.append(operation)
            parsed.object_approach = parsed.object_approach or approach
        elif kind == "side":
            parsed.sides.add(payload)
        elif kind == "status":
            parsed.status = True
        elif kind == "diagnosis":  # "PEG tube status", "CPAP mask", "EGD showed ..."
            parsed.diagnosis = True
        elif kind == "cause":
            parsed.caused = True
        elif kind == "history":  # "history of appendectomy": a diagnosis, not this one
            parsed.history = True
        elif kind == "body":  # a list: the table's wording, then other names it may have
            first, *others = [payload] if isinstance(payload, str) else payload
            for word in _raw_tokens(first):
                if word in _SIDES:
                    parsed.sides.add(_SIDES[word])
                else:
                    parsed.content.append(_stem(word))
            parsed.optional.extend(w for other in others for w in _words(other))

    def _decompose(self, word: str) -> _Procedure | None:
        """A procedure word made of organ stems and a suffix: "cholecystectomy" ->
        Resection of the gallbladder; None when WORD is not one."""
        if word not in self._decomposed:
            if len(self._decomposed) > 4096:
                self._decomposed.clear()
            self._decomposed[word] = self._decompose_word(word)
        return self._decomposed[word]

    def _decompose_word(self, word: str) -> _Procedure | None:
        for suffix, rule in self._suffixes:
            if not word.endswith(suffix) or len(word) <= len(suffix):
                continue
            stems = self._split_stems(word[: -len(suffix)])
            if stems is None:
                continue
            entry = {k: v for k, v in rule.items() if k != "stems"}
            for stem in stems:
                entry.update(rule.get("stems", {}).get(stem, {}))
            body = tuple(self._stems[s] for s in stems if self._stems[s])
            if suffix == "ectomy":  # "salpingo-oophorectomy": the ovaries first
                body = body[::-1]
            return self._procedure({**entry, "body": entry.get("body", body)})
        return None

    def _split_stems(self, prefix: str) -> list[str] | None:
        """PREFIX as organ stems joined by optional connecting vowels, longest first."""
        if not prefix:
            return []
        for stem in self._stems:
            if prefix.startswith(stem):
                rest = prefix[len(stem) :]
                for tail in (rest, rest[1:] if rest[:1] in ("o", "i") else None):
                    if tail is None:
                        continue
                    found = self._split_stems(tail)
                    if found is not None:
                        return [stem, *found]
        return None

    # -- building -------------------------------------------------------------------------

    def build(self, text: str, limit: int = 5, *, asked: bool = False) -> list[PcsCandidate]:
        """The likeliest complete codes for TEXT, best first; [] when TEXT names no
        procedure (a diagnosis, a body part alone) or the tables are not loaded. Unless
        ASKED for a PCS code outright, a question about the patient's status ("ESRD on
        HD", "PEG tube status"), a finding or a supply ("CPAP mask") builds nothing."""
        if not self._rows or limit <= 0:
            return []
        groups = [
            group
            for parsed in self._sentences(text, asked)
            for procedure in self._definitive(parsed, asked)
            for target in (procedure.body or (None,))
            if (group := self._candidates(parsed, procedure, target))
        ]
        if not groups:
            return []
        ranked: dict[str, tuple[float, tuple[str, ...]]] = {}
        order: list[str] = []
        for group in groups:  # each procedure's best first, in the question's order
            code, score, open_axes = group[0]
            if code not in ranked:
                ranked[code] = (score, open_axes)
                order.append(code)
        rest = sorted((item for group in groups for item in group[1:]), key=lambda item: -item[1])
        for code, score, open_axes in rest:
            if code not in ranked:
                ranked[code] = (score, open_axes)
                order.append(code)
        return self._existing(order[: limit * 3], ranked)[:limit]

    def _sentences(self, text: str, asked: bool = False) -> list[_Parsed]:
        """Each sentence that names a procedure, read on its own so that one procedure's
        body part is not taken for another's; a sentence naming none ("Rt.", "Dr. Lee
        did:") is read with the next, and one at the end (a signature) is dropped, as is
        one about a diagnosis unless a PCS code was ASKED for."""
        units: list[_Parsed] = []
        pending: list[str] = []
        for chunk in _SENTENCE.split(text):
            parsed = self._read(chunk, asked)
            if parsed.diagnosis:
                continue
            if parsed.mentions:
                units.append(self._read(" ".join([*pending, chunk]), asked) if pending else parsed)
                pending = []
            elif chunk.strip():
                pending.append(chunk)
        return units

    def _read(self, text: str, asked: bool) -> _Parsed:
        parsed = self._parse(text)
        if asked:  # "on the vent 72 hrs, PCS code": the procedure, not the status
            parsed.mentions += parsed.doubtful
            parsed.diagnosis = False
        return parsed

    def _existing(
        self, codes: list[str], ranked: dict[str, tuple[float, tuple[str, ...]]]
    ) -> list[PcsCandidate]:
        if not codes:
            return []
        marks = ", ".join("?" * len(codes))
        titles = dict(
            self.conn.execute(
                f"SELECT code, title FROM codes WHERE system = ? AND billable = 1"
                f" AND code IN ({marks})",
                (ICD10PCS, *codes),
            ).fetchall()
        )
        return [
            PcsCandidate(code, titles[code], round(ranked[code][0], 3), ranked[code][1])
            for code in codes
            if code in titles
        ]

    def _definitive(self, parsed: _Parsed, asked: bool = False) -> list[_Procedure]:
        """The procedures to code: a scope or exploration is not coded beside a definitive
        procedure, but lends it its approach and site; "removal" of a stone is Extirpation;
        a thing alone ("Kenalog 40 mg") is no procedure unless a PCS code was ASKED for."""
        mentions = parsed.mentions
        if not asked and all(m.noun for m in mentions) and not self._acted(parsed):
            return []
        mentions = _device_acts(mentions)
        for mention in mentions:  # "with stent": a device for whatever is coded
            if not mention.body:
                parsed.devices.extend(filter(None, [mention.device]))
                parsed.qualifiers.extend(filter(None, [mention.qualifier]))
        specific = [m for m in mentions if not m.weak and not m.generic]
        generic = [m for m in mentions if m.generic and not m.weak]
        weak = [m for m in mentions if m.weak]
        if parsed.objects:
            objects = tuple(dict.fromkeys(parsed.objects))
            prefer = parsed.object_approach
            generic = [_with(m, operations=objects, prefer_approach=prefer) for m in generic] or (
                [_with(m, operations=objects, prefer_approach=prefer) for m in weak]
                if not specific
                else []
            )
            specific = specific + generic
        elif not specific:
            specific = generic
        if not specific:
            return weak[:1]
        lender = weak[0] if weak else None
        # One approach named for a combined procedure ("TAH-BSO") holds for all of it.
        shared = next((m.approach for m in specific if m.approach), ())
        if lender is not None:
            shared = shared or lender.approach
        chosen = []
        for mention in specific:
            site = mention.site
            if lender is not None:
                site = site or lender.site or (lender.body[0] if lender.body else None)
            # "NG tube placement": the tube's device for the placement
            device = mention.device or (lender.device if lender is not None else None)
            chosen.append(
                _with(mention, approach=mention.approach or shared, site=site, device=device)
            )
        return chosen

    def _acted(self, parsed: _Parsed) -> bool:
        """Whether the text says how or where a thing was used: an approach, a duration,
        a body part or its side ("insulin drip peripheral IV", "chest tube right")."""
        words = self._body_text("", [*parsed.content, *parsed.optional])
        return bool(
            parsed.approach
            or parsed.hours
            or parsed.sides
            or words & self._body_words
            or set(parsed.content) & self._duration_words
        )

    def _operations(self, parsed: _Parsed, procedure: _Procedure) -> list[tuple[str, float]]:
        operations: list[str] = []
        for operation in procedure.operations:
            if operation == "Resection" and parsed.partial:
                operations.extend(("Excision", "Resection"))
            elif operation == "Excision" and parsed.whole and not parsed.partial:
                operations.extend(("Resection", "Excision"))  # "total discectomy"
            elif operation in self._with_substitute and self._substitute(parsed, procedure):
                operations.extend((self._with_substitute[operation], operation))
            else:
                operations.append(operation)
        unique = list(dict.fromkeys(operations))
        return [(op, 1.0 if n == 0 else _SECOND_READING) for n, op in enumerate(unique)]

    @staticmethod
    def _substitute(parsed: _Parsed, procedure: _Procedure) -> bool:
        devices = [*parsed.devices, procedure.device or ""]
        return any("substitute" in d or "tissue" in d for d in devices)

    def _candidates(
        self, parsed: _Parsed, procedure: _Procedure, target: str | None
    ) -> list[tuple[str, float, tuple[str, ...]]]:
        content = self._body_text("", parsed.content)
        optional = self._body_text("", parsed.optional) - content
        # The body part the text names; else (1.0 -> assumed) the scope's ("colonoscopy
        # with biopsy": the colon), else the likeliest ("hernia repair": inguinal).
        organ = self._body_text(target or "")
        tries = [(organ | self._body_text("", [*parsed.content, *parsed.optional]), organ, 1.0)]
        if procedure.site:
            site = self._body_text(procedure.site)
            tries.append((site, site, _SITE))
        if procedure.guess:
            guess = self._body_text(procedure.guess)
            tries.append((guess, guess, _DEFAULT_OPEN))
        for words, organ, assumed in tries:
            found = (
                self._found(parsed, procedure, words, organ, content, optional, assumed)
                if words
                else {}
            )
            if found:
                return sorted(
                    ((code, score, axes) for code, (score, axes) in found.items()),
                    key=lambda item: (-item[1], item[0]),
                )
        return []

    def _found(
        self,
        parsed: _Parsed,
        procedure: _Procedure,
        words: set[str],
        organ: set[str],
        content: set[str],
        optional: set[str],
        assumed: float,
    ) -> dict[str, tuple[float, tuple[str, ...]]]:
        """Codes for the body part WORDS name (ORGAN: those of the procedure word itself):
        code -> (score, open axes)."""
        found: dict[str, tuple[float, tuple[str, ...]]] = {}
        side = parsed.side or procedure.side
        for operation, op_factor in self._operations(parsed, procedure):
            index = self._ops.get((procedure.section, operation))
            if index is None:
                continue
            labels = self._labels(index, words, side)
            most = max((len(item[2]) for item in labels), default=0)
            for label, cover, used, side_factor, side_open in labels:
                tied = [
                    other
                    for other, other_cover, other_used, *_ in labels
                    if other.tokens != label.tokens
                    and abs(other_cover - cover) < 0.02
                    and len(other_used) >= len(used)
                ]
                if tied and len(used) == most:  # all the text could say but which one
                    shared = label.tokens.intersection(*(other.tokens for other in tied))
                    cover = max(cover, _DEFAULT_OPEN * self._share(shared, words, cover))
                places: dict[tuple[str, str], list[_Row]] = defaultdict(list)
                for number, value in index.places[label.text]:
                    places[self._rows[number].tbl, value].append(self._rows[number])
                for (_tbl, value), rows in places.items():
                    body_factor = op_factor * cover * side_factor * assumed
                    body_factor *= _TARGET_UNUSED ** len(organ - used)
                    if parsed.fracture and "Bones" not in rows[0].body_system:
                        body_factor *= _BONES
                    body_open = [BODY] if side_open or tied or assumed < 1 else []
                    for code, score, axes in self._fill(
                        parsed, procedure, rows, value, content - used - optional
                    ):
                        total = body_factor * score
                        names = (*body_open, *axes)
                        if code not in found or total > found[code][0]:
                            found[code] = (total, names)
        return found

    def _body_text(self, text: str, stems: Iterable[str] = ()) -> set[str]:
        """The words that may name a body part, in the labels' spelling."""
        return {self._canon(w) for w in [*_words(text), *stems] if w not in _LABEL_STOP}

    def _labels(self, index: _OpIndex, words: set[str], side: str | None) -> list[tuple]:
        """Body parts of the operation's tables that WORDS name, best first:
        (label, cover, words used, side factor, side left open)."""
        seen: set[str] = set()
        scored = []
        for word in words:
            for label in index.labels_by_word.get(word, ()):
                if label.text in seen:
                    continue
                seen.add(label.text)
                cover, used = self._cover(label, words)
                factor, side_open = _side_fit(side, label.side)
                if label.side is None and label.tokens not in index.sided:
                    factor = 1.0  # no side to choose: "bilateral" is about another organ
                if cover > 0 and factor > 0:
                    scored.append((label, cover, used, factor, side_open))
        scored.sort(key=lambda item: (-item[1] * item[3], item[0].text))
        best = scored[0][1] * scored[0][3] if scored else 0.0
        return [item for item in scored[:10] if item[1] * item[3] >= best / 2]

    def _share(self, tokens: frozenset[str], words: set[str], otherwise: float) -> float:
        """How much of TOKENS the words name, by weight."""
        total = sum(self._weight.get(t, 0.0) for t in tokens)
        if not total:
            return otherwise
        return sum(self._weight.get(t, 0.0) for t in tokens & words) / total

    def _cover(self, label: _Label, words: set[str]) -> tuple[float, frozenset[str]]:
        """How much of LABEL the words name (by weight), and which words it used; an
        anatomical term of its key named in full counts nearly as much as the label."""
        hit = label.tokens & words
        cover = sum(self._weight.get(t, 0.0) for t in hit) / label.weight if hit else 0.0
        used = frozenset(hit)
        for include in label.includes:
            if include <= words and (cover < _INCLUDES or (cover >= 1 and include > used)):
                cover, used = max(cover, _INCLUDES), frozenset(include | hit)
        return min(cover, 1.0), used

    def _fill(
        self,
        parsed: _Parsed,
        procedure: _Procedure,
        rows: list[_Row],
        body_value: str,
        spare: set[str],
    ) -> Iterator[tuple[str, float, tuple[str, ...]]]:
        """Complete codes for body part BODY_VALUE from the ROWS of one table that offer
        it: approach, device and qualifier from the text, else the usual default (judged
        over all the rows, which CMS splits by approach or device); (code, score, open).
        SPARE: the text's words the body part left to explain."""
        # What the text says, and what its procedure word implies: "THA ceramic on poly"
        # names a bearing surface more precise than the arthroplasty's synthetic substitute.
        devices_stated = list(parsed.devices)
        devices_implied = [*filter(None, [procedure.device])]
        qualifiers_stated = list(parsed.qualifiers)
        qualifiers_implied = [*filter(None, [procedure.qualifier])]
        if "Inspection" in procedure.operations:  # "diagnostic" arthroscopy: inherent
            qualifiers_stated = [q for q in qualifiers_stated if q != "diagnostic"]
            qualifiers_implied = [q for q in qualifiers_implied if q != "diagnostic"]
        all_approaches = _union(row.approaches for row in rows)
        all_durations = _union(row.durations for row in rows)
        durations_stated = [*filter(None, [procedure.duration])]
        durations_stated += [
            label for _, _, label in all_durations if any(_in_range(label, h) for h in parsed.hours)
        ]
        all_devices = _union(row.devices for row in rows)
        all_qualifiers = _union(row.qualifiers for row in rows)
        for row in rows:
            if row.durations:
                approaches = _value(
                    tuple((v, t) for v, t, _ in row.durations),
                    [(v, t) for v, t, _ in all_durations],
                    durations_stated,
                    procedure.prefer_duration,
                    spare,
                )
            else:
                approaches = self._approach(parsed, procedure, row, all_approaches)
            devices = _value(
                row.devices,
                all_devices,
                [*devices_stated, *self._general(devices_stated, row, all_devices)],
                procedure.prefer_device,
                spare,
                [*devices_implied, *self._general(devices_implied, row, all_devices)],
            )
            qualifiers = _value(
                row.qualifiers,
                all_qualifiers,
                qualifiers_stated,
                procedure.prefer_qualifier,
                spare,
                qualifiers_implied,
            )
            for approach in approaches[:3]:
                for device in devices[:2]:
                    for qualifier in qualifiers[:2]:
                        unmatched = len(spare - approach.used - device.used - qualifier.used)
                        score = approach.factor * device.factor * qualifier.factor
                        score *= max(_UNMATCHED_WORD**unmatched, _FLOOR)
                        axes = tuple(
                            name
                            for name, choice in (
                                (APPROACH, approach),
                                (DEVICE, device),
                                (QUALIFIER, qualifier),
                            )
                            if choice.open
                        )
                        code = row.tbl + body_value + approach.value + device.value
                        yield code + qualifier.value, score, axes

    @staticmethod
    def _approach(
        parsed: _Parsed, procedure: _Procedure, row: _Row, offered: list[str]
    ) -> list[_Choice]:
        """The approach the text names (or its procedure word implies), else open, else
        the table's first for this body part."""
        stated = parsed.approach or procedure.approach
        preferred = [c for c in procedure.prefer_approach if c in offered]
        default = preferred[0] if preferred else _OPEN if _OPEN in offered else offered[0]
        choices = []
        for value in row.approaches:
            if stated:
                if value in stated:
                    choices.append(_Choice(value, 1.0 if value == stated[0] else 0.98, False))
                else:
                    choices.append(_Choice(value, _CONTRADICTED, True))
            elif len(offered) == 1:
                choices.append(_Choice(value, 1.0, False))
            elif value == default:
                factor = _DEFAULT_OPEN if value == _OPEN or preferred else _DEFAULT_FIRST
                choices.append(_Choice(value, factor, True))
            else:
                choices.append(_Choice(value, _OTHER_VALUE, True))
        return sorted(choices, key=lambda c: -c.factor)


def _value(
    offered: tuple[tuple[str, frozenset[str]], ...],
    table: list[tuple[str, frozenset[str]]],
    stated: list[str],
    prefer: str | None,
    spare: set[str],
    implied: list[str] | None = None,
) -> list[_Choice]:
    """Device or qualifier of one row: the value the text names (else the one its
    procedure word IMPLIES), else (judged over the whole TABLE for this body part) the
    value a procedure word makes likely, else No Device / No Qualifier, else the first."""
    said = [w for w in (_value_tokens(s) for s in stated) if w]
    meant = [w for w in (_value_tokens(s) for s in implied or ()) if w]
    wanted = said + meant
    sides = _SIDE_STEMS.intersection(*wanted) if wanted else frozenset()
    if len(sides) == 1:  # "left heart" cath: never the right heart, even as an alternative
        offered = tuple((v, t) for v, t in offered if not (t & _SIDE_STEMS) - sides)
    matched = []
    for value, tokens in offered:
        best = max((_jaccard(w, tokens) for w in said), default=0.0)
        best_meant = max((_jaccard(w, tokens) for w in meant), default=0.0)
        if best > 0.5:  # "left internal mammary" is not half of "right internal mammary"
            matched.append(_Choice(value, 0.6 + 0.4 * best, False))
        elif best_meant > 0.5:  # less than what the text itself says, if it says any
            matched.append(_Choice(value, (0.6 + 0.4 * best_meant) * (0.95 if said else 1), False))
        elif tokens and value != _NO_VALUE and tokens <= spare:
            matched.append(_Choice(value, 1.0, False, tokens))
    if matched:
        taken = {c.value for c in matched}
        rest = [_Choice(v, _CONTRADICTED, True) for v, _ in offered if v not in taken]
        return sorted(matched, key=lambda c: -c.factor) + rest
    if len(table) == 1:
        return [_Choice(offered[0][0], _CONTRADICTED if wanted else 1.0, bool(wanted))]
    preferred = _value_tokens(prefer) if prefer else frozenset()
    fits = {value: _jaccard(preferred, tokens) for value, tokens in table}
    best_fit = max(fits.values(), default=0.0)
    codes = [value for value, _ in table]
    if best_fit >= 0.5:
        default, factor = max(fits, key=fits.__getitem__), _DEFAULT_PREFERRED
    elif _NO_VALUE in codes:
        default, factor = _NO_VALUE, _DEFAULT_NONE
    else:
        default, factor = codes[0], _DEFAULT_FIRST
    other = _OTHER_VALUE
    if wanted:  # the text named a value this table lacks
        factor, other = _CONTRADICTED, _CONTRADICTED * 0.95
    choices = [_Choice(v, factor if v == default else other, True) for v, _ in offered]
    return sorted(choices, key=lambda c: -c.factor)


@lru_cache(maxsize=4096)
def _value_tokens(text: str) -> frozenset[str]:
    """A device or qualifier label's words, sides kept ("Left Internal Mammary")."""
    text = re.sub(r"\([^)]*\)", " ", text)
    return frozenset(w for w in _words(text) if w not in _LABEL_STOP and w not in _GENERIC)


_COUNT = re.compile(r"\b\d+\s*(?:ct|count)\b", re.I)
_HOURS = re.compile(
    r"(?:(more|greater|over|>|at least|less|fewer|under|<)\s*(?:than\s*)?)?"
    r"\b(\d+(?:\.\d+)?)\s*(?:(?:to|-|–)\s*(\d+(?:\.\d+)?)\s*)?"
    r"(?:consecutive\s+)?(hours?|hrs?|h|days?)\b(?:\s*(?:/|per|a)\s*day\b)?",
    re.I,
)
_RANGE = re.compile(r"less than (\d+)|greater than (\d+)|(\d+)-(\d+)", re.I)


def _hours(text: str) -> tuple[str, list[float]]:
    """TEXT without its durations ("vent > 96 hrs", "4 hr session"), and those in hours."""
    found = []
    for match in _HOURS.finditer(text):
        bound, first, last, unit = match.groups()
        value = (float(first) + float(last)) / 2 if last else float(first)
        if bound and not last:
            value += -0.5 if bound.lower() in ("less", "fewer", "under", "<") else 0.5
        found.append(value * (24 if unit.lower().startswith("day") else 1))
    return (_HOURS.sub(" ", text), found) if found else (text, [])


_LEVELS = re.compile(r"\b([ctls])(\d{1,2})\s*(?:-|–|to|through|thru)\s*([ctls]?)(\d{1,2})\b", re.I)
_LEVEL_COUNT = re.compile(r"\b(single|one|1|two|2|three|3|four|4|five|5)[\s-]+levels?\b", re.I)
_FIRST_OF = {"c": 0, "t": 7, "l": 19, "s": 24}  # C1-C7, T1-T12, L1-L5, S1: one numbering
_JOINT_REGIONS = [  # (first vertebra, last vertebra) of a joint's two -> its region
    (0, 6, "cervical"),
    (6, 7, "cervicothoracic"),
    (7, 18, "thoracic"),
    (18, 19, "thoracolumbar"),
    (19, 23, "lumbar"),
    (23, 24, "lumbosacral"),
]


def _levels(text: str) -> str:
    """TEXT with each spinal level range ("L4-5", "C5-C6", "T4-T10") spelled as the
    vertebral joints' region and count in the tables' wording ("thoracic 2 to 7")."""

    def spell(match: re.Match) -> str:
        first, low, last, high = match.groups()
        start = _FIRST_OF[first.lower()] + int(low) - 1
        end = _FIRST_OF[(last or first).lower()] + int(high) - 1
        counts: dict[str, int] = {}
        for vertebra in range(start, end):
            for low_end, high_end, region in _JOINT_REGIONS:
                if low_end <= vertebra < high_end:
                    counts[region] = counts.get(region, 0) + 1
        words = []
        for region, count in counts.items():
            if count >= 2 and region == "thoracic":
                words.append("thoracic " + ("2 to 7" if count <= 7 else "8 or more"))
            else:
                words.append(region + (" 2 or more" if count >= 2 else ""))
        return " " + " ".join(words) + " " if words else match.group(0)

    def count(match: re.Match) -> str:
        word = match.group(1).lower()
        return " " if word in ("single", "one", "1") else " 2 or more "

    return _LEVEL_COUNT.sub(count, _LEVELS.sub(spell, text))


def _in_range(label: str, hours: float) -> bool:
    """Whether a duration label ("24-96 Consecutive Hours") holds HOURS."""
    match = _RANGE.search(label)
    if match is None:
        return False
    below, above, low, high = match.groups()
    if below:
        return hours < float(below)
    if above:
        return hours > float(above)
    return float(low) <= hours <= float(high)


def _union(groups: Iterable[Iterable[Any]]) -> list[Any]:
    """The values of several rows' axis, once each, in the table's order."""
    return list(dict.fromkeys(value for group in groups for value in group))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _side_fit(stated: str | None, label: str | None) -> tuple[float, bool]:
    """How a body part's side fits the side the text names: (factor, side left open);
    factor 0 when it contradicts ("left" never gets a right-sided code)."""
    if label is None:
        return (1.0 if stated is None else _SIDE_NOT_NEEDED), False
    if stated is None:
        return (_SIDE_BILATERAL_UNSTATED if label == "bilateral" else _SIDE_UNSTATED), True
    if stated == label:
        return 1.0, False
    if stated == "bilateral":
        return _SIDE_HALF, True
    return 0.0, False


_DEVICE_ACTS = ("Removal", "Change", "Revision")


def _device_acts(mentions: list[_Procedure]) -> list[_Procedure]:
    """ "PEG tube removal", "Foley change": a verb done to a device the text names as a
    procedure word (which alone means putting it in) is that verb, on that device."""
    verbs = [m for m in mentions if m.generic and not m.device and m.operations[0] in _DEVICE_ACTS]
    if not verbs:
        return mentions
    verb = verbs[0]
    changed = [
        _with(
            m,
            operations=verb.operations,
            approach=(),
            prefer_approach=verb.prefer_approach,
            noun=False,
            generic=False,
            weak=False,
        )
        if m.device and m.section == "0" and m.operations[0] not in _DEVICE_ACTS
        else m
        for m in mentions
        if m is not verb
    ]
    return changed if changed != [m for m in mentions if m is not verb] else mentions


def _with(procedure: _Procedure, **changes) -> _Procedure:
    return replace(procedure, **changes)
