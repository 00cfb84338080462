"""NCCI PTP, MUE and add-on code edits: finding headers, dates, and the edit queries.

The fixtures follow CMS's layouts with real code numbers (29881/29877 is a real PTP
pair with modifier indicator 1); dates, values and the other indicators are made up
for the tests. No CPT descriptor text appears anywhere.
"""

from __future__ import annotations

import sqlite3
import zipfile
from datetime import date
from pathlib import Path

import pytest

from consultant.codes import ncci
from consultant.codes.db import connect, get_release
from consultant.codes.importing import ImportFormatError, run_import

FIXTURES = Path(__file__).parent / "fixtures" / "ncci"
PTP_1 = FIXTURES / "ccipra-v321r0-f1.txt"
PTP_2 = FIXTURES / "ccipra-v321r0-f2.txt"
MUE = FIXTURES / "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv"
AOC = FIXTURES / "AOC_V2026Q2-MCR.txt"
TODAY = date(2026, 4, 15)


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "codes.db")


def _pairs(edits: list[ncci.PtpEdit]) -> list[tuple[str, str]]:
    return [(edit.column1, edit.column2) for edit in edits]


# --- PTP ----------------------------------------------------------------------------


def test_ptp_rows_are_stored_as_published(conn: sqlite3.Connection) -> None:
    result = run_import(conn, ncci.PTP, PTP_1, ncci.load_ptp)

    assert result.release.version == "32.1 revision 0"
    assert result.release.effective == "2026-04-01"
    assert result.release.row_count == 4
    rows = {
        (row["column1"], row["column2"]): tuple(row)[2:]
        for row in conn.execute("SELECT * FROM ptp_edits")
    }
    assert rows[("29881", "29877")] == (
        1,
        "1996-01-01",
        None,
        "1",
        "Misuse of column two code with column one code",
        "ncci-ptp",
    )
    assert rows[("99213", "36415")][2:4] == ("2002-10-01", "9")
    assert rows[("99291", "36000")][3] == "0"


def test_edit_in_force_fires_with_its_modifier_indicator(conn: sqlite3.Connection) -> None:
    run_import(conn, ncci.PTP, PTP_1, ncci.load_ptp)

    [edit] = ncci.ptp_edits_between(conn, ["29877", "29881", "99213"], TODAY)

    assert edit == ncci.PtpEdit(
        column1="29881",
        column2="29877",
        prior_1996=True,
        effective=date(1996, 1, 1),
        deleted=None,
        modifier_indicator="1",
        rationale="Misuse of column two code with column one code",
        code_set="ncci-ptp",
    )


def test_edit_past_its_deletion_date_never_fires(conn: sqlite3.Connection) -> None:
    run_import(conn, ncci.PTP, PTP_1, ncci.load_ptp)

    assert ncci.ptp_edits_between(conn, ["99213", "36415"], TODAY) == []
    assert ncci.ptp_edits_between(conn, ["99213", "36415"], date(2002, 10, 1)) == []
    # The day before its deletion date it still applied.
    assert _pairs(ncci.ptp_edits_between(conn, ["99213", "36415"], date(2002, 9, 30))) == [
        ("99213", "36415")
    ]


def test_edit_effective_later_does_not_fire_yet(conn: sqlite3.Connection) -> None:
    run_import(conn, ncci.PTP, PTP_1, ncci.load_ptp)

    assert ncci.ptp_edits_between(conn, ["11042", "97597"], date(2008, 12, 31)) == []
    assert _pairs(ncci.ptp_edits_between(conn, ["97597", "11042"], date(2009, 1, 1))) == [
        ("11042", "97597")
    ]
    assert ncci.ptp_edits_between(conn, ["11042"], TODAY) == []


@pytest.mark.parametrize("preamble", [0, 1, 7, 40])
def test_ptp_header_is_found_after_any_preamble(
    conn: sqlite3.Connection, tmp_path: Path, preamble: int
) -> None:
    lines = PTP_1.read_text().splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("Column 1"))
    notes = [f"Disclaimer line {n}, with, commas" for n in range(preamble)]
    path = tmp_path / "ptp.txt"
    path.write_text("\r\n".join(notes + lines[header_at:]) + "\r\n")

    assert run_import(conn, ncci.PTP, path, ncci.load_ptp).release.row_count == 4


def test_ptp_header_wording_quoting_and_legend_rows(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    """A spreadsheet saved as text: quoted cells, a line break inside one, 'Column1',
    and the legend rows CMS puts under the header."""
    path = tmp_path / "ptp_export.txt"
    path.write_text(
        "Medicare NCCI PTP edits\n"
        'Column1\tColumn2\t"*=in existence\nprior to 1996"\t"Effective\nDate"\t'
        '"Deletion Date"\tModifier\t"PTP Edit Rationale"\n'
        "\t\t\t\t\t0=not allowed\t\n"
        "\t\t\t\t*=no data\t1=allowed\t\n"
        "\t\t\t\t\t9=not applicable\t\n"
        '29881\t29877\t*\t19960101\t*\t1\t"Misuse of column two code with column one code"\n'
    )

    run_import(conn, ncci.PTP, path, ncci.load_ptp)

    [edit] = ncci.ptp_edits_between(conn, ["29881", "29877"], TODAY)
    assert (edit.prior_1996, edit.modifier_indicator) == (True, "1")
    assert edit.rationale == "Misuse of column two code with column one code"


def test_ptp_parts_in_one_zip(conn: sqlite3.Connection, tmp_path: Path) -> None:
    archive = tmp_path / "medicare-ncci-2026q2-practitioner-ptp-edits.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(PTP_1, PTP_1.name)
        zf.write(PTP_2, PTP_2.name)
        zf.writestr("README.txt", "Practitioner PTP edits in two parts.\n")

    release = run_import(conn, ncci.PTP, archive, ncci.load_ptp).release

    assert release.row_count == 6
    assert (release.version, release.effective) == ("2026 Q2", "2026-04-01")
    assert _pairs(ncci.ptp_edits_between(conn, ["G0289", "29877", "29881"], TODAY)) == [
        ("29881", "29877"),
        ("G0289", "29877"),
    ]


def test_ptp_idempotent_and_bad_file_keeps_the_release(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    run_import(conn, ncci.PTP, PTP_1, ncci.load_ptp)
    assert run_import(conn, ncci.PTP, PTP_1, ncci.load_ptp).skipped is True
    broken = tmp_path / "ccipra-v322r0-f1.txt"
    broken.write_text(PTP_1.read_text().replace("\t1\tMisuse", "\tY\tMisuse"))

    with pytest.raises(ImportFormatError, match="modifier indicator 'Y'"):
        run_import(conn, ncci.PTP, broken, ncci.load_ptp)

    assert get_release(conn, ncci.PTP).version == "32.1 revision 0"
    assert len(ncci.ptp_edits_between(conn, ["29881", "29877"], TODAY)) == 1


def test_file_without_the_header_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(ImportFormatError, match="no header row naming the NCCI PTP edits"):
        run_import(conn, ncci.PTP, MUE, ncci.load_ptp)


# --- MUE ----------------------------------------------------------------------------


def test_mue_values_and_indicators(conn: sqlite3.Connection) -> None:
    """The MUE csv opens with a quoted multi-line notice and a header cell broken in two."""
    result = run_import(conn, ncci.MUE, MUE, ncci.load_mue)

    assert (result.release.version, result.release.effective) == ("April 1, 2026", "2026-04-01")
    assert result.release.row_count == 6
    assert ncci.mue_for(conn, "j1100") == ncci.Mue(
        code="J1100",
        value=150,
        indicator="3 Date of Service Edit: Clinical",
        rationale="Clinical: Data",
    )
    assert ncci.mue_for(conn, "29881") == ncci.Mue(
        "29881", 1, "2 Date of Service Edit: Policy", "Anatomic Consideration"
    )
    assert ncci.mue_for(conn, "J3490").indicator == "1 Line Edit"
    assert ncci.mue_for(conn, "99214") is None


def test_mue_code_listed_twice_is_refused(conn: sqlite3.Connection, tmp_path: Path) -> None:
    run_import(conn, ncci.MUE, MUE, ncci.load_mue)
    doubled = tmp_path / "mue_both_settings.csv"
    doubled.write_text(MUE.read_text() + '99213,2,"3 Date of Service Edit: Clinical","x"\n')

    with pytest.raises(ImportFormatError, match="99213 is listed twice"):
        run_import(conn, ncci.MUE, doubled, ncci.load_mue)

    assert ncci.mue_for(conn, "99213").value == 1


# --- add-on codes -------------------------------------------------------------------


def test_addon_primaries_on_a_date(conn: sqlite3.Connection) -> None:
    result = run_import(conn, ncci.ADDON, AOC, ncci.load_addon)

    assert (result.release.version, result.release.effective) == ("2026 Q2", "2026-04-01")
    assert result.release.row_count == 8
    assert ncci.addon_primaries(conn, "22614", TODAY) == ncci.AddonInfo(
        code="22614",
        addon_type="1",
        primaries=("22612", "22630", "22633"),
        contractor_defined=False,
    )
    # 22633's edit starts in 2012 (YYYYDDD 2012001).
    assert ncci.addon_primaries(conn, "22614", date(2011, 6, 1)).primaries == ("22612", "22630")
    assert ncci.addon_primaries(conn, "99213", TODAY) is None


def test_addon_edit_ends_when_a_code_or_the_edit_is_deleted(conn: sqlite3.Connection) -> None:
    run_import(conn, ncci.ADDON, AOC, ncci.load_addon)

    # 11040 was deleted on 2011-01-01 (primary code deletion date), so only 11042 remains.
    assert ncci.addon_primaries(conn, "11045", TODAY).primaries == ("11042",)
    assert ncci.addon_primaries(conn, "11045", date(2010, 6, 1)).primaries == ("11040",)
    # 99354 and its edit were deleted in 2023.
    assert ncci.addon_primaries(conn, "99354", TODAY) is None
    assert ncci.addon_primaries(conn, "99354", date(2022, 12, 31)).primaries == ("99202",)


def test_contractor_defined_primaries(conn: sqlite3.Connection) -> None:
    run_import(conn, ncci.ADDON, AOC, ncci.load_addon)

    assert ncci.addon_primaries(conn, "0054T", TODAY) == ncci.AddonInfo(
        code="0054T", addon_type="2", primaries=(), contractor_defined=True
    )


def test_cms_dates() -> None:
    assert ncci._date("2026091") == date(2026, 4, 1)
    assert ncci._date("20260401") == date(2026, 4, 1)
    assert ncci._date("4/1/2026") == date(2026, 4, 1)
    assert ncci._date("*") is None
    assert ncci._date("9999999") is None
