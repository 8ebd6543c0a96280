"""The TCAV test statistics against a hand computation: Student's pooled-variance t-test, two-sided, and Bonferroni."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from audit.concepts.stats import bonferroni, ttest


def hand_ttest(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """t = (mean_a - mean_b) / sqrt(s_p^2 (1/n_a + 1/n_b)), s_p^2 the pooled variance; p = 2 P(T_df > |t|)."""
    na, nb = len(a), len(b)
    sp2 = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    t = (a.mean() - b.mean()) / math.sqrt(sp2 * (1 / na + 1 / nb))
    return t, 2 * stats.t.sf(abs(t), na + nb - 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ttest_matches_the_formula_and_scipy(seed):
    rng = np.random.default_rng(seed)
    concept = np.clip(rng.normal(0.8, 0.1, 10), 0, 1)  # TCAV scores of 10 runs
    random = np.clip(rng.normal(0.5, 0.2, 10), 0, 1)
    got = ttest(concept, random)
    t, p = hand_ttest(concept, random)
    assert got.df == 18
    assert got.t == pytest.approx(t, rel=1e-12)
    assert got.p == pytest.approx(p, rel=1e-9)
    ref = stats.ttest_ind(concept, random)  # what Kim et al.'s reference implementation calls
    assert got.p == pytest.approx(float(ref.pvalue), rel=1e-12)


def test_the_worked_example():
    """Concept scores 0.9, 1.0, 0.95, 1.0, 0.85; random 0.5, 0.3, 0.7, 0.4, 0.6: by hand, mean difference 0.44,
    s_p^2 = (4 * 0.00425 + 4 * 0.025) / 8 = 0.014625, t = 0.44 / sqrt(0.014625 * 0.4) = 5.7527, df 8."""
    got = ttest(np.array([0.9, 1.0, 0.95, 1.0, 0.85]), np.array([0.5, 0.3, 0.7, 0.4, 0.6]))
    assert got.t == pytest.approx(0.44 / math.sqrt(0.014625 * 0.4), rel=1e-12)
    assert got.t == pytest.approx(5.7527, abs=1e-4)
    assert got.p == pytest.approx(2 * stats.t.sf(5.7527, 8), rel=1e-4)
    assert 0.0004 < got.p < 0.0005


def test_degenerate_samples_are_answered_not_nan():
    same = ttest(np.ones(10), np.ones(10))
    assert same.p == 1.0 and same.note
    apart = ttest(np.ones(10), np.zeros(10))  # every run 1.0 against every random run 0.0: the clearest answer
    assert apart.p == 0.0 and apart.t == math.inf and apart.note
    assert math.isnan(ttest(np.ones(1), np.zeros(5)).p)  # too few runs: NaN, which the rule reports as an error
    assert math.isnan(ttest(np.array([np.nan, 1.0]), np.zeros(5)).p)


def test_bonferroni():
    assert bonferroni(0.01, 3) == pytest.approx(0.03)
    assert bonferroni(0.5, 3) == 1.0
    assert math.isnan(bonferroni(math.nan, 3))
    got = bonferroni(np.array([0.001, 0.2, np.nan]), 10)
    assert got[0] == pytest.approx(0.01) and got[1] == 1.0 and math.isnan(got[2])
    with pytest.raises(ValueError):
        bonferroni(0.1, 0)
