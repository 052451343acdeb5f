"""Tests of promolift.evaluate.metrics: hand-computed cases and scikit-uplift 0.5.1 parity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from promolift.errors import DataError
from promolift.evaluate.metrics import (
    perfect_qini_curve,
    perfect_uplift_curve,
    qini_auc_score,
    qini_curve,
    uplift_at_k,
    uplift_auc_score,
    uplift_by_decile,
    uplift_curve,
    uplift_report,
)

# Six rows used by the hand-computed tests:
#   row:  r0 r1 r2 r3 r4 r5
#   t  :   1  1  0  0  1  0
#   y  :   1  0  1  0  1  0
Y6 = np.array([1, 0, 1, 0, 1, 0])
T6 = np.array([1, 1, 0, 0, 1, 0])
# Score A: three tied pairs {r0,r1} > {r2,r3} > {r4,r5}.
UA = np.array([0.9, 0.9, 0.5, 0.5, 0.2, 0.2])
# Score B: {r0,r4}=.9 > {r2,r5}=.5 > r3=.2 > r1=.1.
UB = np.array([0.9, 0.1, 0.5, 0.2, 0.9, 0.5])


# ------------------------------------------------------------------ hand-computed curves


def test_uplift_and_qini_curve_with_ties_by_hand():
    # Score A; curves are evaluated only after each run of ties:
    # top 2 {r0,r1}: nt=2 yt=1 nc=0 yc=0 -> uplift (1/2 - 0)*2 = 1   qini 1 - 0        = 1
    # top 4 +r2,r3 : nt=2 yt=1 nc=2 yc=1 -> uplift (1/2-1/2)*4 = 0   qini 1 - 1*2/2    = 0
    # top 6 +r4,r5 : nt=3 yt=2 nc=3 yc=1 -> uplift (2/3-1/3)*6 = 2   qini 2 - 1*3/3    = 1
    x, v = uplift_curve(Y6, UA, T6)
    assert x.tolist() == [0, 2, 4, 6]
    np.testing.assert_allclose(v, [0, 1, 0, 2], atol=1e-12)
    x, v = qini_curve(Y6, UA, T6)
    assert x.tolist() == [0, 2, 4, 6]
    np.testing.assert_allclose(v, [0, 1, 0, 1], atol=1e-12)


def test_curves_score_b_by_hand():
    # Score B:
    # top 2 {r0,r4}: nt=2 yt=2 nc=0 yc=0 -> uplift (1-0)*2     = 2     qini 2 - 0        = 2
    # top 4 +r2,r5 : nt=2 yt=2 nc=2 yc=1 -> uplift (1-1/2)*4   = 2     qini 2 - 1*2/2    = 1
    # top 5 +r3    : nt=2 yt=2 nc=3 yc=1 -> uplift (1-1/3)*5   = 10/3  qini 2 - 1*2/3    = 4/3
    # top 6 +r1    : nt=3 yt=2 nc=3 yc=1 -> uplift (2/3-1/3)*6 = 2     qini 2 - 1*3/3    = 1
    x, v = uplift_curve(Y6, UB, T6)
    assert x.tolist() == [0, 2, 4, 5, 6]
    np.testing.assert_allclose(v, [0, 2, 2, 10 / 3, 2], atol=1e-12)
    x, v = qini_curve(Y6, UB, T6)
    assert x.tolist() == [0, 2, 4, 5, 6]
    np.testing.assert_allclose(v, [0, 2, 1, 4 / 3, 1], atol=1e-12)


def test_perfect_curves_by_hand():
    # perfect uplift: control responders (r2) = 1, treated non-responders (r1) = 1, not >, so
    # score = 2*(y==t) + t: r0=3 r1=1 r2=0 r3=2 r4=3 r5=2 -> {r0,r4} > {r3,r5} > r1 > r2
    # top 2: 2/2*2 = 2; top 4: (2/2 - 0/2)*4 = 4; top 5: (2/3 - 0)*5 = 10/3; top 6: (2/3-1/3)*6 = 2
    x, v = perfect_uplift_curve(Y6, T6)
    assert x.tolist() == [0, 2, 4, 5, 6]
    np.testing.assert_allclose(v, [0, 2, 4, 10 / 3, 2], atol=1e-12)
    # perfect qini (negative_effect): score = y if treated else -y: {r0,r4}=1 > {r1,r3,r5}=0 > r2
    # top 2: 2; top 5: nt=3 yt=2 nc=2 yc=0 -> 2; top 6: 2 - 1*3/3 = 1
    x, v = perfect_qini_curve(Y6, T6)
    assert x.tolist() == [0, 2, 5, 6]
    np.testing.assert_allclose(v, [0, 2, 2, 1], atol=1e-12)
    # without negative effects: r = yt - nt*yc/nc = 2 - 3*1/3 = 1 -> x [0, 1, 6], v [0, 1, 1]
    x, v = perfect_qini_curve(Y6, T6, negative_effect=False)
    np.testing.assert_allclose(x, [0, 1, 6])
    np.testing.assert_allclose(v, [0, 1, 1])


def test_normalized_aucs_by_hand():
    # Qini, score B: area(model) = trapezoids over x [0,2,4,5,6], v [0,2,1,4/3,1]
    #   = 2*(0+2)/2 + 2*(2+1)/2 + 1*(1+4/3)/2 + 1*(4/3+1)/2 = 2 + 3 + 7/6 + 7/6 = 22/3
    # area(perfect) over x [0,2,5,6], v [0,2,2,1] = 2 + 6 + 1.5 = 9.5
    # area(random) = line (0,0)-(6,1) = 6*1/2 = 3
    # qini_auc = (22/3 - 3) / (9.5 - 3) = (13/3) / 6.5 = 2/3
    assert qini_auc_score(Y6, UB, T6) == pytest.approx(2 / 3, abs=1e-12)
    # Uplift, score B: area(model) over v [0,2,2,10/3,2] = 2 + 4 + 8/3 + 8/3 = 34/3
    # area(perfect) over v [0,2,4,10/3,2] = 2 + 6 + 11/3 + 8/3 = 43/3
    # area(random) = 6*2/2 = 6 ->  auuc = (34/3 - 6) / (43/3 - 6) = (16/3) / (25/3) = 0.64
    assert uplift_auc_score(Y6, UB, T6) == pytest.approx(0.64, abs=1e-12)
    # Qini without negative effects: perfect area over x [0,1,6], v [0,1,1] = 0.5 + 5 = 5.5
    # -> (22/3 - 3) / (5.5 - 3) = (13/3) / 2.5 = 26/15
    assert qini_auc_score(Y6, UB, T6, negative_effect=False) == pytest.approx(26 / 15, abs=1e-12)


def test_perfect_ranking_scores_one_and_reversed_is_negative():
    x_perfect_score = 2.0 * (Y6 == T6) + T6  # the perfect uplift ranking from above
    assert uplift_auc_score(Y6, x_perfect_score, T6) == pytest.approx(1.0)
    assert qini_auc_score(Y6, np.where(T6 == 1, Y6, -Y6), T6) == pytest.approx(1.0)
    assert qini_auc_score(Y6, -np.where(T6 == 1, Y6, -Y6), T6) < 0


def test_constant_score_is_random_line():
    # one threshold only: curve is (0,0)-(6,end) = the random line -> normalized area 0
    assert qini_auc_score(Y6, np.zeros(6), T6) == pytest.approx(0.0, abs=1e-12)
    assert uplift_auc_score(Y6, np.zeros(6), T6) == pytest.approx(0.0, abs=1e-12)


def test_auc_is_nan_when_perfect_curve_has_no_area():
    # all outcomes zero: every curve is flat at 0, so the normalizer is 0
    assert math.isnan(qini_auc_score(np.zeros(6), UA, T6))


# ------------------------------------------------------------------ uplift at k


def test_uplift_at_k_by_hand_with_tie_order():
    # Score A: stable ascending argsort [4,5,2,3,0,1] reversed -> order r1 r0 r3 r2 r5 r4
    # (ties keep the REVERSED input order, as sklift does).
    # overall k=0.5 -> int(6*0.5)=3 rows r1(t1,y0) r0(t1,y1) r3(t0,y0): 1/2 - 0/1 = 0.5
    assert uplift_at_k(Y6, UA, T6, k=0.5) == pytest.approx(0.5)
    # overall k=5 -> r1 r0 r3 r2 r5: treated (0+1)/2 - control (0+1+0)/3 = 1/6
    assert uplift_at_k(Y6, UA, T6, k=5) == pytest.approx(1 / 6)
    # overall k=1 -> only r1 (treated): no control row among the top -> nan
    assert math.isnan(uplift_at_k(Y6, UA, T6, k=1))
    # Score B: order r4 r0 r5 r2 r3 r1; treated in order r4(1) r0(1) r1(0),
    # control in order r5(0) r2(1) r3(0).
    # by_group k=0.5 -> int(3*0.5)=1 per group: 1 - 0 = 1
    assert uplift_at_k(Y6, UB, T6, strategy="by_group", k=0.5) == pytest.approx(1.0)
    # by_group k=2 -> treated (1+1)/2 - control (0+1)/2 = 0.5
    assert uplift_at_k(Y6, UB, T6, strategy="by_group", k=2) == pytest.approx(0.5)
    # overall k=0.5 -> r4 r0 r5: 1 - 0 = 1
    assert uplift_at_k(Y6, UB, T6, k=0.5) == pytest.approx(1.0)
    # numpy ints count as row counts
    assert uplift_at_k(Y6, UB, T6, strategy="by_group", k=np.int64(2)) == pytest.approx(0.5)


# ------------------------------------------------------------------ decile table


def test_uplift_by_decile_by_hand():
    # Score A order r1 r0 r3 | r2 r5 r4 (two bins of 3)
    # bin 1: treated r1(0) r0(1): mean .5, pop. var .25; control r3(0): mean 0, var 0
    #        observed .5, se sqrt(.25/2 + 0/1); predicted (.9+.9+.5)/3
    # bin 2: treated r4(1): mean 1, var 0; control r2(1) r5(0): mean .5, var .25
    #        observed .5, se sqrt(0/1 + .25/2); predicted (.5+.2+.2)/3
    tab = uplift_by_decile(Y6, UA, T6, bins=2)
    assert list(tab.columns) == [
        "decile",
        "n_treated",
        "n_control",
        "predicted_uplift",
        "observed_uplift",
        "observed_se",
    ]
    assert tab["decile"].tolist() == [1, 2]
    assert tab["n_treated"].tolist() == [2, 1]
    assert tab["n_control"].tolist() == [1, 2]
    np.testing.assert_allclose(tab["predicted_uplift"], [2.3 / 3, 0.9 / 3])
    np.testing.assert_allclose(tab["observed_uplift"], [0.5, 0.5])
    np.testing.assert_allclose(tab["observed_se"], [math.sqrt(0.125)] * 2)


def test_uplift_by_decile_bin_missing_a_group_is_nan():
    # three bins: r1 r0 | r3 r2 | r5 r4 -> bin 1 has no control row, bin 2 no treated row;
    # bin 3: treated r4 (1) - control r5 (0) = 1
    tab = uplift_by_decile(Y6, UA, T6, bins=3)
    assert tab["n_treated"].tolist() == [2, 0, 1]
    assert tab["n_control"].tolist() == [0, 2, 1]
    assert tab["observed_uplift"].isna().tolist() == [True, True, False]
    assert tab["observed_se"].isna().tolist() == [True, True, False]
    assert tab["observed_uplift"][2] == 1.0


# ------------------------------------------------------------------ continuous outcomes


def test_continuous_outcome_curves_and_qini():
    spend = np.array([10.0, 0.0, 4.0, 0.0, 6.0, 0.0])
    # Score A, qini: top 2: 10 - 0 = 10; top 4: 10 - 4*2/2 = 6; top 6: 16 - 4*3/3 = 12
    _, v = qini_curve(spend, UA, T6)
    np.testing.assert_allclose(v, [0, 10, 6, 12])
    q = qini_auc_score(spend, UA, T6)
    assert np.isfinite(q)
    with pytest.raises(DataError, match=r"uplift_auc_score is defined for 0/1 outcomes only"):
        uplift_auc_score(spend, UA, T6)
    with pytest.raises(DataError, match=r"negative_effect=False\) is defined for 0/1 outcomes"):
        qini_auc_score(spend, UA, T6, negative_effect=False)
    with pytest.raises(DataError, match=r"perfect_uplift_curve is defined for 0/1 outcomes only"):
        perfect_uplift_curve(spend, T6)


# ------------------------------------------------------------------ sklift 0.5.1 parity
#
# The constants below were produced once with scikit-uplift 0.5.1 (numpy 2.4, scikit-learn 1.9)
# in a throwaway venv (python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-uplift==0.5.1)
# by running this script and pasting its output:
#
#   import warnings; warnings.simplefilter("ignore")
#   import numpy as np
#   from sklift.metrics import (uplift_curve, qini_curve, perfect_uplift_curve,
#       perfect_qini_curve, uplift_auc_score, qini_auc_score, uplift_at_k, uplift_by_percentile)
#   rng = np.random.default_rng(20240611)
#   n = 200
#   d = rng.integers(0, 10, n)                # score digits -> 10 distinct values, many ties
#   t = rng.integers(0, 2, n)
#   y = (rng.random(n) < 0.25 + 0.04 * t * (d - 3)).astype(int)
#   D, T, Y = "".join(map(str, d)), "".join(map(str, t)), "".join(map(str, y))
#   u = (np.array([int(c) for c in D]) - 3) / 10
#   print(f"D = {D!r}\nT = {T!r}\nY = {Y!r}")
#   for name, (x, v) in {"uplift_curve": uplift_curve(y, u, t), "qini_curve": qini_curve(y, u, t),
#           "perfect_uplift_curve": perfect_uplift_curve(y, t),
#           "perfect_qini_curve": perfect_qini_curve(y, t),
#           "perfect_qini_curve_no_neg": perfect_qini_curve(y, t, negative_effect=False)}.items():
#       print(name, x.tolist(), [float(f"{a:.12g}") for a in v])
#   print("uplift_auc_score", repr(uplift_auc_score(y, u, t)))
#   print("qini_auc_score", repr(qini_auc_score(y, u, t)))
#   print("qini_auc_score_no_neg", repr(qini_auc_score(y, u, t, negative_effect=False)))
#   for s in ("overall", "by_group"):
#       for k in (0.3, 0.25, 37):
#           print("uplift_at_k", s, k, repr(uplift_at_k(y, u, t, strategy=s, k=k)))
#   tab = uplift_by_percentile(y, u, t, bins=10, std=True)
#   for c in ("n_treatment", "n_control", "uplift", "std_uplift"):
#       print(c, [float(f"{a:.12g}") for a in tab[c]])
#
# The data are stored as digit strings so the test does not depend on numpy's RNG streams.

SK_D = (
    "41592598229177150936217596873207247835510956215928233842864083729941228499258045543014"
    "754363374646782694239310600686135459197157804705532775677822579205936467144941739160257"
    "574324031856202083644763531"
)
SK_T = (
    "01110000000100001101000101010000000110011100011100111011010100000100010000111000101110"
    "011111111101001110101000101110010000110101110110001010001000000111110110101010010100101"
    "110001111011000011100110011"
)
SK_Y = (
    "00110000000010000101100001000000000100000100100110110011001000001100010000100110000001"
    "000010001000000010001000100100010001000001001010000000001110000000000000001100100001101"
    "010011100000011101100010000"
)
SK_X = [0, 19, 34, 57, 75, 99, 122, 143, 167, 184, 200]
SK_UPLIFT_CURVE = [
    0.0,
    9.07777777778,
    12.6285714286,
    19.6803069054,
    28.0448717949,
    33.0,
    38.8791208791,
    41.0666666667,
    43.4850334205,
    39.5332144979,
    34.6045764753,
]
SK_QINI_CURVE = [
    0.0,
    4.3,
    5.2,
    7.94117647059,
    13.4615384615,
    15.0,
    16.5714285714,
    18.6666666667,
    19.2688172043,
    18.2626262626,
    16.2641509434,
]
SK_PERFECT_UPLIFT = ([0, 34, 120, 180, 200], [0.0, 34.0, 120.0, 65.1063829787, 34.6045764753])
SK_PERFECT_QINI = ([0, 34, 180, 200], [0.0, 34.0, 34.0, 16.2641509434])
SK_PERFECT_QINI_NO_NEG = ([0.0, 16.264150943396228, 200.0], [0.0, 16.2641509434, 16.2641509434])
SK_UPLIFT_AUC = 0.2236782843974504
SK_QINI_AUC = 0.21603692601151292
SK_QINI_AUC_NO_NEG = 0.6388231644181576
SK_UPLIFT_AT_K = {
    ("overall", 0.3): 0.3619909502262443,
    ("overall", 0.25): 0.3668831168831168,
    ("overall", 37): 0.38823529411764707,
    ("by_group", 0.3): 0.37442396313364057,
    ("by_group", 0.25): 0.3294314381270903,
    ("by_group", 37): 0.3513513513513513,
}
SK_BY_PERCENTILE = {
    "n_treatment": [10, 7, 9, 13, 6, 7, 12, 10, 9, 11],
    "n_control": [10, 13, 11, 7, 14, 13, 8, 10, 11, 9],
    "uplift": [
        0.4,
        0.274725274725,
        0.353535353535,
        0.384615384615,
        0.166666666667,
        0.263736263736,
        0.25,
        0.1,
        -0.181818181818,
        -0.262626262626,
    ],
    "std_uplift": [
        0.204939015319,
        0.212129860521,
        0.186943815781,
        0.13493200297,
        0.152145154863,
        0.226652605596,
        0.125,
        0.221359436212,
        0.11629129983,
        0.202382085832,
    ],
}


@pytest.fixture(scope="module")
def sk_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = np.array([int(c) for c in SK_D])
    t = np.array([int(c) for c in SK_T])
    y = np.array([int(c) for c in SK_Y])
    assert len(d) == len(t) == len(y) == 200
    return y, (d - 3) / 10, t


def test_sklift_parity_curves(sk_data):
    y, u, t = sk_data
    for func, expected in ((uplift_curve, SK_UPLIFT_CURVE), (qini_curve, SK_QINI_CURVE)):
        x, v = func(y, u, t)
        assert x.tolist() == SK_X
        np.testing.assert_allclose(v, expected, rtol=1e-10, atol=1e-10)
    for (x, v), (ex, ev) in (
        (perfect_uplift_curve(y, t), SK_PERFECT_UPLIFT),
        (perfect_qini_curve(y, t), SK_PERFECT_QINI),
        (perfect_qini_curve(y, t, negative_effect=False), SK_PERFECT_QINI_NO_NEG),
    ):
        np.testing.assert_allclose(x, ex, rtol=1e-12)
        np.testing.assert_allclose(v, ev, rtol=1e-10, atol=1e-10)


def test_sklift_parity_scores(sk_data):
    y, u, t = sk_data
    assert uplift_auc_score(y, u, t) == pytest.approx(SK_UPLIFT_AUC, rel=1e-12)
    assert qini_auc_score(y, u, t) == pytest.approx(SK_QINI_AUC, rel=1e-12)
    assert qini_auc_score(y, u, t, negative_effect=False) == pytest.approx(
        SK_QINI_AUC_NO_NEG, rel=1e-12
    )
    for (strategy, k), expected in SK_UPLIFT_AT_K.items():
        got = uplift_at_k(y, u, t, strategy=strategy, k=k)
        assert got == pytest.approx(expected, rel=1e-12), (strategy, k)


def test_sklift_parity_decile_table(sk_data):
    y, u, t = sk_data
    tab = uplift_by_decile(y, u, t, bins=10)
    assert tab["n_treated"].tolist() == SK_BY_PERCENTILE["n_treatment"]
    assert tab["n_control"].tolist() == SK_BY_PERCENTILE["n_control"]
    np.testing.assert_allclose(tab["observed_uplift"], SK_BY_PERCENTILE["uplift"], rtol=1e-10)
    np.testing.assert_allclose(tab["observed_se"], SK_BY_PERCENTILE["std_uplift"], rtol=1e-10)
    # deciles are sorted by predicted uplift, best first
    assert np.all(np.diff(tab["predicted_uplift"]) <= 0)


def test_inputs_accept_lists_bools_and_pandas(sk_data):
    y, u, t = sk_data
    ref = qini_auc_score(y, u, t)
    assert qini_auc_score(list(y), pd.Series(u), t.astype(bool)) == pytest.approx(ref)
    assert qini_auc_score(y.astype(float), u, t.astype(float)) == pytest.approx(ref)


# ------------------------------------------------------------------ multi-arm report


def test_uplift_report_matches_binary_metrics_per_arm():
    rng = np.random.default_rng(7)
    n = 300
    treatment = rng.integers(0, 3, n)
    conversion = (rng.random(n) < 0.2 + 0.1 * (treatment == 1)).astype(float)
    spend = conversion * rng.gamma(2.0, 20.0, n)
    ymat = np.column_stack([conversion, spend])
    up = np.zeros((n, 3, 2))
    up[:, 1:, :] = np.round(rng.normal(size=(n, 2, 2)), 1)  # rounded -> ties
    rep = uplift_report(
        ymat, up, treatment, arms=["control", "bogo", "discount"], outcomes=["conversion", "spend"]
    )
    assert list(rep.columns) == ["arm", "outcome", "qini_auc", "auuc", "uplift_at_k", "n"]
    assert rep[["arm", "outcome"]].values.tolist() == [
        ["bogo", "conversion"],
        ["bogo", "spend"],
        ["discount", "conversion"],
        ["discount", "spend"],
    ]
    for _, row in rep.iterrows():
        a = 1 if row["arm"] == "bogo" else 2
        m = 0 if row["outcome"] == "conversion" else 1
        keep = np.isin(treatment, [0, a])
        y, u, t = ymat[keep, m], up[keep, a, m], (treatment[keep] == a).astype(int)
        assert row["n"] == keep.sum()
        assert row["qini_auc"] == pytest.approx(qini_auc_score(y, u, t))
        assert row["uplift_at_k"] == pytest.approx(uplift_at_k(y, u, t, k=0.3))
        if m == 0:
            assert row["auuc"] == pytest.approx(uplift_auc_score(y, u, t))
        else:  # continuous outcome: the perfect uplift curve is undefined
            assert math.isnan(row["auuc"])


# ------------------------------------------------------------------ input errors


def test_length_mismatch_names_lengths():
    with pytest.raises(DataError, match=r"y_true has 6, uplift has 5, treatment has 6 rows"):
        uplift_curve(Y6, UA[:5], T6)
    with pytest.raises(DataError, match=r"y_true has 5, treatment has 6 rows"):
        perfect_qini_curve(Y6[:5], T6)


def test_treatment_must_be_binary_with_both_groups():
    with pytest.raises(
        DataError,
        match=r"treatment must contain only 0 \(control\) and 1 \(treated\); "
        r"got other values 2\.",
    ):
        qini_curve(Y6, UA, [0, 1, 2, 0, 1, 0])
    with pytest.raises(DataError, match=r"treatment has no treated rows"):
        qini_auc_score(Y6, UA, np.zeros(6))
    with pytest.raises(DataError, match=r"treatment has no control rows"):
        uplift_at_k(Y6, UA, np.ones(6))
    with pytest.raises(DataError, match=r"inputs are empty"):
        uplift_curve([], [], [])


def test_bad_values_and_shapes():
    with pytest.raises(
        DataError, match=r"uplift contains NaN or infinite values \(first at position 2\)"
    ):
        uplift_curve(Y6, [0.1, 0.2, np.nan, 0.1, 0.2, 0.3], T6)
    with pytest.raises(DataError, match=r"y_true must be a 1-D array; got shape \(6, 1\)"):
        qini_curve(Y6[:, None], UA, T6)
    with pytest.raises(DataError, match=r"y_true must be numeric"):
        qini_curve(["a"] * 6, UA, T6)
    with pytest.raises(DataError, match=r"negative_effect must be True or False; got 'yes'"):
        qini_auc_score(Y6, UA, T6, negative_effect="yes")


def test_negative_overall_effect_without_negative_effect_curve():
    # treated never respond, control always does: overall effect -3 responders
    with pytest.raises(DataError, match=r"needs a non-negative overall effect"):
        qini_auc_score(1 - T6, UA, T6, negative_effect=False)


def test_uplift_at_k_argument_errors():
    with pytest.raises(DataError, match=r"strategy must be 'overall' or 'by_group'; got 'first'"):
        uplift_at_k(Y6, UA, T6, strategy="first")
    with pytest.raises(DataError, match=r"k=1\.0 must be a share in the open interval \(0, 1\)"):
        uplift_at_k(Y6, UA, T6, k=1.0)
    with pytest.raises(DataError, match=r"k=6 rows must be at least 1 and smaller than the 6 rows"):
        uplift_at_k(Y6, UA, T6, k=6)
    with pytest.raises(DataError, match=r"k=0 rows must be at least 1"):
        uplift_at_k(Y6, UA, T6, k=0)
    with pytest.raises(
        DataError, match=r"k must be a float share in \(0, 1\) or an int row count; got True"
    ):
        uplift_at_k(Y6, UA, T6, k=True)
    with pytest.raises(DataError, match=r"k=4 is larger than the 3 treated rows"):
        uplift_at_k(Y6, UA, T6, strategy="by_group", k=4)


def test_uplift_by_decile_bins_error():
    with pytest.raises(DataError, match=r"bins must be an int between 1 and the 6 rows; got 7"):
        uplift_by_decile(Y6, UA, T6, bins=7)
    with pytest.raises(DataError, match=r"bins must be an int between 1 and the 6 rows; got 2\.5"):
        uplift_by_decile(Y6, UA, T6, bins=2.5)


def test_uplift_report_errors():
    ymat = Y6[:, None].astype(float)
    up = np.zeros((6, 2, 1))
    up[:, 1, 0] = UA
    kw = {"arms": ["control", "promo"], "outcomes": ["buy"]}
    with pytest.raises(
        DataError, match=r"Y must be a 2-D \(rows, outcomes\) array; got shape \(6,\)"
    ):
        uplift_report(Y6, up, T6, **kw)
    with pytest.raises(DataError, match=r"uplift must be a 3-D \(rows, arms, outcomes\) array"):
        uplift_report(ymat, up[:, :, 0], T6, **kw)
    with pytest.raises(DataError, match=r"Y has 6, uplift has 5, treatment has 6 rows"):
        uplift_report(ymat, up[:5], T6, **kw)
    with pytest.raises(DataError, match=r"Y has 2 outcome columns but uplift has 1 outcomes"):
        uplift_report(np.column_stack([ymat, ymat]), up, T6, **kw)
    with pytest.raises(DataError, match=r"got 3 arm names but the arrays have 2 arms"):
        uplift_report(ymat, up, T6, arms=["c", "a", "b"], outcomes=["buy"])
    with pytest.raises(DataError, match=r"got 2 outcome names but the arrays have 1 outcomes"):
        uplift_report(ymat, up, T6, arms=["c", "a"], outcomes=["buy", "spend"])
    with pytest.raises(DataError, match=r"treatment must hold integer arm codes 0\.\.1; got 2\."):
        uplift_report(ymat, up, [0, 1, 2, 0, 1, 0], **kw)
    with pytest.raises(DataError, match=r"treatment has no control rows \(arm 0, 'control'\)"):
        uplift_report(ymat, up, np.ones(6, dtype=int), **kw)
    up3 = np.zeros((6, 3, 1))
    with pytest.raises(DataError, match=r"treatment has no rows of arm 2 \('b'\)"):
        uplift_report(ymat, up3, T6, arms=["control", "a", "b"], outcomes=["buy"])
    bad = ymat.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match=r"Y contains NaN or infinite values"):
        uplift_report(bad, up, T6, **kw)
