"""Tests for the ``familycard`` command line (``familycard.cli``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from familycard.cli import app
from familycard.synth.generate import TRUTH_SCHEMAS
from familycard.synth.report import targets

runner = CliRunner()
REPORTED = [t.name for t in targets().values() if t.report]


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def assert_user_error(result: Result, *fragments: str) -> None:
    """A clean failure: non-zero exit, a message, no Python traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture(scope="module")
def nation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "nation"
    result = invoke(
        "synth",
        "--families",
        "300",
        "--months",
        "3",
        "--chunk-families",
        "100",
        "--seed",
        "7",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    return out


# ---- help and version ----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["synth"], ["demo"]])
def test_help(args: list[str]) -> None:
    result = invoke(*args, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_synth_help_names_every_option() -> None:
    out = invoke("synth", "--help").output
    options = (
        "--families --seed --out --months --start --chunk-families --fault-scale --report --strict --json"
    )
    for option in options.split():
        assert option in out


def test_no_command_shows_help() -> None:
    result = invoke()
    assert "synth" in result.output and "demo" in result.output


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.startswith("familycard ")


# ---- synth ---------------------------------------------------------------------------------------


def test_synth_writes_sources_and_truth(nation: Path) -> None:
    assert (nation / "sources" / "manifest.json").is_file()
    assert (nation / "truth" / "run.json").is_file()
    for name in TRUTH_SCHEMAS:
        assert (nation / "truth" / f"{name}.parquet").is_file(), name
    run = json.loads((nation / "truth" / "run.json").read_text("utf-8"))
    assert run["config"]["families"] == 300
    assert run["config"]["months"] == 3
    assert run["config"]["chunk_families"] == 100
    manifest = json.loads((nation / "sources" / "manifest.json").read_text("utf-8"))
    assert manifest["deliveries"]
    for d in manifest["deliveries"]:
        assert (nation / "sources" / d["file"]).is_file()


def test_synth_prints_summary(tmp_path: Path) -> None:
    result = invoke(
        "synth", "--families", "150", "--months", "1", "--chunk-families", "100", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    for word in ("families", "persons", "deliveries", "seconds", "civil_registry", "unemployment"):
        assert word in result.output


def test_synth_json_summary(tmp_path: Path) -> None:
    result = invoke(
        "synth", "--families", "120", "--months", "1", "--fault-scale", "0", "--out", str(tmp_path), "--json"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["families"] >= 120
    assert summary["persons"] > summary["families"] > 0
    assert summary["rows_by_feed"]["civil_registry"] > 0
    run = json.loads((tmp_path / "truth" / "run.json").read_text("utf-8"))
    assert all(v == 0 for v in run["config"]["faults"].values())


def test_report_prints_every_figure(nation: Path) -> None:
    result = invoke("synth", "--report", str(nation))
    assert result.exit_code == 0, result.output
    for name in REPORTED:
        assert name in result.output
    assert "figures within tolerance" in result.output


def test_report_json_and_strict(nation: Path) -> None:
    result = invoke("synth", "--report", str(nation), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [f["name"] for f in report["figures"]] == REPORTED
    assert report["ok"] == all(f["ok"] for f in report["figures"])
    strict = invoke("synth", "--report", str(nation), "--strict")
    assert strict.exit_code == (0 if report["ok"] else 1), strict.output
    assert "Traceback" not in strict.output


# ---- user errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--families", "0"], "--families"),
        (["--months", "0"], "months"),
        (["--months", "121"], "months"),
        (["--start", "2024-13"], "2024-13"),
        (["--start", "December"], "YYYY-MM"),
        (["--chunk-families", "50"], "chunk_families"),
        (["--fault-scale", "-1"], "--fault-scale"),
        (["--families", "many"], "--families"),
    ],
)
def test_invalid_arguments(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = invoke("synth", *args, "--out", str(tmp_path / "x"))
    assert_user_error(result, fragment)
    assert not (tmp_path / "x" / "truth").exists()


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    result = invoke("synth", "--months", "0", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0, result.output
    assert result.output.startswith("Error:")


def test_synth_needs_out() -> None:
    assert_user_error(invoke("synth", "--families", "10"), "--out")


def test_report_and_out_together(tmp_path: Path) -> None:
    assert_user_error(invoke("synth", "--report", str(tmp_path), "--out", str(tmp_path)), "--report")


def test_strict_needs_report(tmp_path: Path) -> None:
    assert_user_error(invoke("synth", "--strict", "--out", str(tmp_path)), "--strict")


def test_report_of_missing_output(tmp_path: Path) -> None:
    result = invoke("synth", "--report", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert_user_error(result, "run.json")


# ---- demo ----------------------------------------------------------------------------------------


def test_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = invoke("demo", "--out", str(out), "--families", "300", "--no-serve")
    assert result.exit_code == 0, result.output
    assert (out / "sources" / "manifest.json").is_file()
    assert (out / "truth" / "run.json").is_file()
    for name in REPORTED:
        assert name in result.output
    assert str(out / "sources") in result.output
    assert str(out / "truth") in result.output


def test_demo_invalid_families(tmp_path: Path) -> None:
    assert_user_error(invoke("demo", "--out", str(tmp_path), "--families", "0"), "--families")


# ---- pipeline: run, quality, quarantine ------------------------------------------------------------


@pytest.fixture(scope="module")
def data(nation: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-data") / "data"
    result = invoke("run", "--sources", str(nation / "sources"), "--data", str(out))
    assert result.exit_code == 0, result.output
    assert "deliveries loaded" in result.output
    return out


def test_run_twice_says_nothing_new(nation: Path, data: Path) -> None:
    result = invoke("run", "--sources", str(nation / "sources"), "--data", str(data), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["run"] is None and report["skipped"] > 0


def test_quality_table_and_json(data: Path) -> None:
    result = invoke("quality", "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "civil_registry" in result.output and "complete" in result.output
    rows = json.loads(invoke("quality", "--data", str(data), "--json").output)
    assert {r["feed"] for r in rows} >= {"civil_registry", "health", "pension_payments"}
    late = json.loads(invoke("quality", "--data", str(data), "--json", "--as-of", "2030-01-01").output)
    assert sum(r["missing"] for r in late) > sum(r["missing"] for r in rows)


def test_quarantine_lists_and_exports(data: Path, tmp_path: Path) -> None:
    result = invoke("quarantine", "--data", str(data), "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "Quarantine:" in result.output and "check_digit" in result.output
    out = tmp_path / "held.csv"
    result = invoke("quarantine", "--data", str(data), "--export", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith('"delivery","seq","feed","file","line","field","value","rule"')
    assert len(lines) > 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--sources", "/nonexistent/src", "--data", "{tmp}"], "no sources directory"),
        (["run", "--sources", "{tmp}", "--data", "{tmp}/d", "--engine", "oracle"], "unknown engine"),
        (["quality", "--data", "{tmp}/empty"], "no warehouse"),
        (["quarantine", "--data", "{tmp}/empty"], "no warehouse"),
        (["quality", "--data", "{tmp}", "--as-of", "soon"], "--as-of"),
    ],
)
def test_pipeline_user_errors(tmp_path: Path, args: list[str], fragment: str) -> None:
    assert_user_error(invoke(*[a.replace("{tmp}", str(tmp_path)) for a in args]), fragment)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_a_table(data: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"deliveries.{fmt}"
    result = invoke(
        "export", "--data", str(data), "--table", "deliveries", "--format", fmt, "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0 and "rows of deliveries" in result.output


def test_export_names_the_tables_it_has(data: Path, tmp_path: Path) -> None:
    result = invoke("export", "--data", str(data), "--table", "nope", "--out", str(tmp_path / "x.csv"))
    assert_user_error(result, "no table 'nope'", "deliveries")


def test_eval_scores_the_run_against_the_truth(nation: Path, data: Path) -> None:
    result = invoke("eval", "--truth", str(nation / "truth"), "--data", str(data), "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["identity"]["precision"] > 0.99 and scores["identity"]["recall"] > 0.99
    assert set(scores["identity"]["by_fault"]) == {"iin_missing", "iin_mistyped", "name_typo", "name_variant"}
    families = scores["families"]
    assert families["f1"] > 0.95 and families["exact_share"] > 0.9 and families["by_hard_case"]
    table = invoke("eval", "--truth", str(nation / "truth"), "--data", str(data))
    assert "Person linkage" in table.output and "iin_mistyped" in table.output


def test_eval_needs_a_truth_folder(data: Path, tmp_path: Path) -> None:
    assert_user_error(invoke("eval", "--truth", str(tmp_path), "--data", str(data)), "no ground truth")
