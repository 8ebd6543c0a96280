"""A slice's statistics against independent references: the hypergeometric p-value is the exact permutation
p-value (every subset enumerated) and Fisher's exact test; the Monte-Carlo permutation p-value of a continuous
metric matches enumeration within its sampling error; Newcombe's interval on his published example; Holm and
Benjamini-Hochberg by hand."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy.stats import fisher_exact

from audit.slices.stats import adjust, binary_gap, continuous_gaps, newcombe


def _exact_permutation_p(badness: np.ndarray, member: np.ndarray) -> float:
    """P(mean badness of a random subset of the slice's size >= the slice's), every subset enumerated."""
    n, m = len(badness), int(member.sum())
    obs = badness[member].sum()
    sums = [badness[list(c)].sum() for c in combinations(range(n), m)]
    return float(np.mean(np.array(sums) >= obs - 1e-12))


def test_binary_p_value_is_the_exact_permutation_p_value() -> None:
    correct = np.array([1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1], dtype=float)
    member = np.zeros(12, dtype=bool)
    member[:5] = True
    t = binary_gap(correct, member, higher_is_better=True)
    assert t.p_value == pytest.approx(_exact_permutation_p(1 - correct, member), abs=1e-12)
    table = [[int((correct[member] == 0).sum()), int((correct[member] == 1).sum())],
             [int((correct[~member] == 0).sum()), int((correct[~member] == 1).sum())]]
    assert t.p_value == pytest.approx(fisher_exact(table, alternative="greater")[1], abs=1e-12)
    assert t.metric == pytest.approx(2 / 5) and t.rest_metric == pytest.approx(6 / 7)
    assert t.gap == pytest.approx(6 / 7 - 2 / 5)  # accuracy: the rest's minus the slice's
    lower = binary_gap(1 - correct, member, higher_is_better=False)  # the same as an error rate
    assert lower.p_value == pytest.approx(t.p_value) and lower.gap == pytest.approx(t.gap)
    assert lower.metric == pytest.approx(3 / 5)


def test_continuous_p_value_matches_enumeration() -> None:
    rng = np.random.default_rng(0)
    dice = np.round(rng.uniform(0.5, 1.0, 14), 3)
    member = np.zeros(14, dtype=bool)
    member[[0, 3, 5, 8]] = True
    dice[member] -= 0.12
    exact = _exact_permutation_p(-dice, member)
    (t,) = continuous_gaps(dice, [member], True, np.random.default_rng(1), permutations=4999, bootstrap=500)
    se = math.sqrt(exact * (1 - exact) / 4999)
    assert abs(t.p_value - exact) < 4 * se + 1 / 5000, (t.p_value, exact)
    assert t.metric == pytest.approx(dice[member].mean())
    assert t.gap == pytest.approx(dice[~member].mean() - dice[member].mean())
    assert t.metric_ci[0] <= t.metric <= t.metric_ci[1]
    assert t.gap_ci[0] <= t.gap <= t.gap_ci[1]


def test_newcombe_published_example() -> None:
    # Newcombe (1998), Stat Med 17:873, table II example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    lo, hi = newcombe(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=1e-4) and hi == pytest.approx(0.3339, abs=1e-4)


def test_holm_and_bh_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    np.testing.assert_allclose(adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    # BH: sorted times 4/1, 4/2, 4/3, 4/4 = 0.02, 0.02, 0.04, 0.04 -> running min from the top
    np.testing.assert_allclose(adjust(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(adjust(np.array([0.5, 0.9]), "holm"), [1.0, 1.0])
    assert adjust(np.array([]), "holm").size == 0
