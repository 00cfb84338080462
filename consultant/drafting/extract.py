"""Code and modifier mentions in a question, precision first.

A coder's email is full of numbers that look like codes: ZIP codes, phone and fax
numbers, NPIs, dates, amounts, claim and account numbers, street addresses. Reporting
"27607 is not a valid CPT code" for a ZIP code makes the whole answer look careless,
so every such number is blanked out first (`mask_non_codes`, offsets kept) and a
5-digit number counts as CPT only with evidence: code words around it, a modifier
suffix, another code it is listed with, or the loaded CPT file or NCCI tables.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from consultant.codes.modifiers import modifier_info
from consultant.codes.ncci import addon_primaries, mue_for
from consultant.codes.store import SYSTEM_RELEASE, CodeInfo, CodeStore
from consultant.codes.systems import (
    BILLABLE,
    CPT,
    CPT_SHAPE,
    HCPCS,
    ICD9CM,
    ICD10CM,
    ICD10PCS,
    INVALID,
    UNVERIFIED,
    compact,
)

# --- what is never a code -------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH"
    "|NJ|NM|NY|NC|ND|OH|OK|OR|PA|PR|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
# Two-letter states that are also everyday coding words ("CT 70450", "PA", "OR", "MA"):
# before a ZIP they count only after a comma ("Hartford, CT 06103").
_AMBIGUOUS_STATES = frozenset(
    ("CT", "PA", "MD", "OR", "MA", "DE", "ME", "IN", "ID", "MS", "MO", "OK", "OH", "HI", "LA")
)
_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl"
    r"|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Terrace|Ter|Trail|Trl|Square|Sq|Loop|Pike|Plaza)"
)
# Words after which a number is an identifier, not a code ("claim #12345", "acct 99213").
_ID_WORDS = (
    r"claim|account|acct|a/c|member|subscriber|policy|reference|ref|ticket|invoice|inv"
    r"|order|confirmation|tracking|auth|authorization|mrn|npi|tin|ein|dea|mbi|hicn|ssn"
    r"|lcd|ncd|article|transmittal"
    r"|phone|tel|telephone|fax|cell|mobile|pager|ext|extension|zip|zipcode|postal code"
    r"|suite|ste|apt|apartment|room|rm|box|serial|lot|batch|id|ids|tax id|verification"
    r"|access|security|promo|door|pin|passcode|otp"
)
# Words that mark an identifier only with 'number', 'no' or '#' after them ("case #4").
_WEAK_ID_WORDS = (
    r"patient|pt|chart|record|medical record|group|grp|case|check|cheque|medicare|medicaid"
    r"|version|item|unit|floor|route|exit|model|sku|license|lic|contract|plan|visit"
    r"|encounter|fin|csn|har|accession|specimen|voucher|remit|eob|era|icn|dcn|tcn"
)
_NUMBER_WORD = r"(?:\s*(?:number|num|nbr|no\.?|id|code)\b|\s*#)"
_ID_TOKEN = r"(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]*"


def _patterns(flags: int, *patterns: str) -> list[re.Pattern[str]]:
    return [re.compile(p, flags) for p in patterns]


_NEVER_CODES = _patterns(
    re.I,
    r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # email address
    r"\b(?:https?://|www\.)\S+",  # URL
    r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])",  # SSN
    r"(?<![\w-])\d{3} \d{2} \d{4}(?![\w-])",
    # phone and fax, with an extension
    r"(?<![\w-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])"
    r"(?:\s*(?:ext\.?|extension|x)\s*\d{1,6}\b)?",
    # dates
    r"(?<![\w.-])\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?![\w-])",
    r"(?<![\w.-])\d{4}[/.-]\d{1,2}[/.-]\d{1,2}(?![\w-])",
    rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b",
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}}\b",
    rf"\b{_MONTH}\s+\d{{4}}\b",
    # times
    r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\b\.?)?",
    r"\b\d{1,2}\s*[ap]\.?m\b\.?",
    r"\b\d{3,4}\s*(?:hrs|hours|h)\b",
    # amounts
    r"(?:[$€£]|\b(?:usd|us\$|dollars?)\s?)\s?\d[\d,]*(?:\.\d+)?",
    r"(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:usd|dollars?|bucks|cents)\b",
    r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,])",
    r"(?<![\w.])\d+\.\d+(?![\w.])",
    # ZIP+4, PO boxes
    r"(?<![\w-])\d{5}-\d{4}(?![\w-])",
    r"\bp\.?\s?o\.?\s+box\s+\d+",
    # identifiers named as such
    rf"\b(?:{_ID_WORDS})\b\.?{_NUMBER_WORD}*\s*[#:.=-]?\s*{_ID_TOKEN}",
    rf"\b(?:{_WEAK_ID_WORDS})\b\.?{_NUMBER_WORD}+\s*[#:.=-]?\s*{_ID_TOKEN}",
    # phone numbers in any country's format after a phone word
    r"\b(?:phone|tel|telephone|telefon|fax|cell|mobile|pager)\b\.?\s*[:#]?\s*\+?\d[\d\s()./-]{5,}\d",
    # claim adjustment and remark codes ("CARC 16", "remark code N290", "CO-97"), and the
    # error and status codes of mail servers and software
    r"\b(?:carc|rarc|(?:remark|reason|adjustment|denial|error|status|response|return|exit"
    r"|smtp|reply)\s+codes?)\b\s*[:#]?\s*(?:[A-Z]{1,2}-?)?\d+"
    r"(?:\s*(?:,|and|&)\s*(?:[A-Z]{1,2}-?)?\d+)*",
    r"\b(?:CO|PR|OA|PI|CR)-\d{1,3}\b",
    # risk-adjustment model versions ("V28 in HCC", "CMS-HCC V24"), not ICD-10-CM V codes
    r"\b(?:(?:cms-|rx)?hccs?|risk adjustment|model)\b[^.?!\n]{0,25}?\b[VR]\d{2}\b",
    r"\b[VR]\d{2}\s+(?:(?:cms-|rx)?hccs?|model)\b",
    # network addresses
    r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])",
    r"(?<![\w:])[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?![\w:])",
    # NPIs and every other long digit run
    r"(?<![\w-])\d{8,}(?![\w-])",
) + _patterns(
    0,  # capitals matter: "12345 Main St" is an address, "12345 with Dr" is not
    rf"\b\d{{1,6}}\s+(?:[NSEW]\.?\s+)?(?:[A-Z][a-z]+\.?\s+){{1,3}}{_STREET}\b\.?",
    rf"(?P<comma>,\s*)?\b(?P<state>{_STATES})\.?\s+(?P<zip>\d{{5}})(?![\w-])",
    r"\b(?:Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida"
    r"|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland"
    r"|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada"
    r"|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio"
    r"|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee"
    r"|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming),?\s+\d{5}\b",
)
# Long unbroken runs are encoded data, signatures or identifiers, not prose; a list of
# codes without spaces ("29881,29877,29880") is the exception.
_LONG_RUN = re.compile(r"\S{30,}")
_CODE_LIST = re.compile(r"[(\[]?(?:[A-Za-z0-9.-]{3,8}[,;/+])+[A-Za-z0-9.-]{3,8}[.,;:?!)\]]*")
# '#12345' alone is a ticket or claim number; 'CPT #29881' is a code.
_HASH_NUMBER = re.compile(r"(?<![\w#])#\s?\d+")
_CODE_BEFORE_HASH = re.compile(r"\b(?:cpt|hcpcs|codes?|procedure)\s*$", re.I)


def _blank(chars: list[str], start: int, end: int) -> None:
    for index in range(start, end):
        if chars[index] != "\n":
            chars[index] = " "


def mask_non_codes(text: str) -> str:
    """TEXT with every number that is not a code (see module doc) blanked, same length."""
    chars = list(text)
    for pattern in _NEVER_CODES:
        for match in pattern.finditer(text):
            if "state" not in pattern.groupindex:
                _blank(chars, *match.span())
            elif match.group("comma") or match.group("state") not in _AMBIGUOUS_STATES:
                _blank(chars, match.start("zip"), match.end("zip"))
    for match in _LONG_RUN.finditer(text):
        if not _CODE_LIST.fullmatch(match.group()):
            _blank(chars, *match.span())
    for match in _HASH_NUMBER.finditer(text):
        if not _CODE_BEFORE_HASH.search(text, 0, match.start()):
            _blank(chars, *match.span())
    return "".join(chars)


# --- code tokens ----------------------------------------------------------------------

# A code stands apart as a word of prose does: "SHA384_P384", "S&P500", "id=02022" or
# "c2022-neko.example" are parts of something else.
_TOKEN = re.compile(
    r"(?<![^\s(\[{\"'“‘,;:/#*>—–])"
    r"(?:[A-Za-z]\d[A-Za-z0-9](?:\.[A-Za-z0-9]{1,4}|[A-Za-z0-9]{1,4})?"  # ICD-10-CM, HCPCS
    r"|\d[A-Za-z0-9]{4}(?:[A-Za-z0-9]{2})?"  # CPT; ICD-10-PCS starting with a digit
    r"|(?=[A-Za-z]*\d)[A-Za-z][A-Za-z0-9]{6})"  # ICD-10-PCS starting with a letter
    r"(?![^\s)\]}\"'”’,;:.?!/*<>—–+-]|\.[A-Za-z0-9]|-[A-Za-z0-9]{3})"
)
# Words that make a nearby number a code.
_CODE_WORDS = re.compile(
    r"\b(?:cpts?|hcpcs|icd|icd-?10(?:-?(?:cm|pcs))?|pcs|codes?|coded|coding|procedures?"
    r"|bill|billed|billing|billable|bundl\w*|unbundl\w*|reported|reporting"
    r"|modifiers?|mods?|ncci|ptp|mue|add-?on|e/?m|dx|diagnos[ie]s|payable|claim lines?"
    r"|cat(?:egory)? (?:ii|iii|2|3)|j-?codes?|(?:one|same|a single) claim|together"
    r"|valid|invalid|deleted|retired|terminated|discontinued|expired)\b",
    re.I,
)
_HCPCS_WORDS = re.compile(
    r"\b(?:hcpcs|level ii|j-?codes?|drugs?|injections?|injectable|infusions?|units?|mg|mcg"
    r"|ml|vials?|supply|supplies|dme|durable|orthotic|prosthetic|ambulance)\b",
    re.I,
)
_CPT_WORD = re.compile(r"\bcpts?\b", re.I)
_ICD_WORDS = re.compile(r"\b(?:icd(?:-?10)?(?:-?cm)?|diagnos[ie]s|dx)\b", re.I)
_PCS_WORDS = re.compile(r"\b(?:icd-?10-?pcs|pcs|inpatient procedures?|root operation)\b", re.I)
# A number followed by one of these counts something ("25000 claims", "12000 units").
_COUNT_NOUN = re.compile(
    r"\s*(?:claims?|patients?|members?|visits?|times|people|cases|encounters?|records?"
    r"|charts?|lines?|providers?|hours?|minutes?|mins?|days?|weeks?|months?|years?|miles?"
    r"|steps?|units?|mg|mcg|ml|cc|lbs?|kg|items?|rows?|pages?|calls?|emails?|dollars?"
    r"|beds?|employees?|users?|percent)\b|\s*%",
    re.I,
)
# ... or preceded by one of these ("about 25000", "over 10000").
_QUANTITY_BEFORE = re.compile(
    r"(?:\b(?:about|approximately|approx|around|over|under|nearly|almost|roughly|total of"
    r"|up to|more than|less than|at least|only)|~)\s*$",
    re.I,
)
_BOUNDARY = re.compile(r"[?!;]|\.(?=\s|$)|\n[ \t]*\n")
_ICD9_TOKEN = re.compile(r"(?<![\w.$€£/-])(?:\d{3}|[Vv]\d{2}|[Ee]\d{3})\.\d{1,2}(?![\w./-])")
_LETTERED_TOKEN = re.compile(r"(?<![\w.])[A-Za-z]{2}\d\.[A-Za-z0-9]{1,4}(?![\w.])")
_ICD9_WORDS = re.compile(
    r"\bicd[- ]?9|\bcross[- ]?walk|\bgems?\b|\bconver(?:t|sion)|\bold codes?\b"
    r"|\bmap(?:s|ped|ping)?\b|\bequivalent",
    re.I,
)
# "Springfield, IL 62704": a ZIP code after a state's abbreviation; "= 29821", "[28288]"
# in a log.
_NOT_A_CODE_BEFORE = re.compile(r"\b[A-Z]{2}\s+$|[=\[]\s*$")
_NEAR = 300  # characters either side of a number read for its paragraph's words
# What follows a code that a question is about: "W19 OK?", "99213 right?", "G2211?"
_SHORT_QUESTION = re.compile(
    r"\s*(?:(?:ok(?:ay)?|right|correct|valid|billable|good|fine|appropriate|allowed|covered"
    r"|still|too)\b[\w\s]{0,12})?\?",
    re.I,
)

# --- modifiers ------------------------------------------------------------------------

_MOD = r"(?:\d{2}|[A-Z]{2}|[A-Z]\d|\d[A-Z])"  # letters in capitals: "PT came in" is prose
_MOD_ANY_CASE = r"(?:\d{2}|[A-Za-z]{2}|[A-Za-z]\d|\d[A-Za-z])"
_SEP = r"(?:\s*(?:,|/|&|\+)\s*(?i:and\s+|or\s+)?|\s+(?i:and|or|plus)\s+)"
_MOD_LIST = rf"-?{_MOD}(?:{_SEP}-?{_MOD})*"
_MOD_WORD = r"\b(?i:modifiers?|mods?)\b"
_FILLER = r"(?:\s*(?::|#|-|(?i:of|code|codes|like|such as|as|is|are|was|were)\b))*"
_MODS_AFTER_WORD = re.compile(rf"{_MOD_WORD}\.?{_FILLER}\s*(?P<list>{_MOD_LIST})(?![\w-])")
_MODS_BEFORE_WORD = re.compile(rf"(?<![\w-])(?P<list>{_MOD_LIST})\s+{_MOD_WORD}")
_MODS_AFTER_VERB = re.compile(
    r"\b(?i:with|append(?:ed|ing)?|add(?:ed|ing)?|attach(?:ed|ing)?|using|use|is it|be)\s+"
    rf"(?P<list>{_MOD_LIST})(?![\w-])"
)
# "Do we need a 25 on the E/M?": one modifier, known, put on a visit or a code
_MOD_ON_TARGET = re.compile(
    rf"\b(?i:a|an|the)\s+-?(?P<list>{_MOD})\s+(?i:on)\s+(?i:the\s+|an?\s+)?"
    r"(?:(?i:e/m|em|visit|office visit)\b|\d{5}\b)"
)
_SUFFIX = re.compile(rf"\s?-\s?(?P<mod>{_MOD_ANY_CASE})(?!\w)")
_SUFFIX_MORE = re.compile(rf"{_SEP}-?(?P<mod>{_MOD})(?![\w-])")  # "29877-59 and RT"
_MOD_ITEM = re.compile(rf"-?(?P<mod>{_MOD})")


@dataclass(frozen=True)
class CodeMention:
    info: CodeInfo  # the code as the database knows it (normalized code, system, status)
    text: str  # as written: "e1122"
    start: int
    end: int


@dataclass(frozen=True)
class ModifierMention:
    modifier: str
    title: str | None  # None: a modifier the database has no entry for
    source: str | None  # whose title: 'HCPCS 2019' or 'CaseConsultant'
    start: int


@dataclass(frozen=True)
class Extraction:
    codes: list[CodeMention]  # each code once
    modifiers: list[ModifierMention]  # each modifier once
    masked: str  # the text with identifiers blanked, for finding clinical phrases
    spans: list[tuple[int, int]]  # every code and modifier mention, repeats included


@dataclass
class _Token:
    text: str
    start: int
    end: int
    info: CodeInfo | None = None  # the reading chosen, once accepted
    candidate: CodeInfo | None = None  # the reading it takes if listed with a code
    suffix_mods: tuple[str, ...] = ()  # attached modifiers ("29877-59-RT", "29877-59 and RT")
    suffix_end: int = 0


def extract(text: str, store: CodeStore, on: date | None = None) -> Extraction:
    """The codes and modifiers TEXT mentions, each once, in order of first mention.

    ON is the date NCCI add-on edits are read for (a number in the NCCI tables is a code).
    """
    masked = mask_non_codes(text)
    tokens = [_Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(masked)]
    day = on or date.today()
    for token in tokens:
        _read_suffix(masked, token)
        token.info = _reading(token, masked, store, day)
    _accept_neighbours(tokens, masked)
    extra = _icd9_tokens(text, tokens, store) + _lettered_tokens(masked, store, day)
    tokens = sorted(tokens + extra, key=lambda t: t.start)
    codes: list[CodeMention] = []
    seen: set[tuple[str, str]] = set()
    for token in tokens:
        if token.info is None or (token.info.system, token.info.code) in seen:
            continue
        seen.add((token.info.system, token.info.code))
        codes.append(CodeMention(token.info, token.text, token.start, token.end))
    modifiers, modifier_spans = _modifiers(masked, tokens, store.conn)
    spans = [(t.start, t.suffix_end) for t in tokens if t.info is not None] + modifier_spans
    return Extraction(codes, modifiers, masked, sorted(spans))


def _icd9_tokens(text: str, tokens: list[_Token], store: CodeStore) -> list[_Token]:
    """ICD-9-CM codes ('250.00', 'E880.9'), which the masking takes for amounts and the
    code tokens do not cover: counted where the question speaks of ICD-9 or crosswalks."""
    if not store.has("gems") or not _ICD9_WORDS.search(text):
        return []
    taken = {(t.start, t.end) for t in tokens if t.info is not None}
    found = []
    for match in _ICD9_TOKEN.finditer(text):
        if (match.start(), match.end()) in taken:
            continue
        info = store.lookup_in(ICD9CM, match.group())
        if info.status != INVALID:
            found.append(_Token(match.group(), match.start(), match.end(), info=info))
    return found


def _lettered_tokens(masked: str, store: CodeStore, day: date) -> list[_Token]:
    """Dotted ICD-10-CM codes with a letter second ('QA0.0101', FY2026), which the code
    tokens do not cover: counted only when the code set has them."""
    found = []
    for match in _LETTERED_TOKEN.finditer(masked):
        info = store.lookup_in(ICD10CM, match.group(), day)
        if info.status != INVALID:
            found.append(_Token(match.group(), match.start(), match.end(), info=info))
    return found


def _read_suffix(masked: str, token: _Token) -> None:
    mods: list[str] = []
    position = token.end
    while match := _SUFFIX.match(masked, position):
        mods.append(match.group("mod").upper())
        position = match.end()
    while mods and (match := _SUFFIX_MORE.match(masked, position)):
        mods.append(match.group("mod"))
        position = match.end()
    token.suffix_mods = tuple(mods)
    token.suffix_end = position


def _window(masked: str, start: int, end: int, before: int = 60, after: int = 40) -> str:
    """The words around a token within its sentence."""
    left = masked[max(0, start - before) : start]
    cuts = list(_BOUNDARY.finditer(left))
    if cuts:
        left = left[cuts[-1].end() :]
    right = masked[end : end + after]
    if cut := _BOUNDARY.search(right):
        right = right[: cut.start()]
    return f"{left} {right}"


def _known(info: CodeInfo) -> bool:
    return info.status not in (INVALID, UNVERIFIED)


def _reading(token: _Token, masked: str, store: CodeStore, day: date) -> CodeInfo | None:
    """The token's reading when the token and its sentence show it is a code; else None,
    with `token.candidate` set when a listed code next to it would settle it."""
    raw = compact(token.text)
    window = _window(masked, token.start, token.end)
    asked = _asked_about(masked, token)
    if len(raw) == 5 and CPT_SHAPE.match(raw):
        return _cpt_reading(token, raw, window, masked, store, day, asked)
    info = _coded_reading(token, raw, window, store, day)
    if (
        info is not None
        and "." not in token.text
        and (len(raw) == 3 or info.status != BILLABLE)
        and not _CODE_WORDS.search(window)
        and not asked
    ):
        # An undotted heading needs company (code words or a list): "N95 masks", "X12
        # files", "(S3113)" in a server's error message.
        token.candidate = info
        return None
    return info


def _coded_reading(
    token: _Token, raw: str, window: str, store: CodeStore, day: date
) -> CodeInfo | None:
    readings = _readings(token.text, store, day)
    if not readings:
        return None
    if raw.isdigit():  # seven digits: ICD-10-PCS only when real and named as a code
        pcs = readings[0]
        return pcs if _known(pcs) and _CODE_WORDS.search(window) else None
    known = [info for info in readings if _known(info)]
    told = _context_system(window, {info.system for info in readings})
    if told is not None:
        chosen = next(info for info in readings if info.system == told)
        if _known(chosen) or not store.has(SYSTEM_RELEASE[told]):
            return _unverified(chosen, store)
        if not known:
            return chosen  # "J9999 injection": named as HCPCS, and not a HCPCS code
    if known:
        return _default(known)
    return _unknown_reading(token, readings, window, store)


def _readings(text: str, store: CodeStore, day: date) -> list[CodeInfo]:
    """Each system's verdict on TEXT on DAY, for the systems other than CPT its shape fits."""
    return [
        store.lookup_in(system, text, day) for system in store.systems_for(text) if system != CPT
    ]


def _asked_about(masked: str, token: _Token) -> bool:
    """A short question about the token itself ("Is W19 OK?", "W19 right?") names a code."""
    sentence = _window(masked, token.start, token.end, before=30, after=30)
    after = masked[token.suffix_end or token.end : token.end + 30]
    return bool(_SHORT_QUESTION.match(after)) and len(sentence.split()) <= 8


def _context_system(window: str, systems: set[str]) -> str | None:
    """The one system among SYSTEMS that the sentence's words point to, if just one."""
    told = [
        system
        for system, words in ((HCPCS, _HCPCS_WORDS), (ICD10CM, _ICD_WORDS), (ICD10PCS, _PCS_WORDS))
        if system in systems and words.search(window)
    ]
    return told[0] if len(told) == 1 else None


def _default(known: list[CodeInfo]) -> CodeInfo:
    """Two real readings and no telling word: undotted letter + 4 digits is how HCPCS
    codes are written, while ICD-10-CM codes are usually written with their dot."""
    return next((info for info in known if info.system == HCPCS), known[0])


def _unverified(info: CodeInfo, store: CodeStore) -> CodeInfo:
    """A reading in a system whose file is not loaded says so instead of 'invalid'."""
    if info.status != INVALID or store.has(SYSTEM_RELEASE[info.system]):
        return info
    return CodeInfo(code=info.code, system=info.system, status=UNVERIFIED, title=None)


def _unknown_reading(
    token: _Token, readings: list[CodeInfo], window: str, store: CodeStore
) -> CodeInfo | None:
    """No system knows the token. A dotted ICD-10-CM code under a real category
    ("E11.99") is reported invalid, and so is a code-shaped token in a sentence about
    codes ("is E1199 billable?"); "B12" in "vitamin B12" or "s2048" in a header is not."""
    dotted = "." in token.text
    context = bool(_CODE_WORDS.search(window))
    icd = next((info for info in readings if info.system == ICD10CM), None)
    if icd is not None:
        if icd.valid_from is not None:
            return icd  # a real code on another date: the date finding says which
        if dotted and not store.has("icd10cm"):
            return _unverified(icd, store)
        real_category = store.lookup_in(ICD10CM, compact(token.text)[:3]).status != INVALID
        # "D09.ZPH" in a report's name: a mistyped code keeps a digit after the dot
        typed_like_a_code = dotted and any(c.isdigit() for c in token.text.split(".", 1)[1])
        if real_category and (typed_like_a_code or context):
            return icd
    if not context:
        return None
    unloaded = [info for info in readings if not store.has(SYSTEM_RELEASE[info.system])]
    if unloaded:
        return _unverified(unloaded[0], store)
    return icd if icd is not None and dotted else None


def _cpt_reading(
    token: _Token, raw: str, window: str, masked: str, store: CodeStore, day: date, asked: bool
) -> CodeInfo | None:
    info = store.lookup_in(CPT, raw, day)
    if _known(info) or _in_ncci(store.conn, raw, day):
        return info
    if not token.suffix_mods and _is_quantity(masked, token):
        return None
    if (
        info.valid_from is not None
        and _CODE_WORDS.search(_paragraph(masked, token))
        and not _NOT_A_CODE_BEFORE.search(masked, 0, token.start)
    ):
        # a CPT number of the I/OCE's quarters in a paragraph about codes: "tangential
        # bx, billed as 11102", "warts frozen (17110) ... The claim got an NCCI edit."
        return info
    if info.status == INVALID and not _CPT_WORD.search(window):
        return None  # in no CPT section: only a number, unless the sender calls it CPT
    token.candidate = info
    return info if token.suffix_mods or asked or _CODE_WORDS.search(window) else None


def _paragraph(masked: str, token: _Token) -> str:
    """The token's paragraph, at most _NEAR characters either side (a log has none)."""
    first, last = paragraph_of(masked, token.start, token.end)
    return masked[max(first, token.start - _NEAR) : min(last, token.end + _NEAR)]


# A list item's marker at a line's start: "- ", "* ", "2) ", "b. "
LIST_ITEM = re.compile(r"(?:^|\n)\s*(?:[-*\u2022]|\d{1,2}[.)]|[a-z][.)])\s+", re.I)


def item_of(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of the list item holding TEXT[START:END], from its marker's end to the next
    item or its paragraph's end ("- He comes back 9/14 for recheck. Same code w/ what 7th
    character?"); None when the question is in no list."""
    first, last = paragraph_of(text, start, end)
    # the question may begin with its own marker ("- Codes for ...?")
    markers = [m for m in LIST_ITEM.finditer(text, max(first - 1, 0), end) if m.start() <= start]
    if not markers:
        return None
    after = LIST_ITEM.search(text, max(end, markers[-1].end()), last)
    return markers[-1].end(), after.start() if after else last


def paragraph_of(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the paragraph holding TEXT[START:END]: a question's context ("Pt has
    CKD 4 and HTN. What codes should we use?")."""
    found = text.rfind("\n\n", 0, start)
    before = found + 2 if found >= 0 else 0
    after = text.find("\n\n", end)
    return before, len(text) if after < 0 else after


def _in_ncci(conn: sqlite3.Connection, code: str, day: date) -> bool:
    return mue_for(conn, code) is not None or addon_primaries(conn, code, day) is not None


def _is_quantity(masked: str, token: _Token) -> bool:
    return bool(
        _COUNT_NOUN.match(masked, token.end)
        or _QUANTITY_BEFORE.search(masked, max(0, token.start - 20), token.start)
    )


_LIST_GAP = re.compile(
    rf"(?:\s?-\s?{_MOD_ANY_CASE})*\s*(?:,|/|&|\+|\band\b|\bor\b|\bwith\b|\bvs\b\.?"
    rf"|\bversus\b|\bplus\b|\balong with\b)?\s*(?:\band\b|\bor\b)?\s*",
    re.I,
)


def _accept_neighbours(tokens: list[_Token], masked: str) -> None:
    """A candidate listed with an accepted code ("29881 and 29877", "I10, E78.5") is a code."""
    changed = True
    while changed:
        changed = False
        for index, token in enumerate(tokens):
            if token.info is not None or token.candidate is None:
                continue
            neighbours = tokens[max(0, index - 1) : index] + tokens[index + 1 : index + 2]
            for other in neighbours:
                if other.info is None:
                    continue
                left, right = (other, token) if other.start < token.start else (token, other)
                if _LIST_GAP.fullmatch(masked, left.end, right.start):
                    token.info = token.candidate
                    changed = True
                    break


def _modifiers(
    masked: str, tokens: Iterable[_Token], conn: sqlite3.Connection
) -> tuple[list[ModifierMention], list[tuple[int, int]]]:
    """Each modifier once, and where every mention of one is."""
    found: list[tuple[int, str]] = []
    for token in tokens:
        if token.info is not None and token.info.system in (CPT, HCPCS) and token.suffix_mods:
            found.extend((token.end, mod) for mod in token.suffix_mods)
    code_spans = [(t.start, t.end) for t in tokens if t.info is not None]
    for pattern in (_MODS_AFTER_WORD, _MODS_BEFORE_WORD):
        for match in pattern.finditer(masked):
            found.extend(_list_items(match, code_spans))
    for match in _MOD_ON_TARGET.finditer(masked):
        items = _list_items(match, code_spans)
        found.extend(item for item in items if _is_modifier(conn, item[1]))
    for match in _MODS_AFTER_VERB.finditer(masked):
        items = _list_items(match, code_spans)
        # "with 59 and RT", "is it 79 plus LT" or "append -59": plainly modifiers, being
        # written with the dash or listed with a known letter modifier; never a bare
        # "with 25" or "with PT".
        dashed = "-" in match.group("list")
        listed = len(items) > 1 and any(not mod.isdigit() for _, mod in items)
        if items and (dashed or listed) and all(_is_modifier(conn, m) for _, m in items):
            found.extend(items)
    mentions: list[ModifierMention] = []
    seen: set[str] = set()
    spans = [(start, start + len(mod)) for start, mod in found]
    for start, mod in sorted(found):
        if mod in seen:
            continue
        seen.add(mod)
        info = modifier_info(conn, mod)
        mentions.append(
            ModifierMention(mod, info.title if info else None, info.source if info else None, start)
        )
    return mentions, spans


def _list_items(match: re.Match[str], code_spans: list[tuple[int, int]]) -> list[tuple[int, str]]:
    base = match.start("list")
    items = []
    for item in _MOD_ITEM.finditer(match.group("list")):
        start = base + item.start("mod")
        if any(s <= start < e for s, e in code_spans):
            continue  # part of a code ("E1" of "E11.9")
        items.append((start, item.group("mod").upper()))
    return items


def _is_modifier(conn: sqlite3.Connection, mod: str) -> bool:
    return modifier_info(conn, mod) is not None


# --- clinical phrases -----------------------------------------------------------------

# Words that say how to bill, or are just everyday English, rather than what happened
# to the patient; a search for "can I bill" or "several" only finds noise.
_NOT_CLINICAL = frozenset(
    re.findall(
        r"\S+",
        """code codes coding coded cpt cpts hcpcs icd icd-10 icd10 icd-10-cm icd-10-pcs cm pcs
        dx diagnosis diagnoses diagnosed bill billed billing billable claim claims modifier
        modifiers mod mods payer payers insurance medicare medicaid denied denial deny
        rejected reimburse reimbursement pay paid payment payable appropriate correct proper
        wrong use used using report reported reporting together same day separately separate
        assign assigned assigning admit admitted readmit readmitted
        bundle bundled bundling unbundle unbundled ncci ptp mue edit edits unit units question
        cc mcc hcc count counts stay questions issue issues problem thanks thank hi hello hey
        dear team please advise help coworker colleague boss manager supervisor auditor
        order incl including it's that's there's he's she's i'm we're don't doesn't isn't
        regards best sincerely ok okay can could would should will may might must we i you our
        my your us me is are am was were be been being it its this that these those what which
        who whom how why when where do does did done doing have has had having there here any
        also so if yes just need needs needed want wanted know let tell get got sure add adding
        think find found look looking see seen able go going went make made work works office
        practice provider providers physician doctor doc docs dr clinic urgent coder coders
        patient patients keep keeps kept put puts putting encoder encoders scrubber
        pt pts visit today yesterday tomorrow line lines number numbers instead either both
        other another e/m em j-code j-codes add-on primary column surgeon did last week weeks
        month months year years ago time times date more most less few many much some several
        each every all same different new old good bad better sure still yet really actually
        only even again already specific something anything everything nothing one thing
        things way example etc documentation document documented note notes chart record
        records service services procedure procedures policy policies rule rules
        guideline guidelines mrn dob npi ssn id attached attachment attachments enclosed
        op what's whats th st nd rd character characters digit digits combination combo
        full set list sequence sequenced sequencing first second quick answer answers goes go
        listed overkill front desk wants wanted ever plus place external cause causes
        question's reply email e-mail call called check checks checking checked
        weigh rest ones them they their link linked linking""",
    )
)
_EDGE_WORDS = frozenset(
    re.findall(
        r"\S+",
        "a an the of with without and or to in on for due at by from as than then into after "
        "before under over no not",
    )
)
# Clauses end at sentence ends, not commas: "chronic kidney disease, stage 3a" is one;
# "or" parts alternatives ("the chemo encounter or the cancer").
_CLAUSE_BREAK = re.compile(
    r"[.?!;:()\[\]\"“”]+(?=\s|$)|[?!;()\[\]\"“”]|\n\s*\n|\s+-\s+"
    r"|\b(?:but|however|also|because|since|although|whereas|or|vs)\b"
    r"|(?<=\bcode)s?\s*(?:\+|&|\band\b)",  # "the AF code + the Eliquis code": two things
    re.I,
)
# Words too general to search on alone ("stage 3a" finds every stage 3 in the book).
_GENERAL = frozenset(
    re.findall(
        r"\S+",
        "stage type grade level part site side left right bilateral unspecified other acute "
        "chronic initial subsequent severe mild moderate follow-up followup",
    )
)
# CKD, HTN, COPD; and the two-letter ones that name a condition alone ("the AF code")
# short words that name a condition as coders type them ("hip fx", "uti")
_SHORT_CLINICAL = frozenset(
    re.findall(
        r"\S+",
        "fx fxs lac lacs uti uri flu cva tia gsw mvc mva dvt chf ckd htn dm2 pna",
    )
)
_ABBREVIATION = re.compile(r"[A-Z]{3,5}|AF|HF|MI|RA|OA|PE|DM|UC|CF|TB|BV")
# Words keep their digits: "L1", "SpO2", "T2DM".
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'/-]*|(?<![\w.])\d{1,2}[a-z]?(?![\w.])")
_GENUS = re.compile(r"\b([A-Z])\.\s+(?=(?:coli|aureus|pneumoniae|difficile|faecalis)\b)")
_LISTED = re.compile(r"(?<=[A-Za-z]{2})/(?=[A-Za-z]{2})")
_CORRECT_CODE = re.compile(
    r"\b(?:right|correct|proper)(?=\s+(?:(?:icd-?10(?:-cm)?|dx|diagnosis|cpt|hcpcs|pcs|j)"
    r"[\s-]+)?codes?\b)",
    re.I,
)
# what software or a payer does to a claim, no blow to the patient
_KICKED_BACK = re.compile(
    r"\bkick(?:ed|s|ing)?\s+(?:(?:it|them|this|that)\s+)?(?:back|out)\b", re.I
)
_AGE_SEX = re.compile(
    r"\b\d{1,3}\s*(?:yo|y/o|yr|yrs|y\.o\.|years?[\s-]old|mo|month[\s-]old)\b(?:\s*[MF]\b)?"
)
_ATTACHED = re.compile(r"\b(?:attached|attachments?|enclosed)\b", re.I)
_DENIALS = frozenset(("no", "not", "denies", "negative"))
# a billing word that names a condition before the word after it: "use disorder" (DSM-5's
# name for dependence and abuse)
_KEPT_BEFORE = {
    "use": frozenset({"disorder"}),
    # a side told as "both": "(mild NPDR, both eyes)" is the bilateral code
    "both": frozenset(
        re.findall(
            r"\S+",
            "eyes ears sides legs arms knees hips feet hands lungs kidneys breasts ankles "
            "wrists shoulders elbows lower upper",
        )
    ),
}
# ...or that asks for a code set's chapter after the word before it: "the Z code for the
# metformin" asks for its long-term use (Z79.84), not a poisoning
_KEPT_AFTER = {"code": "z", "codes": "z"}
# ...or that measures the number before it: "28 weeks pregnant" is a week of gestation
# (Z3A.28), "on the vent x 3 days" a ventilation's duration, a bare "28" nothing
_UNITS_OF_TIME = frozenset(("day", "days", "week", "weeks", "month", "months", "year", "years"))
_ON_WHAT = 3  # words up to which a clause "on X" tells what the patient is on
# What the record denies after naming it: no condition to code (Official Guidelines IV.H);
# a test "negative for" something denies all it names, to the clause's end ("x-rays
# negative for fx"), where "Barrett's esophagus, negative for dysplasia" is its type.
_NAMED_RULED_OUT = (
    r"\b((?:[\w/-]+\s+){1,3}?)(?:was\s+|were\s+|is\s+|been\s+)?(?:ruled\s+out|r/o'?d|excluded)\b"
)
_RULED_OUT_NAMED = re.compile(_NAMED_RULED_OUT, re.I)  # group 1: what was ruled out
_RULED_OUT = re.compile(
    _NAMED_RULED_OUT
    + r"|\b(?:x-?rays?|xrs?|films?|ct|mri|imaging|scans?|cultures?|labs?|tests?|biops(?:y|ies))"
    r"\s+(?:were\s+|was\s+|are\s+|is\s+)?(?:neg|negative)\s+for\b.*"
    r"|\b[\w/-]+\s+(?:neg|negative)\b(?!\s+for\b)(?:\s+x\s*\d+)?"
    # "Tdap UTD": a vaccine up to date is none given
    r"|\b[\w/-]+\s+(?:utd|up[\s-]to[\s-]date)\b",
    re.I,
)
_MAX_PHRASES = 16
_MAX_WORDS = 20


def names_clinical_words(text: str) -> bool:
    """Whether TEXT says anything clinical itself ("for a sacral pressure ulcer"), not only
    how to code ("What codes should we use instead?")."""
    return any(
        len(word) >= 4 and word.lower() not in _NOT_CLINICAL | _EDGE_WORDS | _GENERAL
        for word in _WORD.findall(text)
    )


def clinical_phrases(extraction: Extraction, blanks: Iterable[tuple[int, int]] = ()) -> list[str]:
    """The question's clinical clauses for a code search: codes, modifiers, identifiers,
    BLANKS (patient identifiers), billing boilerplate, references to attachments and
    denials taken out. A lone capitalized word stays ("Kenalog", "Dana"): only the code
    search knows a drug from a name."""
    ruled_out = _ruled_out_words(extraction.masked)
    phrases = dict.fromkeys(
        phrase
        for phrase, _ in _clauses(extraction, blanks)
        if not {word.lower() for word in phrase.split()} <= ruled_out
    )
    return list(phrases)[:_MAX_PHRASES]


def _ruled_out_words(text: str) -> frozenset[str]:
    """The words of what TEXT rules out ("MI ruled out, troponins neg x3"): asked about
    again ("can we code MI?"), it is still no condition the patient has (IV.H)."""
    return frozenset(
        word.lower() for match in _RULED_OUT_NAMED.finditer(text) for word in match[1].split()
    )


def listed_parts(
    extraction: Extraction, blanks: Iterable[tuple[int, int]] = ()
) -> dict[str, list[str]]:
    """By clinical phrase, the parts its commas set apart, each read as a phrase is:
    "Chronic systolic heart failure, HFrEF EF 30%, stable on Entresto" lists three things,
    each of which may name a code; "no slough" is none."""
    listed = {}
    for phrase, clause in _clauses(extraction, blanks):
        parts = [part for part in map(_clinical_words, clause.split(",")) if part is not None]
        if len(parts) > 1:
            listed[phrase] = parts
    return listed


def _clauses(
    extraction: Extraction, blanks: Iterable[tuple[int, int]]
) -> Iterator[tuple[str, str]]:
    """Each clinical clause as a phrase, with the clause's text, commas kept."""
    chars = list(extraction.masked)
    for start, end in [*extraction.spans, *blanks]:
        _blank(chars, start, end)
    text = re.sub(r"(?<!\n)\n(?!\n)", " ", "".join(chars))
    text = text.replace("\u2019", "'")  # "don’t" is "don't", no clinical "don" and "t"
    text = _LISTED.sub(" ", text)  # "diabetes/CKD/HTN" names three conditions
    text = _GENUS.sub(r"\1 ", text)  # "E. coli" is one organism, not a sentence end
    text = _CORRECT_CODE.sub(" ", text)  # "the right dx code": right as in correct
    text = _KICKED_BACK.sub(" ", text)  # "the encoder kicked back S72.0": no kick
    text = _AGE_SEX.sub(" ", text)  # "34yo F" describes the patient, not a condition
    for clause in _CLAUSE_BREAK.split(text):
        if _ATTACHED.search(clause):
            continue  # "see attached skin assessment" names a document, not a condition
        if (phrase := _clinical_words(clause.replace(",", " "))) is not None:
            yield phrase, clause


def _clinical_words(clause: str) -> str | None:
    """CLAUSE's clinical words, None when it names nothing or what the patient does not
    have ("no pregnancy", "denies chest pain")."""
    clause = _RULED_OUT.sub(" ", clause)  # "MI ruled out, troponins neg x3"
    found = [w for w in (w.rstrip("-") for w in _WORD.findall(clause)) if w]
    lower = [w.lower() for w in found]
    words = [
        word
        for at, word in enumerate(found)
        if lower[at] not in _NOT_CLINICAL
        or any(after in _KEPT_BEFORE.get(lower[at], ()) for after in lower[at + 1 : at + 2])
        or _KEPT_AFTER.get(lower[at]) in lower[max(at - 1, 0) : at]
        or (lower[at] in _UNITS_OF_TIME and at > 0 and lower[at - 1].isdigit())
        # ...and "2 weeks ago" stays the time since, which the search drops (query_cues.py)
        or (
            lower[at] == "ago"
            and at > 1
            and lower[at - 1] in _UNITS_OF_TIME
            and lower[at - 2].isdigit()
        )
    ][:_MAX_WORDS]
    while words and words[0].lower() in _EDGE_WORDS - _DENIALS:
        if words[0].lower() == "on" and 1 < len(words) <= _ON_WHAT:
            break  # "On insulin.": what the patient takes, a status (Z79.4), keeps its "on"
        words.pop(0)
    if words and words[0].lower() in _DENIALS:
        return None
    while words and words[-1].lower() in _EDGE_WORDS:
        words.pop()
    content = [
        w
        for w in words
        if (len(w) >= 4 and w.lower() not in _GENERAL)
        or _ABBREVIATION.fullmatch(w)
        or w.lower() in _SHORT_CLINICAL
    ]
    return " ".join(words) if content else None


def phrase_parts(phrase: str) -> list[str]:
    """The parts of PHRASE around a cause or an attribute: "UTI due to E coli" -> "UTI",
    "E coli"; "ESRD on hemodialysis" -> "ESRD", "on hemodialysis" (a drug or treatment the
    patient is on keeps its "on"). A note's partner code or a definite reference ("the
    cancer") is often named inside another phrase."""
    parts = [part.strip() for part in _PART_BREAK.split(phrase)]
    return [part for part in parts if part and part != phrase and part.lower() not in _EDGE_WORDS]


_PART_BREAK = re.compile(
    r"\b(?:due to|secondary to|caused by|from|with|w/|for|of)\b|\s(?=on\s)", re.I
)
