"""``familycard eval``: score a warehouse against the synthetic nation's ground truth.

Only the evaluation reads ``truth/``; the pipeline never does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table


def evaluate(
    truth: Annotated[Path, typer.Option(file_okay=False, help="The nation's truth folder (OUT/truth).")],
    data: Annotated[Path, typer.Option(file_okay=False, help="The warehouse folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score the run against the ground truth: person linkage precision and recall (overall and by fault
    type), and family reconstruction (pairwise precision/recall/F1, exact families, by hard case)."""
    from familycard.identity.evaluate import evaluate_identity
    from familycard.store.warehouse import Warehouse

    if not (truth / "source_records.parquet").is_file():
        _fail(f"no ground truth at {truth} (expected source_records.parquet there)")
    wh = Warehouse(data)
    if wh.current() is None or "person_links" not in wh.tables():
        _fail(f"no person index in the warehouse at {data}: run `familycard run` first")
    scores: dict[str, Any] = {"identity": evaluate_identity(data, truth).as_dict()}
    scores.update(_families(data, truth, wh.tables()))
    scores.update(_targeting(data, truth, wh.tables()))
    if as_json:
        typer.echo(json.dumps(scores, ensure_ascii=False, indent=1))
        return
    _print(scores)


def _families(data: Path, truth: Path, tables: list[str]) -> dict[str, Any]:
    if "families" not in tables:
        return {}
    from familycard.families.evaluate import evaluate as evaluate_families
    from familycard.store.warehouse import Warehouse

    ev = evaluate_families(Warehouse(data), truth)
    groups = {str(r["group"]): r for r in ev.rows}
    overall = groups.pop("all")
    return {
        "families": {
            **overall,
            "as_of": ev.as_of,
            "head_accuracy": ev.head_accuracy,
            "by_hard_case": groups,
        }
    }


def _targeting(data: Path, truth: Path, tables: list[str]) -> dict[str, Any]:
    if "family_scores" not in tables:
        return {}
    from familycard.scoring.evaluate import evaluate_targeting
    from familycard.store.warehouse import Warehouse

    return {"targeting": evaluate_targeting(Warehouse(data), truth).as_dict()}


def _fail(message: str) -> None:
    Console(stderr=True, highlight=False).print(f"[bold red]Error:[/bold red] {message}", soft_wrap=True)
    raise typer.Exit(2)


def _print(scores: dict[str, Any]) -> None:
    console = Console(highlight=False)
    ident = scores["identity"]
    table = Table(title=f"Person linkage ({ident['mentions']:,} mentions)", title_justify="left")
    for col in ("", "precision", "recall", "mentions"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row("all", f"{ident['precision']:.4f}", f"{ident['recall']:.4f}", f"{ident['mentions']:,}")
    for fault, s in ident["by_fault"].items():
        table.add_row(fault, f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['mentions']:,}")
    console.print(table)
    fam = scores.get("families")
    if fam:
        ft = Table(title="Families", title_justify="left")
        for col in ("", "precision", "recall", "F1", "exact", "families"):
            ft.add_column(col, justify="right" if col else "left")
        rows = [("all", fam), *sorted(fam.get("by_hard_case", {}).items())]
        for name, s in rows:
            ft.add_row(
                name,
                f"{s['precision']:.4f}",
                f"{s['recall']:.4f}",
                f"{s['f1']:.4f}",
                f"{s['exact_share']:.4f}",
                f"{s['families']:,}",
            )
        console.print(ft)
    tgt = scores.get("targeting")
    if tgt:
        _print_targeting(console, tgt)


def _print_targeting(console: Console, tgt: dict[str, Any]) -> None:
    """Exclusion and inclusion errors of the levels and of the PMT baseline, overall and by group."""
    table = Table(
        title=f"Targeting (in need = true level D or E; methodology {tgt['methodology']}, "
        f"as of {tgt['as_of']}; "
        f"PMT R² {tgt['pmt_r2']:.3f})",
        title_justify="left",
    )
    for col in (
        "group",
        "",
        "in need",
        "exclusion",
        "PMT exclusion",
        "targeted",
        "inclusion",
        "PMT inclusion",
    ):
        table.add_column(col, justify="left" if col in ("group", "") else "right")
    lv, pmt = tgt["levels"], tgt["pmt"]
    table.add_row(
        "all",
        "",
        f"{lv['in_need']:,}",
        f"{lv['exclusion_error']:.3f}",
        f"{pmt['exclusion_error']:.3f}",
        f"{lv['targeted']:,}",
        f"{lv['inclusion_error']:.3f}",
        f"{pmt['inclusion_error']:.3f}",
    )
    for group, values in lv["by_group"].items():
        for value, s in values.items():
            p = pmt["by_group"][group][value]
            table.add_row(
                group,
                value,
                f"{s['in_need']:,}",
                f"{s['exclusion_error']:.3f}",
                f"{p['exclusion_error']:.3f}",
                f"{s['targeted']:,}",
                f"{s['inclusion_error']:.3f}",
                f"{p['inclusion_error']:.3f}",
            )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)
