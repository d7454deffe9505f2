"""DuckDB SQL to Spark SQL: sqlglot's transpiler plus rewrites where its translation changes the meaning.

:func:`to_spark` parses DuckDB SQL, applies the rewrites below and prints Spark SQL:

* ``QUALIFY`` becomes a filtered subquery (sqlglot's rewrite), with ``ORDER BY``/``LIMIT`` moved to the
  outer query (sqlglot would limit before filtering) and, for ``SELECT *``, the helper column ``_w``
  excluded from the result (``* EXCEPT (_w)``).
* ``DATE_DIFF('day'|'month'|'quarter'|'year', a, b)`` counts boundaries crossed in DuckDB but whole units
  elapsed in Spark's ``DATEDIFF(unit, ..)``: rewritten as differences of calendar fields.
* ``DATE_SUB('month'|'year', a, b)`` (whole units elapsed, e.g. an age) has no Spark equivalent with
  DuckDB's month-end rule (Jan 31 to Feb 29 is one month, Feb 29 2000 to Feb 28 2001 one year); it is
  written out with calendar fields and ``LAST_DAY``.
* ``/`` is floating-point division in DuckDB whatever the operands; the dividend is cast to DOUBLE so
  that Spark does not keep DECIMAL operands DECIMAL.
* ``CAST(a / b AS <integer>)`` and ``CAST(AVG(x) AS <integer>)``: DuckDB rounds half to even, Spark
  truncates; the operand is wrapped in ``BROUND``.
* ``REGEXP_MATCHES``/``REGEXP_REPLACE`` options: ``'i'`` becomes an inline ``(?iu)``; ``'g'`` is Spark's
  only behaviour of ``REGEXP_REPLACE``.
* ``ARG_MAX(v, k)``/``ARG_MIN(v, k)`` skip rows where ``v`` is NULL in DuckDB; Spark's ``MAX_BY``/``MIN_BY``
  do not, so ``k`` becomes ``IF(v IS NOT NULL, k)``.
* ``CONCAT`` arguments are cast to text (sqlglot wraps them in ``COALESCE(x, '')``, which ANSI Spark
  rejects for numbers).
* ``TRY_STRPTIME`` becomes ``TRY_TO_TIMESTAMP`` with the format translated.

:func:`check_portable` rejects, on both engines, SQL that would silently give different results:
``HASH`` (a different function in each), ``REGEXP_REPLACE`` without ``'g'`` (DuckDB replaces the first
match only, Spark cannot), other regular-expression options, and ``DATE_DIFF``/``DATE_SUB`` in units that
are not rewritten above.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp, transforms
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError


class UnsupportedSQL(ValueError):
    """SQL that does not mean the same on DuckDB and Spark."""


_INTEGER_TYPES = {
    exp.DataType.Type.TINYINT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.INT128,
    exp.DataType.Type.UTINYINT,
    exp.DataType.Type.USMALLINT,
    exp.DataType.Type.UINT,
    exp.DataType.Type.UBIGINT,
}
_DATE_DIFF_UNITS = {"DAY", "WEEK", "MONTH", "QUARTER", "YEAR"}
_DATE_SUB_UNITS = {"MONTH", "YEAR"}
_DATE_SUB_NAMES = {"DATE_SUB", "DATESUB"}


def _parse(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read="duckdb")


def _unit(node: exp.Expr | None) -> str:
    """A date part given as ``'year'``, ``year`` or ``YEAR`` as ``YEAR``; plurals made singular."""
    if node is None:
        return "DAY"
    text = node.name.upper()
    return text[:-1] if text.endswith("S") and text != "S" else text


def _regexp_flags(node: exp.Expr, key: str) -> str:
    flags = node.args.get(key)
    if flags is None:
        return ""
    if not isinstance(flags, exp.Literal) or not flags.is_string:
        raise UnsupportedSQL(f"regular-expression options must be a string literal: {node.sql('duckdb')}")
    return str(flags.this)


def _check(tree: exp.Expr) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Anonymous) and node.name.upper() == "HASH":
            raise UnsupportedSQL("HASH differs between DuckDB and Spark; use MD5(text) or SHA256(text)")
        if isinstance(node, exp.RegexpReplace):
            flags = _regexp_flags(node, "modifiers")
            if "g" not in flags:
                raise UnsupportedSQL(
                    "REGEXP_REPLACE without 'g' replaces only the first match in DuckDB and every match "
                    f"in Spark; pass 'g': {node.sql('duckdb')}"
                )
            if set(flags) - {"g", "i"}:
                raise UnsupportedSQL(
                    f"only the regular-expression options 'g' and 'i' are portable: {flags!r}"
                )
        if isinstance(node, exp.RegexpLike) and set(_regexp_flags(node, "flag")) - {"i"}:
            raise UnsupportedSQL(f"only the regular-expression option 'i' is portable: {node.sql('duckdb')}")
        if isinstance(node, exp.DateDiff) and _unit(node.args.get("unit")) not in _DATE_DIFF_UNITS:
            raise UnsupportedSQL(f"DATE_DIFF is portable in units {sorted(_DATE_DIFF_UNITS)} only")
        if (
            isinstance(node, exp.Anonymous)
            and node.name.upper() in _DATE_SUB_NAMES
            and (len(node.expressions) != 3 or _unit(node.expressions[0]) not in _DATE_SUB_UNITS)
        ):
            raise UnsupportedSQL(f"DATE_SUB is portable in units {sorted(_DATE_SUB_UNITS)} only")


def check_portable(sql: str) -> None:
    """Raise :class:`UnsupportedSQL` if ``sql`` uses a construct that gives different results on the two
    engines; SQL that sqlglot cannot parse is left to the engine to judge."""
    try:
        tree = _parse(sql)
    except ParseError:
        return
    _check(tree)


def _field(name: str, value: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=[value.copy()])


def _field_diff(name: str, start: exp.Expr, end: exp.Expr) -> exp.Expr:
    return exp.Paren(this=exp.Sub(this=_field(name, end), expression=_field(name, start)))


def _date_diff(node: exp.DateDiff) -> exp.Expr:
    """DuckDB's ``DATE_DIFF(unit, start, end)``: calendar boundaries crossed (whole weeks for weeks)."""
    unit = _unit(node.args.get("unit"))
    start, end = node.expression, node.this
    if unit == "DAY":
        to_date = [exp.Cast(this=e.copy(), to=exp.DataType.build("DATE")) for e in (end, start)]
        return exp.Anonymous(this="DATEDIFF", expressions=to_date)
    if unit == "WEEK":
        return exp.Anonymous(this="TIMESTAMPDIFF", expressions=[exp.var("WEEK"), start.copy(), end.copy()])
    years = _field_diff("YEAR", start, end)
    if unit == "YEAR":
        return years
    per_year, field = (12, "MONTH") if unit == "MONTH" else (4, "QUARTER")
    scaled = exp.Mul(this=years, expression=exp.Literal.number(per_year))
    return exp.Paren(this=exp.Add(this=scaled, expression=_field_diff(field, start, end)))


def _months(start: exp.Expr, end: exp.Expr) -> exp.Expr:
    """Whole months from ``start`` to a later ``end``; when ``end`` is the last day of its month, a
    later day of month in ``start`` counts as that last day (DuckDB's rule: Jan 31 to Feb 29 is one)."""
    short = exp.and_(
        exp.LT(this=_field("DAY", end), expression=_field("DAY", start)),
        exp.NEQ(this=end.copy(), expression=_field("LAST_DAY", end)),
    )
    calendar = exp.Add(
        this=exp.Mul(this=_field_diff("YEAR", start, end), expression=exp.Literal.number(12)),
        expression=_field_diff("MONTH", start, end),
    )
    borrow = exp.Case(ifs=[exp.If(this=short, true=exp.Literal.number(1))], default=exp.Literal.number(0))
    return exp.Paren(this=exp.Sub(this=calendar, expression=borrow))


def _date_sub(unit: str, start: exp.Expr, end: exp.Expr) -> exp.Expr:
    """DuckDB's ``DATE_SUB(unit, start, end)`` on dates: whole months or years elapsed (signed)."""
    forward = _months(start, end)
    backward = exp.Neg(this=_months(end, start))
    months = exp.Case(
        ifs=[exp.If(this=exp.LTE(this=start.copy(), expression=end.copy()), true=forward)], default=backward
    )
    if unit == "MONTH":
        return months
    return exp.Paren(this=exp.IntDiv(this=months, expression=exp.Literal.number(12)))


def _rewrite(node: exp.Expr) -> exp.Expr | None:
    """The Spark form of one node, or None to keep it."""
    if isinstance(node, exp.DateDiff):
        return _date_diff(node)
    if isinstance(node, exp.Anonymous) and node.name.upper() in _DATE_SUB_NAMES:
        unit, start, end = node.expressions
        return _date_sub(_unit(unit), start, end)
    if isinstance(node, exp.Div) and not node.args.get("typed") and not node.args.get("safe"):
        # DuckDB's / is always floating-point division; Spark's keeps DECIMAL operands DECIMAL.
        node.set("this", exp.Cast(this=node.this.copy(), to=exp.DataType.build("DOUBLE")))
        return None
    if isinstance(node, exp.ArgMax | exp.ArgMin) and node.expression is not None:
        # DuckDB skips rows whose value is NULL; Spark's MAX_BY/MIN_BY would return that NULL.
        value, key = node.this, node.expression
        known = exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
        node.set("expression", exp.If(this=known, true=key.copy(), false=exp.Null()))
        return None
    if isinstance(node, exp.Concat):
        # DuckDB's CONCAT takes any type; sqlglot's COALESCE(x, '') needs x to be text under ANSI rules.
        node.set("expressions", [_text(e) for e in node.expressions])
        return None
    if isinstance(node, exp.Anonymous) and node.name.upper() == "TRY_STRPTIME":
        value, fmt = node.expressions
        java = (
            Dialect.get_or_raise("spark")
            .generator()
            .format_time(exp.StrToTime(this=value.copy(), format=fmt.copy()))
        )
        literal = exp.Literal.string(java[1:-1]) if java else fmt.copy()
        return exp.Anonymous(this="TRY_TO_TIMESTAMP", expressions=[value.copy(), literal])
    if (
        isinstance(node, exp.Cast)
        and node.to.this in _INTEGER_TYPES
        and isinstance(node.this, exp.Div | exp.Avg)
    ):
        node.set("this", exp.Anonymous(this="BROUND", expressions=[node.this.copy()]))
        return None
    if isinstance(node, exp.RegexpReplace):
        if "i" in _regexp_flags(node, "modifiers"):
            _case_insensitive(node)
        node.set("modifiers", None)
        return None
    if isinstance(node, exp.RegexpLike) and "i" in _regexp_flags(node, "flag"):
        _case_insensitive(node)
        node.set("flag", None)
    return None


def _text(value: exp.Expr) -> exp.Expr:
    if isinstance(value, exp.Literal) and value.is_string:
        return value
    return exp.Cast(this=value.copy(), to=exp.DataType.build("VARCHAR"))


def _case_insensitive(node: exp.Expr) -> None:
    """Prefix the (literal) pattern with ``(?iu)``: Java's ``(?i)`` alone folds ASCII letters only."""
    pattern = node.expression
    if not isinstance(pattern, exp.Literal) or not pattern.is_string:
        raise UnsupportedSQL(f"a case-insensitive pattern must be a string literal: {node.sql('duckdb')}")
    node.set("expression", exp.Literal.string("(?iu)" + str(pattern.this)))


_EXCEPT = "except_" if "except_" in exp.Star.arg_types else "except"


def _qualify(select: exp.Select) -> exp.Expr:
    """``SELECT .. QUALIFY ..`` as a filtered subquery, keeping DuckDB's meaning.

    sqlglot's own rewrite leaves ``LIMIT`` inside the subquery (applied before the filter), and its
    helper column ``_w`` in the result of ``SELECT *``.
    """
    before = set(select.named_selects)
    limit, offset, order = (select.args.get(key) for key in ("limit", "offset", "order"))
    select.set("limit", None)
    select.set("offset", None)
    # The outer query can sort only by what it projects, by unqualified name.
    movable = order is not None and all(
        not column.table and (select.is_star or column.name in before)
        for column in order.find_all(exp.Column)
    )
    if movable:
        select.set("order", None)
    outer = transforms.eliminate_qualify(select)
    inner = outer.find(exp.Subquery)
    if isinstance(outer, exp.Select):
        if outer.is_star and inner is not None:
            added = [name for name in inner.this.named_selects if name not in before and name != "*"]
            star = outer.expressions[0]
            if added and isinstance(star, exp.Star):
                star.set(_EXCEPT, [exp.column(name) for name in added])
        for key, value in (("order", order if movable else None), ("limit", limit), ("offset", offset)):
            if value is not None:
                outer.set(key, value)
    return outer


def to_spark(sql: str) -> str:
    """``sql`` (one statement, DuckDB dialect) in Spark's dialect, with DuckDB's meaning."""
    tree = _parse(sql)
    _check(tree)
    # Children before parents (reversed pre-order), so a replaced node's operands are already rewritten.
    for node in reversed(list(tree.walk(bfs=False))):
        replacement = _rewrite(node)
        if replacement is not None:
            if node is tree:
                tree = replacement
            else:
                node.replace(replacement)
    for select in reversed(list(tree.find_all(exp.Select))):
        if select.args.get("qualify"):
            rewritten = _qualify(select.copy())
            if select is tree:
                tree = rewritten
            else:
                select.replace(rewritten)
    return tree.sql(dialect="spark")
