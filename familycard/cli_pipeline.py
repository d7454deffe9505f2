"""``familycard run``, ``familycard quality`` and ``familycard quarantine``: the pipeline's commands."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from familycard.indicators.methodology import MethodologyError
from familycard.sources.catalogue import CatalogueError
from familycard.sources.formats import FormatError

DataOption = Annotated[Path, typer.Option(file_okay=False, help="The warehouse folder.")]


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _fail(message: str) -> typer.Exit:
    _err().print(f"[bold red]Error:[/bold red] {message}", soft_wrap=True, markup=True)
    return typer.Exit(2)


def run(
    sources: Annotated[
        Path, typer.Option(file_okay=False, help="Folder of agency deliveries (one subfolder per feed).")
    ],
    data: DataOption,
    engine: Annotated[
        str, typer.Option(help="Analytical engine: duckdb (embedded) or spark (local mode).")
    ] = "duckdb",
    methodology: Annotated[
        str, typer.Option(help="Well-being methodology: a version id under methodology/wellbeing or a file.")
    ] = "v1",
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's report as JSON.")] = False,
) -> None:
    """Run the pipeline: ingest every new delivery under SOURCES into the warehouse at DATA, link persons,
    build families and assess them (indicators, score, level A–E, situations).

    Each delivery is recorded with its checksum and row counts; a broken file is rejected whole with its
    reason while the others load; bad rows go to quarantine (`familycard quarantine`); each feed's history
    keeps every version of every record. Files already ingested are skipped.
    """
    from familycard import pipeline

    if engine not in pipeline.ENGINES:
        raise _fail(f"unknown engine {engine!r}; choose one of {', '.join(pipeline.ENGINES)}")
    t0 = time.perf_counter()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=_err(),
            disable=as_json,
        ) as bar:
            tasks: dict[str, object] = {}

            def progress(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(
                        {"read": "reading deliveries", "merge": "merging feeds"}.get(what, what), total=total
                    )
                bar.update(tasks[what], completed=done, total=total)  # type: ignore[arg-type]

            report = pipeline.run_pipeline(
                sources, data, engine=engine, progress=progress, methodology=methodology
            )
    except (FileNotFoundError, CatalogueError, FormatError, MethodologyError) as exc:
        raise _fail(str(exc)) from None
    seconds = time.perf_counter() - t0
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "identity": report.identity.as_dict() if report.identity else None,
                    "families": report.families.families if report.families else None,
                    "levels": report.assessment.by_level if report.assessment else None,
                    "run": report.run,
                    "seconds": round(seconds, 2),
                    "skipped": report.skipped,
                    "feeds_changed": report.feeds_changed,
                    "deliveries": report.deliveries,
                },
                ensure_ascii=False,
                indent=1,
                default=str,
            )
        )
        return
    console = Console(highlight=False)
    if report.run is None:
        console.print(f"Nothing new under {sources}: {report.skipped} deliveries already ingested.")
        return
    loaded = [d for d in report.deliveries if d["status"] == "loaded"]
    table = Table(title=f"Run {report.run}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("deliveries loaded", f"{len(loaded):,}")
    table.add_row("files rejected", f"{len(report.rejected_files):,}")
    table.add_row("already ingested", f"{report.skipped:,}")
    table.add_row("rows read", f"{sum(int(d['rows_read']) for d in loaded):,}")  # type: ignore[call-overload]
    table.add_row("rows rejected", f"{sum(int(d['rows_rejected']) for d in loaded):,}")  # type: ignore[call-overload]
    table.add_row("rows with a value set aside", f"{sum(int(d['rows_flagged']) for d in loaded):,}")  # type: ignore[call-overload]
    if report.identity is not None:
        ident = report.identity
        table.add_row("person mentions", f"{ident.mentions:,}")
        table.add_row("persons", f"{ident.persons:,}")
        table.add_row("links waiting for review", f"{ident.review:,}")
    if report.families is not None:
        table.add_row(f"families (as of {report.families.as_of})", f"{report.families.families:,}")
    if report.assessment is not None:
        a = report.assessment
        levels = "  ".join(f"{k} {v:,}" for k, v in sorted(a.by_level.items()))
        table.add_row(f"levels ({a.methodology}, {a.indicators} indicators)", levels)
        table.add_row("families in the target group", f"{a.targeted:,}")
    table.add_row("seconds", f"{seconds:.1f}")
    console.print(table)
    for d in report.rejected_files:
        console.print(f"[bold red]rejected[/bold red] {d['message']}", soft_wrap=True)
    console.print(
        f"Quality: familycard quality --data {data}    Quarantine: familycard quarantine --data {data}"
    )


def quality(
    data: DataOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Judge timeliness as of this date (YYYY-MM-DD); default: the latest delivery received."
        ),
    ] = None,
) -> None:
    """Freshness and quality of every feed: completeness, validity, uniqueness, timeliness, consistency."""
    from familycard import pipeline
    from familycard.sources.quality import format_quality, quality_json

    try:
        when = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise _fail(f"--as-of {as_of!r} is not a date YYYY-MM-DD") from None
    try:
        q = pipeline.quality(data, as_of=when)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    typer.echo(quality_json(q.feeds) if as_json else format_quality(q.feeds))


def quarantine(
    data: DataOption,
    feed: Annotated[str | None, typer.Option(help="Only this feed.")] = None,
    released: Annotated[bool, typer.Option("--all", help="Include entries already released.")] = False,
    export: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False, help="Write the entries to FILE (.csv or .parquet) instead of printing them."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="Entries printed (export writes all).")] = 50,
) -> None:
    """Rows and values held back by validation: feed, file, line, field, value, rule and reason.

    A rejected row waits here with the record as delivered; a flagged row was loaded with the bad value set
    aside. An entry is released when a later delivery corrects the record or the agency sends the period
    again.
    """
    from familycard import pipeline

    try:
        table = pipeline.quarantine(data, feed=feed, include_released=released)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    if export is not None:
        if export.suffix == ".parquet":
            pq.write_table(table, export)
        elif export.suffix == ".csv":
            pacsv.write_csv(table, export)
        else:
            raise _fail(f"cannot export to {export}: use a .csv or .parquet file name")
        typer.echo(f"{table.num_rows:,} entries written to {export}")
        return
    _print_quarantine(table, limit)


def _print_quarantine(table: pa.Table, limit: int) -> None:
    console = Console(highlight=False)
    out = Table(title=f"Quarantine: {table.num_rows:,} entries", title_justify="left")
    for col in ("where", "field", "value", "rule", "reason"):
        out.add_column(col, overflow="fold")
    for r in table.slice(0, limit).to_pylist():
        where = f"{r['file']}:{r['line']}"
        rule = f"{r['rule']} ({r['severity']})"
        out.add_row(where, r["field"] or "", r["value"] or "", rule, r["reason"] or "")
    console.print(out)
    if table.num_rows > limit:
        console.print(f"… {table.num_rows - limit:,} more (use --export FILE.csv)")


def export(
    data: DataOption,
    table: Annotated[str, typer.Option(help="Warehouse table, e.g. persons, family_members, quality.")],
    out: Annotated[Path, typer.Option(dir_okay=False, help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Export a table of the current warehouse snapshot to a Parquet or CSV file."""
    from familycard.store.warehouse import Warehouse

    if fmt not in ("parquet", "csv"):
        raise _fail(f"unknown format {fmt!r}; choose parquet or csv")
    wh = Warehouse(data)
    if wh.current() is None:
        raise _fail(f"no warehouse at {data}: run `familycard run --sources DIR --data {data}` first")
    if table not in wh.tables():
        raise _fail(f"no table {table!r} in the warehouse; tables: {', '.join(sorted(wh.tables()))}")
    rows = wh.read(table)
    from familycard.cli_web import audit_operator

    audit_operator(
        data,
        "warehouse.export",
        object_type="table",
        object_id=table,
        rows=rows.num_rows,
        snapshot=wh.current(),
        file=str(out),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(rows, out)
    else:
        pacsv.write_csv(rows, out)
    typer.echo(f"{rows.num_rows:,} rows of {table} written to {out}")


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(quality)
    app.command()(quarantine)
    app.command()(export)
