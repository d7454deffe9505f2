"""The documentation of the synthetic nation stays true to the code.

``docs/synthetic-nation.md`` pastes tables generated from the code (the feed catalogue ``FEEDS``, the
fault rates of ``FaultRates`` with their docstrings, the archetype shares of the population). These
tests fail when the code changes and the docs do not; ``python tests/test_docs.py`` prints the current
tables to paste.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import sys
from dataclasses import fields
from pathlib import Path

import pyarrow as pa

from familycard.synth import config
from familycard.synth.config import FaultRates
from familycard.synth.extracts import Feed
from familycard.synth.feeds import FEEDS
from familycard.synth.population import ARCHETYPE_SHARES

DOC = Path(__file__).resolve().parents[1] / "docs" / "synthetic-nation.md"
CADENCE = {1: "monthly", 3: "quarterly"}


def fault_docs() -> dict[str, str]:
    """Each FaultRates field's docstring (the string right after the field in config.py)."""
    tree = ast.parse(inspect.getsource(config))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "FaultRates")
    out: dict[str, str] = {}
    body = cls.body
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            out[node.target.id] = " ".join(after.value.value.split())
    return out


def feed_faults(feed: Feed) -> list[str]:
    """The record-level faults that can touch a feed's rows."""
    out = []
    if feed.iin_columns and not feed.iin_authority:
        out += ["iin_missing", "iin_mistyped"]
    if feed.name_columns:
        out += ["name_typo", "name_variant"]
    if feed.date_columns and feed.fmt.kind != "parquet":
        out.append("date_format")
    out.append("duplicate")
    return out


def _format(feed: Feed) -> str:
    fmt = feed.fmt
    if fmt.kind == "parquet":
        return "Parquet"
    eol = "CRLF" if fmt.line_ending == "\r\n" else "LF"
    if fmt.kind == "csv":
        delimiter = fmt.delimiter.replace("|", "\\|")
        return f"CSV `{delimiter}`, {fmt.encoding}, {eol}"
    if fmt.kind == "fixed":
        return f"fixed width, {fmt.encoding}, {eol}"
    return f"JSON lines, {fmt.encoding}, {eol}"


def feed_table() -> list[str]:
    """Who sends what, how often, and in which shape."""
    lines = [
        "| feed | agency | contents | cadence | mode | id column |",
        "|---|---|---|---|---|---|",
    ]
    for f in FEEDS:
        lines.append(
            f"| `{f.name}` | {f.agency} | {f.title} | {CADENCE.get(f.cadence, f'every {f.cadence} months')} "
            f"| {f.mode} | `{f.id_column}` |"
        )
    return lines


def format_table() -> list[str]:
    """How each feed is written, and which faults apply to it."""
    lines = [
        "| feed | format, encoding, line ending | names written in | dates written as | faults |",
        "|---|---|---|---|---|",
    ]
    for f in FEEDS:
        if f.fmt.kind == "parquet":
            dates = "typed (date32)" if pa.date32() in f.types.values() else "—"
        else:
            dates = f"`{f.date_style}`" if f.date_columns else "—"
        faults = ", ".join(f"`{x}`" for x in feed_faults(f))
        lines.append(f"| `{f.name}` | {_format(f)} | `{f.name_script}` | {dates} | {faults} |")
    return lines


def column_table() -> list[str]:
    """Every feed's columns in file order."""
    lines = ["| feed | columns |", "|---|---|"]
    for f in FEEDS:
        lines.append(f"| `{f.name}` | {', '.join(f'`{c}`' for c in f.columns)} |")
    return lines


def fault_table() -> list[str]:
    """Every fault rate with its default and meaning."""
    docs = fault_docs()
    defaults = FaultRates()
    lines = ["| fault | default | meaning |", "|---|---|---|"]
    for f in fields(FaultRates):
        lines.append(f"| `{f.name}` | {getattr(defaults, f.name):.3f} | {docs[f.name]} |")
    return lines


def archetype_table() -> list[str]:
    """The archetypes families are drawn from at the start, with their shares."""
    lines = ["| archetype | share of families at the start |", "|---|---|"]
    for archetype, share in ARCHETYPE_SHARES.items():
        lines.append(f"| `{archetype.name.lower()}` | {share * 100:.1f} % |")
    return lines


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_docs_name_every_feed() -> None:
    text = doc_text()
    missing = [f.name for f in FEEDS if f"`{f.name}`" not in text]
    assert not missing, f"docs/synthetic-nation.md does not mention feeds {missing}"


def test_docs_name_every_fault_rate() -> None:
    text = doc_text()
    missing = [f.name for f in fields(FaultRates) if f"`{f.name}`" not in text]
    assert not missing, f"docs/synthetic-nation.md does not mention fault rates {missing}"


def test_every_fault_rate_has_a_docstring() -> None:
    assert set(fault_docs()) == {f.name for f in fields(FaultRates)}


def test_pasted_tables_are_current() -> None:
    text = doc_text().splitlines()
    for name, table in (
        ("feed", feed_table()),
        ("format", format_table()),
        ("column", column_table()),
        ("fault", fault_table()),
        ("archetype", archetype_table()),
    ):
        stale = [line for line in table if line not in text]
        assert not stale, (
            f"the {name} table of docs/synthetic-nation.md is out of date (run `python tests/test_docs.py`); "
            f"missing lines: {stale[:3]}"
        )


if __name__ == "__main__":
    for table in (feed_table(), format_table(), column_table(), fault_table(), archetype_table()):
        sys.stdout.write("\n".join(table) + "\n\n")
