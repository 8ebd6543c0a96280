"""Orders and rank statistics of maps do not depend on the CPU's kernels: attributions a few float32 rounding units
apart are ties (the faithfulness rule breaks them by its seeded random order; Spearman similarity averages their
ranks), values further apart keep their order."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from audit.maps.stats import TIE_ULPS, spearman_abs, tie_groups
from audit.rules.faithfulness import _ranks


def _ulps(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``x`` moved by ``k`` float32 units in the last place, element by element."""
    out = x.astype(np.float32).copy()
    for _ in range(int(np.abs(k).max())):
        step = np.abs(k) > 0
        out[step] = np.nextafter(out[step], np.where(k[step] > 0, np.float32(np.inf), np.float32(-np.inf)))
        k = k - np.sign(k)
    return out


def test_values_a_few_rounding_units_apart_are_tied_and_others_ordered():
    base = np.float32(0.3)
    near = _ulps(np.array([base]), np.array([TIE_ULPS]))[0]
    far = _ulps(np.array([base]), np.array([4 * TIE_ULPS]))[0]
    g = tie_groups(np.array([base, far, near, 0.0, -0.0, np.nan, np.inf, -np.inf], np.float32))
    assert g[6] == 0 and g[1] == 1  # +inf first, then the value 16 units up
    assert g[2] == g[0] == 2  # 4 units apart: one group
    assert g[3] == g[4] == 3 and g[5] == g[7] == 4  # zeros tie; NaN ranks with -inf, last


def test_ranks_of_a_map_and_its_copy_a_few_units_off_are_the_same():
    """An upsampled map holds blocks of values equal in exact arithmetic; another CPU's kernels return them one to
    two units apart in another pattern. The pixel order (what the deletion and insertion curves remove) is the same
    for both, while ordering by the raw values is not."""
    rng = np.random.default_rng(0)
    a = np.kron(rng.random((4, 4)), np.ones((8, 8))).astype(np.float32)[None]
    b = _ulps(a, rng.integers(-2, 3, a.shape))
    assert (a != b).sum() > 500
    ra, rb = _ranks(a, np.random.default_rng(1)), _ranks(b, np.random.default_rng(1))
    np.testing.assert_array_equal(ra, rb)
    noise = np.random.default_rng(1).random(a.size)
    assert not np.array_equal(np.lexsort((noise, -a.ravel())), np.lexsort((noise, -b.ravel())))


def test_spearman_similarity_of_a_map_and_its_copy_a_few_units_off_is_the_same():
    rng = np.random.default_rng(2)
    a = np.kron(rng.random((4, 4)), np.ones((8, 8))).astype(np.float32)
    b = _ulps(a, rng.integers(-2, 3, a.shape))
    other = rng.random(a.shape).astype(np.float32)
    assert spearman_abs(a, other) == spearman_abs(b, other)
    assert spearmanr(a.ravel(), other.ravel())[0] != spearmanr(b.ravel(), other.ravel())[0]  # raw ranks differ
    untied = rng.random((16, 16))  # no near-ties: the plain Spearman correlation
    assert spearman_abs(untied, other[:16, :16]) == pytest.approx(spearmanr(untied.ravel(), other[:16, :16].ravel())[0])
