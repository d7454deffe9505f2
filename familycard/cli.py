"""The ``familycard`` command line: one Typer app; each area registers its commands.

- ``familycard synth``, ``familycard demo``: the synthetic nation (:mod:`familycard.synth.commands`);
- ``familycard run``, ``quality``, ``quarantine``, ``export``: the pipeline (:mod:`familycard.cli_pipeline`);
- ``familycard explain``, ``familycard methodology list|diff``: the assessment
  (:mod:`familycard.cli_scoring`);
- ``familycard eval``: scores a run against the synthetic nation it came from (:mod:`familycard.eval_cli`);
- ``familycard serve``, ``audit verify``, ``accounts add``, ``keys rotate``, ``store upgrade``: the web
  platform (:mod:`familycard.cli_web`).

User errors print a one-line message and exit with code 2, never a Python traceback.
"""

from __future__ import annotations

from importlib import metadata
from typing import Annotated

import typer

from familycard import cli_pipeline, cli_scoring, cli_web, eval_cli
from familycard.synth import commands as synth_commands

app = typer.Typer(
    name="familycard",
    help="Digital Family Card: find families in hardship before they apply for help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version() -> str:
    try:
        return metadata.version("familycard")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"familycard {_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Digital Family Card: find families in hardship before they apply for help.

    Start with `familycard demo`, or generate a synthetic nation with `familycard synth`.
    """


synth_commands.register(app)
cli_pipeline.register(app)
cli_scoring.register(app)
eval_cli.register(app)
cli_web.register(app)


if __name__ == "__main__":  # python -m familycard.cli
    app()
