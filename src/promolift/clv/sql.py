"""Out-of-core RFM summary: validate and aggregate an order file inside DuckDB.

:func:`summarize_file` gives the same table as
``rfm_summary(load_transactions(path, ...), ...)`` but never holds the order log in memory:
DuckDB streams the file, merges same-day orders and aggregates per customer (spilling to disk
if needed), so only the per-customer summary reaches pandas. Use it for logs larger than
memory; the validation and its messages match :func:`load_transactions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from promolift.clv.summary import UNIT_DAYS, _as_day, _observation_end, report_new_customers
from promolift.clv.transactions import _detect_sep, _first_line, _looks_like_header, _require
from promolift.errors import DataError

__all__ = ["summarize_file"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _source_sql(con, path: Path, columns: list[str], sep: str | None,
                names: Sequence[str] | None, *, row_numbers: bool = True) -> str:
    """A SQL relation with the needed columns as text, in file order, with a row number
    ``_row`` (1-based data row) unless ``row_numbers`` is false."""
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith((".parquet", ".pq")):
        have = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(str(path))})").fetchall()]
        _require(columns, have, str(path))
        cols = ", ".join(f"CAST({_quote(c)} AS VARCHAR) AS {_quote(c)}" for c in columns)
        return f"SELECT row_number() OVER () AS _row, {cols} FROM read_parquet({_lit(str(path))})"
    line = _first_line(path)
    if not line.strip():
        raise DataError(f"{path}: the file is empty. It needs one row per order.")
    sep = sep or _detect_sep(line)
    header = names is None or _looks_like_header(line, sep)
    if names:
        have = list(names)
    else:
        have = [h.strip().strip('"') for h in (line.split() if sep == r"\s+" else line.rstrip("\r\n").split(sep))]
    _require(columns, have, str(path), headerless_hint=not names)
    if sep == r"\s+":
        # DuckDB has no regex delimiter: read whole lines and split them on runs of whitespace.
        lines = (f"SELECT string_split_regex(trim(line), '\\s+') AS f FROM read_csv({_lit(str(path))}, "
                 "columns={'line': 'VARCHAR'}, delim=chr(1), quote='', escape='', header=false, "
                 "auto_detect=false) WHERE trim(line) <> ''")
        cols = ", ".join(f"f[{have.index(c) + 1}] AS {_quote(c)}" for c in columns)
        offset = 1 if header else 0
        if not row_numbers:  # the header (if any) is the first line, which is not blank
            lines = lines.replace("header=false, ", f"header=false, skip={offset}, ")
            return f"SELECT {cols} FROM ({lines})"
        return (f"SELECT _row, {cols} FROM (SELECT row_number() OVER () - {offset} AS _row, f "
                f"FROM ({lines})) WHERE _row >= 1")
    types = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in have) + "}"
    cols = ", ".join(_quote(c) for c in columns)
    skip = 1 if (names and header) else 0
    numbered = "row_number() OVER () AS _row, " if row_numbers else ""
    return (f"SELECT {numbered}{cols} FROM read_csv({_lit(str(path))}, "
            f"delim={_lit(sep)}, header={'true' if header and not names else 'false'}, "
            f"skip={skip}, columns={types}, auto_detect=false)")


def _rows_text(rows: list[int], total: int) -> str:
    shown = ", ".join(str(r) for r in rows)
    more = f" (and {total - len(rows)} more)" if total > len(rows) else ""
    return f"data row{'s' if total > 1 else ''} {shown}{more}"


def _validate(con, name: str, customer_col: str, date_col: str, value_col: str | None) -> None:
    """One pass of counts; on a problem, a second query for the first offending rows."""
    checks = [
        (f"c IS NULL OR trim(c) = ''", f"column '{customer_col}' has missing customer ids",
         "Every order needs a customer id; fill them in or drop those rows."),
        ("draw IS NULL OR trim(draw) = ''", f"column '{date_col}' has empty dates",
         "Every order needs a date; fill them in or drop those rows."),
        ("d IS NULL", f"column '{date_col}' has unparseable dates",
         "Fix those rows or pass the right --date-format (strftime codes, e.g. %d/%m/%Y)."),
    ]
    if value_col:
        checks += [
            ("vraw IS NULL OR trim(vraw) = ''", f"column '{value_col}' has empty order values",
             "Fill them in (0 for free orders) or drop those rows."),
            ("v IS NULL", f"column '{value_col}' is not numeric",
             "Order values must be numbers (no currency signs)."),
            ("v < 0", f"column '{value_col}' has negative order values",
             "Returns and refunds are not orders: net them into the original order or drop those rows."),
        ]
    counts = con.execute("SELECT count(*), " + ", ".join(f"count(*) FILTER (WHERE {c})" for c, _, _ in checks)
                         + " FROM orders").fetchone()
    if counts[0] == 0:
        raise DataError(f"{name}: the order log has no data rows. It needs one row per order.")
    for (cond, what, fix), n_bad in zip(checks, counts[1:], strict=True):
        if n_bad:
            got = con.execute(f"SELECT _row, draw, vraw FROM orders WHERE {cond} ORDER BY _row LIMIT 5").fetchall()
            example = ""
            if "date" in what and "empty" not in what:
                example = f", e.g. {got[0][1]!r}"
            elif "numeric" in what or "negative" in what:
                example = f", e.g. {got[0][2]!r}"
            raise DataError(f"{name}: {what}{example} at {_rows_text([r[0] for r in got], n_bad)}. {fix}")


_SLOW_DATE = ("CASE WHEN regexp_full_match(draw, ' *\\d{8}(\\.0+)? *') "
              "THEN try_strptime(substr(ltrim(draw), 1, 8), '%Y%m%d') "
              "ELSE TRY_CAST(trim(draw) AS TIMESTAMP) END")
"""Text dates (spaces trimmed): ``YYYYMMDD`` (optionally ``.0``) or anything DuckDB casts to a
timestamp. Written without a repeated subexpression, which DuckDB would hoist and compute for
every row, so that it costs nothing on the rows the fast path below parses."""

# Plain ISO dates (1997-01-01) take a strict strptime: the regular expression above costs
# seconds on ten million rows and gives the same day for such strings.
_FAST_DATE = "CAST(try_strptime(draw, '%Y-%m-%d') AS DATE)"

_NUMERIC = ("DOUBLE", "FLOAT", "REAL", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
            "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "DECIMAL")


def _date_sql(date_format: str | None) -> str:
    if date_format:
        return f"CAST(try_strptime(trim(draw), {_lit(date_format)}) AS DATE)"
    return f"coalesce({_FAST_DATE}, CAST({_SLOW_DATE} AS DATE))"


def _create_orders_view(con, path: Path, customer_col: str, date_col: str, value_col: str | None,
                        sep: str | None, names: Sequence[str] | None, date_format: str | None) -> None:
    """The view ``orders`` (row number, raw text and parsed values) the validation queries."""
    columns = [customer_col, date_col] + ([value_col] if value_col else [])
    src = _source_sql(con, path, columns, sep, names)
    value_raw = f"{_quote(value_col)}" if value_col else "NULL"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW orders AS SELECT _row, trim(c0) AS c, draw, vraw, "
        f"{_date_sql(date_format)} AS d, TRY_CAST(trim(vraw) AS DOUBLE) AS v FROM ("
        f"SELECT _row, {_quote(customer_col)} AS c0, CAST({_quote(date_col)} AS VARCHAR) AS draw, "
        f"CAST({value_raw} AS VARCHAR) AS vraw FROM ({src}))")


def _parsed_sql(con, path: Path, customer_col: str, date_col: str, value_col: str | None,
                sep: str | None, names: Sequence[str] | None, date_format: str | None) -> str:
    """Orders as ``c`` (text id), ``d`` (DATE), ``v`` (DOUBLE) and ``bad`` (fails a check).

    The same parsing as the ``orders`` view of :func:`_create_orders_view`, without row
    numbers (which force a serial scan). Typed Parquet columns (numbers, DATE, TIMESTAMP) are
    used as they are instead of going through text.
    """
    columns = [customer_col, date_col] + ([value_col] if value_col else [])
    types: dict[str, str] = {}
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith((".parquet", ".pq")):
        rel = f"read_parquet({_lit(str(path))})"
        described = con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
        _require(columns, [r[0] for r in described], str(path))
        types = {r[0]: str(r[1]).upper() for r in described}
        src = f"SELECT {', '.join(_quote(c) for c in columns)} FROM {rel}"
    else:
        src = _source_sql(con, path, columns, sep, names, row_numbers=False)
    date_type = types.get(date_col, "VARCHAR")
    if date_format is None and date_type == "DATE":
        d = "draw_typed"
    elif date_format is None and date_type in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"):
        d = "CAST(draw_typed AS DATE)"
    else:
        d = _date_sql(date_format)
    bad = ["c IS NULL", "c = ''", "d IS NULL"]
    if not value_col:
        v = "CAST(NULL AS DOUBLE)"
    else:
        if types.get(value_col, "VARCHAR").split("(")[0] in _NUMERIC:
            v = f"CAST({_quote(value_col)} AS DOUBLE)"
        else:
            v = f"TRY_CAST(trim(CAST({_quote(value_col)} AS VARCHAR)) AS DOUBLE)"
        bad += ["v IS NULL", "v < 0"]
    return (f"SELECT c, d, v, ({' OR '.join(bad)}) AS bad FROM (SELECT c, {d} AS d, v FROM (SELECT "
            f"trim(CAST({_quote(customer_col)} AS VARCHAR)) AS c, CAST({_quote(date_col)} AS VARCHAR) "
            f"AS draw, {_quote(date_col)} AS draw_typed, {v} AS v FROM ({src})))")


def _summary_sql(parsed: str, in_cal: str, in_ho: str) -> str:
    """Per customer (sorted): calibration occasions ``n``, first and last calibration day
    (days since 1970), repeat-order value ``rep``, holdout occasions ``hn`` and value ``hs``,
    last order day ``dmax`` and whether any of her rows is ``bad``; same-day orders merged."""
    day0 = "DATE '1970-01-01'"
    # Calibration days precede holdout days, so a customer's first day and its value are the
    # calibration ones whenever she has a calibration order (n > 0; the others are dropped).
    return (f"SELECT c, count_if({in_cal}) AS n, min(d) - {day0} AS first, "
            f"coalesce(max(CASE WHEN {in_cal} THEN d END) - {day0}, 0) AS last, "
            f"sum(CASE WHEN {in_cal} THEN v END) - arg_min(v, d) AS rep, "
            f"count_if({in_ho}) AS hn, sum(CASE WHEN {in_ho} THEN v END) AS hs, "
            f"max(d) - {day0} AS dmax, bool_or(bad) AS bad "
            f"FROM (SELECT c, d, sum(v) AS v, bool_or(bad) AS bad FROM ({parsed}) GROUP BY c, d) "
            f"GROUP BY c ORDER BY c")


def summarize_file(
    path: str | Path,
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None,
    date_format: str | None = None,
    sep: str | None = None,
    names: Sequence[str] | None = None,
    calibration_end=None,
    observation_end=None,
    unit: Literal["W", "D"] = "W",
    new_customers: Literal["warn", "drop", "raise"] = "warn",
    memory_limit: str | None = None,
) -> pd.DataFrame:
    """RFM summary of an order file computed out of core with DuckDB.

    Parameters are those of :func:`load_transactions` and :func:`rfm_summary`, plus
    ``memory_limit`` (DuckDB setting such as ``"2GB"``; beyond it DuckDB spills to a
    temporary directory). Returns the same frame as
    ``rfm_summary(load_transactions(path, ...), ...)``.

    Raises
    ------
    DataError
        As :func:`load_transactions` and :func:`rfm_summary`.
    """
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is installed in CI
        raise DataError("the out-of-core engine needs DuckDB: pip install 'promolift[clv]', or use the "
                        "pandas engine (--engine pandas).") from None

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found. Check the path.")
    if unit not in UNIT_DAYS:
        raise DataError(f"unit must be 'W' (weeks) or 'D' (days), got {unit!r}.")
    name = str(path)
    if observation_end is not None and not (isinstance(observation_end, str) and observation_end == "last"):
        _as_day(observation_end, "observation_end")  # a bad date is an error before the file is read
    cal_end = None if calibration_end is None else _as_day(calibration_end, "calibration_end")
    con = duckdb.connect()
    try:
        if memory_limit:
            con.execute(f"SET memory_limit = {_lit(memory_limit)}")
        # One pass over the file: parse, merge same-day orders and aggregate per customer in
        # a single query (both periods at once); the validation only counts bad rows here and
        # names them in a second query when there are any.
        parsed = _parsed_sql(con, path, customer_col, date_col, value_col, sep, names, date_format)
        ce = None if cal_end is None else f"DATE {_lit(str(cal_end))}"
        explicit_obs = observation_end is not None and not (
            isinstance(observation_end, str) and observation_end == "last")
        if ce is None:  # calibration to the last order: every order is in it, no holdout
            in_cal, in_ho = "true", "false"
        elif observation_end is None:
            in_cal, in_ho = f"d <= {ce}", "false"
        elif explicit_obs:
            oe = f"DATE {_lit(str(_as_day(observation_end, 'observation_end')))}"
            in_cal, in_ho = f"d <= {ce}", f"d > {ce} AND d <= {oe}"
        else:  # "last": everything after the calibration end
            in_cal, in_ho = f"d <= {ce}", f"d > {ce}"
        res = con.execute(_summary_sql(parsed, in_cal, in_ho)).fetchnumpy()
        if len(res["c"]) == 0 or np.ma.filled(res["bad"], True).any():
            _create_orders_view(con, path, customer_col, date_col, value_col, sep, names, date_format)
            _validate(con, name, customer_col, date_col, value_col)
    finally:
        con.close()

    last_day = int(np.max(res["dmax"]))
    first_day = np.asarray(res["first"], dtype=np.int64)
    if cal_end is None:
        cal_end = np.datetime64(last_day, "D")
    obs_end = _observation_end(observation_end, cal_end, last_day)
    if obs_end < cal_end:
        raise DataError(f"observation_end {obs_end} is before calibration_end {cal_end}; the "
                        "holdout must come after the calibration period.")
    n_cal = np.asarray(res["n"], dtype=np.int64)
    known = n_cal > 0
    if not known.any():
        raise DataError(f"no orders on or before calibration_end {cal_end} (first order "
                        f"{np.datetime64(int(first_day.min()), 'D')}); choose a later calibration end.")
    cal_day = int(cal_end.astype(np.int64))
    customers = np.asarray(res["c"], dtype=object)
    h_count = np.asarray(res["hn"], dtype=np.int64)
    new = ~known & (h_count > 0)
    n_new = int(new.sum())
    if n_new:
        report_new_customers(n_new, customers[new][:5], cal_end, new_customers)

    scale = UNIT_DAYS[unit]
    freq = n_cal[known] - 1
    first = first_day[known]
    with np.errstate(invalid="ignore", divide="ignore"):
        rep = np.ma.filled(np.ma.asarray(res["rep"], dtype=np.float64), np.nan)[known]
        monetary = np.where(freq > 0, rep / np.maximum(freq, 1), 0.0)
    if not value_col:
        monetary = np.full(len(freq), np.nan)
    summary = pd.DataFrame(
        {"frequency": freq, "recency": (np.asarray(res["last"], dtype=np.int64)[known] - first) / scale,
         "T": (cal_day - first) / scale, "monetary_value": monetary},
        index=pd.Index(customers[known], name="customer"))
    summary.index = summary.index.astype(str)
    if obs_end > cal_end:
        count = h_count[known]
        total = np.ma.filled(np.ma.asarray(res["hs"], dtype=np.float64), np.nan)[known]
        total = np.where(count > 0, total, 0.0)
        summary["frequency_holdout"] = count
        with np.errstate(invalid="ignore", divide="ignore"):
            summary["monetary_value_holdout"] = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        summary["duration_holdout"] = (obs_end - cal_end).astype(np.int64) / scale
    summary.attrs.update(calibration_end=str(cal_end), observation_end=str(obs_end), unit=unit,
                         n_new_customers=n_new)
    return summary
