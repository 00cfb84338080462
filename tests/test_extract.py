"""Code and modifier mentions: found however they are written, and never invented from
ZIP codes, phone numbers, dates, amounts, NPIs, identifiers or prose."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consultant.codes.modifiers import modifier_info
from consultant.codes.store import CodeStore
from consultant.drafting.extract import (
    clinical_phrases,
    extract,
    item_of,
    listed_parts,
    mask_non_codes,
)
from consultant.mail.message import read_mail

FIXTURES = Path(__file__).parent / "fixtures"
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "email"


@pytest.fixture(scope="module")
def store(ncci_db: Path) -> CodeStore:
    """The session's full code database with the NCCI fixture files; no CPT file."""
    return CodeStore.open(ncci_db)


def found(text: str, store: CodeStore) -> list[tuple[str, str, str]]:
    return [(m.info.code, m.info.system, m.info.status) for m in extract(text, store).codes]


def codes(text: str, store: CodeStore) -> list[str]:
    return [m.info.code for m in extract(text, store).codes]


def mods(text: str, store: CodeStore) -> list[str]:
    return [m.modifier for m in extract(text, store).modifiers]


# --- ICD-10-CM ------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["E11.22", "E1122", "e11.22", "e1122"])
def test_icd_codes_with_or_without_dot_in_any_case(written: str, store: CodeStore) -> None:
    assert found(f"Is {written} billable?", store) == [("E11.22", "ICD-10-CM", "billable")]


def test_each_code_is_reported_once_in_order(store: CodeStore) -> None:
    text = "N18.31 with E11.22, and again e1122 and N1831."
    assert codes(text, store) == ["N18.31", "E11.22"]


def test_statuses_of_icd_codes(store: CodeStore) -> None:
    assert found("E11 or S32.000 or E11.99?", store) == [
        ("E11", "ICD-10-CM", "not_billable"),
        ("S32.000", "ICD-10-CM", "needs_seventh_character"),
        ("E11.99", "ICD-10-CM", "invalid"),
    ]


def test_undotted_invalid_code_needs_code_words(store: CodeStore) -> None:
    assert found("Is E1199 billable?", store) == [("E11.99", "ICD-10-CM", "invalid")]
    assert found("What about E1199?", store) == []


def test_undotted_heading_needs_code_words(store: CodeStore) -> None:
    assert found("Is S3113 billable?", store) == [("S31.13", "ICD-10-CM", "not_billable")]
    assert found("Server error (S3113) again", store) == []


@pytest.mark.parametrize(
    "text",
    [
        "cipher=TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P384 was used",
        "index S&P500 went up",
        "Failed, id=02022-02, from MTA",
        "from c2022-neko.kyoto.example.ne.jp relay",
        "Thinkpad T420s and Veriton M430G for sale",
        "connection refused (Socket error code 10061)",
        "denied with CARC 16, remark code N130 and CO-97",
        "relay 192.0.2.22 and [fe80::10d2:b426:34cf:d5d0]",
        "Telefon: 0711 21041-43 Fax: 0711 21041-50",
        "b=M24.1dGVzdE24.1aW5nIGJhc2U2NCBkYXRhIHRoYXQgZ29lcyBvbiBhbmQgb24=",
        "the reference code for your message is 02022-08",
        "Daily Data: D09.ZPH (Averaged data)",
    ],
)
def test_machine_text_yields_no_codes_or_modifiers(text: str, store: CodeStore) -> None:
    extraction = extract(text, store)
    assert extraction.codes == [] and extraction.modifiers == []


@pytest.mark.parametrize(
    "text",
    [
        "Patient with vitamin B12 deficiency",
        "H1N1 influenza last winter",
        "A1C was 7.5 and T2DM is controlled",
        "COVID-19 vaccine given",
        "Is a G2 or P4 pregnancy relevant?",
    ],
)
def test_code_shaped_words_that_are_not_categories_are_ignored(text: str, store: CodeStore) -> None:
    assert codes(text, store) == []


@pytest.mark.parametrize(
    "text", ["N95 masks ran out", "X12 837 files", "LCD L34220 and article A56720"]
)
def test_bare_categories_and_policy_numbers_need_code_context(text: str, store: CodeStore) -> None:
    assert codes(text, store) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Is I10 billable?", ["I10"]),
        ("HTN I10, E78.5 and E11.9", ["I10", "E78.5", "E11.9"]),
        ("dx N95", ["N95"]),
    ],
)
def test_bare_categories_with_code_context(
    text: str, expected: list[str], store: CodeStore
) -> None:
    assert codes(text, store) == expected


@pytest.mark.parametrize("text", ["PATIENT CHANGED BEDSIDE", "patient changed bedside dressing"])
def test_words_never_match(text: str, store: CodeStore) -> None:
    assert codes(text, store) == []


# --- HCPCS, ICD-10-PCS and the J1100 ambiguity ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "J1100 dexamethasone injection",
        "J1100 4 mg IV",
        "How many units of J1100?",
        "HCPCS J1100",
        "J1100",  # no telling word: undotted letter + 4 digits is how HCPCS is written
    ],
)
def test_j1100_as_hcpcs(text: str, store: CodeStore) -> None:
    assert found(text, store) == [("J1100", "HCPCS", "billable")]


@pytest.mark.parametrize(
    "text", ["J1100 as the diagnosis", "dx J1100", "ICD-10 J1100", "Is J11.00 right?"]
)
def test_j1100_as_icd(text: str, store: CodeStore) -> None:
    assert found(text, store) == [("J11.00", "ICD-10-CM", "billable")]


def test_deleted_hcpcs_code(store: CodeStore) -> None:
    assert found("Can we still bill A4466?", store) == [("A4466", "HCPCS", "deleted")]


def test_pcs_codes(store: CodeStore) -> None:
    assert found("Inpatient: 0SRC0J9 and PCS code 0016070", store) == [
        ("0SRC0J9", "ICD-10-PCS", "billable"),
        ("0016070", "ICD-10-PCS", "billable"),
    ]


def test_seven_digit_number_without_code_words_is_not_pcs(store: CodeStore) -> None:
    assert codes("Reference 0016070 from the portal; also 0016070 again", store) == []


# --- CPT: only with evidence ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "CPT 27607",
        "We billed 27607 last week",
        "Procedure code 27607?",
        "27607-59",
        "27607-RT",
        "Can 29881 and 27607 be billed together",  # listed with a code the NCCI file knows
        "Codes: 29881, 27607",
        "27607 with 29881",
    ],
)
def test_five_digit_number_in_code_context_is_cpt(text: str, store: CodeStore) -> None:
    assert "27607" in codes(text, store)
    assert ("27607", "CPT", "unverified") in found(text, store)


def test_a_short_question_about_a_real_code_needs_no_code_word(store: CodeStore) -> None:
    """ "Is 27607 right?", "99213 right?", "Is W19 OK?": the question is about the token,
    which is a real code; an unknown token asked about ("What about E1199?") is not."""
    assert codes("Is 27607 right?", store) == ["27607"]
    assert codes("99213 right?", store) == ["99213"]
    assert codes("Is W19 OK?", store) == ["W19"]


def test_number_the_ncci_tables_know_needs_no_context(store: CodeStore) -> None:
    assert found("Saw her today for 99213 and then 29881.", store) == [
        ("99213", "CPT", "unverified"),
        ("29881", "CPT", "unverified"),
    ]


def test_a_cpt_number_in_a_paragraph_about_billing_is_a_code(store: CodeStore) -> None:
    """The I/OCE's quarters know 17110 and 11102 as CPT numbers; the paragraph is about a
    claim, so the numbers in parentheses are the procedures billed."""
    text = (
        "Pt had 6 warts frozen (17110) and a separate lesion shaved for biopsy (11102). "
        "The claim got an NCCI edit.\n\nIt was 27607 and then 27608 again."
    )
    assert codes(text, store) == ["17110", "11102"]


def test_a_heading_asked_about_without_code_words(store: CodeStore) -> None:
    assert codes("Was R05 deleted?", store) == ["R05"]
    assert codes("Is G35 valid", store) == ["G35"]


@pytest.mark.parametrize(
    "text",
    [
        "We have 27607 patients",
        "We billed about 25000 last year",
        "We billed 12000 claims",
        "It was 27607 and then 27608 again",
    ],
)
def test_five_digit_number_without_evidence_is_not_a_code(text: str, store: CodeStore) -> None:
    assert codes(text, store) == []


def test_cpt_outside_every_section_is_invalid(store: CodeStore) -> None:
    assert found("CPT 00000", store) == [("00000", "CPT", "invalid")]


@pytest.mark.parametrize(
    "noise",
    [
        "Raleigh, NC 27607",
        "Raleigh NC 27607",
        "Raleigh, North Carolina 27607",
        "27607-1234",
        "zip 27607",
        "ZIP code: 27607",
        "(919) 555-0142",
        "919-555-0142",
        "919.555.0142",
        "+1 919 555 0142",
        "ext 12345",
        "919-555-0142 x12345",
        "NPI 1234567893",
        "1234567893",
        "01/02/2025",
        "2025-01-02",
        "20250102",
        "Jan 2, 2025",
        "2 January 2025",
        "$12,345.00",
        "$12345",
        "12345 dollars",
        "USD 45000",
        "45,000.00",
        "12345.50",
        "claim #12345",
        "claim number 23456",
        "acct 99213",
        "account no. 29881",
        "member ID 54321",
        "reference 12345",
        "ticket 12345",
        "invoice 12345",
        "#12345",
        "10:30",
        "1430 hours",
        "12345 Main St",
        "12345 N Oak Avenue",
        "PO Box 12345",
        "Suite 12345",
        "SSN 123-45-6789",
        "MRN: 00123456",
        "https://portal.example.test/claims/12345",
        "billing12345@example.test",
    ],
)
def test_identifiers_are_never_codes(noise: str, store: CodeStore) -> None:
    text = f"We billed CPT 29877-59 and {noise}, then coded {noise}."
    assert codes(text, store) == ["29877"]


def test_no_codes_in_real_world_mail(store: CodeStore) -> None:
    """1,600 messages from mail libraries' test suites (bounces, spam, newsletters, MIME
    torture tests) mention no medical code: whatever is found in them is a false positive."""
    assert CORPORA.is_dir(), f"{CORPORA} is missing; CI keeps ../shared beside the checkout"
    found_in: list[str] = []
    for path in sorted(CORPORA.rglob("*")):
        if path.is_file() and path.name not in ("MANIFEST.txt", "STATS.txt"):
            extraction = extract(read_mail(path.read_bytes()).question, store)
            if extraction.codes or extraction.modifiers:
                found_in.append(str(path.relative_to(CORPORA)))
    assert found_in == []


def test_cpt_hash_is_a_code_but_a_bare_hash_is_not(store: CodeStore) -> None:
    assert codes("CPT #29877, ticket ref #23456", store) == ["29877"]


def test_masking_keeps_offsets(store: CodeStore) -> None:
    text = "Call (919) 555-0142 about E11.22"
    masked = mask_non_codes(text)
    assert len(masked) == len(text)
    assert "555" not in masked and masked.endswith("E11.22")


# --- modifiers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("modifier 25 on the E/M", ["25"]),
        ("Should we use mod 59?", ["59"]),
        ("Billed 29877-59", ["59"]),
        ("Billed 29877 -XS", ["XS"]),
        ("Billed 29877-59-RT", ["59", "RT"]),
        ("Billed 29877-59 and RT", ["59", "RT"]),
        ("Billed 29877 with 59 and RT", ["59", "RT"]),
        ("Does the 25 modifier go on 99213?", ["25"]),
        ("Use modifiers 59, XS and RT", ["59", "XS", "RT"]),
        ("modifier XS or 59?", ["XS", "59"]),
        ("append -59 to 29877", ["59"]),
        ("Modifier: GA", ["GA"]),
        ("What modifiers go on the second 66984? Is it 79 plus LT?", ["79", "LT"]),
    ],
)
def test_modifier_mentions(text: str, expected: list[str], store: CodeStore) -> None:
    assert mods(text, store) == expected


@pytest.mark.parametrize(
    "text",
    [
        "PT came in for her follow-up",
        "TC was done at the hospital",
        "patient is 59 years old",
        "with 25 and 59 visits",
        "between 25 and 59",
        "a modifier is needed",
        "Modifiers are confusing",
        "seen with PT",
        "RT knee pain",
        "is it 25 or 30 mg?",
    ],
)
def test_no_modifier_without_modifier_context(text: str, store: CodeStore) -> None:
    assert mods(text, store) == []


def test_modifier_titles_come_from_the_modifier_table(store: CodeStore) -> None:
    mentions = extract("Billed 29877-59-RT", store).modifiers
    for mention in mentions:
        info = modifier_info(store.conn, mention.modifier)
        assert info is not None
        assert (mention.title, mention.source) == (info.title, info.source)


def test_unknown_modifier_keeps_no_title(store: CodeStore) -> None:
    assert modifier_info(store.conn, "12") is None
    (mention,) = extract("modifier 12", store).modifiers
    assert (mention.modifier, mention.title) == ("12", None)


# --- clinical phrases -----------------------------------------------------------------


def test_clinical_phrases_drop_codes_boilerplate_and_blanked_spans(store: CodeStore) -> None:
    text = (
        "Hi team, what is the code for acute appendicitis with abscess? "
        "Can I bill E11.22 with 29877-59? Patient: Jane Doe has type 2 diabetes. Thanks, Dana"
    )
    extraction = extract(text, store)
    name = text.index("Jane Doe")
    phrases = clinical_phrases(extraction, [(name, name + len("Jane Doe"))])
    # "Dana" stays a phrase: the search, which knows drugs from names, drops it
    assert phrases == ["acute appendicitis with abscess", "type 2 diabetes", "Dana"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can we bill several codes together? Thanks!", []),
        (
            "Right knee arthroscopy, chronic kidney disease, stage 3a",
            ["Right knee arthroscopy chronic kidney disease stage 3a"],
        ),
        ("Dx: CKD stage 3a", ["CKD stage 3a"]),
        ("Stage 3a, left side", []),  # general words only
        # a denial inside a phrase stays for the search; a phrase that only denies goes
        (
            "migraine without aura, not intractable, no status migrainosus",
            ["migraine without aura not intractable no status migrainosus"],
        ),
        ("34yo F, no pregnancy. UTI due to E. coli", ["UTI due to E coli"]),
        # a document attached, "the right dx code", "add a code for": no clinical words
        ("See attached skin assessment. What's the right dx code?", []),
        ("Do I add a code for the absent gallbladder?", ["absent gallbladder"]),
        # alternatives are searched apart; a lone capitalized word is left to the search
        (
            "which goes first, the chemo encounter code or the cancer?",
            ["chemo encounter", "cancer"],
        ),
        ("What's the HCPCS code for the Kenalog?", ["Kenalog"]),
        # two codes asked for at once are two things; a two-letter abbreviation names one
        ("What's the AF code + the Eliquis code?", ["AF", "Eliquis"]),
        # what the record rules out is not coded (IV.H); the symptoms are
        ("Atypical chest pain, SOB. MI ruled out, troponins neg x3.", ["Atypical chest pain SOB"]),
        # ...nor when asked about again: "can we code MI?" names no condition the patient has
        (
            "Chest pain. MI ruled out, troponins neg. Can we code MI since it was on the order?",
            ["Chest pain"],
        ),
        # a test negative for something denies all it names; a type "negative for" stays
        ("Contusion L hip, x-rays negative for fx.", ["Contusion L hip"]),
        (
            "Barrett's esophagus, negative for dysplasia",
            ["Barrett's esophagus negative for dysplasia"],
        ),
        # short words coders type in lower case name a condition
        ("pt w/ hip fx", ["w/ hip fx"]),
        # a claim the software kicked back names no blow
        ("Our encoder kicked back S72.0 for the hip fracture.", ["hip fracture"]),
        # a vaccine up to date is none given
        ("3.4 cm lac L hand. Tdap UTD.", ["lac L hand"]),
        # "use" is billing talk, except in DSM-5's "use disorder"
        ("Can we use F17.210 for tobacco use disorder?", ["tobacco use disorder"]),
        # ...and "code" is, except where it names a chapter: the Z code asks for Z79.84
        ("Do I need a Z code for the metformin?", ["Z code for the metformin"]),
        ("What codes do we assign?", []),
        # who keeps writing what is the story (a curly apostrophe is an apostrophe)
        ("The doc keeps putting C50 on it, I don’t think that’s right", []),
        # a side told as "both" is kept; what the patient is on keeps its "on"
        (
            "DM2 with retinopathy (mild NPDR, both eyes). On insulin.",
            ["DM2 with retinopathy", "mild NPDR both eyes", "On insulin"],
        ),
        ("Can I bill both?", []),
        # a time unit after a number measures it: the weeks of a pregnancy are Z3A's
        ("Pt is 28 weeks pregnant with GDM.", ["28 weeks pregnant with GDM"]),
        ("Seen a few weeks ago for GDM.", ["GDM"]),
        ("Concussion 2 weeks ago w/o LOC", ["Concussion 2 weeks ago w/o LOC"]),
    ],
)
def test_clinical_phrases_keep_clinical_words_only(
    text: str, expected: list[str], store: CodeStore
) -> None:
    assert clinical_phrases(extract(text, store)) == expected


def test_a_listing_keeps_its_parts_beside_the_phrase(store: CodeStore) -> None:
    text = (
        '"Chronic systolic heart failure, HFrEF EF 30%, stable on Entresto" and '
        '"pressure injury R heel, unstageable, no slough". What are the codes?'
    )
    extraction = extract(text, store)
    phrases = clinical_phrases(extraction)
    assert phrases[:2] == [
        "Chronic systolic heart failure HFrEF EF 30 stable on Entresto",
        "pressure injury R heel unstageable no slough",
    ]
    # each part read as a phrase is: a denied one ("no slough") names nothing
    assert listed_parts(extraction) == {
        phrases[0]: ["Chronic systolic heart failure", "HFrEF EF 30", "stable on Entresto"],
        phrases[1]: ["pressure injury R heel", "unstageable"],
    }


# --- properties: identifiers never become codes ---------------------------------------

STATES = re.findall(
    r"[A-Z]{2}",
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA PR RI SC SD TN TX UT VT VA WA WV WI WY",
)
TEMPLATES = (
    "We billed CPT 29881 and 29877-59 for {x}.",
    "We billed CPT 29881 and 29877-59. Contact: {x}",
    "{x}: can 29881 and 29877-59 be billed together?",
    "Codes 29881, 29877-59 and {x}",
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

digits = st.integers
phones = st.builds(
    lambda a, e, n, form, ext: form.format(a=a, e=e, n=n) + ext,
    digits(200, 999),
    digits(200, 999),
    digits(0, 9999).map(lambda n: f"{n:04d}"),
    st.sampled_from(
        ["({a}) {e}-{n}", "{a}-{e}-{n}", "{a}.{e}.{n}", "+1 {a} {e} {n}", "1-{a}-{e}-{n}"]
    ),
    st.sampled_from(["", " ext 12345", " ext. 4821", " x98765"]),
)
zips = st.builds(
    lambda z, plus, state, form: form.format(z=f"{z:05d}", p=f"{plus:04d}", s=state),
    digits(0, 99999),
    digits(0, 9999),
    st.sampled_from(STATES),
    st.sampled_from(
        ["Springfield, {s} {z}", "Springfield, {s} {z}-{p}", "{z}-{p}", "zip {z}", "ZIP: {z}"]
    ),
)
dates = st.builds(
    lambda d, form: d.strftime(form),
    st.dates(date(1900, 1, 1), date(2099, 12, 31)),
    st.sampled_from(["%m/%d/%Y", "%Y-%m-%d", "%Y%m%d", "%b %d, %Y", "%B %d %Y", "%d %b %Y"]),
)
times = st.builds(
    lambda t, form: t.strftime(form), st.times(), st.sampled_from(["%H:%M", "%I:%M %p", "%H:%M:%S"])
)
amounts = st.builds(
    lambda n, cents, form: form.format(n=n, c=f"{cents:02d}"),
    digits(0, 10**7),
    digits(0, 99),
    st.sampled_from(
        ["${n:,}.{c}", "${n}", "$ {n}", "{n} dollars", "USD {n}", "{n} USD", "{n:,}.{c}"]
    ),
)
npis = st.builds(
    lambda n, form: form.format(n=n),
    digits(10**9, 10**10 - 1),
    st.sampled_from(["NPI {n}", "NPI: {n}", "{n}"]),
)
identifiers = st.builds(
    lambda n, form: form.format(n=f"{n:05d}"),
    digits(0, 99999),
    st.sampled_from(
        [
            "claim #{n}",
            "claim number {n}",
            "acct {n}",
            "account #{n}",
            "member ID {n}",
            "reference {n}",
            "ref# {n}",
            "ticket {n}",
            "invoice {n}",
            "{n} Main St",
            "Suite {n}",
            "PO Box {n}",
        ]
    ),
)


def only_the_real_codes(store: CodeStore, template: str, noise: str) -> None:
    extraction = extract(template.format(x=noise), store)
    assert [m.info.code for m in extraction.codes] == ["29881", "29877"]
    assert [m.modifier for m in extraction.modifiers] == ["59"]


@SETTINGS
@given(noise=phones, template=st.sampled_from(TEMPLATES))
def test_phone_numbers_never_become_codes(store: CodeStore, template: str, noise: str) -> None:
    only_the_real_codes(store, template, noise)


@SETTINGS
@given(noise=zips, template=st.sampled_from(TEMPLATES))
def test_zip_codes_never_become_codes(store: CodeStore, template: str, noise: str) -> None:
    only_the_real_codes(store, template, noise)


@SETTINGS
@given(noise=dates, template=st.sampled_from(TEMPLATES))
def test_dates_never_become_codes(store: CodeStore, template: str, noise: str) -> None:
    only_the_real_codes(store, template, noise)


@SETTINGS
@given(noise=times, template=st.sampled_from(TEMPLATES))
def test_times_never_become_codes(store: CodeStore, template: str, noise: str) -> None:
    only_the_real_codes(store, template, noise)


@SETTINGS
@given(noise=amounts, template=st.sampled_from(TEMPLATES))
def test_amounts_never_become_codes(store: CodeStore, template: str, noise: str) -> None:
    only_the_real_codes(store, template, noise)


@SETTINGS
@given(noise=npis, template=st.sampled_from(TEMPLATES))
def test_npis_never_become_codes(store: CodeStore, template: str, noise: str) -> None:
    only_the_real_codes(store, template, noise)


@SETTINGS
@given(noise=identifiers, template=st.sampled_from(TEMPLATES))
def test_identifiers_and_addresses_never_become_codes(
    store: CodeStore, template: str, noise: str
) -> None:
    only_the_real_codes(store, template, noise)


def test_a_list_item_is_its_own_questions_case() -> None:
    text = (
        "Fell off a ladder, concussion.\n\n"
        "- Codes for the first visit?\n"
        "- He comes back for a recheck. Which 7th character?\n"
        "- Later PCS, how do I code that?"
    )
    first = text.index("Codes")
    assert item_of(text, first - 2, first + 24) == (first, text.index("\n- He"))
    recheck = text.index("Which")
    assert text[slice(*item_of(text, recheck, recheck + 20))].startswith("He comes back")
    assert item_of(text, 0, 10) is None  # the case before the list is in none
