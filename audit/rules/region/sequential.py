"""Looks for the counterfactual rules: sample until the interval clears the limit, or the budget is spent.

A cell direction (one region, one group, removal or insertion) has ``N`` usable samples, each a paired
difference (test edit minus control edit). Instead of editing all of them, the rule looks after 20, 40, 60, …
samples (``looks``) and stops as soon as the excess is clearly above or clearly below the limit. The test is a
stated group-sequential design, so stopping early does not inflate the error rate:

- two-sided, level ``alpha`` (0.05), the limit as null value: crossing the upper boundary says "above the limit",
  the lower one "below it", each with probability at most alpha / 2 when the excess equals the limit;
- O'Brien-Fleming-type error spending on each side (Lan & DeMets 1983: alpha/2 spent by information fraction
  t = n / N as 2 − 2 Φ(z_{1−alpha/4} / √t), the convention of gsDesign's sfLDOF and R's ldbounds), so early
  looks spend almost nothing and the last look is nearly the fixed-sample test;
- boundaries by recursive numerical integration over the continuation region (Armitage, McPherson & Rowe 1969;
  Jennison & Turnbull 2000, ch. 19), deterministic; the z boundary of each look is turned into a t boundary with
  the look's degrees of freedom at the same nominal tail probability (Jennison & Turnbull 2000, § 3.8), since the
  variance is estimated;
- the interval reported at the look where sampling stopped is the repeated confidence interval (estimate ± the
  look's boundary × standard error), which holds at every look at once (Jennison & Turnbull 2000, ch. 9).

The first look comes after ``first`` samples (20): a normal approximation needs some samples, and an effect
carried by a minority of a group's images has to be seen at least once. A look that ends without a boundary
crossed at the last sample is *inconclusive near the limit*: the interval contains the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm
from scipy.stats import t as student_t

ALPHA = 0.05
FIRST_LOOK = 20
LOOK_STEP = 20
GRID = 401  # points of the continuation region per look (Simpson's rule)


def spent(t: float, alpha: float = ALPHA) -> float:
    """O'Brien-Fleming-type alpha spending (Lan & DeMets 1983), both sides together: the error spent by
    information fraction ``t`` (alpha / 2 per side, each spent as 2 − 2 Φ(z_{1−alpha/4} / √t))."""
    if t <= 0:
        return 0.0
    return float(4.0 - 4.0 * norm.cdf(norm.ppf(1.0 - alpha / 4.0) / math.sqrt(min(t, 1.0))))


def _simpson(lo: float, hi: float, m: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(lo, hi, m)
    w = np.ones(m)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return x, w * (hi - lo) / (3.0 * (m - 1))


@lru_cache(maxsize=256)
def boundaries(fractions: tuple[float, ...], alpha: float = ALPHA) -> tuple[float, ...]:
    """Two-sided z boundaries at the information ``fractions`` (increasing, the last 1): the score statistic
    S_k = Z_k √t_k is a Brownian motion in t; c_k is chosen so that the probability of first crossing ±c_k at look k
    is the error spent between looks k − 1 and k."""
    out: list[float] = []
    u = dens = w = None
    prev_t, prev_spent = 0.0, 0.0
    for k, t in enumerate(fractions):
        target = spent(t, alpha) - prev_spent
        if k == 0:
            c = float(norm.isf(target / 2.0)) if target > 0 else math.inf
        else:
            assert u is not None and dens is not None and w is not None
            sd = math.sqrt(t - prev_t)
            mass = dens * w

            def excess(c_: float, mass: np.ndarray = mass, u: np.ndarray = u, sd: float = sd, t: float = t,
                       target: float = target) -> float:
                """The probability of first crossing ±c_ at this look, minus the error to spend there."""
                b = c_ * math.sqrt(t)
                return float((mass * (norm.sf((b - u) / sd) + norm.cdf((-b - u) / sd))).sum()) - target

            c = brentq(excess, 0.1, 40.0, xtol=1e-10) if target > 1e-15 else math.inf
        out.append(c)
        if k + 1 < len(fractions):  # the density of S_k on the continuation region, for the next look
            b = min(c, 12.0) * math.sqrt(t)
            x, wx = _simpson(-b, b)
            if k == 0:
                dens_new = norm.pdf(x / math.sqrt(t)) / math.sqrt(t)
            else:
                sd = math.sqrt(t - prev_t)
                dens_new = ((dens * w)[None, :] * norm.pdf((x[:, None] - u[None, :]) / sd) / sd).sum(1)
            u, dens, w = x, dens_new, wx
        prev_t, prev_spent = t, spent(t, alpha)
    return tuple(out)


def looks(n: int, first: int = FIRST_LOOK, step: int = LOOK_STEP) -> tuple[int, ...]:
    """Sample counts at which a direction with ``n`` usable samples is looked at: first, first + step, …, n."""
    if n <= first:
        return (n,)
    return (*range(first, n, step), n)


@dataclass(frozen=True)
class Look:
    """The state of one direction after a look: its estimate, standard error, repeated confidence interval and
    decision (``"above"`` / ``"below"`` the limit, or None: not yet, or inconclusive at the last look)."""

    n: int
    est: float
    se: float
    lo: float
    hi: float
    decided: str | None
    last: bool  # no more samples: the budget is spent

    @property
    def done(self) -> bool:
        return self.decided is not None or self.last

    @property
    def inconclusive(self) -> bool:
        return self.last and self.decided is None


def look(a: np.ndarray, limit: float, schedule: tuple[int, ...], k: int, alpha: float = ALPHA,
         unit: float = 0.0) -> Look:
    """The k-th look of the paired differences ``a`` (its first ``schedule[k]`` values) against ``limit``.
    ``unit``: a floor on the standard deviation's scale for differences that can be exactly constant (flip
    rates: one flip more in the next sample), so that 20 unflipped samples are not read as certainty."""
    n = schedule[k]
    x = np.asarray(a[:n], dtype=np.float64)
    est = float(x.mean())
    var = float(x.var(ddof=1)) if n > 1 else 0.0
    if unit > 0:
        p = 1.0 / (n + 1)
        var = max(var, unit * unit * p * (1.0 - p))
    se = math.sqrt(var / n) if n > 1 else math.inf
    N = schedule[-1]
    fractions = tuple(m / N for m in schedule)
    cz = boundaries(fractions, alpha)[k]
    c = float(student_t.isf(norm.sf(cz), n - 1)) if n > 1 and math.isfinite(cz) else math.inf
    half = c * se if math.isfinite(c) and math.isfinite(se) else math.inf
    lo, hi = est - half, est + half
    decided = "above" if lo > limit else "below" if hi < limit else None
    return Look(n, est, se, lo, hi, decided, k == len(schedule) - 1)
