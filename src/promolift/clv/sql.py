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
                names: Sequence[str] | None) -> str:
    """A SQL relation with the needed columns as text, in file order, with a row number."""
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
        return (f"SELECT _row, {cols} FROM (SELECT row_number() OVER () - {offset} AS _row, f "
                f"FROM ({lines})) WHERE _row >= 1")
    types = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in have) + "}"
    cols = ", ".join(_quote(c) for c in columns)
    skip = 1 if (names and header) else 0
    return (f"SELECT row_number() OVER () AS _row, {cols} FROM read_csv({_lit(str(path))}, "
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
    columns = [customer_col, date_col] + ([value_col] if value_col else [])
    con = duckdb.connect()
    try:
        if memory_limit:
            con.execute(f"SET memory_limit = {_lit(memory_limit)}")
        src = _source_sql(con, path, columns, sep, names)
        if date_format:
            date_expr = f"try_strptime(trim(draw), {_lit(date_format)})"
        else:
            date_expr = ("CASE WHEN regexp_full_match(trim(draw), '\\d{8}(\\.0+)?') "
                         "THEN try_strptime(left(trim(draw), 8), '%Y%m%d') "
                         "ELSE TRY_CAST(trim(draw) AS TIMESTAMP) END")
        value_raw = f"{_quote(value_col)}" if value_col else "NULL"
        con.execute(
            f"CREATE TEMP VIEW orders AS SELECT _row, trim(c0) AS c, draw, vraw, "
            f"CAST({date_expr} AS DATE) AS d, TRY_CAST(trim(vraw) AS DOUBLE) AS v FROM ("
            f"SELECT _row, {_quote(customer_col)} AS c0, {_quote(date_col)} AS draw, "
            f"CAST({value_raw} AS VARCHAR) AS vraw FROM ({src}))")
        _validate(con, name, customer_col, date_col, value_col)
        con.execute("CREATE TEMP TABLE occ AS SELECT c, d, sum(v) AS v FROM orders GROUP BY c, d")
        last_day = con.execute("SELECT max(d), min(d) FROM occ").fetchone()
        cal_end = np.datetime64(last_day[0], "D") if calibration_end is None else _as_day(calibration_end, "calibration_end")
        obs_end = _observation_end(observation_end, cal_end,
                                   int(np.datetime64(last_day[0], "D").astype(np.int64)))
        if obs_end < cal_end:
            raise DataError(f"observation_end {obs_end} is before calibration_end {cal_end}; the "
                            "holdout must come after the calibration period.")
        ce, oe = _lit(str(cal_end)), _lit(str(obs_end))
        cal = con.execute(
            f"SELECT c, count(*) - 1 AS n, date_diff('day', min(d), max(d)) AS rec, "
            f"date_diff('day', min(d), DATE {ce}) AS age, sum(v) - arg_min(v, d) AS rep "
            f"FROM occ WHERE d <= DATE {ce} GROUP BY c ORDER BY c").fetchnumpy()
        if len(cal["c"]) == 0:
            raise DataError(f"no orders on or before calibration_end {cal_end} (first order "
                            f"{last_day[1]}); choose a later calibration end.")
        ho = con.execute(
            f"SELECT h.c, h.n, h.s, k.c IS NOT NULL AS known FROM (SELECT c, count(*) AS n, "
            f"sum(v) AS s FROM occ WHERE d > DATE {ce} AND d <= DATE {oe} GROUP BY c) h LEFT JOIN "
            f"(SELECT DISTINCT c FROM occ WHERE d <= DATE {ce}) k ON h.c = k.c").fetchnumpy()
    finally:
        con.close()

    scale = UNIT_DAYS[unit]
    freq = np.asarray(cal["n"], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rep = np.asarray(cal["rep"], dtype=np.float64)
        monetary = np.where(freq > 0, rep / np.maximum(freq, 1), 0.0)
    if not value_col:
        monetary = np.full(len(freq), np.nan)
    summary = pd.DataFrame(
        {"frequency": freq, "recency": np.asarray(cal["rec"], dtype=np.float64) / scale,
         "T": np.asarray(cal["age"], dtype=np.float64) / scale, "monetary_value": monetary},
        index=pd.Index(np.asarray(cal["c"], dtype=object), name="customer"))
    summary.index = summary.index.astype(str)
    known = np.asarray(ho["known"], dtype=bool)
    n_new = int((~known).sum())
    if n_new:
        report_new_customers(n_new, np.sort(np.asarray(ho["c"], dtype=object)[~known])[:5], cal_end,
                             new_customers)
    if obs_end > cal_end:
        hc = pd.Index(np.asarray(ho["c"], dtype=object)[known]).astype(str)
        count = pd.Series(np.asarray(ho["n"], dtype=np.int64)[known], index=hc)
        total = pd.Series(np.asarray(ho["s"], dtype=np.float64)[known], index=hc)
        count = count.reindex(summary.index, fill_value=0).to_numpy()
        total = total.reindex(summary.index, fill_value=0.0).to_numpy()
        summary["frequency_holdout"] = count
        with np.errstate(invalid="ignore", divide="ignore"):
            summary["monetary_value_holdout"] = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        summary["duration_holdout"] = (obs_end - cal_end).astype(np.int64) / scale
    summary.attrs.update(calibration_end=str(cal_end), observation_end=str(obs_end), unit=unit,
                         n_new_customers=n_new)
    return summary
