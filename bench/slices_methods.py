"""Slice discovery methods compared on the planted-slice benchmark. Each is fitted on a problem's validation set
and returns slices as scores over the test set (higher = more typical, for precision at 10) and a hard test
membership (for recall), as dcbench's evaluation does (Eyuboglu et al. 2022, algorithm 1).

    ours        audit.slices.discover_slices with default settings: fitted on validation, tested on test; the
                slices it reports (Holm-corrected p <= 0.05, at least 10 test members); a sample's score is
                its typicality (the log-odds of P(S | embedding, label, prediction)), its membership the
                assignment by embedding and label
    ours-top5   the same fit, its five worst slices by test gap whether significant or not
    domino      Domino's error-aware mixture, reimplemented from the paper and its public code (the reference
                package pins scikit-learn 0.24.2 and meerkat, which do not install here): PCA to <= 128 dims fitted
                on validation, 25 diagonal components, gamma = gamma-hat = 10 (domino.main.discover's defaults),
                confusion start (noise 1e-3), tol 1e-3, 100 iterations; the 5 components with the largest
                |max_c (p-hat_c - p_c)|; test scores P(S | embedding, label, prediction) as dcbench's run_sdm
                (as log-odds, here and for gmm: the same order without ties at 1.0)
    gmm         scikit-learn's GaussianMixture (25 diagonal components, k-means start) on the same PCA, no error
                terms; the 5 components with the highest validation error rate
    kmeans      scikit-learn's KMeans (25 clusters) on the same PCA; the 5 clusters with the highest validation
                error rate; score = minus the distance to the centre
    confusion   Domino's ConfusionSDM baseline: the 5 most populated off-diagonal cells of the validation confusion
                matrix; score = P(prediction = j) for test samples labelled i
    ours+desc   ours with a second embedding: the pixel descriptor of slices_descriptor.py (standardised over
                validation and test together)
    domino+desc domino on the model's features and the descriptor side by side (each standardised)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from slices_descriptor import standardise

from audit.slices import DiscoverySettings, SliceInputs, discover_slices
from audit.slices.mixture import Term, confusion_start, fit_mixture, gaussian_log_density, weighted_log_prob

N_RETURNED = 5
N_COMPONENTS = 25


@dataclass(frozen=True)
class Split:
    features: np.ndarray  # (N, D)
    probs: np.ndarray  # (N, C)
    labels: np.ndarray  # (N,)
    planted: np.ndarray  # (N,) bool
    extra: np.ndarray | None = None  # (N, D2) a model-independent second embedding (slices_descriptor.py)

    @property
    def error(self) -> np.ndarray:
        return (self.probs.argmax(1) != self.labels).astype(np.float64)


@dataclass(frozen=True)
class Returned:
    scores: np.ndarray  # (N_test,) higher = more typical of the slice
    members: np.ndarray  # (N_test,) bool


def _pca(val: Split, test: Split) -> tuple[np.ndarray, np.ndarray]:
    k = min(128, val.features.shape[1], len(val.features) - 1)
    pca = PCA(n_components=k, svd_solver="full").fit(val.features)
    return pca.transform(val.features), pca.transform(test.features)


def _log_odds(lp: np.ndarray, j: int) -> np.ndarray:
    """log P(S = j | .) - log P(S != j | .) from unnormalised log-probabilities (N, K): the responsibility's order
    without its saturation at 1.0, which would leave the top 10 to ties."""
    return lp[:, j] - logsumexp(np.delete(lp, j, axis=1), axis=1)


def _worst_by_error(assign_val: np.ndarray, err: np.ndarray, k: int) -> list[int]:
    rates = [(err[assign_val == j].mean() if np.any(assign_val == j) else -1.0) for j in range(k)]
    return [int(j) for j in np.argsort(-np.array(rates), kind="mergesort")[:N_RETURNED]]


def _extra(val: Split, test: Split) -> np.ndarray:
    if val.extra is None or test.extra is None:
        raise ValueError("this method needs the second embedding (Split.extra)")
    return standardise(np.concatenate([val.extra, test.extra]))


def _ours(val: Split, test: Split, rng: np.random.Generator, top5: bool,
          settings: DiscoverySettings | None = None, extra: bool = False) -> list[Returned]:
    inputs = SliceInputs.from_classification(np.concatenate([val.features, test.features]),
                                             np.concatenate([val.labels, test.labels]),
                                             np.concatenate([val.probs, test.probs]),
                                             _extra(val, test) if extra else None)
    fit = np.r_[np.ones(len(val.labels), bool), np.zeros(len(test.labels), bool)]
    d = discover_slices(inputs, rng, settings, fit_mask=fit)
    chosen = d.slices[:N_RETURNED] if top5 else d.reported
    n = len(val.labels)
    return [Returned(d.typicality(s.component)[n:], d.assignment[n:] == s.component) for s in chosen]


def ours(val: Split, test: Split, rng: np.random.Generator) -> list[Returned]:
    return _ours(val, test, rng, top5=False)


def ours_top5(val: Split, test: Split, rng: np.random.Generator) -> list[Returned]:
    return _ours(val, test, rng, top5=True)


def ours_desc(val: Split, test: Split, rng: np.random.Generator) -> list[Returned]:
    return _ours(val, test, rng, top5=False, extra=True)


def domino(val: Split, test: Split, rng: np.random.Generator, extra: bool = False) -> list[Returned]:
    if extra:  # the model's features and the descriptor side by side, each standardised
        both = np.concatenate([standardise(np.concatenate([val.features, test.features])), _extra(val, test)], 1)
        n = len(val.labels)
        val, test = Split(both[:n], val.probs, val.labels, val.planted), Split(both[n:], test.probs, test.labels,
                                                                               test.planted)
    zv, zt = _pca(val, test)
    c = val.probs.shape[1]
    yv, yt = np.eye(c)[val.labels], np.eye(c)[test.labels]
    terms_v = [Term("label", yv, 10.0), Term("prediction", val.probs, 10.0)]
    start = confusion_start(yv, val.probs, N_COMPONENTS, 1e-3, rng)
    fit = fit_mixture(zv, terms_v, start, "diag", 1e-6, 100, 1e-3)
    gap = fit.probs_of("prediction") - fit.probs_of("label")
    chosen = np.argsort(-np.abs(gap.max(axis=1)), kind="mergesort")[:N_RETURNED]
    lp = weighted_log_prob(fit, zt, [Term("label", yt, 10.0), Term("prediction", test.probs, 10.0)])
    hard = lp.argmax(1)
    return [Returned(_log_odds(lp, j), hard == j) for j in chosen]


def domino_desc(val: Split, test: Split, rng: np.random.Generator) -> list[Returned]:
    return domino(val, test, rng, extra=True)


def gmm(val: Split, test: Split, rng: np.random.Generator) -> list[Returned]:
    zv, zt = _pca(val, test)
    gm = GaussianMixture(N_COMPONENTS, covariance_type="diag", random_state=int(rng.integers(2**31 - 1))).fit(zv)
    chosen = _worst_by_error(gm.predict(zv), val.error, N_COMPONENTS)
    lp = gaussian_log_density(zt, gm.means_, gm.covariances_, "diag") + np.log(gm.weights_)
    hard = gm.predict(zt)
    return [Returned(_log_odds(lp, j), hard == j) for j in chosen]


def kmeans(val: Split, test: Split, rng: np.random.Generator) -> list[Returned]:
    zv, zt = _pca(val, test)
    km = KMeans(N_COMPONENTS, n_init=3, random_state=int(rng.integers(2**31 - 1))).fit(zv)
    chosen = _worst_by_error(km.labels_, val.error, N_COMPONENTS)
    dist, hard = km.transform(zt), km.predict(zt)
    return [Returned(-dist[:, j], hard == j) for j in chosen]


def confusion(val: Split, test: Split, rng: np.random.Generator) -> list[Returned]:
    c = val.probs.shape[1]
    cm = np.zeros((c, c))
    np.add.at(cm, (val.labels, val.probs.argmax(1)), 1)
    np.fill_diagonal(cm, -1)
    cells = np.argsort(-cm.ravel(), kind="mergesort")[:N_RETURNED]
    pred_t = test.probs.argmax(1)
    out = []
    for cell in cells:
        i, j = divmod(int(cell), c)
        out.append(Returned(np.where(test.labels == i, test.probs[:, j], -1.0), (test.labels == i) & (pred_t == j)))
    return out


METHODS: dict[str, Callable[[Split, Split, np.random.Generator], list[Returned]]] = {
    "ours": ours, "ours-top5": ours_top5, "domino": domino, "gmm": gmm, "kmeans": kmeans, "confusion": confusion,
    "ours+desc": ours_desc, "domino+desc": domino_desc,
}
NEEDS_EXTRA = ("ours+desc", "domino+desc")


def precision_at(scores: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Share of the ``k`` highest-scoring samples in the truth (ties in sample order, as rankdata 'ordinal')."""
    top = np.argsort(-scores, kind="mergesort")[:k]
    return float(truth[top].mean())


def evaluate(returned: list[Returned], truth: np.ndarray) -> dict[str, float]:
    """Best returned slice by precision at 10 (then recall): its precision at 10 and recall of the planted slice."""
    best = (0.0, 0.0)
    for r in returned:
        cand = (precision_at(r.scores, truth), float(r.members[truth].mean()) if truth.any() else 0.0)
        best = max(best, cand)
    return {"precision_at_10": best[0], "recall": best[1], "n_returned": len(returned)}
