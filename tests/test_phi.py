"""Patient identifiers are noticed by kind and never repeated."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consultant.drafting.phi import DOB, MEMBER_ID, MRN, NAME, PHONE, SSN, find_phi, phi_finding
from consultant.mail.message import read_mail

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "email"


def kinds(text: str) -> set[str]:
    return {hit.kind for hit in find_phi(text)}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Her SSN is 123-45-6789.", SSN),
        ("SSN 123456789 on file", SSN),
        ("social security number: 123 45 6789", SSN),
        ("MRN: 00123456", MRN),
        ("medical record number 884422", MRN),
        ("Member ID W123456789", MEMBER_ID),
        ("subscriber id: ABC12345", MEMBER_ID),
        ("MBI 1EG4-TE5-MK73", MEMBER_ID),
        ("DOB 03/04/1950", DOB),
        ("date of birth: 1950-03-04", DOB),
        ("born on March 4, 1950", DOB),
        ("Patient: Jane Testperson", NAME),
        ("patient name: John Q Sample", NAME),
        ("Pt: Maria Example came in for E11.9", NAME),
    ],
)
def test_each_kind_is_detected(text: str, kind: str) -> None:
    assert kind in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "Is E11.22 billable with N18.31?",
        "Patient has type 2 diabetes with CKD stage 3a.",
        "PT came in and TC was done; 29877-59 billed.",
        "pt with E11.9 seen on 03/04/2026",
        "The patient's date of birth is on file.",
        "Call me at (919) 555-0142 about claim #12345.",
        "Patient Care Coordinator asked about 99213",
        "The surgeon, Dr. Example, did 29881.",
    ],
)
def test_ordinary_coding_questions_have_no_phi(text: str) -> None:
    assert find_phi(text) == []


def test_a_phone_number_counts_only_with_a_patient() -> None:
    assert PHONE not in kinds("Call me at 919-555-0142")
    assert PHONE in kinds("Patient: Jane Testperson, phone 919-555-0142")
    assert PHONE in kinds("The patient's phone is (919) 555-0142")


def test_hits_carry_positions_for_masking() -> None:
    text = "About E11.9: DOB 03/04/1950."
    (hit,) = find_phi(text)
    assert text[hit.start : hit.end] == "DOB 03/04/1950"


def test_finding_names_kinds_and_reminds_without_values() -> None:
    text = "Patient: Jane Testperson, DOB 03/04/1950, MRN: 00123456, SSN 123-45-6789"
    finding = phi_finding(find_phi(text))
    assert finding is not None
    assert finding.kind == "phi" and finding.codes == []
    for kind in (NAME, DOB, MRN, SSN):
        assert kind in finding.message
    assert "should not" in finding.message or "do not send" in finding.message
    for value in ("Jane", "Testperson", "03/04/1950", "00123456", "123-45-6789"):
        assert value not in finding.message


def test_no_finding_without_phi() -> None:
    assert phi_finding(find_phi("Is E11.22 billable?")) is None


# "Q" first: a made-up name, never one of the words that follow "Patient" in prose.
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=10).map(
    lambda s: f"Q{s}"
)


@settings(max_examples=200, deadline=None)
@given(
    ssn=st.tuples(st.integers(100, 899), st.integers(1, 99), st.integers(1, 9999)).map(
        lambda t: f"{t[0]:03d}-{t[1]:02d}-{t[2]:04d}"
    ),
    mrn=st.integers(10**5, 10**10).map(str),
    first=NAMES,
    last=NAMES,
    born=st.dates(date(1900, 1, 1), date(2026, 1, 1)),
)
def test_values_are_never_repeated(ssn: str, mrn: str, first: str, last: str, born: date) -> None:
    text = (
        f"Patient: {first} {last}, DOB {born:%m/%d/%Y}, MRN {mrn}, SSN {ssn}. Is E11.22 billable?"
    )
    finding = phi_finding(find_phi(text))
    assert finding is not None
    assert {NAME, DOB, MRN, SSN} <= set(kinds(text))
    for value in (ssn, mrn, first, last, f"{born:%m/%d/%Y}"):
        assert value not in finding.message


def test_no_phi_in_real_world_mail() -> None:
    """Mail libraries' test messages hold no patient data; base64 blobs and signatures
    must not look like medical record numbers."""
    assert CORPORA.is_dir(), f"{CORPORA} is missing; CI keeps ../shared beside the checkout"
    flagged = []
    for path in sorted(CORPORA.rglob("*")):
        if path.is_file() and path.name not in ("MANIFEST.txt", "STATS.txt"):
            mail = read_mail(path.read_bytes())
            if find_phi(f"{mail.question}\n\n{mail.quoted}"):
                flagged.append(str(path.relative_to(CORPORA)))
    assert flagged == []
