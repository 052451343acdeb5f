"""Tests of promolift.evaluate.policy: off-policy value by IPW and doubly robust estimation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from promolift.errors import DataError
from promolift.evaluate.policy import (
    PolicyValue,
    per_row_contributions,
    policy_gain,
    policy_value,
)

Z95 = 1.959963984540054

# Four rows, three arms (0 = control).
REWARD = np.array([10.0, 4.0, 6.0, 3.0])
TREAT = np.array([2, 0, 1, 1])
POLICY = np.array([2, 1, 1, 0])
PROP = np.array(
    [
        [0.20, 0.30, 0.50],
        [0.50, 0.25, 0.25],
        [0.25, 0.25, 0.50],
        [0.40, 0.40, 0.20],
    ]
)
MU = np.array(
    [
        [1.0, 2.0, 8.0],
        [0.0, 1.0, 2.0],
        [3.0, 4.0, 5.0],
        [2.0, 2.0, 2.0],
    ]
)


def test_ipw_by_hand():
    # 1[T=pi] r / e(T):
    # row0 T=2=pi: 10/.50 = 20 | row1 T=0!=1: 0 | row2 T=1=pi: 6/.25 = 24 | row3 T=1!=0: 0
    contrib = per_row_contributions(REWARD, TREAT, POLICY, PROP)
    np.testing.assert_allclose(contrib, [20, 0, 24, 0])
    # mean = 44/4 = 11; deviations 9,-11,13,-11 -> SS = 81+121+169+121 = 492
    # sd = sqrt(492/3) = sqrt(164); stderr = sqrt(164)/2 = sqrt(41)
    v = policy_value(REWARD, TREAT, POLICY, PROP)
    assert v.estimate == pytest.approx(11.0)
    assert v.stderr == pytest.approx(math.sqrt(41))
    assert v.ci_low == pytest.approx(11 - Z95 * math.sqrt(41))
    assert v.ci_high == pytest.approx(11 + Z95 * math.sqrt(41))
    assert (v.n, v.method) == (4, "ipw")


def test_dr_by_hand():
    # mu(pi) + 1[T=pi]/e(pi) (r - mu(pi)):
    # row0 pi=2: 8 + (10-8)/.50 = 12 | row1 pi=1, T=0: 1 | row2 pi=1: 4 + (6-4)/.25 = 12
    # row3 pi=0, T=1: 2
    contrib = per_row_contributions(REWARD, TREAT, POLICY, PROP, mu=MU, method="dr")
    np.testing.assert_allclose(contrib, [12, 1, 12, 2])
    # mean 27/4 = 6.75; deviations 5.25,-5.75,5.25,-4.75 -> SS = 27.5625+33.0625+27.5625+22.5625
    # = 110.75; stderr = sqrt(110.75/3)/2
    v = policy_value(REWARD, TREAT, POLICY, PROP, mu=MU, method="dr", alpha=0.1)
    assert v.estimate == pytest.approx(6.75)
    assert v.stderr == pytest.approx(math.sqrt(110.75 / 3) / 2)
    z90 = 1.6448536269514722
    assert v.ci_low == pytest.approx(6.75 - z90 * v.stderr)
    assert v.ci_high == pytest.approx(6.75 + z90 * v.stderr)
    assert v.method == "dr"


def test_gain_by_hand_is_paired():
    # IPW, baseline "everyone gets arm 0": row1 is the only control row: 4/.50 = 8
    # policy [20, 0, 24, 0] - baseline [0, 8, 0, 0] = [20, -8, 24, 0]; mean 36/4 = 9
    # deviations 11,-17,15,-9 -> SS = 121+289+225+81 = 716; stderr = sqrt(716/3)/2
    g = policy_gain(REWARD, TREAT, POLICY, PROP)
    assert g.estimate == pytest.approx(9.0)
    assert g.stderr == pytest.approx(math.sqrt(716 / 3) / 2)
    # DR: baseline mu(0) = [1, 0, 3, 2], row1 T=0: 0 + (4-0)/.50 = 8 -> [1, 8, 3, 2]
    # diff [12,1,12,2] - [1,8,3,2] = [11, -7, 9, 0]; mean 13/4 = 3.25
    g = policy_gain(REWARD, TREAT, POLICY, PROP, mu=MU, method="dr")
    assert g.estimate == pytest.approx(3.25)
    # a policy compared with itself gains exactly 0 with 0 standard error
    same = policy_gain(REWARD, TREAT, POLICY, PROP, baseline=POLICY)
    assert (same.estimate, same.stderr) == (0.0, 0.0)
    # explicit int baseline equals the default
    assert policy_gain(REWARD, TREAT, POLICY, PROP, baseline=0) == policy_gain(
        REWARD, TREAT, POLICY, PROP
    )


def test_constant_propensity_vector_and_int_policy():
    # (K,) propensity = the same row for everyone
    e = np.array([0.5, 0.25, 0.25])
    a = policy_value(REWARD, TREAT, POLICY, e)
    b = policy_value(REWARD, TREAT, POLICY, np.tile(e, (4, 1)))
    assert a == b
    # int policy = everyone gets that arm; arm 1 rows: 6/.25 and 3/.25 -> mean (24+12)/4 = 9
    assert policy_value(REWARD, TREAT, 1, e).estimate == pytest.approx(9.0)


def test_policy_value_is_frozen_dataclass():
    v = policy_value(REWARD, TREAT, POLICY, PROP)
    assert isinstance(v, PolicyValue)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.estimate = 0.0  # type: ignore[misc]


# ------------------------------------------------------------------ simulation

# Two customer segments, three arms; mean reward by (segment, arm):
MEANS = np.array([[1.0, 1.5, 0.8], [2.0, 1.2, 2.6]])
ASSIGN = np.array([0.4, 0.3, 0.3])
TARGET = np.array([1, 2])  # the plan: segment 0 -> arm 1, segment 1 -> arm 2
# Segments are equally likely: true value = .5*1.5 + .5*2.6 = 2.05;
# true gain over "everyone control" = .5*(1.5-1.0) + .5*(2.6-2.0) = 0.55
TRUE_VALUE, TRUE_GAIN = 2.05, 0.55


def _simulate(rng: np.random.Generator, n: int):
    seg = rng.integers(0, 2, n)
    treat = rng.choice(3, size=n, p=ASSIGN)
    reward = MEANS[seg, treat] + rng.normal(0.0, 2.0, n)
    return seg, treat, reward


def test_confidence_intervals_cover_truth():
    rng = np.random.default_rng(3)
    reps, n = 200, 400
    hits = {"ipw": 0, "dr": 0, "gain": 0}
    for _ in range(reps):
        seg, treat, reward = _simulate(rng, n)
        policy = TARGET[seg]
        mu = MEANS[seg] + 0.3  # a biased reward model: DR must still be consistent
        for method in ("ipw", "dr"):
            v = policy_value(reward, treat, policy, ASSIGN, mu=mu, method=method)
            hits[method] += v.ci_low <= TRUE_VALUE <= v.ci_high
        g = policy_gain(reward, treat, policy, ASSIGN)
        hits["gain"] += g.ci_low <= TRUE_GAIN <= g.ci_high
    for name, count in hits.items():
        assert 0.9 <= count / reps <= 0.99, (name, count / reps)


def test_dr_with_perfect_mu_has_lower_stderr_than_ipw():
    rng = np.random.default_rng(99)
    seg, treat, reward = _simulate(rng, 2000)
    policy = TARGET[seg]
    ipw = policy_value(reward, treat, policy, ASSIGN)
    dr = policy_value(reward, treat, policy, ASSIGN, mu=MEANS[seg], method="dr")
    assert dr.stderr < 0.8 * ipw.stderr
    assert abs(dr.estimate - TRUE_VALUE) < 3 * dr.stderr
    gain_ipw = policy_gain(reward, treat, policy, ASSIGN)
    gain_dr = policy_gain(reward, treat, policy, ASSIGN, mu=MEANS[seg], method="dr")
    assert gain_dr.stderr < gain_ipw.stderr


# ------------------------------------------------------------------ errors


def test_method_and_mu_errors():
    with pytest.raises(DataError, match=r"method must be 'ipw' or 'dr'; got 'snips'"):
        policy_value(REWARD, TREAT, POLICY, PROP, method="snips")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"method='dr' needs mu"):
        policy_value(REWARD, TREAT, POLICY, PROP, method="dr")
    with pytest.raises(
        DataError, match=r"mu must have shape \(4, 3\) \(rows, arms\); got \(4, 2\)"
    ):
        policy_gain(REWARD, TREAT, POLICY, PROP, mu=MU[:, :2], method="dr")
    with pytest.raises(DataError, match=r"mu contains NaN or infinite values"):
        policy_value(REWARD, TREAT, POLICY, PROP, mu=np.full((4, 3), np.nan), method="dr")


def test_propensity_errors():
    bad = PROP.copy()
    bad[1] = [1.0, 0.0, 0.0]
    with pytest.raises(
        DataError, match=r"propensity must be in \(0, 1\]: every arm needs a positive"
    ):
        policy_value(REWARD, TREAT, POLICY, bad)
    with pytest.raises(DataError, match=r"propensity must be in \(0, 1\]"):
        policy_value(REWARD, TREAT, POLICY, [1.5, 0.5])
    with pytest.raises(
        DataError, match=r"propensity rows must sum to 1 over the arms; row 0 sums to 1\.5"
    ):
        policy_value(REWARD, TREAT, POLICY, [0.5, 0.5, 0.5])
    with pytest.raises(
        DataError,
        match=r"propensity must have shape \(K,\) or \(4, K\) for 4 rows; got shape \(3, 3\)",
    ):
        policy_value(REWARD, TREAT, POLICY, PROP[:3])
    with pytest.raises(DataError, match=r"propensity contains NaN"):
        policy_value(REWARD, TREAT, POLICY, [np.nan, 0.5, 0.5])


def test_arm_code_errors():
    with pytest.raises(
        DataError,
        match=r"treatment must hold integer arm codes 0\.\.2 \(one per propensity column\); "
        r"got 3\.",
    ):
        policy_value(REWARD, [2, 0, 3, 1], POLICY, PROP)
    with pytest.raises(DataError, match=r"policy must hold integer arm codes 0\.\.2.*got 0\.5\."):
        policy_value(REWARD, TREAT, [2, 1, 0.5, 0], PROP)
    with pytest.raises(DataError, match=r"baseline must hold integer arm codes 0\.\.2.*got -1\."):
        policy_gain(REWARD, TREAT, POLICY, PROP, baseline=-1)


def test_shape_and_length_errors():
    with pytest.raises(DataError, match=r"policy has 3 rows but reward has 4"):
        policy_value(REWARD, TREAT, POLICY[:3], PROP)
    with pytest.raises(
        DataError, match=r"treatment must be 1-D with 4 rows like reward; got shape \(5,\)"
    ):
        policy_value(REWARD, [0, 1, 2, 0, 1], POLICY, PROP)
    with pytest.raises(DataError, match=r"reward must be a 1-D array; got shape \(4, 1\)"):
        policy_value(REWARD[:, None], TREAT, POLICY, PROP)
    with pytest.raises(
        DataError, match=r"need at least 2 rows to estimate a standard error; got 1"
    ):
        policy_value([1.0], [0], [0], [1.0])
    with pytest.raises(DataError, match=r"reward contains NaN or infinite values"):
        policy_value([1.0, np.inf, 0.0, 0.0], TREAT, POLICY, PROP)
    with pytest.raises(DataError, match=r"reward must be numeric"):
        policy_value(["a", "b", "c", "d"], TREAT, POLICY, PROP)


def test_alpha_error():
    with pytest.raises(
        DataError, match=r"alpha must be in \(0, 1\), e\.g\. 0\.05 for a 95% interval; got 1\.5"
    ):
        policy_value(REWARD, TREAT, POLICY, PROP, alpha=1.5)
    with pytest.raises(DataError, match=r"alpha must be in \(0, 1\)"):
        policy_gain(REWARD, TREAT, POLICY, PROP, alpha=0)
