"""``familycard synth`` and ``familycard demo``: the synthetic nation's commands.

- ``familycard synth`` generates a synthetic nation (agency extracts and ground truth), or with
  ``--report DIR`` prints the calibration report of an existing one;
- ``familycard demo`` generates a small nation, runs the pipeline on it and prints what came out.

User errors (bad options, an invalid configuration, a missing output folder) print a one-line message
and exit with code 2, never a Python traceback. ``--strict`` makes a calibration miss exit with code 1.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from familycard import cli_pipeline
from familycard.synth.config import FaultRates, SynthConfig
from familycard.synth.generate import Summary, generate
from familycard.synth.report import Figure, calibration, figures_json, format_report

DEFAULTS = SynthConfig()
"""The generator's defaults: the option defaults below read them so that ``--help`` shows the same numbers."""
USER_ERROR = 2
"""Exit code of a user error (bad option or configuration), as for Typer's own usage errors."""
CALIBRATION_MISS = 1
"""Exit code of ``--strict`` when a calibration figure is outside its tolerance."""

# ---- helpers -------------------------------------------------------------------------------------


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _fail(message: str, code: int = USER_ERROR) -> NoReturn:
    """Print a one-line error to stderr and exit with ``code``."""
    _err().print(Text(f"Error: {message}", style="bold red"), soft_wrap=True)
    raise typer.Exit(code)


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_start(text: str) -> dt.date:
    """First day of the month ``YYYY-MM``; raises :class:`typer.BadParameter` otherwise."""
    m = _MONTH.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1:
        raise typer.BadParameter(
            f"{text!r} is not a month; expected YYYY-MM, e.g. 2024-12", param_hint="'--start'"
        )
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def _config(
    families: int, seed: int, months: int, start: str, chunk_families: int, fault_scale: float
) -> SynthConfig:
    first = parse_start(start)
    try:
        return SynthConfig(
            families=families,
            seed=seed,
            months=months,
            start=first,
            chunk_families=chunk_families,
            faults=FaultRates.scaled(fault_scale),
        )
    except ValueError as e:
        _fail(str(e))


def _generate(cfg: SynthConfig, out: Path, *, show_progress: bool) -> tuple[Summary, float]:
    """Generate with a progress bar over chunks (on stderr); returns the summary and the seconds taken."""
    t0 = time.perf_counter()
    with _errors_as_messages(out):
        if not show_progress:
            summary = generate(cfg, out)
        else:
            with Progress(
                TextColumn("[bold]generating[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("chunks"),
                TimeElapsedColumn(),
                console=_err(),
            ) as bar:
                task = bar.add_task(f"{cfg.families:,} families × {cfg.months} months", total=cfg.n_chunks)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                summary = generate(cfg, out, progress=progress)
    return summary, time.perf_counter() - t0


@contextmanager
def _errors_as_messages(out: Path) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot write to {out}: {e.strerror or e}")


def _print_summary(summary: Summary, seconds: float, out: Path, console: Console) -> None:
    table = Table(title="Synthetic nation", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("families", f"{summary.families:,}")
    table.add_row("persons", f"{summary.persons:,}")
    table.add_row("deliveries", f"{summary.deliveries:,}")
    table.add_row("seconds", f"{seconds:.1f}")
    table.add_row("output", str(out))
    console.print(table)
    feeds = Table(title="Rows per feed", title_justify="left")
    feeds.add_column("feed")
    feeds.add_column("rows", justify="right")
    for name, rows in summary.rows_by_feed.items():
        feeds.add_row(name, f"{rows:,}")
    feeds.add_row("total", f"{sum(summary.rows_by_feed.values()):,}", style="bold")
    console.print(feeds)


def _summary_json(summary: Summary, seconds: float, out: Path) -> dict[str, object]:
    return {**asdict(summary), "seconds": round(seconds, 3), "out": str(out)}


def _calibration(out: Path) -> list[Figure]:
    try:
        return calibration(out)
    except FileNotFoundError as e:
        _fail(str(e))


def _print_report(figures: list[Figure], console: Console) -> None:
    text = Text()
    for line in format_report(figures).splitlines():
        style = ""
        if line.startswith("MISS ") or "  MISS  " in line:
            style = "bold red"
        elif line.endswith("figures within tolerance"):
            style = "bold green" if all(f.ok for f in figures) else "bold yellow"
        text.append(line + "\n", style=style)
    console.print(text, end="", soft_wrap=True)


# ---- commands ------------------------------------------------------------------------------------


def synth(
    families: Annotated[
        int, typer.Option(min=1, help="Number of families to generate (at least 1).", show_default=True)
    ] = DEFAULTS.families,
    seed: Annotated[int, typer.Option(help="Random seed: the same settings give byte-identical output.")] = (
        DEFAULTS.seed
    ),
    out: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Output folder: agency extracts go to OUT/sources/, the ground truth to OUT/truth/ "
            "(both replaced).",
        ),
    ] = None,
    months: Annotated[int, typer.Option(help="Number of simulated months (1-120).")] = DEFAULTS.months,
    start: Annotated[str, typer.Option(help="First simulated month, YYYY-MM.")] = DEFAULTS.start.strftime(
        "%Y-%m"
    ),
    chunk_families: Annotated[
        int,
        typer.Option(help="Families simulated at a time (at least 100); bounds memory, not the result size."),
    ] = DEFAULTS.chunk_families,
    fault_scale: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Multiply every fault rate of the agency extracts (0 gives clean extracts, 2 doubles them).",
        ),
    ] = 1.0,
    report: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Print the calibration report of an existing output folder REPORT instead of generating.",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="With --report: exit with code 1 when any figure misses its target.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary or the report as JSON instead of tables.")
    ] = False,
) -> None:
    """Generate a synthetic nation, or report how well an existing one matches the national figures.

    Generating writes every agency's extracts (with realistic faults) to OUT/sources/ and the ground truth
    to OUT/truth/, then prints what was produced. With --report DIR, prints the calibration table: each
    figure measured on DIR/truth/ next to its target and tolerance (ok or MISS).

    Examples: `familycard synth --families 20000 --seed 1 --out nation`;
    `familycard synth --report nation --strict`.
    """
    if report is not None:
        if out is not None:
            raise typer.BadParameter(
                "use either --out (generate) or --report (report)", param_hint="'--report'"
            )
        figures = _calibration(report)
        if as_json:
            typer.echo(json.dumps(figures_json(figures), ensure_ascii=False, indent=1))
        else:
            _print_report(figures, _out())
        if strict and not all(f.ok for f in figures):
            raise typer.Exit(CALIBRATION_MISS)
        return
    if strict:
        raise typer.BadParameter("--strict applies only with --report DIR", param_hint="'--strict'")
    if out is None:
        raise typer.BadParameter(
            "give the output folder (or --report DIR for a report)", param_hint="'--out'"
        )
    cfg = _config(families, seed, months, start, chunk_families, fault_scale)
    summary, seconds = _generate(cfg, out, show_progress=not as_json)
    if as_json:
        typer.echo(json.dumps(_summary_json(summary, seconds, out), ensure_ascii=False, indent=1))
        return
    console = _out()
    _print_summary(summary, seconds, out, console)
    console.print(f"Calibration report: familycard synth --report {out}")


def demo(
    out: Annotated[Path, typer.Option(file_okay=False, help="Folder for the demo's files.")] = Path("demo"),
    families: Annotated[int, typer.Option(min=1, help="Number of families in the demo nation.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed of the demo nation.")] = 0,
    months: Annotated[int, typer.Option(help="Number of simulated months (1-120).")] = 12,
    serve: Annotated[bool, typer.Option(help="End by serving the web app (stop it with Ctrl-C).")] = True,
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8000,
) -> None:
    """Generate a small synthetic nation, run the pipeline on it, show what came out, and serve the web app.

    Prints the generator's summary and the calibration report (tolerances are set for 20,000 families, so
    a small nation may miss some figures by chance), then ingests the agency extracts into the warehouse
    OUT/data (replaced) and prints each feed's quality and one family's explanation. Then it creates
    one demo account per role (fresh random passwords, printed) and serves the web app at
    http://127.0.0.1:PORT/ until stopped.
    """
    cfg = _config(families, seed, months, DEFAULTS.start.strftime("%Y-%m"), DEFAULTS.chunk_families, 1.0)
    summary, seconds = _generate(cfg, out, show_progress=True)
    console = _out()
    _print_summary(summary, seconds, out, console)
    console.print()
    console.print(Text("Calibration (generated nation vs national figures)", style="bold"))
    _print_report(_calibration(out), console)
    console.print()
    console.print(
        f"Agency extracts: {out / 'sources'} (index: {out / 'sources' / 'manifest.json'})", soft_wrap=True
    )
    console.print(f"Ground truth:    {out / 'truth'}", soft_wrap=True)
    console.print()
    data = out / "data"
    shutil.rmtree(data, ignore_errors=True)  # the nation was replaced: its warehouse starts afresh
    cli_pipeline.run(sources=out / "sources", data=data)
    console.print()
    console.print(Text("Feed quality", style="bold"))
    cli_pipeline.quality(data=data)
    _show_an_explanation(data, console)
    from familycard import cli_web

    cli_web.demo_platform(data, console, serve=serve, port=port)


def _show_an_explanation(data: Path, console: Console) -> None:
    """Print the explanation of the family with the highest score, and how to see any other."""
    from familycard.scoring.explain import explain_family, render
    from familycard.store.warehouse import Warehouse

    wh = Warehouse(data)
    scores = wh.read("family_scores", wh.published()).sort_by(
        [("score", "descending"), ("family_id", "ascending")]
    )
    if not scores.num_rows:
        return
    family = str(scores.column("family_id")[0])
    console.print()
    console.print(Text("The most deprived family, explained", style="bold"))
    console.print(render(explain_family(data, family, "en")), soft_wrap=True, markup=False, highlight=False)
    console.print()
    console.print(
        f"Any family: familycard explain --data {data} --family ID [--lang kk|ru|en]    "
        f"Methodology change: familycard methodology diff --data {data} --from v1 --to v2",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command()(synth)
    app.command()(demo)
