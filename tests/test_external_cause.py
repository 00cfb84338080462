"""External causes as coders phrase them, on the loaded tabular and External Cause Index."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from consultant.codes import db
from consultant.codes.external_cause import ExternalCauseResolver
from consultant.codes.search import CodeSearch
from consultant.codes.store import CodeStore


@pytest.fixture(scope="module")
def search(code_db: Path) -> CodeSearch:
    return CodeSearch(CodeStore(db.connect(code_db, readonly=True)))


@pytest.fixture(scope="module")
def resolver(code_db: Path) -> ExternalCauseResolver:
    with closing(sqlite3.connect(code_db)) as conn:
        return ExternalCauseResolver(conn)


def first(search: CodeSearch, text: str) -> str:
    hits = search.search(text)
    assert hits, f"no hit for {text!r}"
    return hits[0].code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # the injured person's vehicle, never the other party's
        ("driver of car hit by a pickup truck", "V43.53XA"),
        ("pickup truck driver hit by a car", "V53.5XXA"),
        ("restrained driver, car rear-ended by a semi", "V44.5XXA"),
        ("a semi rear-ended her car, she was driving", "V44.5XXA"),
        ("car passenger, collision with semi truck", "V44.6XXA"),
        ("cyclist hit by a pickup truck", "V13.4XXA"),
        ("pedestrian struck by a bus", "V04.10XA"),
        ("car hit a pedestrian, pt was the driver", "V40.5XXA"),
        ("motorcycle driver collided with car", "V23.49XA"),
        ("driver ran car into a tree", "V47.5XXA"),
        # only a vehicle is rear-ended: its occupant, not a pedestrian
        ("rear-ended by a pickup truck", "V43.93XA"),
    ],
)
def test_role_and_vehicle_are_the_injured_persons(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("bicyclist struck by car", "V13.4XXA"),  # traffic unless said otherwise
        ("bicyclist struck by car in a parking lot", "V13.0XXA"),
        ("pedestrian struck by a car", "V03.10XA"),
        ("pedestrian struck by a car in a parking lot", "V03.00XA"),
        ("ATV rollover on the farm, pt was the driver", "V86.55XA"),
    ],
)
def test_traffic_is_the_default(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("pedestrian hit by a bus", "V04.10XA"),
        ("pedestrian hit by a bus, subsequent encounter", "V04.10XD"),
        ("pedestrian hit by a bus, f/u", "V04.10XD"),
        ("pedestrian hit by a bus, sequela", "V04.10XS"),
        ("fell off a ladder, follow-up visit", "W11.XXXD"),
    ],
)
def test_encounter_picks_the_seventh_character(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("pt fell off a ladder at home", "W11.XXXA"),
        ("slipped on icy sidewalk and fell", "W00.0XXA"),
        ("fell down the stairs", "W10.9XXA"),
        ("nursing home resident fell out of bed", "W06.XXXA"),
        ("fell from wheelchair (not moving)", "W05.0XXA"),
    ],
)
def test_falls_follow_the_index_subterms(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("bitten by neighbor's cat", "W55.01XA"),
        ("bitten by a rat", "W53.11XA"),
        ("dog bite ext cause", "W54.0XXA"),
    ],
)
def test_bites_name_the_animal(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


def test_a_named_injury_stays_first(search: CodeSearch) -> None:
    # I.C.20: the external cause code follows the injury's
    codes = [h.code for h in search.search("dog bite of left forearm", limit=3)]
    assert codes[0] == "S51.852A"
    assert "W54.0XXA" in codes


@pytest.mark.parametrize(
    "text",
    [
        "finger slammed in car door",
        "struck by driver side airbag",
        "DOT physical for a truck driver",  # a job, no accident and nobody hurt
    ],
)
def test_a_vehicle_alone_is_no_transport_accident(
    resolver: ExternalCauseResolver, text: str
) -> None:
    assert resolver.read(text) is None
    assert not any(c.code.startswith("V") for c in resolver.resolve(text))


@pytest.mark.parametrize(
    ("text", "code"), [("dehydrated", "E86.0"), ("heat exhaustion", "T67.5XXA")]
)
def test_a_condition_is_not_taken_for_its_cause(search: CodeSearch, text: str, code: str) -> None:
    assert first(search, text) == code


def test_candidates_are_billable(resolver: ExternalCauseResolver, code_db: Path) -> None:
    with closing(sqlite3.connect(code_db)) as conn:
        for text in ("car vs car, driver", "fell off skateboard", "place of occurrence: school"):
            for candidate in resolver.resolve(text):
                row = conn.execute(
                    "SELECT billable FROM codes WHERE system = 'ICD-10-CM' AND code = ?",
                    (candidate.code,),
                ).fetchone()
                assert row == (1,), candidate


@pytest.mark.parametrize(
    ("text", "injury", "cause"),
    [
        ("slipped on ice, fx R ankle", "S82.891A", "W00.0XXA"),
        ("fell off ladder and broke L wrist", "S62.102A", "W11.XXXA"),
        ("fell from bed and hit head, scalp lac", "S01.01XA", "W06.XXXA"),
    ],
)
def test_an_injury_told_with_how_it_happened_leads_its_cause(
    search: CodeSearch, text: str, injury: str, cause: str
) -> None:
    # each clause is searched on its own: the injury first, the cause beside it (I.C.20)
    hits = search.search(text, limit=5)
    assert hits[0].code == injury and hits[0].score >= 0.9
    found = next(hit for hit in hits if hit.code == cause)
    assert found.alongside and found.score < hits[0].score
