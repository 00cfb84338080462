"""`consultant analyze`: one question in, the analysis a draft is made from out."""

from __future__ import annotations

import sys

import click

from consultant.cli.codes import open_store
from consultant.cli.output import emit_json
from consultant.codes.search import CodeSearch
from consultant.config import Config, ConfigError
from consultant.drafting.analyze import analyze as run_analysis
from consultant.templating import template_environment


@click.command()
@click.argument("source", default="-", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as one JSON object.")
@click.pass_obj
def analyze(config: Config, source: click.utils.LazyFile, as_json: bool) -> None:
    """Analyze a raw RFC 5322 email or plain text question (FILE, or - for stdin).

    Finds the codes and modifiers it mentions and checks them against the loaded
    code sets, suggests codes for its clinical phrases, and renders a draft reply.
    """
    raw = source.read()
    if not raw.strip():
        raise click.UsageError("the question is empty; give an email file or pipe one in")
    try:
        templates = template_environment(config.drafting.templates_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    store = open_store(config)
    result = run_analysis(
        raw,
        store,
        CodeSearch(store),
        suggestions=config.drafting.suggestions,
        templates=templates,
        service_name=config.drafting.service_name,
    ).to_dict()
    if as_json:
        emit_json(result)
        return
    out = sys.stdout
    if result["automated"]:
        click.echo("Automated message (auto-reply or bounce): no draft.", file=out)
    for code in result["codes"]:
        click.echo(
            f"{code['code']:<9} {code['system']:<10} {code['status']:<24} {code['title'] or ''}"
        )
    for mod in result["modifiers"]:
        click.echo(f"modifier {mod['modifier']}: {mod['title']}")
    for finding in result["findings"]:
        click.echo(f"[{finding['kind']}] {finding['message']}  ({finding['source']})")
    if result["suggestions"]:
        click.echo("Suggested codes:")
        for hit in result["suggestions"]:
            click.echo(f"  {hit['code']:<9} {hit['title']}")
    if result["draft"]:
        click.echo("\n--- draft ---\n" + result["draft"])
