"""Slice discovery: fit the error-aware mixture on one part of the set, test its components on the other.

1. Reduce: PCA of the embedding to ``n_pca`` components (Domino reduces to 128); a second embedding gets its own
   PCA and half of the components. PCA sees no label or error, so it is fitted on every sample.
2. Fit (the discovery part, ``fit_fraction`` of each class): the error-aware mixture (``mixture.py``) over the
   reduced embedding, the label and the prediction (Domino's terms, weights gamma = gamma-hat = 10 as in Domino's
   ``discover``) and, when set or when there are no labels, a Bernoulli term on the per-sample error. Start
   (``start="cells"``): every non-empty cell of the fitted terms (label x prediction, or label x error) gets
   components in proportion to its size, split by k-means within the cell. Domino's own start
   (``start="confusion"``) gives each component one cell round robin, so components that start alike split a
   group at random; on the planted-slice benchmark the cells start recovered more slices (bench/slices_run.py).
   Components that EM split with no gain are then merged by BIC (``mixture.merge_components``).
3. Assign every sample to its most responsible component given its embedding and label only, P(S | z, y): the
   prediction and the error are marginalised, so on the confirmation part the assignment cannot see whether a
   sample was got right.
4. Test (the confirmation part, the samples the mixture never saw): every component with at least ``min_size``
   confirmation members is a slice tried; its metric, interval, gap to the rest and one-sided p-value come from
   ``stats.py``; the p-values are corrected over the slices tried (Holm by default). Because the slicing function
   was fixed before the confirmation errors were looked at, the p-values are valid: on a set whose errors do not
   depend on embedding and label, a slice is reported with probability at most ``alpha``.

Slices are ranked by their gap (worst first); ``Discovery.reported`` keeps those whose corrected p-value is at most
``alpha``. The statistics describe the confirmation part; ``Slice.members`` lists every sample assigned.

``n_components="auto"`` (the [slices] default) sizes the mixture to the set: a component is tested only with at
least ``min_size`` confirmation members, so on a small set Domino's 25 components leave most components (and the
slice) untested. ``auto_components`` gives each component about ``2 x min_size`` samples on average in the smaller
part, so that a component of average size clears ``min_size`` with room for the uneven sizes EM produces, capped at
Domino's 25 (on the planted-slice benchmark, 1,600 samples per part, the rule gives 25).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import logsumexp
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from .inputs import SliceInputError, SliceInputs
from .mixture import (
    Covariance,
    MixtureFit,
    Term,
    cell_start,
    confusion_start,
    fit_mixture,
    merge_components,
    weighted_log_prob,
)
from .stats import Correction, GapTest, adjust, binary_gap, continuous_gaps

MAX_COMPONENTS = 25  # Domino's default (domino.main.discover)

CORRECTIONS = {"holm": "Holm step-down (family-wise error rate, any dependence)",
               "bh": "Benjamini-Hochberg (false-discovery rate)"}


@dataclass(frozen=True)
class DiscoverySettings:
    n_components: int | Literal["auto"] = 25  # "auto": auto_components(min(fit, confirmation) part, min_size)
    n_pca: int = 128
    covariance: Covariance = "diag"
    label_weight: float = 10.0
    prediction_weight: float = 10.0
    error_weight: float | None = None  # None: 0 with labels and predictions (Domino's model), else 10
    fit_fraction: float = 0.5
    min_size: int = 10
    alpha: float = 0.05
    correction: Correction = "holm"
    max_iter: int = 100
    tol: float = 1e-3
    reg_covar: float = 1e-6
    init_noise: float = 1e-3
    start: Literal["cells", "labels", "confusion"] = "cells"
    merge: bool = True
    permutations: int = 4999
    bootstrap: int = 2000

    def __post_init__(self) -> None:
        if not 0.0 < self.fit_fraction < 1.0:
            raise SliceInputError(f"fit_fraction {self.fit_fraction}: must lie strictly between 0 and 1")
        if self.n_components != "auto" and (not isinstance(self.n_components, int) or self.n_components < 1):
            raise SliceInputError(f"n_components {self.n_components!r}: 'auto' or an integer of at least 1")
        if self.min_size < 1 or self.n_pca < 1:
            raise SliceInputError("n_pca and min_size must be at least 1")
        if self.correction not in CORRECTIONS:
            raise SliceInputError(f"correction {self.correction!r}: known {', '.join(CORRECTIONS)}")


@dataclass(frozen=True)
class Slice:
    """One tested component. Statistics are over its ``n`` confirmation members; ``members`` are all samples
    assigned to it (discovery and confirmation). ``gap`` > 0: the slice is worse than the rest."""

    rank: int
    component: int
    members: np.ndarray
    test: GapTest
    p_adjusted: float
    significant: bool

    @property
    def n(self) -> int:
        return self.test.n

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Discovery:
    slices: tuple[Slice, ...]  # every slice tried, worst gap first
    assignment: np.ndarray  # (N,) component of each sample (argmax of ``responsibilities``)
    responsibilities: np.ndarray  # (N, K) P(S = k | z, y)
    log_prob: np.ndarray  # (N, K) log pi_k + log N(z | k) + w_y log P(y | k): the assignment's evidence
    log_prob_fit: np.ndarray  # (N, K) the same with every fitted term (prediction, error): for typicality only
    fit_mask: np.ndarray  # (N,) True: discovery part
    mixture: MixtureFit
    metric_name: str
    higher_is_better: bool
    overall_metric: float  # over the confirmation part
    settings: DiscoverySettings
    n_too_small: int  # components with fewer than min_size confirmation members (not tried)
    n_components: int = 0  # the mixture's components before merging (settings.n_components resolved)

    def typicality(self, component: int) -> np.ndarray:
        """(N,) how typical each sample is of the component: the log-odds log P(S = k | .) - log P(S != k | .) given
        everything the mixture was fitted on (embedding, label, prediction or error), as Domino ranks a slice's
        members. Log-odds keep the responsibility's order without its saturation at 1.0. It orders the images a
        reviewer sees; membership and every statistic use the assignment by embedding and label alone."""
        lp = self.log_prob_fit
        others = np.delete(lp, component, axis=1)
        rest = logsumexp(others, axis=1) if others.shape[1] else np.full(len(lp), -np.inf)
        return lp[:, component] - rest

    @property
    def reported(self) -> tuple[Slice, ...]:
        return tuple(s for s in self.slices if s.significant)

    def method(self) -> str:
        s = self.settings
        auto = f", 'auto' for {s.min_size} x 2 samples each" if s.n_components == "auto" else ""
        n_conf = int((~self.fit_mask).sum())
        kept = self.mixture.n_components
        merged = f", {kept} left after merging" if kept != self.n_components else ""
        whole = int(np.count_nonzero(np.bincount(self.assignment[~self.fit_mask], minlength=kept) >= n_conf))
        everything = f"; {whole} holding every confirmation sample, with no rest to compare with" if whole else ""
        return (f"{self.n_components} mixture components{auto}{merged}; "
                f"{len(self.slices)} slices tried (mixture components with at least {s.min_size} of the "
                f"{n_conf} confirmation samples; {self.n_too_small} smaller ones not tried{everything}); "
                f"one-sided test of a worse {self.metric_name} than the rest, corrected with "
                f"{CORRECTIONS[s.correction]} at alpha {s.alpha}")


def reduce_embeddings(inputs: SliceInputs, n_pca: int) -> np.ndarray:
    """PCA of the embedding (and of the second one, each to half of ``n_pca``), concatenated."""
    blocks = [inputs.embeddings] + ([inputs.extra_embedding] if inputs.extra_embedding is not None else [])
    per = max(1, n_pca // len(blocks))
    out = []
    for b in blocks:
        k = min(per, b.shape[1], inputs.n - 1)
        out.append(PCA(n_components=k, svd_solver="full").fit_transform(b) if k < b.shape[1] else b - b.mean(0))
    return np.concatenate(out, axis=1)


def split(inputs: SliceInputs, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Discovery mask: ``fraction`` of each class (of the whole set without labels), drawn from ``rng``."""
    groups = inputs.labels.argmax(1) if inputs.labels is not None else np.zeros(inputs.n, dtype=np.int64)
    mask = np.zeros(inputs.n, dtype=bool)
    for g in np.unique(groups):
        idx = rng.permutation(np.flatnonzero(groups == g))
        mask[idx[: round(fraction * len(idx))]] = True
    return mask


def mixture_terms(inputs: SliceInputs, settings: DiscoverySettings) -> tuple[list[Term], list[Term]]:
    """(terms the mixture is fitted with, terms a sample is assigned with: the label only)."""
    fit_terms, assign_terms = [], []
    if inputs.labels is not None:
        label = Term("label", inputs.labels, settings.label_weight)
        fit_terms.append(label)
        assign_terms.append(label)
    if inputs.probs is not None:
        fit_terms.append(Term("prediction", inputs.probs, settings.prediction_weight))
    w = settings.error_weight
    if w is None:
        w = 0.0 if inputs.probs is not None else 10.0
    if w > 0:
        b = inputs.badness()
        fit_terms.append(Term("error", np.stack([1.0 - b, b], axis=1), w))
    return fit_terms, assign_terms


def joint_cells(terms: list[Term], n: int) -> np.ndarray:
    """One-hot (n, prod C_t) of every sample's joint cell: the argmax of each term (label x prediction, ...)."""
    cell = np.zeros(n, dtype=np.int64)
    size = 1
    for t in terms:
        cell = cell * t.values.shape[1] + t.values.argmax(1)
        size *= t.values.shape[1]
    return np.eye(size)[cell]


def _start(z: np.ndarray, terms: list[Term], k: int, settings: DiscoverySettings,
           rng: np.random.Generator) -> np.ndarray:
    if settings.start == "confusion":
        label, pred = (next((t.values for t in terms if t.name == name), None) for name in ("label", "prediction"))
        if label is None or pred is None:
            raise SliceInputError("start 'confusion' needs labels and predicted probabilities")
        return confusion_start(label, pred, k, settings.init_noise, rng)
    if settings.start == "labels":
        terms = [t for t in terms if t.name == "label"]
    return cell_start(joint_cells(terms, len(z)), z, k, settings.init_noise, rng)


def auto_components(n_fit: int, n_confirmation: int, min_size: int) -> int:
    """Components for ``n_components="auto"``: about ``2 * min_size`` samples each in the smaller part, 1 to 25."""
    return max(1, min(MAX_COMPONENTS, min(n_fit, n_confirmation) // (2 * min_size)))


def discover_slices(inputs: SliceInputs, rng: np.random.Generator, settings: DiscoverySettings | None = None,
                    fit_mask: np.ndarray | None = None) -> Discovery:
    """Ranked slices of ``inputs`` (see the module docstring). ``fit_mask``: the discovery part (default: a
    stratified ``fit_fraction`` drawn from ``rng``)."""
    # the matrices are small (N x K): BLAS threads only add waiting (M-steps 5.6 s -> 0.12 s on a busy 2-core box)
    with threadpool_limits(limits=1, user_api="blas"):
        return _discover(inputs, rng, settings or DiscoverySettings(), fit_mask)


def _discover(inputs: SliceInputs, rng: np.random.Generator, s: DiscoverySettings,
              fit_mask: np.ndarray | None) -> Discovery:
    fit = split(inputs, s.fit_fraction, rng) if fit_mask is None else np.asarray(fit_mask, dtype=bool)
    if fit.shape != (inputs.n,):
        raise SliceInputError(f"fit_mask: shape {fit.shape}, expected ({inputs.n},)")
    n_fit, n_conf = int(fit.sum()), int((~fit).sum())
    if n_fit < 2 or n_conf < 2:
        raise SliceInputError(f"discovery part {n_fit} / confirmation part {n_conf} samples: each needs at least 2")
    asked = auto_components(n_fit, n_conf, s.min_size) if s.n_components == "auto" else s.n_components
    k = min(asked, n_fit)
    z = reduce_embeddings(inputs, s.n_pca)
    fit_terms, assign_terms = mixture_terms(inputs, s)
    sub = [Term(t.name, t.values[fit], t.weight) for t in fit_terms]
    start = _start(z[fit], sub, k, s, rng)
    k_fitted = start.shape[1]  # a cells start gives every non-empty cell one at least
    model = fit_mixture(z[fit], sub, start, s.covariance, s.reg_covar, s.max_iter, s.tol)
    if s.merge:
        model = merge_components(model, z[fit], sub, s.reg_covar)
    k = model.n_components
    log_prob = weighted_log_prob(model, z, assign_terms)
    log_prob_fit = weighted_log_prob(model, z, fit_terms)
    resp = np.exp(log_prob - logsumexp(log_prob, axis=1, keepdims=True))
    assignment = resp.argmax(1)
    conf = ~fit
    values = inputs.metric[conf]
    counts = np.bincount(assignment[conf], minlength=k)
    tried = [j for j in range(k) if counts[j] >= s.min_size and counts[j] <= n_conf - 1]
    members = [assignment[conf] == j for j in tried]
    if inputs.binary_metric:
        tests = [binary_gap(values, m, inputs.higher_is_better) for m in members]
    else:
        tests = continuous_gaps(values, members, inputs.higher_is_better, rng, s.permutations, s.bootstrap)
    p_adj = adjust(np.array([t.p_value for t in tests]), s.correction)
    order = sorted(range(len(tried)), key=lambda i: (-tests[i].gap, tests[i].p_value, tried[i]))
    slices = tuple(
        Slice(rank, tried[i], np.flatnonzero(assignment == tried[i]), tests[i], float(p_adj[i]),
              bool(p_adj[i] <= s.alpha and tests[i].gap > 0))
        for rank, i in enumerate(order, start=1))
    return Discovery(slices, assignment, resp, log_prob, log_prob_fit, fit, model, inputs.metric_name,
                     inputs.higher_is_better, float(values.mean()), s,
                     int(np.count_nonzero((counts > 0) & (counts < s.min_size))), k_fitted)
