"""``promolift clv`` through typer's CliRunner."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from promolift.cli import _parse_horizon, app
from promolift.datasets import load_cdnow_sample
from promolift.errors import DataError

runner = CliRunner()


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("clv") / "cdnow.csv"
    load_cdnow_sample().to_csv(path, index=False)
    return path


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_clv_command_writes_table_and_summary(cdnow_csv, tmp_path, engine):
    out = tmp_path / "clv.parquet"
    result = runner.invoke(app, ["clv", str(cdnow_csv), "--value-col", "dollar_value",
                                 "--calibration-end", "1997-09-30", "--horizon", "52w",
                                 "--margin", "0.3", "--engine", engine, "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert len(table) == 2357 and table["customer"].is_unique
    for col in ("p_alive", "expected_purchases", "expected_spend", "clv", "segment"):
        assert col in table
    summary = json.loads(out.with_suffix(".json").read_text())
    assert round(summary["bgnbd"]["params"]["r"], 3) == 0.243
    assert summary["holdout"]["actual"] == 1882 and summary["observation_end"] == "1998-06-30"
    assert summary["engine"] == engine
    assert sum(summary["segments"].values()) == 2357
    assert "BG/NBD" in result.output and "holdout" in result.output


def test_clv_command_csv_output_and_days(cdnow_csv, tmp_path):
    out = tmp_path / "clv.csv"
    result = runner.invoke(app, ["clv", str(cdnow_csv), "--value-col", "dollar_value",
                                 "--horizon", "365d", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["horizon"] == pytest.approx(365 / 7)
    assert "holdout" not in summary
    assert len(pd.read_csv(out)) == 2357


def test_clv_command_errors(cdnow_csv, tmp_path):
    result = runner.invoke(app, ["clv", str(cdnow_csv), "--value-col", "dolar_value",
                                 "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2
    assert "Did you mean 'dollar_value'" in result.output
    result = runner.invoke(app, ["clv", str(cdnow_csv), "--horizon", "soon",
                                 "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2 and "52w or 365d" in result.output
    assert not (tmp_path / "x.parquet").exists()


def test_clv_help_has_example():
    result = runner.invoke(app, ["clv", "--help"])
    assert result.exit_code == 0
    assert "Example: promolift clv" in result.output


def test_parse_horizon():
    assert _parse_horizon("52w") == 52.0
    assert _parse_horizon("14d") == 2.0
    assert _parse_horizon("10") == 10.0
    with pytest.raises(DataError, match="--horizon"):
        _parse_horizon("3y")


def test_clv_command_without_values(cdnow_csv, tmp_path):
    out = tmp_path / "counts.parquet"
    result = runner.invoke(app, ["clv", str(cdnow_csv), "--calibration-end", "1997-09-30",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert "clv" not in table and "expected_purchases" in table
    assert json.loads(out.with_suffix(".json").read_text())["gamma_gamma"] is None
