"""The statistics of a TCAV test (Kim et al. 2018, section 3.3 and the authors' reference implementation).

One test compares the TCAV scores of a concept's CAVs, each trained against a different random counterexample set,
with the TCAV scores of random CAVs (a random set trained against the same counterexample sets): a two-sided
two-sample t-test (Student's, pooled variance: ``scipy.stats.ttest_ind`` with its defaults, as the reference
implementation calls it). Bonferroni over the m tests of one audit: p_corrected = min(1, m * p).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class TTest:
    """A two-sided pooled-variance t-test of ``a`` against ``b``."""

    t: float
    df: int
    p: float
    note: str = ""  # set when the p-value follows from a degenerate case (no spread in either sample)


def ttest(a: np.ndarray, b: np.ndarray) -> TTest:
    """Student's two-sample t-test, two-sided. Both samples constant: p = 1 when their values are equal, else
    p = 0 (t = ±inf): scipy returns NaN there, but identical scores in every run are the clearest answer a run can
    give, never "could not tell". Fewer than two values in either sample: NaN (the caller reports an error)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    df = len(a) + len(b) - 2
    if len(a) < 2 or len(b) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return TTest(math.nan, max(df, 0), math.nan, "fewer than two finite scores")
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        if a[0] == b[0]:
            return TTest(0.0, df, 1.0, "every score equal in both samples")
        return TTest(math.copysign(math.inf, a[0] - b[0]), df, 0.0, "no spread in either sample; the means differ")
    with warnings.catch_warnings():  # one constant sample (every run 1.0) is fine: the other gives the variance
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        res = stats.ttest_ind(a, b)  # equal_var=True, alternative="two-sided"
    return TTest(float(res.statistic), df, float(res.pvalue))


def bonferroni(p: np.ndarray | float, m: int) -> np.ndarray | float:
    """min(1, m * p) (NaN stays NaN)."""
    if m < 1:
        raise ValueError(f"Bonferroni needs at least one test; got m = {m}")
    if isinstance(p, np.ndarray):
        return np.minimum(1.0, p.astype(np.float64) * m)  # np.minimum keeps NaN
    return math.nan if math.isnan(p) else min(1.0, p * m)
