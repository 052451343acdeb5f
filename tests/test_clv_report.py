"""CLV report: figure data against hand-computed values, and the offline HTML page."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from promolift.clv.report import (
    clv_histogram,
    cumulative_repeat_purchases,
    plot_clv_histogram,
    plot_cumulative_repeat_purchases,
    plot_purchases_by_frequency,
    purchases_by_frequency,
    render_clv_report,
    write_clv_report,
)
from promolift.errors import DataError

CAL, OBS = "1997-09-30", "1998-06-30"


class SqrtModel:
    """E[X(t)] = sqrt(t): easy to compute by hand."""

    def unconditional_expected_purchases(self, t):
        return np.sqrt(np.asarray(t, float))


@pytest.fixture(scope="module")
def cdnow():
    from promolift.clv import load_transactions
    from promolift.datasets import load_cdnow_sample

    return load_transactions(
        load_cdnow_sample(), customer_col="customer_id", date_col="date", value_col="dollar_value"
    )


@pytest.fixture(scope="module")
def fitted(cdnow):
    from promolift.clv import fit_clv, rfm_summary

    return fit_clv(rfm_summary(cdnow, calibration_end=CAL, observation_end=OBS))


def test_cumulative_curve_hand_computed():
    tx = pd.DataFrame(
        {
            "customer": ["a", "a", "a", "b", "b", "c"],
            "date": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-20", "2024-01-08",
                                    "2024-01-08", "2024-01-25"]),
            "value": 1.0,
        }
    )
    c = cumulative_repeat_purchases(tx, SqrtModel(), calibration_end="2024-01-14")
    # c is first seen after the calibration end: left out; b's same-day rows are one order
    assert c["week"].tolist() == [1, 2, 3]
    assert c["actual"].tolist() == [1, 0, 1]  # a's repeats on day 2 (week 1) and day 19 (week 3)
    # cohorts: a on day 0, b on day 7; week k ends on day 7k
    expected = [np.sqrt(1) + 0, np.sqrt(2) + np.sqrt(1), np.sqrt(3) + np.sqrt(2)]
    np.testing.assert_allclose(c["cumulative_expected"], expected)
    np.testing.assert_allclose(c["expected"].cumsum(), expected)
    assert c.attrs["calibration_week"] == 2.0


def test_cumulative_curve_on_cdnow(cdnow, fitted):
    c = cumulative_repeat_purchases(cdnow, fitted.bgnbd, calibration_end=CAL, end=OBS)
    assert len(c) == 78 and c.attrs["calibration_week"] == 39
    # 2,457 repeat purchases in the calibration period, 1,882 in the holdout (FHL 2005)
    assert c.loc[38, "cumulative_actual"] == 2457
    assert c.loc[77, "cumulative_actual"] == 2457 + 1882
    # BG/NBD tracks the calibration period closely and under-forecasts the holdout
    assert c.loc[38, "cumulative_expected"] == pytest.approx(2457, rel=0.03)
    assert c.loc[77, "cumulative_expected"] < c.loc[77, "cumulative_actual"]


def test_purchases_by_frequency_hand_computed():
    t = purchases_by_frequency(
        [0, 0, 1, 3, 8, 12], [0, 2, 1, 3, 5, 9], {"bg": [0.2, 0.4, 1, 2, 6, 8]}, max_frequency=3
    )
    assert t["frequency"].tolist() == ["0", "1", "3+"]  # no customer with frequency 2
    assert t["customers"].tolist() == [2, 1, 3]
    np.testing.assert_allclose(t["actual"], [1.0, 1.0, 17 / 3])
    np.testing.assert_allclose(t["bg"], [0.3, 1.0, 16 / 3])
    with pytest.raises(DataError, match="'bg' has 2 values but frequency has 3"):
        purchases_by_frequency([0, 1, 2], [0, 1, 2], {"bg": [1, 2]})


def test_clv_histogram_counts_everything():
    v = np.r_[np.linspace(0, 100, 101), 1e6, np.nan]
    h = clv_histogram(v, bins=10, clip_quantile=0.99)
    assert h["count"].sum() == 102  # NaN dropped, the outlier in the last bin
    assert h.attrs["clipped"] >= 1
    assert h["left"].iloc[0] == 0
    with pytest.raises(DataError, match="no finite value"):
        clv_histogram([np.nan])


def test_plots_draw_their_data(cdnow, fitted):
    c = cumulative_repeat_purchases(cdnow, fitted.bgnbd, calibration_end=CAL, end=OBS)
    ax = plot_cumulative_repeat_purchases(c)
    actual, expected = ax.get_lines()[:2]
    np.testing.assert_allclose(actual.get_ydata(), c["cumulative_actual"])
    np.testing.assert_allclose(expected.get_ydata(), c["cumulative_expected"])
    assert ax.get_lines()[2].get_xdata()[0] == 39  # the calibration-end marker
    t = purchases_by_frequency([0, 1, 2], [0, 1, 3], {"m": [0.1, 1, 2]})
    ax = plot_purchases_by_frequency(t)
    assert [line.get_label() for line in ax.get_lines()] == ["actual", "m"]
    h = clv_histogram([0.5, 1.5, 2.5], bins=3, clip_quantile=1.0)
    ax = plot_clv_histogram(h)
    assert [p.get_height() for p in ax.patches] == [1, 1, 1]


def test_html_report_has_three_figures_and_no_external_urls(cdnow, fitted, tmp_path):
    from promolift.clv.holdout import holdout_comparison

    comp = holdout_comparison(cdnow, calibration_end=CAL, observation_end=OBS, models={})
    path = write_clv_report(
        fitted, tmp_path / "clv.html", transactions=cdnow, comparison=comp.table,
        supervised={"other": fitted.table["expected_purchases_holdout"] * 1.1},
    )
    text = path.read_text(encoding="utf-8")
    assert text.count("<svg") == 3
    for anchor in ("clv-tracking", "clv-holdout", "clv-compare", "clv-distribution"):
        assert f'id="{anchor}"' in text
    assert "Cumulative repeat purchases per week" in text
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script" not in text
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temp file left


def test_html_report_without_holdout_or_log(cdnow):
    from promolift.clv import fit_clv, rfm_summary

    res = fit_clv(rfm_summary(cdnow, calibration_end=CAL))
    text = render_clv_report(res)
    assert text.count("<svg") == 1  # only the CLV histogram
    assert "Pass the order log" in text and "No holdout period" in text
