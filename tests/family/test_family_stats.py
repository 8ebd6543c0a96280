"""The family's statistics against independent references: Cohen's kappa against scikit-learn, the spread's
t-interval and the prediction interval against scipy and hand arithmetic, Spearman's correlation against scipy,
top-k overlap and flips on hand-made cases."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score

from audit.family.pooled import released_check
from audit.family.stats import cohen_kappa, flips, prediction_interval, rank_correlation, spread, top_k, top_overlap


@pytest.mark.parametrize("seed", range(5))
def test_kappa_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 4, 200))
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_by_hand_and_degenerate_cases():
    # 10 answers, 8 equal; a: 6 zeros 4 ones, b: 4 zeros 6 ones -> p_e = (6*4 + 4*6)/100 = 0.48
    a = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    b = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    assert cohen_kappa(a, b) == pytest.approx((0.8 - 0.48) / (1 - 0.48), abs=1e-12)
    assert math.isnan(cohen_kappa(np.zeros(5), np.zeros(5)))  # p_e = 1: undefined, never 1
    assert cohen_kappa(np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1])) == 1.0
    with pytest.raises(ValueError):
        cohen_kappa(np.zeros(3), np.zeros(4))


def test_spread_t_interval_equals_scipy():
    v = np.array([0.91, 0.87, 0.93, 0.89, 0.90])
    s = spread(v, 0.95)
    low, high = sps.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=sps.sem(v))
    assert (s.n, s.mean, s.sd) == (5, pytest.approx(v.mean(), abs=1e-15), pytest.approx(v.std(ddof=1), abs=1e-15))
    assert (s.low, s.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert s.range == pytest.approx(0.06, abs=1e-15)
    one = spread(np.array([0.5, math.nan]))  # NaN left out; one value: no sd, no interval
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.sd) and math.isnan(one.low)
    assert spread(np.array([])).n == 0


def test_prediction_interval_by_hand():
    v = np.array([0.8, 0.9, 1.0])  # mean 0.9, sd 0.1, t(0.975, 2) = 4.302652729749464
    low, high = prediction_interval(v, 0.95)
    half = 4.302652729749464 * 0.1 * math.sqrt(1 + 1 / 3)
    assert (low, high) == (pytest.approx(0.9 - half, abs=1e-9), pytest.approx(0.9 + half, abs=1e-9))
    assert prediction_interval(np.array([0.9])) is None


def test_rank_correlation_equals_scipy_on_magnitudes():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 8))
    y = x + 0.5 * rng.standard_normal((8, 8))
    y[0, :3] = y[1, :3] = 2.0  # ties get their average rank
    assert rank_correlation(x, y) == pytest.approx(sps.spearmanr(np.abs(x).ravel(), np.abs(y).ravel())[0], abs=1e-12)
    assert math.isnan(rank_correlation(np.zeros((4, 4)), x[:4, :4]))


def test_top_overlap_by_hand():
    x = np.zeros((4, 5))
    y = np.zeros((4, 5))
    x.flat[[0, 1, 2, 3]] = [5, -4, 3, 2]  # |x| top 4: pixels 0 1 2 3
    y.flat[[0, 1, 7, 9]] = [1, 2, -3, 4]  # |y| top 4: pixels 9 7 1 0
    assert top_k(20, 0.2) == 4
    assert top_overlap(x, y, 0.2) == 0.5  # pixels 0 and 1 of 4
    assert top_overlap(x, x, 0.2) == 1.0
    assert top_k(1024, 0.0625) == 64 and top_k(10, 0.01) == 1


def test_flips_count_right_and_wrong():
    a, b = np.array([0, 1, 1, 0, 2]), np.array([0, 1, 0, 1, 2])
    truth = np.array([0, 1, 1, 1, 0])
    f = flips(a, b, a == truth, b == truth)
    assert (f.n, f.changed, f.a_right_b_wrong, f.a_wrong_b_right) == (5, 2, 1, 1)
    rows = flips(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [1, 0]]))  # multi-label rows differ in any entry
    assert (rows.changed, rows.a_right_b_wrong) == (1, None)


def test_released_member_outlier_against_the_others():
    def m(name, role, acc):
        return SimpleNamespace(name=name, role=role, values={"accuracy": acc})

    others = [m("b", "member", 0.90), m("c", "member", 0.92), m("d", "member", 0.91)]
    ens = m("ensemble", "ensemble", 0.5)  # left out of the interval
    low = released_check([m("a", "released", 0.70), *others, ens], "accuracy", 0.95)
    assert (low.outlier, low.others) == (True, 3)
    assert low.interval == pytest.approx(prediction_interval(np.array([0.90, 0.92, 0.91]), 0.95))
    typical = released_check([m("a", "released", 0.905), *others, ens], "accuracy", 0.95)
    assert typical.outlier is False
    assert released_check([m("a", "released", 0.9), others[0]], "accuracy", 0.95).outlier is None  # one other
