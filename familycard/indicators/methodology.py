"""The well-being methodology as data: indicators, domains and weights, levels, floors and difficult life
situations, loaded from ``methodology/wellbeing/`` and checked before anything is computed.

A methodology version (``methodology/wellbeing/<id>.toml``) names its indicator catalogue and its catalogue
of difficult life situations, sets the parameters (subsistence minimum, poverty line, ...), the domain
weights, the levels with their score thresholds, and *floors* (a family with recent violence and children
is at least at level D whatever its score). Every indicator, level and situation has a name in Kazakh,
Russian and English.

Indicator expressions are SQL expressions over the fact vocabulary (:mod:`familycard.indicators.facts`) and
the parameters. The loader parses every expression and refuses one that reads anything else: an unknown
name, a subquery, or a **protected attribute** (nationality, ethnicity, religion and their proxies), so a
methodology can never score a family on who its members are rather than how they live.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from familycard.indicators.facts import FAMILY_FACT, PERSON_FACT, PROTECTED

METHODOLOGY_ENV = "FAMILYCARD_WELLBEING_METHODOLOGY"
"""Environment variable naming a folder of methodology versions to use instead of the shipped
``methodology/wellbeing`` (a ministry's own, kept under its own version control)."""
METHODOLOGY_DIR = Path(
    os.environ.get(METHODOLOGY_ENV) or Path(__file__).resolve().parents[2] / "methodology" / "wellbeing"
)
LANGS = ("kk", "ru", "en")
DOMAINS = ("economic", "employment", "housing", "health", "education", "social", "gender")
UNITS = ("person", "family")

_FUNCTIONS = (
    exp.Coalesce,
    exp.Greatest,
    exp.Least,
    exp.Abs,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.Round,
    exp.Ln,
    exp.Log,
    exp.Sqrt,
    exp.Floor,
    exp.Ceil,
)
_ID = re.compile(r"[a-z][a-z0-9_]{0,60}")
_FORBIDDEN = (exp.Select, exp.Subquery, exp.Table, exp.Star, exp.Anonymous, exp.AggFunc, exp.Window)


class MethodologyError(ValueError):
    """A methodology file that cannot be used, with the file and the key at fault."""

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        super().__init__(f"{path}: {key}: {message}")
        self.path = str(path)
        self.key = key


@dataclass(frozen=True)
class Text:
    """A text in Kazakh, Russian and English."""

    kk: str
    ru: str
    en: str

    def get(self, lang: str) -> str:
        return str(getattr(self, lang if lang in LANGS else "en"))


@dataclass(frozen=True)
class Indicator:
    """One indicator: how its value is computed, when it counts as a deprivation, and its weight.

    ``unit = "person"``: ``value``, ``population`` and ``deprived`` are evaluated for each member (over
    person facts); the family's value is the number of deprived members and the family is deprived when
    at least ``min_members`` are. ``unit = "family"``: they are evaluated over family facts.
    """

    id: str
    domain: str
    unit: str
    name: Text
    description: Text
    value: str
    deprived: str
    population: str | None
    weight: float
    """The weight inside its domain this version uses (the catalogue's unless the version overrides it)."""
    min_members: int
    facts: frozenset[str]
    """The facts its expressions read (for provenance)."""
    catalogue_weight: float = 1.0
    """The catalogue's (expert) weight, 1 = mild … 4 = most severe."""


@dataclass(frozen=True)
class Level:
    code: str
    name: Text
    min_score: float
    targeted: bool
    """Families at this level are in the support target group (the D/E of the five-level scale)."""


@dataclass(frozen=True)
class Floor:
    """A family for which ``when`` holds is placed at least at ``level``, whatever its score."""

    level: str
    when: str
    reason: Text
    indicators: frozenset[str]


@dataclass(frozen=True)
class Situation:
    """A difficult life situation (a legal ground of the Social Code) defined over indicators.

    ``when`` is a condition on indicator ids (each true when the family is deprived on it); a situation
    with ``when`` None cannot be seen in the agencies' data and is recorded only by a social worker."""

    id: str
    name: Text
    legal_basis: Text
    when: str | None
    indicators: frozenset[str]


@dataclass(frozen=True)
class Methodology:
    """A complete, checked methodology version."""

    id: str
    version: str
    title: Text
    path: Path
    parameters: dict[str, float]
    domains: dict[str, float]
    indicators: tuple[Indicator, ...]
    levels: tuple[Level, ...]
    floors: tuple[Floor, ...]
    situations: tuple[Situation, ...]
    catalogue_version: str
    situations_version: str
    digest: str = field(default="")

    @property
    def indicator(self) -> dict[str, Indicator]:
        return {i.id: i for i in self.indicators}

    def level_rank(self, code: str) -> int:
        return [lv.code for lv in self.levels].index(code)

    def effective_weights(self) -> dict[str, float]:
        """Alkire–Foster nested weights: each domain's weight shared among its indicators in proportion to
        their own weights; the weights of all indicators sum to 1."""
        totals: dict[str, float] = {}
        for i in self.indicators:
            totals[i.domain] = totals.get(i.domain, 0.0) + i.weight
        return {
            i.id: round(self.domains[i.domain] * i.weight / totals[i.domain], 9) if totals[i.domain] else 0.0
            for i in self.indicators
        }


def available() -> list[str]:
    """The ids of the methodology versions shipped in ``methodology/wellbeing``."""
    return sorted(p.stem for p in METHODOLOGY_DIR.glob("v*.toml"))


def _path_of(ref: str | Path) -> Path:
    p = Path(ref)
    if p.suffix == ".toml" and p.is_file():
        return p
    candidate = METHODOLOGY_DIR / f"{ref}.toml"
    if candidate.is_file():
        return candidate
    raise MethodologyError(ref, "id", f"no methodology {str(ref)!r}; shipped: {', '.join(available())}")


@cache
def load_methodology(ref: str | Path = "v1") -> Methodology:
    """The methodology version ``ref`` (an id such as ``v1`` or a path to its file), checked."""
    path = _path_of(ref).resolve()
    raw = _merged(path, ())
    head = _table(raw, "methodology", path)
    params = {str(k): float(v) for k, v in _table(raw, "parameters", path).items()}
    domains = {str(k): float(v) for k, v in _table(raw, "domains", path).items()}
    for d in domains:
        if d not in DOMAINS:
            raise MethodologyError(path, f"domains.{d}", f"unknown domain; known: {', '.join(DOMAINS)}")
    if abs(sum(domains.values()) - 1.0) > 1e-6:
        raise MethodologyError(
            path, "domains", f"domain weights must sum to 1, not {sum(domains.values()):.6f}"
        )
    cat_path = path.parent / str(_req(head, "indicators", path, "methodology"))
    cat = _toml(cat_path)
    overrides = {str(k): float(v) for k, v in raw.get("weights", {}).items()}
    indicators = tuple(
        _indicator(d, cat_path, f"indicator[{n}]", params, overrides)
        for n, d in enumerate(cat.get("indicator", []))
    )
    ids = [i.id for i in indicators]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise MethodologyError(cat_path, "indicator.id", f"duplicate ids: {', '.join(dupes)}")
    for key in overrides:
        if key not in ids:
            raise MethodologyError(path, f"weights.{key}", "no such indicator")
    for i in indicators:
        if i.domain not in domains:
            raise MethodologyError(
                cat_path, f"{i.id}.domain", f"domain {i.domain!r} has no weight in {path.name}"
            )
    levels = tuple(_level(d, path, n) for n, d in enumerate(raw.get("levels", [])))
    if len(levels) < 2:
        raise MethodologyError(path, "levels", "at least two levels are needed")
    scores = [lv.min_score for lv in levels]
    if scores[0] != 0.0 or scores != sorted(scores) or len(set(scores)) != len(scores):
        raise MethodologyError(
            path, "levels", "min_score must start at 0 and rise strictly from best to worst"
        )
    codes = [lv.code for lv in levels]
    if len(set(codes)) != len(codes):
        raise MethodologyError(path, "levels", "level codes must be unique")
    floors = tuple(_floor(d, path, n, set(ids), set(codes)) for n, d in enumerate(raw.get("floors", [])))
    sit_path = path.parent / str(_req(head, "situations", path, "methodology"))
    sit = _toml(sit_path)
    situations = tuple(_situation(d, sit_path, n, set(ids)) for n, d in enumerate(sit.get("situation", [])))
    merged = json.dumps(raw, sort_keys=True, ensure_ascii=False).encode()
    digest = hashlib.sha256(merged + cat_path.read_bytes() + sit_path.read_bytes()).hexdigest()[:16]
    return Methodology(
        id=str(_req(head, "id", path, "methodology")),
        version=str(_req(head, "version", path, "methodology")),
        title=_text(_req(head, "title", path, "methodology"), path, "methodology.title"),
        path=path,
        parameters=params,
        domains=domains,
        indicators=indicators,
        levels=levels,
        floors=floors,
        situations=situations,
        catalogue_version=str(cat.get("catalogue", {}).get("version", "")),
        situations_version=str(sit.get("catalogue", {}).get("version", "")),
        digest=digest,
    )


# ------------------------------------------------------------------------------------------- parts


def _merged(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """The version file at ``path`` over the version it ``extends`` (if any): tables of values
    (``parameters``, ``domains``, ``weights``) merge key by key; lists (``levels``, ``floors``) and the
    ``methodology`` keys given replace the base's."""
    raw = _toml(path)
    base_ref = raw.get("methodology", {}).get("extends")
    if not base_ref:
        return raw
    base_path = (path.parent / f"{base_ref}.toml").resolve()
    if base_path in seen or base_path == path:
        raise MethodologyError(path, "methodology.extends", f"circular extension through {base_ref!r}")
    base = _merged(base_path, (*seen, path))
    out = dict(base)
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = {**base[key], **value}
        else:
            out[key] = value
    out["methodology"] = {k: v for k, v in out["methodology"].items() if k != "extends"}
    return out


def _toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise MethodologyError(path, "file", "not found") from None
    except tomllib.TOMLDecodeError as e:
        raise MethodologyError(path, "file", f"not valid TOML: {e}") from None


def _table(raw: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise MethodologyError(path, key, "missing table")
    return value


def _req(d: dict[str, Any], key: str, path: Path, where: str) -> Any:
    if key not in d or d[key] in ("", None):
        raise MethodologyError(path, f"{where}.{key}", "required")
    return d[key]


def _text(value: Any, path: Path, key: str) -> Text:
    if not isinstance(value, dict):
        raise MethodologyError(path, key, "must be a table with kk, ru and en")
    missing = [lang for lang in LANGS if not str(value.get(lang, "")).strip()]
    if missing:
        raise MethodologyError(path, key, f"missing language(s): {', '.join(missing)}")
    return Text(str(value["kk"]), str(value["ru"]), str(value["en"]))


def _indicator(
    d: dict[str, Any], path: Path, where: str, params: dict[str, float], overrides: dict[str, float]
) -> Indicator:
    iid = str(_req(d, "id", path, where))
    if not _ID.fullmatch(iid):
        raise MethodologyError(path, f"{where}.id", f"{iid!r} must be lower-case letters, digits and _")
    where = iid
    unit = str(_req(d, "unit", path, where))
    if unit not in UNITS:
        raise MethodologyError(path, f"{where}.unit", f"must be one of {', '.join(UNITS)}")
    domain = str(_req(d, "domain", path, where))
    if domain not in DOMAINS:
        raise MethodologyError(path, f"{where}.domain", f"unknown domain; known: {', '.join(DOMAINS)}")
    names = set(PERSON_FACT if unit == "person" else FAMILY_FACT) | set(params)
    facts: set[str] = set()
    value = str(_req(d, "value", path, where))
    facts |= check_expression(value, names, path, f"{where}.value")
    deprived = str(_req(d, "deprived", path, where))
    facts |= check_expression(deprived, names | {"value"}, path, f"{where}.deprived")
    population = d.get("population")
    if population is not None:
        facts |= check_expression(str(population), names, path, f"{where}.population")
    catalogue_weight = float(d.get("weight", 1.0))
    weight = float(overrides.get(iid, catalogue_weight))
    if weight < 0 or catalogue_weight < 0:
        raise MethodologyError(path, f"{where}.weight", "must not be negative")
    return Indicator(
        id=iid,
        domain=domain,
        unit=unit,
        name=_text(d.get("name"), path, f"{where}.name"),
        description=_text(d.get("description"), path, f"{where}.description"),
        value=value,
        deprived=deprived,
        population=str(population) if population is not None else None,
        weight=weight,
        min_members=int(d.get("min_members", 1)),
        facts=frozenset(facts - set(params) - {"value"}),
        catalogue_weight=catalogue_weight,
    )


def _level(d: dict[str, Any], path: Path, n: int) -> Level:
    where = f"levels[{n}]"
    return Level(
        code=str(_req(d, "code", path, where)),
        name=_text(d.get("name"), path, f"{where}.name"),
        min_score=float(d.get("min_score", -1)),
        targeted=bool(d.get("targeted", False)),
    )


def _floor(d: dict[str, Any], path: Path, n: int, ids: set[str], codes: set[str]) -> Floor:
    where = f"floors[{n}]"
    level = str(_req(d, "level", path, where))
    if level not in codes:
        raise MethodologyError(path, f"{where}.level", f"no level {level!r}")
    when = str(_req(d, "when", path, where))
    used = check_expression(when, ids, path, f"{where}.when")
    return Floor(level, when, _text(d.get("reason"), path, f"{where}.reason"), frozenset(used))


def _situation(d: dict[str, Any], path: Path, n: int, ids: set[str]) -> Situation:
    sid = str(_req(d, "id", path, f"situation[{n}]"))
    when = d.get("when")
    used = check_expression(str(when), ids, path, f"{sid}.when") if when else set()
    return Situation(
        id=sid,
        name=_text(d.get("name"), path, f"{sid}.name"),
        legal_basis=_text(d.get("legal_basis"), path, f"{sid}.legal_basis"),
        when=str(when) if when else None,
        indicators=frozenset(used),
    )


def check_expression(sql: str, names: set[str], path: Path | str, key: str) -> set[str]:
    """Parse ``sql`` as one SQL expression and return the names it reads; refuse anything but arithmetic,
    comparisons, logic, CASE and a few scalar functions over ``names``, and any protected attribute."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise MethodologyError(path, key, f"cannot parse {sql!r}: {e}") from None
    used: set[str] = set()
    for node in tree.walk():
        if isinstance(node, (exp.Identifier, exp.Column)):
            name = node.name.lower()
            if name in PROTECTED or any(p in name for p in PROTECTED if len(p) > 6):
                raise MethodologyError(
                    path,
                    key,
                    f"uses the protected attribute {node.name!r}: nationality, ethnicity, religion (and "
                    "citizenship or migration status, which stand for them) can never be inputs",
                )
        if isinstance(node, _FORBIDDEN):
            raise MethodologyError(
                path, key, f"only scalar expressions are allowed, not {type(node).__name__}"
            )
        if isinstance(node, exp.Func) and not isinstance(
            node, (*_FUNCTIONS, exp.Connector, exp.Binary, exp.Unary, exp.Predicate)
        ):
            raise MethodologyError(path, key, f"function {type(node).__name__} is not allowed")
        if isinstance(node, exp.Column):
            if node.table:
                raise MethodologyError(path, key, f"write {node.name!r} without a table prefix")
            if node.name not in names:
                raise MethodologyError(path, key, f"unknown name {node.name!r} in {sql!r}")
            used.add(node.name)
    return used


def substitute(sql: str, columns: dict[str, str], params: dict[str, float]) -> str:
    """``sql`` with each name replaced: parameters by their value, other names by ``columns[name]`` (an
    SQL expression), as DuckDB SQL."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table:
            if node.name in params:
                v = params[node.name]
                return exp.Literal.number(int(v) if float(v).is_integer() else v)
            if node.name in columns:
                return exp.Paren(this=sqlglot.parse_one(columns[node.name], read="duckdb"))
        return node

    return sqlglot.parse_one(sql, read="duckdb").transform(swap).sql(dialect="duckdb")
