"""The assessment: methodology loading and its refusals, indicators, scores, levels, explanations, the
methodology diff, targeting accuracy, and identical results on DuckDB and Spark."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from familycard.cli import app
from familycard.families.asof import period_end
from familycard.indicators import compute, facts
from familycard.indicators.methodology import MethodologyError, load_methodology, substitute
from familycard.scoring.diff import methodology_diff
from familycard.scoring.evaluate import evaluate_targeting
from familycard.scoring.explain import explain_family, render
from familycard.scoring.stage import BASE_INPUTS, FEEDS_READ, OUTPUTS, family_buckets, run_assessment
from familycard.store.engine import Engine
from familycard.store.warehouse import Warehouse, content_digest

if TYPE_CHECKING:
    from conftest import SparkRun

METHODOLOGY = Path(__file__).resolve().parents[1] / "methodology" / "wellbeing"


# ``assessed`` (conftest): a small nation (800 families, 13 months) through the whole pipeline on DuckDB.


def _sql(data: Path, table: str) -> str:
    wh = Warehouse(data)
    return f"'{wh.table_path(table, wh.published())}/*.parquet'"


# ---------------------------------------------------------------------------------------- methodology


def _write_version(tmp: Path, extra_indicator: str = "", version_extra: str = "") -> Path:
    """A copy of the shipped methodology in ``tmp`` with one more indicator and more version keys."""
    for f in ("v1.toml", "indicators.toml", "situations.toml"):
        shutil.copy(METHODOLOGY / f, tmp / f)
    if extra_indicator:
        with (tmp / "indicators.toml").open("a", encoding="utf-8") as fh:
            fh.write(extra_indicator)
    if version_extra:
        with (tmp / "v1.toml").open("a", encoding="utf-8") as fh:
            fh.write(version_extra)
    return tmp / "v1.toml"


def _indicator(value: str, *, unit: str = "family", id_: str = "probe") -> str:
    names = '{ kk = "x", ru = "x", en = "x" }'
    return (
        f'\n[[indicator]]\nid = "{id_}"\ndomain = "social"\nunit = "{unit}"\nvalue = "{value}"\n'
        f'deprived = "value = 1"\nweight = 1\nname = {names}\ndescription = {names}\n'
    )


def test_shipped_versions_load() -> None:
    v1, v2 = load_methodology("v1"), load_methodology("v2")
    assert [lv.code for lv in v1.levels] == ["A", "B", "C", "D", "E"]
    assert len(v2.levels) == 6
    assert len(v1.indicators) >= 80
    assert {i.domain for i in v1.indicators} == set(v1.domains)
    assert abs(sum(v1.effective_weights().values()) - 1.0) < 1e-6
    # v2 extends v1: same indicators and parameters, its own levels
    assert [i.id for i in v2.indicators] == [i.id for i in v1.indicators]
    assert v2.parameters == v1.parameters and v2.digest != v1.digest


@pytest.mark.parametrize("name", ["citizenship", "nationality", "ethnicity", "religion", "migration_status"])
def test_loader_refuses_protected_attributes(tmp_path: Path, name: str) -> None:
    path = _write_version(tmp_path, _indicator(f"CASE WHEN {name} = 'KZ' THEN 1 ELSE 0 END"))
    with pytest.raises(MethodologyError, match="protected attribute") as info:
        load_methodology(path)
    assert "indicators.toml" in str(info.value) and "probe.value" in str(info.value)


def test_loader_refuses_protected_attribute_in_a_person_population(tmp_path: Path) -> None:
    bad = _indicator("1", unit="person").replace(
        "deprived =", 'population = "religion IS NOT NULL"\ndeprived ='
    )
    with pytest.raises(MethodologyError, match="protected attribute"):
        load_methodology(_write_version(tmp_path, bad))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("unknown_fact + 1", "unknown name 'unknown_fact'"),
        ("(SELECT 1)", "only scalar expressions"),
        ("SUM(size)", "only scalar expressions"),
        ("f.size", "without a table prefix"),
        ("size +", "cannot parse"),
    ],
)
def test_loader_refuses_bad_expressions(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(MethodologyError, match=message):
        load_methodology(_write_version(tmp_path, _indicator(value)))


def test_loader_checks_languages_weights_and_levels(tmp_path: Path) -> None:
    no_kk = _indicator("1").replace('name = { kk = "x", ', "name = { ")
    with pytest.raises(MethodologyError, match="missing language"):
        load_methodology(_write_version(tmp_path, no_kk))
    path = _write_version(tmp_path)
    text = re.sub(r"\neconomic = [0-9.]+", "\neconomic = 0.9", path.read_text(encoding="utf-8"))
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MethodologyError, match="sum to 1"):
        load_methodology(path)
    path = _write_version(tmp_path)
    text = re.sub(r'(code = "E"\nmin_score = )[0-9.]+', r"\g<1>0.01", path.read_text(encoding="utf-8"))
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MethodologyError, match="rise strictly"):
        load_methodology(path)


def test_weights_override_in_a_version(tmp_path: Path) -> None:
    base = load_methodology("v1")
    first = base.indicators[0].id
    path = _write_version(tmp_path)
    text = re.sub(rf"\n{first} = [0-9.]+", f"\n{first} = 0", path.read_text(encoding="utf-8"))
    path.write_text(text, encoding="utf-8")
    changed = load_methodology(path)
    assert changed.effective_weights()[first] == 0.0
    assert base.effective_weights()[first] > 0


# ------------------------------------------------------------------------------------------ the stage


def test_every_family_has_a_level_and_indicators(assessed: tuple[Path, Path]) -> None:
    _, data = assessed
    meth = load_methodology("v1")
    con = duckdb.connect()
    n_fam = con.sql(f"SELECT COUNT(*) FROM {_sql(data, 'families')}").fetchall()[0][0]
    scores = con.sql(f"SELECT level, score, targeted FROM {_sql(data, 'family_scores')}").fetchall()
    assert len(scores) == n_fam > 700
    assert {lv for lv, _, _ in scores} <= {lv.code for lv in meth.levels}
    assert len({lv for lv, _, _ in scores}) >= 4  # the levels are used, not one bucket
    assert all(0.0 <= s <= 1.0 for _, s, _ in scores)
    cols = pq.read_schema(next(Path(_sql(data, "family_indicators")[1:-11]).glob("*.parquet"))).names
    assert sum(c.startswith("d_") for c in cols) == len(meth.indicators) >= 80
    # every indicator is computed; most are neither always nor never deprived on a real nation
    shares = con.sql(
        "SELECT "
        + ", ".join(f"AVG(CAST(d_{i.id} AS INTEGER))" for i in meth.indicators)
        + f" FROM {_sql(data, 'family_indicators')}"
    ).fetchall()[0]
    assert sum(0 < s < 1 for s in shares) >= 0.6 * len(shares)


def test_score_is_the_weighted_sum_of_deprivations(assessed: tuple[Path, Path]) -> None:
    _, data = assessed
    meth = load_methodology("v1")
    weights = meth.effective_weights()
    con = duckdb.connect()
    flags = ", ".join(f"fi.d_{i.id}" for i in meth.indicators)
    rows = con.sql(
        f"""SELECT s.score, s.deprivations, {flags} FROM {_sql(data, "family_scores")} AS s
            JOIN {_sql(data, "family_indicators")} AS fi USING (family_id)"""
    ).fetchall()
    assert any(r[0] > 0 for r in rows)
    for score, n, *deprived in rows:
        expected = sum(weights[i.id] for i, d in zip(meth.indicators, deprived, strict=True) if d)
        assert abs(score - expected) < 1e-5 and n == sum(deprived)


def test_levels_follow_thresholds_and_floors(assessed: tuple[Path, Path]) -> None:
    _, data = assessed
    meth = load_methodology("v1")
    con = duckdb.connect()
    for level, score, floor, score_level in con.sql(
        f"SELECT level, score, floor, score_level FROM {_sql(data, 'family_scores')}"
    ).fetchall():
        expected = max(i for i, lv in enumerate(meth.levels) if score >= lv.min_score)
        assert meth.levels[expected].code == score_level
        if floor is None:
            assert level == score_level
        else:
            assert meth.level_rank(level) == meth.level_rank(meth.floors[floor].level) > expected


def test_cited_records_exist(assessed: tuple[Path, Path]) -> None:
    """Every record an explanation cites is a version of that feed's history in the snapshot."""
    _, data = assessed
    con = duckdb.connect()
    sources = con.sql(f"SELECT DISTINCT feed FROM {_sql(data, 'indicator_sources')}").fetchall()
    assert len(sources) >= 8
    for (feed,) in sources:
        missing = con.sql(
            f"""SELECT COUNT(*) FROM {_sql(data, "indicator_sources")} AS s
                WHERE s.feed = '{feed}' AND NOT EXISTS (
                    SELECT 1 FROM {_sql(data, f"src_{feed}")} AS h
                    WHERE h._key = s.record_key AND h._period = s.period)"""
        ).fetchall()[0][0]
        assert missing == 0, feed


def test_every_family_has_an_explanation(assessed: tuple[Path, Path]) -> None:
    _, data = assessed
    con = duckdb.connect()
    ids = [
        r[0]
        for r in con.sql(
            f"SELECT family_id FROM {_sql(data, 'family_scores')} ORDER BY score DESC"
        ).fetchall()
    ]
    worst = explain_family(data, ids[0], "en")
    assert worst.deprivations and worst.score > 0
    assert abs(sum(d.weight for d in worst.deprivations) - worst.score) < 1e-5
    assert all(d.sources or d.checked for d in worst.deprivations)
    for fid in ids[::40]:
        for lang in ("kk", "ru", "en"):
            text = render(explain_family(data, fid, lang))
            assert fid in text
    ru = render(explain_family(data, ids[0], "ru"))
    assert "Уровень" in ru and "Балл" in ru


def test_explanations_hold_no_names_or_iins(assessed: tuple[Path, Path]) -> None:
    _, data = assessed
    con = duckdb.connect()
    fid, iins = con.sql(
        f"""SELECT s.family_id, LIST(m.iin) FROM {_sql(data, "family_scores")} AS s
            JOIN {_sql(data, "family_members")} AS m USING (family_id)
            WHERE m.iin IS NOT NULL GROUP BY ALL ORDER BY MAX(s.score) DESC LIMIT 1"""
    ).fetchall()[0]
    text = json.dumps(explain_family(data, fid, "en").as_dict(), ensure_ascii=False)
    assert not any(iin in text for iin in iins)


def test_situations_follow_their_definitions(assessed: tuple[Path, Path]) -> None:
    _, data = assessed
    meth = load_methodology("v1")
    con = duckdb.connect()
    found = dict(
        con.sql(f"SELECT situation, COUNT(*) FROM {_sql(data, 'family_situations')} GROUP BY 1").fetchall()
    )
    observable = [s for s in meth.situations if s.when]
    assert len(meth.situations) >= 10 and len(observable) < len(meth.situations)
    assert "low_income" in found
    assert set(found) <= {s.id for s in observable}
    for sit in observable:
        condition = substitute(sit.when, {i.id: f"fi.d_{i.id}" for i in meth.indicators}, {})
        expected = con.sql(f"SELECT COUNT(*) FROM {_sql(data, 'family_indicators')} AS fi WHERE {condition}")
        assert found.get(sit.id, 0) == expected.fetchall()[0][0], sit.id


def test_uncertain_members_are_marked_on_the_score(assessed: tuple[Path, Path]) -> None:
    _, data = assessed
    con = duckdb.connect()
    mismatch = con.sql(
        f"""SELECT COUNT(*) FROM {_sql(data, "family_scores")} AS s
            JOIN (SELECT family_id, SUM(CASE WHEN uncertain THEN 1 ELSE 0 END) AS u
                  FROM {_sql(data, "family_members")} GROUP BY 1) AS m USING (family_id)
            WHERE s.uncertain_members <> m.u"""
    ).fetchall()[0][0]
    assert mismatch == 0


# ------------------------------------------------------------------------------------------ diff, eval


def test_methodology_diff_totals(assessed: tuple[Path, Path]) -> None:
    _, data = assessed
    con = duckdb.connect()
    levels = dict(con.sql(f"SELECT level, COUNT(*) FROM {_sql(data, 'family_scores')} GROUP BY 1").fetchall())
    d = methodology_diff(data, "v1", "v2")
    assert d.families == sum(levels.values())
    assert d.row_totals() == [levels.get(c, 0) for c in d.from_levels]
    assert sum(d.column_totals()) == d.families
    for region_matrix in d.by_region.values():
        assert len(region_matrix) == 5 and len(region_matrix[0]) == 6
    summed = [[sum(m[i][j] for m in d.by_region.values()) for j in range(6)] for i in range(5)]
    assert summed == d.matrix
    same = methodology_diff(data, "v1", "v1")
    assert same.moved == 0 and same.entering == same.leaving == 0
    assert all(same.matrix[i][j] == 0 for i in range(5) for j in range(5) if i != j)


def test_targeting_evaluation(assessed: tuple[Path, Path]) -> None:
    nation, data = assessed
    ev = evaluate_targeting(Warehouse(data), nation / "truth")
    for t in (ev.levels, ev.pmt):
        assert t.in_need > 20 and t.targeted > 0
        assert 0 <= t.exclusion_error <= 1 and 0 <= t.inclusion_error <= 1
        assert set(t.by_group) == {"region", "head_sex", "rural", "disability"}
        need = sum(int(v["in_need"]) for v in t.by_group["rural"].values())
        assert need == t.in_need
    # the methodology is clearly better than the proxy-means test on both errors
    assert ev.levels.exclusion_error < ev.pmt.exclusion_error
    assert ev.levels.inclusion_error < ev.pmt.inclusion_error


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_explain_diff_list_and_eval(assessed: tuple[Path, Path]) -> None:
    nation, data = assessed
    runner = CliRunner()
    con = duckdb.connect()
    fid = con.sql(
        f"SELECT family_id FROM {_sql(data, 'family_scores')} ORDER BY score DESC LIMIT 1"
    ).fetchall()[0][0]
    got = runner.invoke(app, ["explain", "--data", str(data), "--family", fid, "--lang", "kk"])
    assert got.exit_code == 0, got.output
    assert "Деңгей" in got.output
    got = runner.invoke(app, ["explain", "--data", str(data), "--family", "F-none"])
    assert got.exit_code == 2 and "no family" in got.output
    got = runner.invoke(
        app, ["methodology", "diff", "--data", str(data), "--from", "v1", "--to", "v2", "--json"]
    )
    assert got.exit_code == 0, got.output
    assert json.loads(got.output)["families"] > 700
    got = runner.invoke(app, ["methodology", "diff", "--data", str(data), "--from", "v1", "--to", "v9"])
    assert got.exit_code == 2 and "no methodology" in got.output
    got = runner.invoke(app, ["methodology", "list"])
    assert got.exit_code == 0 and "v2" in got.output
    got = runner.invoke(app, ["eval", "--truth", str(nation / "truth"), "--data", str(data), "--json"])
    assert got.exit_code == 0, got.output
    assert "targeting" in json.loads(got.output)


# ------------------------------------------------------------------------------------------- engines


@pytest.mark.parametrize("engine", ["duckdb"], indirect=True)
def test_engines_assess_identically(assessed: tuple[Path, Path], engine: Engine, tmp_path: Path) -> None:
    """The stage run again on DuckDB from the same snapshot writes the same tables (on Spark: below)."""
    _, data = assessed
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    wh = Warehouse(copy)
    base = wh.published()
    report = run_assessment(wh, engine)
    assert report.families > 700
    for table in OUTPUTS:
        mine = wh.read(table)
        reference = Warehouse(data).read(table, base)
        assert mine.num_rows == reference.num_rows, table
        assert content_digest(mine) == content_digest(reference), table


def test_assessment_in_buckets_writes_the_same_tables(
    assessed: tuple[Path, Path], engine: Engine, tmp_path: Path
) -> None:
    """Families assessed a few hundred at a time (as a nation is, a million at a time) give the same
    tables, in the same order, as all at once: the buckets' parts follow each other in family order. On
    DuckDB every feed is selected bucket by bucket (its links split by bucket in one pass, a group's rows
    taken written first, a bucket without a record of a sparse feed); on Spark the feeds with more than
    2,000 links (fewer buckets: its every query has a fixed cost). The same rows."""
    _, data = assessed
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    wh = Warehouse(copy)
    base = wh.published()
    size, selection_rows = (400, 2000) if engine.name == "spark" else (150, 0)
    report = run_assessment(wh, engine, bucket_families=size, selection_rows=selection_rows)
    assert report.families > 700
    assert len(wh.parts("family_scores")) >= report.families // size  # one part (at least) per bucket
    for table in OUTPUTS:
        mine = wh.read(table)
        reference = Warehouse(data).read(table, base)
        assert mine.num_rows == reference.num_rows, table
        if engine.name == "spark":
            assert content_digest(mine) == content_digest(reference), table
        else:
            assert mine.equals(reference), table  # same rows in the same order


def _selection_inputs(engine: Engine, data: Path) -> facts.Window:
    """Register the assessment's inputs of the snapshot at ``data`` and its members (``ind_members``);
    return the window of the families' period."""
    wh = Warehouse(data)
    for name in (*BASE_INPUTS, *(f"src_{f}" for f in FEEDS_READ)):
        engine.register_parquet(name, wh.table_path(name))
    period = str(engine.fetch("SELECT MAX(as_of) AS p FROM families").column("p")[0].as_py())
    window = facts.Window(period, period_end(period))
    engine.register_query("ind_members", facts.members_sql(window))
    return window


@pytest.mark.parametrize("engine", ["duckdb"], indirect=True)
def test_grouped_selections_select_what_each_selection_selects(
    assessed: tuple[Path, Path], engine: Engine
) -> None:
    """A feed read by several selections is joined once for all of them (a group); each selection's view
    over the group holds exactly the rows the selection's own query selects. A group read from the
    history rows it takes, written first (as big feeds are nationally), holds the same rows."""
    window = _selection_inputs(engine, assessed[1])
    groups = [g for g in facts.selection_groups() if len(g.selections) > 1]
    assert {g.feed for g in groups} >= {"health", "debts", "police", "civil_acts", "social_payments"}
    assert sorted(s.name for g in facts.selection_groups() for s in g.selections) == sorted(facts.SELECTION)
    checked = 0
    keys = [(c, "ascending") for c in ("person_id", "record_key")]
    for group in (*groups, *(g for g in facts.selection_groups() if len(g.selections) == 1)):
        direct = engine.fetch(group.sql(window))
        engine.register_query("taken", group.rows_sql(window))
        taken = engine.fetch(group.sql(window, rows="taken"))
        assert taken.schema == direct.schema, group.table
        assert taken.sort_by(keys).equals(direct.sort_by(keys)), group.table
    for group in groups:
        engine.register_query(group.table, group.sql(window))
        for name, view in group.views().items():
            sel = facts.SELECTION[name.removeprefix("ind_sel_")]
            mine = engine.fetch(view)
            alone = engine.fetch(facts.selection_sql(sel, window))
            assert mine.schema == alone.schema, name
            assert mine.sort_by(keys).equals(alone.sort_by(keys)), name
            checked += mine.num_rows
    assert checked > 1000


@pytest.mark.parametrize("engine", ["duckdb"], indirect=True)
def test_person_facts_over_a_group_equal_each_selections_own(
    assessed: tuple[Path, Path], engine: Engine
) -> None:
    """A fact aggregated over its group's table, restricted to its selection's rows (``flagged``), has
    the value it has over the selection's own rows, for every person with a row of the selection."""
    window = _selection_inputs(engine, assessed[1])
    compared = 0
    for group in (g for g in facts.selection_groups() if len(g.selections) > 1):
        engine.register_query(group.table, group.sql(window))
        for name, view in group.views().items():
            engine.register_query(name, view)
        for sel in group.selections:
            for fact in (f for f in facts.PERSON_FACTS if f.selection == sel.name):
                sql = window.fill(fact.sql)
                alone = engine.fetch(
                    f"SELECT s.person_id, {sql} AS v FROM ind_sel_{sel.name} AS s GROUP BY s.person_id"
                )
                flag = f"_in_{sel.name}"
                fused = engine.fetch(
                    f"SELECT * FROM (SELECT s.person_id, COUNT(CASE WHEN s.{flag} THEN 1 END) AS n, "
                    f"{facts.flagged(sql, flag)} AS v FROM {group.table} AS s GROUP BY s.person_id) AS a "
                    "WHERE n > 0"
                ).drop_columns(["n"])
                keys = [("person_id", "ascending")]
                assert fused.sort_by(keys).equals(alone.sort_by(keys)), fact.name
                compared += alone.num_rows
    assert compared > 1000


def test_a_fact_is_restricted_to_its_selection_or_refused() -> None:
    """Every aggregate's argument is taken only from the flagged rows; SQL that reads a row outside an
    aggregate (or nests aggregates) cannot be restricted and is refused."""
    got = facts.flagged("CASE WHEN COUNT(*) > 0 THEN MAX(s.a) END + COUNT(DISTINCT s.b)", "_in_x")
    assert got.count("CASE WHEN s._in_x THEN") == 3
    assert "COUNT(DISTINCT CASE WHEN s._in_x THEN s.b END)" in got
    for bad in ("s.a + SUM(s.b)", "MAX(SUM(s.a))"):
        with pytest.raises(ValueError):
            facts.flagged(bad, "_in_x")


@pytest.mark.parametrize("sizes", [[1, 2, 3], [1, 15, 16, 3], [40, 1, 63, 64, 7]])
def test_packed_member_counts_equal_counting_each_condition(engine: Engine, sizes: list[int]) -> None:
    """The person indicators' members are counted as fields of packed sums sized by the largest family;
    every count equals counting its condition alone, at field widths of 2 to 7 bits (families of up to
    64 members, all of whom meet a condition) and with many conditions per sum."""
    rng = random.Random(sum(sizes))
    rows = [
        {"family_id": f"f{f:02d}", "x": rng.random() < 0.5, "y": rng.random() < 0.2, "z": f % 2 == 0}
        for f, n in enumerate(sizes)
        for _ in range(n)
    ]
    engine.register_arrow("person_facts", pa.Table.from_pylist(rows))
    largest = engine.fetch(compute.largest_family_sql()).column("n")[0].as_py()
    assert largest == max(sizes)
    conditions = ["x", "y", "z", "TRUE", "NOT x", "x AND y", "x OR z", "FALSE"] * 4  # several words
    counters = [(f"c{k}", cond) for k, cond in enumerate(conditions)]
    got = {r["family_id"]: r for r in engine.fetch(compute._counts(counters, largest)).to_pylist()}
    checks = {"x": lambda r: r["x"], "y": lambda r: r["y"], "z": lambda r: r["z"], "TRUE": lambda r: True}
    checks |= {"NOT x": lambda r: not r["x"], "x AND y": lambda r: r["x"] and r["y"]}
    checks |= {"x OR z": lambda r: r["x"] or r["z"], "FALSE": lambda r: False}
    assert len(got) == len(sizes)
    for k, cond in enumerate(conditions):
        for fid, counted in got.items():
            members = [r for r in rows if r["family_id"] == fid]
            assert counted[f"c{k}"] == sum(1 for r in members if checks[cond](r)), (fid, cond)


@pytest.mark.parametrize("engine", ["duckdb"], indirect=True)
@pytest.mark.parametrize("size", [1, 2, 3, 1000])
def test_family_buckets_cover_every_family_once(engine: Engine, size: int) -> None:
    """Every family (ids with quotes and shared prefixes too) falls in exactly one bucket."""
    ids = ["f'1", "f'10", "f2", "a", "zz", "f1", "m-0007", "m-0070", "b''x"]
    engine.register_arrow("all_families", pa.table({"family_id": ids}))
    conds = family_buckets(engine, size)
    assert len(conds) == (1 if size >= len(ids) else -(-len(ids) // size))
    seen: list[str] = []
    for cond in conds:
        got = engine.fetch(f"SELECT family_id FROM all_families WHERE {cond}").column("family_id").to_pylist()
        assert len(got) <= size + 1
        seen += got
    assert sorted(seen) == sorted(ids)


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
def test_engines_assess_identically_on_spark(assessed: tuple[Path, Path], spark_pipeline: SparkRun) -> None:
    """The stage on Spark writes the same tables as on DuckDB from the same snapshot: the nation's
    pipeline on Spark (conftest, shared with the other stages' parity tests) built the same inputs
    (test_ingest.py::test_duckdb_and_spark_build_identical_tables checks every table), and its
    assessment the same outputs."""
    _, data = assessed
    report = spark_pipeline.report.assessment
    assert report is not None
    assert report.families > 700
    wh = Warehouse(spark_pipeline.data)
    for table in (*BASE_INPUTS, *(f"src_{feed}" for feed in FEEDS_READ)):  # the stage's inputs
        mine, reference = wh.read(table), Warehouse(data).read(table)
        keep = [c for c in reference.column_names if c != "run"]
        assert content_digest(mine.select(keep)) == content_digest(reference.select(keep)), table
    for table in OUTPUTS:
        mine = wh.read(table)
        reference = Warehouse(data).read(table, Warehouse(data).published())
        assert mine.num_rows == reference.num_rows, table
        assert content_digest(mine) == content_digest(reference), table
