"""Order-log loading, validation errors, RFM summary by hand, and the DuckDB path."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promolift.clv import NewCustomersWarning, load_transactions, rfm_summary, summarize_file
from promolift.datasets import load_cdnow_sample
from promolift.errors import DataError

COLS = dict(customer_col="customer_id", date_col="date", value_col="amount")

ORDERS = """customer_id,date,amount
a,2024-01-01,10
a,2024-01-01,5
a,2024-01-08,20
a,2024-01-15,40
b,2024-01-08,5
a,2024-01-22,7
b,2024-01-29,9
c,2024-01-25,3
"""


def write(tmp_path: Path, text: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_merges_same_day_orders(tmp_path):
    tx = load_transactions(write(tmp_path, ORDERS), **COLS)
    assert list(tx.columns) == ["customer", "date", "value"]
    assert tx["date"].dtype == "datetime64[ns]"
    first = tx.iloc[0]
    assert (first["customer"], str(first["date"].date()), first["value"]) == ("a", "2024-01-01", 15.0)
    assert len(tx) == 7 and tx.attrs["n_orders"] == 8


def test_rfm_summary_by_hand_with_holdout(tmp_path):
    tx = load_transactions(write(tmp_path, ORDERS), **COLS)
    with pytest.warns(NewCustomersWarning, match="1 customer.*'c'"):
        s = rfm_summary(tx, calibration_end="2024-01-15", observation_end="2024-01-29")
    # a: occasions 01-01 (15), 01-08 (20), 01-15 (40) in calibration; 01-22 (7) in holdout.
    a = s.loc["a"]
    assert a["frequency"] == 2 and a["recency"] == 2.0 and a["T"] == 2.0
    assert a["monetary_value"] == 30.0
    assert a["frequency_holdout"] == 1 and a["monetary_value_holdout"] == 7.0
    b = s.loc["b"]
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0, 0.0, 1.0, 0.0)
    assert b["frequency_holdout"] == 1 and b["monetary_value_holdout"] == 9.0
    assert s["duration_holdout"].eq(2.0).all()
    assert "c" not in s.index and s.attrs["n_new_customers"] == 1
    days = rfm_summary(tx, calibration_end="2024-01-15", unit="D", new_customers="drop")
    assert days.loc["a", "T"] == 14.0 and "frequency_holdout" not in days


def test_new_customers_raise(tmp_path):
    tx = load_transactions(write(tmp_path, ORDERS), **COLS)
    with pytest.raises(DataError, match="no order on or before calibration_end 2024-01-15.*'c'"):
        rfm_summary(tx, calibration_end="2024-01-15", observation_end="2024-01-29",
                    new_customers="raise")
    with pytest.raises(DataError, match="observation_end .* is before calibration_end"):
        rfm_summary(tx, calibration_end="2024-01-15", observation_end="2024-01-01")
    with pytest.raises(DataError, match="no orders on or before calibration_end"):
        rfm_summary(tx, calibration_end="2023-01-01")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("customer_id,day,amount\na,2024-01-01,1\n", r"missing:\n  - 'date' \(no similar column\)"),
        ("customer,date,amount\na,2024-01-01,1\n", r"'customer_id' Did you mean 'customer'\?"),
        ("customer_id,date,amount\n", "no data rows"),
        ("", "empty"),
        ("customer_id,date,amount\na,2024-01-01,1\n,2024-01-02,2\nb,2024-01-03,3\n",
         "column 'customer_id' has missing customer ids at data row 2"),
        ("customer_id,date,amount\na,2024-01-01,1\na,yesterday,2\nb,2024-13-45,3\n",
         "column 'date' has unparseable dates, e.g. 'yesterday' at data rows 2, 3"),
        ("customer_id,date,amount\na,2024-01-01,-1\na,2024-01-02,2\n",
         "column 'amount' has negative order values, e.g. -1 at data row 1.*refunds"),
        ("customer_id,date,amount\na,2024-01-01,$1\n", "column 'amount' is not numeric, e.g. '\\$1'"),
        ("customer_id,date,amount\na,2024-01-01,\n", "column 'amount' has empty order values at data row 1"),
        ("customer_id,date,amount\na,,3\n", "column 'date' has empty dates at data row 1"),
    ],
)
def test_bad_logs_raise_clear_errors(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=match) as info:
        load_transactions(path, **COLS)
    assert str(path) in str(info.value)


def test_error_lists_at_most_five_rows(tmp_path):
    rows = "".join(f"a,2024-01-{d:02d},-1\n" for d in range(1, 9))
    with pytest.raises(DataError, match=r"data rows 1, 2, 3, 4, 5 \(and 3 more\)"):
        load_transactions(write(tmp_path, "customer_id,date,amount\n" + rows), **COLS)


def test_missing_file_and_headerless_hint(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_transactions(tmp_path / "nope.csv", **COLS)
    path = write(tmp_path, " 00001 19970101  1   11.77\n 00002 19970112  1   12.00\n", "cdnow.txt")
    with pytest.raises(DataError, match="--names customer_id,date,number_of_cds,dollar_value"):
        load_transactions(path, customer_col="customer_id", date_col="date", value_col="dollar_value")


@pytest.mark.parametrize("header", [True, False])
def test_cdnow_whitespace_format(tmp_path, header):
    body = " 00001 19970101  1   11.77\r\n 00002 19970112  1   12.00\r\n 00002 19970112  5   77.00\r\n"
    head = " customer_id  date number_of_cds  dollar_value\r\n" if header else ""
    path = write(tmp_path, head + body, "cdnow.txt")
    names = None if header else ["customer_id", "date", "number_of_cds", "dollar_value"]
    tx = load_transactions(path, customer_col="customer_id", date_col="date",
                           value_col="dollar_value", names=names)
    assert tx["customer"].tolist() == ["00001", "00002"]  # leading zeros kept, same day merged
    assert tx["value"].tolist() == [11.77, 89.0]
    assert tx["date"].dt.strftime("%Y-%m-%d").tolist() == ["1997-01-01", "1997-01-12"]


def test_gzip_parquet_and_date_format(tmp_path):
    text = "customer_id;date;amount\n1;02/01/2024;3.5\n2;15/01/2024;1\n"
    gz = tmp_path / "orders.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    tx = load_transactions(gz, **COLS, date_format="%d/%m/%Y")
    assert tx["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-02", "2024-01-15"]
    pq = tmp_path / "orders.parquet"
    pd.DataFrame({"customer_id": [1, 2], "date": pd.to_datetime(["2024-01-02", "2024-01-15"]),
                  "amount": [3.5, 1.0]}).to_parquet(pq)
    pd.testing.assert_frame_equal(load_transactions(pq, **COLS), tx)
    with pytest.raises(DataError, match="'amount' Did you mean 'amount'|amnt"):
        load_transactions(pq, customer_col="customer_id", date_col="date", value_col="amnt")


@pytest.mark.parametrize("kwargs", [
    {},
    {"calibration_end": "1997-09-30", "observation_end": "1998-06-30"},
    {"calibration_end": "1997-02-15", "observation_end": "last", "new_customers": "drop", "unit": "D"},
])
def test_duckdb_summary_equals_pandas(tmp_path, kwargs):
    raw = load_cdnow_sample()
    path = tmp_path / "cdnow.txt"
    # The original whitespace format without header, as the CDNOW master file is published.
    lines = (" " + raw["customer_id"].map("{:05d}".format) + " " + raw["date"].astype(str) + "  "
             + raw["number_of_cds"].astype(str) + "  " + raw["dollar_value"].map("{:.2f}".format))
    path.write_text("\n".join(lines) + "\n")
    read = dict(customer_col="customer_id", date_col="date", value_col="dollar_value",
                names=["customer_id", "date", "number_of_cds", "dollar_value"])
    expected = rfm_summary(load_transactions(path, **read), **kwargs)
    got = summarize_file(path, **read, **kwargs)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)
    assert got.attrs == expected.attrs


def test_duckdb_errors_match(tmp_path):
    path = write(tmp_path, "customer_id,date,amount\na,2024-01-01,1\na,yesterday,2\nb,2024-13-45,3\n")
    with pytest.raises(DataError, match="unparseable dates, e.g. 'yesterday' at data rows 2, 3"):
        summarize_file(path, **COLS)
    path = write(tmp_path, "customer_id,date,amount\na,2024-01-01,-1\n,2024-01-02,2\n")
    with pytest.raises(DataError, match="missing customer ids at data row 2"):
        summarize_file(path, **COLS)
    path = write(tmp_path, "customer_id,date,amount\na,2024-01-01,-1\n")
    with pytest.raises(DataError, match="negative order values, e.g. '-1' at data row 1"):
        summarize_file(path, **COLS)
    with pytest.raises(DataError, match="Did you mean 'amount'"):
        summarize_file(path, customer_col="customer_id", date_col="date", value_col="amout")


def test_no_value_column(tmp_path):
    tx = load_transactions(write(tmp_path, ORDERS), customer_col="customer_id", date_col="date",
                           value_col=None)
    s = rfm_summary(tx)
    assert s["monetary_value"].isna().all() and s.loc["a", "frequency"] == 3
    assert np.isnan(tx["value"]).all()


@pytest.mark.parametrize("kind", ["timestamp", "date", "text"])
@pytest.mark.parametrize("value_col", ["amount", None])
def test_duckdb_typed_parquet_equals_pandas(tmp_path, kind, value_col):
    """Typed Parquet columns skip the text parsing; the summary must not change (nor without values)."""
    rng = np.random.default_rng(1)
    n = 3000
    stamps = (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, n), "D")
              + pd.to_timedelta(rng.integers(0, 86400, n), "s"))
    dates = {"timestamp": stamps, "date": stamps.date, "text": stamps.strftime("%Y-%m-%d")}[kind]
    frame = pd.DataFrame({"customer_id": rng.integers(0, 300, n), "date": dates,
                          "amount": rng.integers(0, 5000, n) / 100})
    path = tmp_path / "orders.parquet"
    frame.to_parquet(path)
    read = dict(customer_col="customer_id", date_col="date", value_col=value_col)
    periods = dict(calibration_end="2024-05-01", observation_end="last", new_customers="drop")
    expected = rfm_summary(load_transactions(path, **read), **periods)
    got = summarize_file(path, **read, **periods)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    assert got.attrs == expected.attrs
