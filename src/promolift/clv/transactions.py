"""Read and validate an order log (one row per order: customer, date, value).

The result is the input of :func:`promolift.clv.rfm_summary`: a frame with columns
``customer`` (str), ``date`` (``datetime64[ns]`` at day precision) and ``value`` (float),
sorted by customer and date, with same-day orders of one customer merged (values summed),
because the BG/NBD model counts purchase *occasions*, not order lines.

Every problem found raises :class:`~promolift.errors.DataError` naming the file, the column,
up to five offending data rows (1-based, header not counted) and the fix.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from promolift.errors import DataError, did_you_mean

__all__ = ["load_transactions", "read_order_file", "parse_dates", "merge_same_day", "CDNOW_COLUMNS"]

CDNOW_COLUMNS = ("customer_id", "date", "number_of_cds", "dollar_value")
"""Column names of the CDNOW master file (whitespace separated, no header in the original)."""


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    """'data rows 3, 17, 20 (and 4 more)': 1-based data rows, header not counted."""
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i + 1) for i in idx[:limit])
    more = f" (and {len(idx) - limit} more)" if len(idx) > limit else ""
    return f"data row{'s' if len(idx) > 1 else ''} {shown}{more}"


def _first_line(path: Path) -> str:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            return fh.readline()
    except OSError as exc:
        raise DataError(f"{path}: could not be read: {exc}") from None


def _detect_sep(line: str) -> str:
    """Comma, tab, semicolon or runs of whitespace, from the first line of the file."""
    for sep in (",", "\t", ";"):
        if sep in line:
            return sep
    return r"\s+"


def _looks_like_header(line: str, sep: str) -> bool:
    """True when no field of the first line is a number (a header, not an order)."""
    fields = [f for f in (line.split() if sep == r"\s+" else line.strip().split(sep)) if f]
    return bool(fields) and not any(_is_number(f.strip().strip('"')) for f in fields)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_order_file(
    path: str | Path,
    columns: Sequence[str],
    *,
    sep: str | None = None,
    names: Sequence[str] | None = None,
    string_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Read ``columns`` of a CSV / CSV.gz / whitespace text / Parquet order file.

    Parameters
    ----------
    path : str or Path
        ``.parquet``/``.pq`` files are read with pyarrow; anything else as delimited text
        (gzip if it ends in ``.gz``).
    columns : sequence of str
        The columns needed; a missing one is a :class:`DataError` with the closest name.
    sep : str or None, default=None
        Field separator; ``None`` detects comma, tab, semicolon or whitespace from the first
        line (the CDNOW master file is whitespace separated).
    names : sequence of str or None, default=None
        Column names for a file without a header row. A first line with no numeric field is
        taken to be a header and skipped, so the same ``names`` read both variants.
    string_columns : sequence of str, default=()
        Columns kept as text (customer ids keep their leading zeros).

    Returns
    -------
    pandas.DataFrame
        The requested columns, in file order.

    Raises
    ------
    DataError
        File missing, unreadable, of an unknown type, empty, or lacking a column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found. Check the path.")
    suffix = "".join(path.suffixes[-2:]).lower()
    columns = list(dict.fromkeys(columns))
    if suffix.endswith((".parquet", ".pq")):
        if names:
            raise DataError(f"{path}: --names/names is only for text files without a header; "
                            "Parquet files carry their own column names.")
        import pyarrow.parquet as pq

        try:
            have = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: could not be read as Parquet: {exc}") from None
        _require(columns, have, str(path))
        frame = pd.read_parquet(path, columns=columns)
    else:
        line = _first_line(path)
        if not line.strip():
            raise DataError(f"{path}: the file is empty. It needs one row per order.")
        sep = sep or _detect_sep(line)
        header: int | None = 0
        if names:
            header = 0 if _looks_like_header(line, sep) else None
            have = list(names)
        else:
            have = (line.split() if sep == r"\s+" else line.rstrip("\r\n").split(sep))
            have = [h.strip().strip('"') for h in have]
        _require(columns, have, str(path), headerless_hint=not names)
        dtype = {c: str for c in string_columns if c in columns}
        try:
            frame = pd.read_csv(path, sep=sep, header=header, names=list(names) if names else None,
                                usecols=columns, dtype=dtype, skipinitialspace=sep != r"\s+",
                                engine="c")
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty. It needs one row per order.") from None
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise DataError(f"{path}: could not be read as delimited text (separator {sep!r}): "
                            f"{exc}. Pass the right separator (--sep) or fix the file.") from None
        frame = frame[columns]
    if frame.empty:
        raise DataError(f"{path}: the order log has no data rows. It needs one row per order.")
    return frame


def _require(columns: Sequence[str], have: Sequence[str], source: str, *,
             headerless_hint: bool = False) -> None:
    missing = [c for c in columns if c not in have]
    if not missing:
        return
    hints = "".join(f"\n  - '{c}'{did_you_mean(c, have) or ' (no similar column)'}" for c in missing)
    fix = "Pass the right column name (--customer-col, --date-col, --value-col)"
    if headerless_hint and all(_is_number(h) for h in have[:2] if h):
        fix += ("; the file seems to have no header row: name its columns with --names "
                f"(e.g. --names {','.join(CDNOW_COLUMNS)} for the CDNOW master file)")
    raise DataError(f"{source}: {len(missing)} column(s) missing:{hints}\n"
                    f"The file has: {', '.join(map(str, have))}. {fix}.")


def parse_dates(raw: pd.Series, *, date_format: str | None, source: str, column: str) -> pd.Series:
    """Parse order dates to ``datetime64[ns]`` at day precision.

    Integers or 8-digit strings are read as ``YYYYMMDD`` (the CDNOW convention); other text
    with ``date_format`` if given, else ISO 8601 / pandas inference. Time zones are converted
    to UTC and dropped; times of day are dropped.

    Raises
    ------
    DataError
        Empty or unparseable dates, naming the rows and an example value.
    """
    missing = raw.isna().to_numpy()
    if missing.any():
        raise DataError(f"{source}: column '{column}' has empty dates at {_rows(missing)}. "
                        "Every order needs a date; fill them in or drop those rows.")
    if date_format is None and pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        return parsed.dt.normalize().astype("datetime64[ns]")
    values = raw
    fmt = date_format
    if fmt is None:
        if pd.api.types.is_integer_dtype(raw) or pd.api.types.is_float_dtype(raw):
            values, fmt = raw.astype(np.int64).astype(str), "%Y%m%d"
        else:
            text = raw.astype(str).str.strip()
            values = text
            if text.str.fullmatch(r"\d{8}").all():
                fmt = "%Y%m%d"
    try:
        if fmt is None:
            try:  # the common case, vectorised: ISO 8601 dates
                parsed = pd.to_datetime(values, errors="raise", format="ISO8601", utc=True)
            except (ValueError, TypeError):
                parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        else:
            parsed = pd.to_datetime(values, errors="coerce", format=fmt)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{source}: column '{column}' could not be parsed as dates: {exc}. "
                        "Pass the format with --date-format (e.g. %Y-%m-%d).") from None
    bad = parsed.isna().to_numpy()
    if bad.any():
        example = raw[bad].iloc[0]
        hint = f"the format {fmt!r}" if fmt else "a recognisable date format"
        raise DataError(f"{source}: column '{column}' has unparseable dates, e.g. {example!r} at "
                        f"{_rows(bad)}; expected {hint}. Fix those rows or pass the right "
                        "--date-format (strftime codes, e.g. %d/%m/%Y).")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.dt.normalize().astype("datetime64[ns]")


def _customer_ids(raw: pd.Series, source: str, column: str) -> pd.Series:
    if pd.api.types.is_float_dtype(raw):
        missing = raw.isna().to_numpy()
        if not missing.any() and np.all(np.mod(raw.to_numpy(), 1) == 0):
            raw = raw.astype(np.int64)
    ids = raw.astype("string").str.strip()
    missing = ids.isna().to_numpy() | (ids == "").fillna(True).to_numpy()
    if missing.any():
        raise DataError(f"{source}: column '{column}' has missing customer ids at {_rows(missing)}. "
                        "Every order needs a customer id; fill them in or drop those rows.")
    return ids.astype(str)


def _order_values(raw: pd.Series, source: str, column: str) -> np.ndarray:
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna().to_numpy() & raw.notna().to_numpy()
    if bad.any():
        raise DataError(f"{source}: column '{column}' is not numeric, e.g. {raw[bad].iloc[0]!r} at "
                        f"{_rows(bad)}. Order values must be numbers (no currency signs).")
    if values.isna().any():
        raise DataError(f"{source}: column '{column}' has empty order values at "
                        f"{_rows(values.isna().to_numpy())}. Fill them in (0 for free orders) or "
                        "drop those rows.")
    out = values.to_numpy(dtype=np.float64)
    neg = out < 0
    if neg.any():
        raise DataError(f"{source}: column '{column}' has negative order values, e.g. "
                        f"{out[neg][0]:g} at {_rows(neg)}. Returns and refunds are not orders: "
                        "net them into the original order or drop those rows.")
    if not np.isfinite(out).all():
        raise DataError(f"{source}: column '{column}' has infinite values at "
                        f"{_rows(~np.isfinite(out))}. Fix those rows.")
    return out


def merge_same_day(frame: pd.DataFrame) -> pd.DataFrame:
    """Merge orders of one customer on one day (values summed); sort by customer and date."""
    merged = (frame.groupby(["customer", "date"], sort=True, observed=True)["value"]
              .sum(min_count=1).reset_index())
    return merged


def load_transactions(
    source: str | Path | pd.DataFrame,
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None,
    date_format: str | None = None,
    sep: str | None = None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Load, validate and clean an order log.

    Parameters
    ----------
    source : str, Path or DataFrame
        CSV, CSV.gz, whitespace-separated text (e.g. the CDNOW master file) or Parquet file,
        or a frame already in memory.
    customer_col, date_col : str
        Columns with the customer id and the order date.
    value_col : str or None
        Column with the order value; ``None`` when the log has no values (then ``value`` is
        NaN and only purchase counts can be modelled).
    date_format : str or None, default=None
        strftime format of text dates; ``None`` reads ``YYYYMMDD`` integers and ISO dates.
    sep : str or None, default=None
        Field separator of text files; ``None`` detects it from the first line.
    names : sequence of str or None, default=None
        Column names for a text file without a header row.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer`` (str), ``date`` (``datetime64[ns]``, midnight) and ``value``
        (float), one row per customer and day, sorted. ``attrs["source"]`` and
        ``attrs["n_orders"]`` (rows before merging) describe the input.

    Raises
    ------
    DataError
        Missing columns (with the closest name), empty log, missing customer ids, empty or
        unparseable dates, non-numeric, empty or negative values.

    See Also
    --------
    rfm_summary : Per-customer frequency, recency and age from this log.

    Examples
    --------
    >>> raw = pd.DataFrame({"id": [1, 1, 2], "day": ["2024-01-02", "2024-01-02", "2024-03-01"],
    ...                     "amount": [5.0, 2.5, 10.0]})
    >>> load_transactions(raw, customer_col="id", date_col="day", value_col="amount")
      customer       date  value
    0        1 2024-01-02    7.5
    1        2 2024-03-01   10.0
    """
    columns = [customer_col, date_col] + ([value_col] if value_col else [])
    if isinstance(source, pd.DataFrame):
        name = "<frame>"
        _require(columns, list(map(str, source.columns)), name)
        frame = source[columns]
        if frame.empty:
            raise DataError("the order log frame is empty: it needs one row per order.")
    else:
        name = str(source)
        frame = read_order_file(source, columns, sep=sep, names=names, string_columns=[customer_col])
    customer = _customer_ids(frame[customer_col], name, customer_col)
    date = parse_dates(frame[date_col], date_format=date_format, source=name, column=date_col)
    value = (_order_values(frame[value_col], name, value_col) if value_col
             else np.full(len(frame), np.nan))
    clean = pd.DataFrame({"customer": customer.to_numpy(), "date": date.to_numpy(), "value": value})
    out = merge_same_day(clean)
    out.attrs.update(source=name, n_orders=len(frame))
    return out
