"""The source catalogue: one declarative definition per agency feed.

Each feed is a TOML file in ``familycard/sources/feeds/`` (or in a directory given to :func:`load_catalogue`):
who sends it, in which format and encoding, on which cadence, its key, and each column with its type,
code list, whether it is required, and whether (and how sensitively) it holds personal data. Adding a feed
is adding a file; the ingestion stage reads nothing else. ``docs/sources.md`` documents every key.

A definition becomes typed objects at load time; any error names the file and the key, e.g.
``feeds/health.toml: columns[3].type: 'datetime' is not one of ...``.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

from familycard.sources.formats import FileFormat

FEEDS_DIR = Path(__file__).with_name("feeds")

Mode = Literal["snapshot", "delta", "events"]
ColumnType = Literal[
    "string", "iin", "bin", "kato", "date", "integer", "decimal", "boolean", "code", "period"
]
Personal = Literal["none", "identifier", "name", "birth", "contact", "address", "sensitive"]
Category = Literal[
    "health", "disability", "violence", "police", "finance", "social", "migration", "education"
]
Severity = Literal["reject", "flag"]
DateStyle = Literal["iso", "dmy", "dmy_slash", "ymd", "dmy_short", "dmy_compact"]
Op = Literal["insert", "update", "delete"]

CheckKind = Literal["iin_birth_date", "iin_sex", "date_order"]
DATE_STYLES: tuple[str, ...] = get_args(DateStyle)
CHECK_KINDS: tuple[str, ...] = get_args(CheckKind)
_FIELD_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_RELATIVE_BOUND_RE = re.compile(r"^delivery(\+[0-9]+d)?$")
NUMERIC_TYPES: tuple[str, ...] = ("integer", "decimal")


class CatalogueError(ValueError):
    """A feed definition that cannot be used; the message names the file and the key."""

    def __init__(self, path: Path | str, key: str, reason: str) -> None:
        self.path, self.key, self.reason = str(path), key, reason
        super().__init__(f"{path}: {key}: {reason}")


@dataclass(frozen=True)
class Reference:
    """A value that must exist in another feed (checked across feeds after loading)."""

    feed: str
    field: str
    severity: Severity = "flag"


@dataclass(frozen=True)
class Column:
    """One column of a feed: its name in the file and in the warehouse, and what a valid value is."""

    name: str  # as written in the agency's file (may be Cyrillic)
    field: str  # canonical name in the warehouse (snake_case ASCII)
    type: ColumnType
    description: str = ""
    required: bool = False
    personal: Personal = "none"
    category: Category | None = None  # for sensitive data: what kind (purpose-bound access uses it)
    codes: tuple[str, ...] = ()  # allowed values for type "code"
    date_styles: tuple[DateStyle, ...] = ()  # accepted date styles, the feed's own first
    min: float | None = None  # numbers: inclusive bounds
    max: float | None = None
    not_before: str | None = None  # dates: ISO date; a later date is implausible before it
    not_after: str | None = None  # dates: ISO date, or "delivery" / "delivery+Nd" (days after the period)
    references: Reference | None = None


@dataclass(frozen=True)
class PersonRef:
    """Which columns of a record describe one person in it (a record may name several)."""

    role: str
    iin: str | None = None
    surname: str | None = None
    given_name: str | None = None
    patronymic: str | None = None
    full_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None


@dataclass(frozen=True)
class Check:
    """A row-level rule across fields of one record, skipped where a field is empty.

    * ``iin_birth_date`` (``[iin, date]``): the birth date the IIN encodes is the date;
    * ``iin_sex`` (``[iin, sex]``): the sex the IIN encodes is the sex code;
    * ``date_order`` (two or more dates): each date is on or after the one before it.
    """

    kind: CheckKind
    fields: tuple[str, ...]
    severity: Severity = "reject"


@dataclass(frozen=True)
class FeedSpec:
    """Everything the pipeline knows about one feed."""

    name: str
    agency: str
    title: str
    version: int
    format: FileFormat
    cadence_months: int
    due_day: int
    mode: Mode
    key: tuple[str, ...]  # fields (canonical names) identifying a record within the feed
    columns: tuple[Column, ...]
    op_field: str | None = None
    ops: Mapping[str, Op] = field(default_factory=dict)  # value in the op column -> operation
    persons: tuple[PersonRef, ...] = ()
    checks: tuple[Check, ...] = ()
    description: str = ""
    path: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.columns)

    def column(self, field_name: str) -> Column:
        for c in self.columns:
            if c.field == field_name:
                return c
        raise KeyError(f"feed {self.name} has no field {field_name!r}")

    def file_name(self, period: str, kind: str) -> str:
        return f"{self.name}_{period}_{kind}.{self.format.extension}"


@dataclass(frozen=True)
class Catalogue:
    """Every feed definition of a directory, in file-name order; ``catalogue["tax"]`` finds one by name."""

    feeds: tuple[FeedSpec, ...]

    def __iter__(self) -> Iterator[FeedSpec]:
        return iter(self.feeds)

    def __len__(self) -> int:
        return len(self.feeds)

    def __getitem__(self, name: str) -> FeedSpec:
        for f in self.feeds:
            if f.name == name:
                return f
        raise KeyError(f"no feed {name!r} in the catalogue")

    def names(self) -> list[str]:
        return [f.name for f in self.feeds]


# ------------------------------------------------------------------------------------------ loading


class _Reader:
    """Typed access to one TOML table, naming the file and key path in every error."""

    def __init__(self, path: Path, data: Mapping[str, Any], prefix: str) -> None:
        self.path, self.data, self.prefix = path, data, prefix
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        if not name:
            return self.prefix
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, reason: str) -> CatalogueError:
        return CatalogueError(self.path, self.key(name), reason)

    def get(
        self, name: str, typ: type | tuple[type, ...], default: Any = ..., choices: Iterable[Any] = ()
    ) -> Any:
        self.used.add(name)
        if name not in self.data:
            if default is ...:
                raise self.error(name, "is required")
            return default
        value = self.data[name]
        types = _as_tuple(typ)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # bool is an int in Python, but `true` is no number in a definition
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self.error(name, f"expected {_type_name(typ)}, got {type(value).__name__} {value!r}")
        choices = tuple(choices)
        if choices and value not in choices:
            raise self.error(name, f"{value!r} is not one of {', '.join(map(repr, choices))}")
        return value

    def strings(self, name: str, default: Iterable[str] = ()) -> tuple[str, ...]:
        value = self.get(name, list, default=list(default))
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise self.error(f"{name}[{i}]", f"expected a string, got {v!r}")
        return tuple(value)

    def table(self, name: str, default: Any = ...) -> _Reader | None:
        value = self.get(name, dict, default=default)
        return None if value is None else _Reader(self.path, value, self.key(name))

    def tables(self, name: str) -> list[_Reader]:
        value = self.get(name, list, default=[])
        out = []
        for i, v in enumerate(value):
            if not isinstance(v, dict):
                raise self.error(f"{name}[{i}]", "expected a table")
            out.append(_Reader(self.path, v, f"{self.key(name)}[{i}]"))
        return out

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key (misspelt?)")


def references_by_target(specs: Iterable[FeedSpec]) -> dict[tuple[str, str], list[tuple[FeedSpec, str]]]:
    """The fields of ``specs`` that refer to another feed, grouped by what they refer to (feed, field):
    a referenced field's values can then be read once for all of them."""
    targets: dict[tuple[str, str], list[tuple[FeedSpec, str]]] = {}
    for spec in specs:
        for col in spec.columns:
            if col.references is not None:
                targets.setdefault((col.references.feed, col.references.field), []).append((spec, col.field))
    return targets


def _as_tuple(typ: type | tuple[type, ...]) -> tuple[type, ...]:
    return typ if isinstance(typ, tuple) else (typ,)


def _type_name(typ: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(typ))


def _bound(r: _Reader, name: str, relative: bool) -> str | None:
    """A date bound: an ISO date, or (where ``relative``) ``delivery`` or ``delivery+Nd``."""
    value = r.get(name, str, None)
    if value is None or (relative and _RELATIVE_BOUND_RE.match(value)):
        return value
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        form = (
            "an ISO date (YYYY-MM-DD), 'delivery' or 'delivery+Nd'"
            if relative
            else "an ISO date (YYYY-MM-DD)"
        )
        raise r.error(name, f"{value!r} is not {form}") from None
    return value


def _column(r: _Reader) -> Column:
    name = r.get("name", str)
    if not name:
        raise r.error("name", "must not be empty")
    field_name = r.get("field", str)
    if not _FIELD_RE.match(field_name):
        raise r.error("field", f"{field_name!r} must be snake_case ASCII")
    typ = r.get("type", str, choices=get_args(ColumnType))
    personal = r.get("personal", str, "none", choices=get_args(Personal))
    category = r.get("category", str, None, choices=get_args(Category))
    if personal == "sensitive" and category is None:
        raise r.error("category", "a sensitive column must say its category")
    if personal != "sensitive" and category is not None:
        raise r.error("category", "only a sensitive column has a category")
    codes = r.strings("codes")
    if typ == "code" and not codes:
        raise r.error("codes", "a code column needs its code list")
    if typ != "code" and codes:
        raise r.error("codes", f"only a code column has codes (this one is {typ!r})")
    if len(set(codes)) != len(codes):
        raise r.error("codes", "lists a code twice")
    styles = r.strings("date_styles")
    for i, s in enumerate(styles):
        if s not in DATE_STYLES:
            raise r.error(f"date_styles[{i}]", f"{s!r} is not one of {', '.join(DATE_STYLES)}")
    if styles and typ != "date":
        raise r.error("date_styles", f"only a date column has date styles (this one is {typ!r})")
    lo, hi = r.get("min", float, None), r.get("max", float, None)
    if (lo is not None or hi is not None) and typ not in NUMERIC_TYPES:
        raise r.error(
            "min" if lo is not None else "max", f"only a number column has bounds (this one is {typ!r})"
        )
    if lo is not None and hi is not None and lo > hi:
        raise r.error("max", f"{hi} is below min {lo}")
    not_before, not_after = _bound(r, "not_before", relative=False), _bound(r, "not_after", relative=True)
    if (not_before is not None or not_after is not None) and typ != "date":
        which = "not_before" if not_before is not None else "not_after"
        raise r.error(which, f"only a date column has date bounds (this one is {typ!r})")
    ref = None
    ref_r = r.table("references", None)
    if ref_r is not None:
        ref = Reference(
            feed=ref_r.get("feed", str),
            field=ref_r.get("field", str),
            # A missing reference never removes a row (the other feed may simply be late): flag only.
            severity=ref_r.get("severity", str, "flag", choices=("flag",)),
        )
        ref_r.finish()
    col = Column(
        name=name,
        field=field_name,
        type=typ,
        description=r.get("description", str, ""),
        required=r.get("required", bool, False),
        personal=personal,
        category=category,
        codes=codes,
        date_styles=styles or (("iso",) if typ == "date" else ()),  # type: ignore[arg-type]
        min=lo,
        max=hi,
        not_before=not_before,
        not_after=not_after,
        references=ref,
    )
    r.finish()
    return col


def _widths(r: _Reader) -> tuple[tuple[str, int], ...]:
    raw = r.get("widths", list)
    out = []
    for i, pair in enumerate(raw):
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], int)
            or isinstance(pair[1], bool)
        ):
            raise r.error(f"widths[{i}]", f"expected a [name, width] pair, got {pair!r}")
        out.append((pair[0], pair[1]))
    return tuple(out)


def _format(r: _Reader) -> FileFormat:
    # every key is read before FileFormat checks the whole: a CatalogueError is a ValueError too
    values: dict[str, Any] = {
        "kind": r.get("kind", str, choices=("csv", "jsonl", "parquet", "fixed")),
        "encoding": r.get("encoding", str, "utf-8"),
        "delimiter": r.get("delimiter", str, ","),
        "header": r.get("header", bool, True),
        "line_ending": {"LF": "\n", "CRLF": "\r\n"}[r.get("line_ending", str, "LF", choices=("LF", "CRLF"))],
        # what the agency's writer does with letters its code page lacks (look-alikes): names from such a
        # feed differ from the civil registry's in those letters
        "unencodable": r.get("unencodable", str, "error", choices=("error", "replace")),
    }
    if values["kind"] == "fixed":
        values["widths"] = _widths(r)
    elif "widths" in r.data:
        raise r.error("widths", "only a fixed-width file has widths")
    r.finish()
    try:
        return FileFormat(**values)
    except ValueError as exc:
        raise r.error("", str(exc)) from exc


def _check(r: _Reader, columns: Mapping[str, Column]) -> Check:
    kind = r.get("kind", str, choices=CHECK_KINDS)
    chk = Check(
        kind=kind,
        fields=r.strings("fields"),
        severity=r.get("severity", str, "reject", choices=get_args(Severity)),
    )
    for f in chk.fields:
        if f not in columns:
            raise r.error("fields", f"{f!r} is not a field of the feed")
    types = tuple(columns[f].type for f in chk.fields)
    if kind == "date_order":
        if len(types) < 2 or set(types) != {"date"}:
            raise r.error("fields", "date_order needs two or more date fields")
    else:
        other = "date" if kind == "iin_birth_date" else "code"
        if types != ("iin", other):
            raise r.error("fields", f"{kind} needs [an iin field, a {other} field], got types {list(types)}")
    r.finish()
    return chk


def load_feed(path: Path) -> FeedSpec:
    """Load and check one feed definition."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(path, "", f"not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(path, "", f"cannot read the definition: {exc}") from exc
    root = _Reader(path, data, "")
    feed = root.table("feed")
    assert feed is not None
    name = feed.get("name", str)
    if name != path.stem:
        raise feed.error("name", f"{name!r} must match the file name {path.stem!r}")
    mode = feed.get("mode", str, choices=get_args(Mode))
    fmt_r = root.table("format")
    assert fmt_r is not None
    fmt = _format(fmt_r)
    column_rs = root.tables("columns")
    columns = tuple(_column(c) for c in column_rs)
    if not columns:
        raise root.error("columns", "a feed needs at least one column")
    by_field: dict[str, Column] = {}
    names: set[str] = set()
    for i, c in enumerate(columns):
        if c.field in by_field:
            raise root.error(f"columns[{i}].field", f"{c.field!r} is used twice")
        if c.name in names:
            raise root.error(f"columns[{i}].name", f"{c.name!r} is used twice")
        by_field[c.field] = c
        names.add(c.name)
    if fmt.kind == "fixed" and tuple(n for n, _ in fmt.widths) != tuple(c.name for c in columns):
        raise fmt_r.error("widths", "must list the columns in file order")
    key = feed.strings("key")
    if not key:
        raise feed.error("key", "a feed needs a key")
    for k in key:
        if k not in by_field:
            raise feed.error("key", f"{k!r} is not a field of the feed")
        if not by_field[k].required:
            raise feed.error("key", f"key field {k!r} must be required")
    op_field = feed.get("op_field", str, None)
    ops: dict[str, Op] = {}
    ops_r = feed.table("ops", None)
    if ops_r is not None:
        for value in list(ops_r.data):
            ops[value] = ops_r.get(value, str, choices=get_args(Op))
        ops_r.finish()
    if mode == "delta" and op_field is None:
        raise feed.error("op_field", "a delta feed needs its operation column")
    if op_field is not None:
        if op_field not in by_field:
            raise feed.error("op_field", f"{op_field!r} is not a field of the feed")
        if not ops:
            raise feed.error("ops", "an operation column needs its operations (value = operation)")
        op_col = by_field[op_field]
        if op_col.type == "code" and set(ops) != set(op_col.codes):
            raise feed.error("ops", f"must map exactly the codes of {op_field!r}: {list(op_col.codes)}")
    elif ops:
        raise feed.error("ops", "operations need an op_field")
    persons: list[PersonRef] = []
    for pr in root.tables("persons"):
        refs = {k: pr.get(k, str, None) for k in PersonRef.__dataclass_fields__ if k != "role"}
        for k, v in refs.items():
            if v is not None and v not in by_field:
                raise pr.error(k, f"{v!r} is not a field of the feed")
        role = pr.get("role", str)
        if role in (p.role for p in persons):
            raise pr.error("role", f"{role!r} is used twice")
        persons.append(PersonRef(role=role, **refs))
        pr.finish()
    checks = tuple(_check(cr, by_field) for cr in root.tables("checks"))
    spec = FeedSpec(
        name=name,
        agency=feed.get("agency", str),
        title=feed.get("title", str),
        version=feed.get("version", int, 1),
        description=feed.get("description", str, ""),
        format=fmt,
        cadence_months=feed.get("cadence_months", int),
        due_day=feed.get("due_day", int, 6),
        mode=mode,
        key=key,
        columns=columns,
        op_field=op_field,
        ops=ops,
        persons=tuple(persons),
        checks=checks,
        path=str(path),
    )
    if spec.version < 1:
        raise feed.error("version", f"{spec.version} is not a version (1 or more)")
    if not 1 <= spec.cadence_months <= 12:
        raise feed.error("cadence_months", f"{spec.cadence_months} is not within 1..12")
    if not 1 <= spec.due_day <= 28:  # a day that every month has
        raise feed.error("due_day", f"{spec.due_day} is not within 1..28")
    feed.finish()
    root.finish()
    return spec


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Every ``*.toml`` feed definition in ``directory`` (default: the shipped catalogue), by name."""
    directory = directory or FEEDS_DIR
    if directory == FEEDS_DIR:
        return _shipped()
    return _load(directory)


@cache
def _shipped() -> Catalogue:
    return _load(FEEDS_DIR)


def _load(directory: Path) -> Catalogue:
    paths = sorted(Path(directory).glob("*.toml"))
    if not paths:
        raise CatalogueError(directory, "", "no feed definitions (*.toml) found")
    feeds = tuple(load_feed(p) for p in paths)
    by_name = {f.name: f for f in feeds}
    # references point across files, so they are checked once every feed is loaded
    for f in feeds:
        for i, c in enumerate(f.columns):
            if c.references is None:
                continue
            target = by_name.get(c.references.feed)
            if target is None:
                raise CatalogueError(
                    f.path, f"columns[{i}].references.feed", f"no feed {c.references.feed!r} in the catalogue"
                )
            if c.references.field not in target.fields:
                raise CatalogueError(
                    f.path,
                    f"columns[{i}].references.field",
                    f"feed {target.name} has no field {c.references.field!r}",
                )
    return Catalogue(feeds)
