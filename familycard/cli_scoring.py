"""``familycard explain`` and ``familycard methodology``: the assessment's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from familycard.indicators.methodology import LANGS, MethodologyError

DataOption = Annotated[Path, typer.Option(file_okay=False, help="The warehouse folder.")]
methodology_app = typer.Typer(
    help="The well-being methodology: list the shipped versions, compare two before a change goes live.",
    no_args_is_help=True,
)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"[bold red]Error:[/bold red] {message}", soft_wrap=True)
    return typer.Exit(2)


def explain(
    data: DataOption,
    family: Annotated[str, typer.Option(help="The family id (as in the families table).")],
    lang: Annotated[str, typer.Option(help="Language: kk, ru or en.")] = "en",
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Explain a family's level: the deprivations that put it there, their values, the agency records
    behind them and their dates, and the difficult life situations that apply."""
    from familycard.scoring.explain import NotFound, explain_family, render

    if lang not in LANGS:
        raise _fail(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    try:
        ex = explain_family(data, family, lang)
    except (FileNotFoundError, NotFound, MethodologyError) as exc:
        raise _fail(str(exc)) from None
    from familycard.cli_web import audit_operator

    audit_operator(data, "family.explain", object_type="family", object_id=family, family=family, lang=lang)
    if as_json:
        typer.echo(json.dumps(ex.as_dict(), ensure_ascii=False, indent=1))
    else:
        typer.echo(render(ex))


@methodology_app.command("list")
def list_versions() -> None:
    """The methodology versions shipped in methodology/wellbeing."""
    from familycard.indicators.methodology import available, load_methodology

    table = Table(show_header=True, header_style="bold")
    for col in ("id", "version", "levels", "indicators", "title"):
        table.add_column(col)
    for v in available():
        m = load_methodology(v)
        table.add_row(
            m.id, m.version, " ".join(lv.code for lv in m.levels), str(len(m.indicators)), m.title.en
        )
    Console(highlight=False).print(table)


@methodology_app.command("diff")
def diff(
    data: DataOption,
    source: Annotated[str, typer.Option("--from", help="The methodology in use (id or file).")],
    target: Annotated[str, typer.Option("--to", help="The proposed methodology (id or file).")],
    samples: Annotated[int, typer.Option(help="Sample families shown per move.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """Who would move level if --to replaced --from: the transition matrix, by region, and sample
    families, computed on the published snapshot's facts."""
    from familycard.scoring.diff import methodology_diff

    try:
        d = methodology_diff(data, source, target, samples=samples)
    except (FileNotFoundError, MethodologyError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(d.as_dict(), ensure_ascii=False, indent=1))
        return
    console = Console(highlight=False)
    moved = f"{d.moved:,} change level; " if d.moved is not None else ""
    console.print(
        f"{d.families:,} families as of {d.as_of}, {d.source} → {d.target}: {moved}"
        f"{d.entering:,} enter the target group, {d.leaving:,} leave it"
    )
    console.print(
        _matrix_table(f"{d.source} → {d.target} (all regions)", d.from_levels, d.to_levels, d.matrix)
    )
    for region, m in d.by_region.items():
        console.print(_matrix_table(f"region {region}", d.from_levels, d.to_levels, m))
    if d.samples:
        st = Table(title="Sample families that move", title_justify="left")
        for col in ("family", "region", "from", "to", "score from", "score to"):
            st.add_column(col)
        for s in d.samples:
            st.add_row(
                s["family_id"],
                str(s["region"]),
                s["from"],
                s["to"],
                f"{s['score_from']:.3f}",
                f"{s['score_to']:.3f}",
            )
        console.print(st)


def _matrix_table(title: str, rows: list[str], cols: list[str], m: list[list[int]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("from \\ to")
    for c in cols:
        table.add_column(c, justify="right")
    table.add_column("total", justify="right")
    for r, row in zip(rows, m, strict=True):
        table.add_row(r, *(f"{n:,}" for n in row), f"{sum(row):,}")
    table.add_row(
        "total", *(f"{sum(row[j] for row in m):,}" for j in range(len(cols))), f"{sum(map(sum, m)):,}"
    )
    return table


def register(app: typer.Typer) -> None:
    app.command()(explain)
    app.add_typer(methodology_app, name="methodology")
