"""The error-aware mixture model of Domino (Eyuboglu et al., "Domino: Discovering Systematic Errors with
Cross-Modal Embeddings", ICLR 2022, section 4.2), fitted by expectation-maximisation.

Generative model: a slice S ~ Cat(pi); given S the embedding Z ~ N(mu_S, Sigma_S) (diagonal or full covariance)
and every discrete term T_t (the class label Y, the prediction Y-hat, or a Bernoulli error) ~ Cat(p_{t,S}),
all conditionally independent given S. EM maximises the weighted log-likelihood

    l(phi) = sum_i log sum_s pi_s N(z_i; mu_s, Sigma_s) prod_t P(T_t = t_i | S = s) ** w_t

where w_t is the term's weight (Domino's ``y_log_likelihood_weight`` gamma and ``y_hat_log_likelihood_weight``
gamma-hat). A term's value may be soft (predicted probabilities, an error in [0, 1]): its likelihood is then
t_i . p_{t,s} (the categorical pmf averaged over the soft value) and its M-step p_{t,s} = sum_i r_is t_i / n_s,
as in Domino. With every w_t = 0 the model is a plain Gaussian mixture, and EM from the same start follows
scikit-learn's ``GaussianMixture`` step for step (tested). ``reg_covar`` is added to the covariance diagonal, as
scikit-learn does.

Initialisation (``confusion_start``): Domino's "confusion" start gives every component a cell (y, y-hat) of the
confusion matrix, round robin, and a responsibility of 1 for the samples in that cell plus uniform noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

Covariance = Literal["diag", "full"]
_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Term:
    """One discrete variable modelled beside the embedding: rows (N, C) that sum to 1, and its weight."""

    name: str
    values: np.ndarray
    weight: float


@dataclass(frozen=True)
class MixtureFit:
    """A fitted error-aware mixture (K components, D embedding dimensions)."""

    weights: np.ndarray  # (K,) pi
    means: np.ndarray  # (K, D)
    covariances: np.ndarray  # (K, D) diagonal variances or (K, D, D)
    covariance: Covariance
    term_names: tuple[str, ...]
    term_weights: tuple[float, ...]
    term_probs: tuple[np.ndarray, ...]  # per term (K, C_t): P(T_t = c | S = k)
    objective: float  # the weighted log-likelihood per sample after the last iteration
    n_iter: int
    converged: bool

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def probs_of(self, name: str) -> np.ndarray:
        return self.term_probs[self.term_names.index(name)]


def gaussian_log_density(z: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                         covariance: Covariance) -> np.ndarray:
    """log N(z_i; mu_k, Sigma_k) for every sample and component, shape (N, K)."""
    n, d = z.shape
    k = len(means)
    const = d * np.log(2 * np.pi)
    if covariance == "diag":
        prec = 1.0 / covariances
        maha = (z ** 2) @ prec.T - 2.0 * z @ (means * prec).T + np.sum(means ** 2 * prec, axis=1)
        return -0.5 * (const + np.sum(np.log(covariances), axis=1) + maha)
    out = np.empty((n, k))
    for j in range(k):
        chol = np.linalg.cholesky(covariances[j])
        sol = solve_triangular(chol, (z - means[j]).T, lower=True)
        out[:, j] = -0.5 * (const + np.sum(sol ** 2, axis=0)) - np.sum(np.log(np.diag(chol)))
    return out


def weighted_log_prob(fit: MixtureFit, z: np.ndarray, terms: tuple[Term, ...] | list[Term]) -> np.ndarray:
    """log pi_k + log N(z_i | k) + sum_t w_t log(t_i . p_{t,k}), shape (N, K). Only the ``terms`` given enter
    (a term left out is marginalised: assigning by embedding and label alone drops the prediction)."""
    out = gaussian_log_density(z, fit.means, fit.covariances, fit.covariance) + np.log(fit.weights)
    for t in terms:
        out = out + t.weight * np.log(t.values @ fit.probs_of(t.name).T + _EPS)
    return out


def responsibilities(fit: MixtureFit, z: np.ndarray, terms: tuple[Term, ...] | list[Term] = ()) -> np.ndarray:
    """P(S = k | z_i, the given terms), shape (N, K)."""
    lp = weighted_log_prob(fit, z, terms)
    return np.exp(lp - logsumexp(lp, axis=1, keepdims=True))


def m_step(z: np.ndarray, terms: tuple[Term, ...] | list[Term], resp: np.ndarray, covariance: Covariance,
           reg_covar: float, n_iter: int = 0, objective: float = float("nan"),
           converged: bool = False) -> MixtureFit:
    """Maximum-likelihood parameters for responsibilities ``resp`` (N, K)."""
    nk = resp.sum(axis=0) + 10 * _EPS
    means = resp.T @ z / nk[:, None]
    if covariance == "diag":
        cov = (resp.T @ (z ** 2)) / nk[:, None] - means ** 2 + reg_covar
        cov = np.maximum(cov, reg_covar)
    else:
        d = z.shape[1]
        cov = np.empty((len(nk), d, d))
        for j in range(len(nk)):
            diff = z - means[j]
            cov[j] = (resp[:, j, None] * diff).T @ diff / nk[j]
            cov[j].flat[:: d + 1] += reg_covar
    probs = tuple(resp.T @ t.values / nk[:, None] for t in terms)
    return MixtureFit(nk / len(z), means, cov, covariance, tuple(t.name for t in terms),
                      tuple(float(t.weight) for t in terms), probs, objective, n_iter, converged)


def fit_mixture(z: np.ndarray, terms: tuple[Term, ...] | list[Term], start: np.ndarray,
                covariance: Covariance = "diag", reg_covar: float = 1e-6, max_iter: int = 100,
                tol: float = 1e-3) -> MixtureFit:
    """EM from the start responsibilities ``start`` (N, K): an M-step, then (E-step, M-step) until the weighted
    log-likelihood per sample changes by less than ``tol`` or ``max_iter`` iterations ran."""
    terms = tuple(terms)
    for t in terms:
        if t.values.shape[0] != len(z):
            raise ValueError(f"term {t.name!r}: {t.values.shape[0]} rows for {len(z)} samples")
    fit = m_step(z, terms, start, covariance, reg_covar)
    previous = -np.inf
    for it in range(1, max_iter + 1):
        lp = weighted_log_prob(fit, z, terms)
        norm = logsumexp(lp, axis=1, keepdims=True)
        objective = float(norm.mean())
        fit = m_step(z, terms, np.exp(lp - norm), covariance, reg_covar, it, objective)
        if abs(objective - previous) < tol:
            return _done(fit, True)
        previous = objective
    return fit


def _done(fit: MixtureFit, converged: bool) -> MixtureFit:
    return MixtureFit(fit.weights, fit.means, fit.covariances, fit.covariance, fit.term_names, fit.term_weights,
                      fit.term_probs, fit.objective, fit.n_iter, converged)


def _component_q(z: np.ndarray, terms: tuple[Term, ...], r: np.ndarray, covariance: Covariance,
                 reg_covar: float) -> float:
    """Expected complete-data weighted log-likelihood of one component fitted (by the M-step) to responsibilities
    ``r`` (N,): sum_i r_i [log pi + log N(z_i) + sum_t w_t log(t_i . p_t)], pi = sum_i r_i / N."""
    keep = r > 1e-8
    if not keep.any():  # an emptied component: nothing to lose or gain
        return 0.0
    zk, rk = z[keep], r[keep]
    sub = tuple(Term(t.name, t.values[keep], t.weight) for t in terms)
    one = m_step(zk, sub, rk[:, None], covariance, reg_covar)
    lp = weighted_log_prob(one, zk, sub)[:, 0] - np.log(one.weights[0]) + np.log(rk.sum() / len(z))
    return float(np.sum(rk * lp))


def merge_components(fit: MixtureFit, z: np.ndarray, terms: tuple[Term, ...] | list[Term],
                     reg_covar: float = 1e-6) -> MixtureFit:
    """Greedy merging by the Bayesian information criterion: two components become one (the M-step on their
    summed responsibilities: moment-matched, term probabilities pooled) while that lowers BIC, i.e. while twice
    the loss in expected weighted log-likelihood is below the parameters saved times log N (Schwarz 1978).
    EM with a fixed number of components splits a small tight group into pieces that fit it no better than one;
    the label and error terms are part of the likelihood, so pieces that differ in error rate stay apart."""
    terms = tuple(terms)
    resp = responsibilities(fit, z, terms)
    d = z.shape[1]
    per = 2 * d + 1 if fit.covariance == "diag" else d + d * (d + 1) // 2 + 1
    penalty = (per + sum(t.values.shape[1] - 1 for t in terms)) * np.log(len(z))
    cols = {j: resp[:, j] for j in range(resp.shape[1])}
    q = {j: _component_q(z, terms, c, fit.covariance, reg_covar) for j, c in cols.items()}

    def cost(a: int, b: int) -> float:
        return 2 * (q[a] + q[b] - _component_q(z, terms, cols[a] + cols[b], fit.covariance, reg_covar)) - penalty

    deltas = {(a, b): cost(a, b) for a in cols for b in cols if a < b}
    while deltas:
        (a, b), best = min(deltas.items(), key=lambda kv: (kv[1], kv[0]))
        if best >= 0:
            break
        cols[a] = cols[a] + cols.pop(b)
        q[a] = _component_q(z, terms, cols[a], fit.covariance, reg_covar)
        del q[b]
        deltas = {k: v for k, v in deltas.items() if a not in k and b not in k}
        deltas.update({(min(a, c), max(a, c)): cost(min(a, c), max(a, c)) for c in cols if c != a})
    return m_step(z, terms, np.stack([cols[j] for j in sorted(cols)], axis=1), fit.covariance, reg_covar,
                  fit.n_iter, fit.objective, fit.converged)


def confusion_start(labels: np.ndarray, preds: np.ndarray, n_components: int, noise: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Domino's "confusion" start: component k takes confusion cell k mod C^2 (cell = label x prediction, rows
    (N, C) each, soft rows allowed); responsibilities = cell membership + U(0, noise), each row normalised.
    With fewer components than cells (Domino refuses), the components take the most populated cells."""
    n, c = labels.shape
    cells = (labels[:, :, None] * preds[:, None, :]).reshape(n, c * c)
    if n_components >= c * c:
        chosen = np.arange(n_components) % (c * c)
    else:
        chosen = np.argsort(-cells.sum(0), kind="mergesort")[:n_components]
    resp = cells[:, chosen]
    resp = resp / np.maximum(resp.sum(1, keepdims=True), _EPS)
    resp = resp + rng.random((n, n_components)) * noise
    return resp / resp.sum(1, keepdims=True)


def cell_start(cells: np.ndarray, z: np.ndarray, n_components: int, noise: float,
               rng: np.random.Generator) -> np.ndarray:
    """A start that keeps Domino's idea (components begin pure in a discrete cell, e.g. label x error) without
    duplicate components: each non-empty cell (argmax of ``cells`` (N, M)) gets components in proportion to its
    size (at least one; largest remainders first), split within the cell by k-means++ seeding and Lloyd steps on
    ``z``; then U(0, noise) is added and rows normalised."""
    cell = cells.argmax(1)
    sizes = np.bincount(cell, minlength=cells.shape[1])
    present = np.flatnonzero(sizes)
    k = max(n_components, len(present))
    share = sizes[present] / sizes.sum() * (k - len(present))
    alloc = 1 + np.floor(share).astype(int)
    for j in np.argsort(-(share - np.floor(share)), kind="mergesort")[: k - alloc.sum()]:
        alloc[j] += 1
    assignment = np.empty(len(z), dtype=np.int64)
    offset = 0
    for c, m in zip(present, alloc, strict=True):
        idx = np.flatnonzero(cell == c)
        m = min(int(m), len(idx))
        assignment[idx] = offset + _kmeans(z[idx], m, rng)
        offset += m
    return hard_start(assignment, offset, noise, rng)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, steps: int = 20) -> np.ndarray:
    """Cluster labels of k-means (k-means++ seeding from ``rng``, ``steps`` Lloyd iterations)."""
    if k <= 1:
        return np.zeros(len(x), dtype=np.int64)
    centres = [x[rng.integers(len(x))]]
    d2 = np.sum((x - centres[0]) ** 2, axis=1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1.0 / len(x))
        centres.append(x[rng.choice(len(x), p=p)])
        d2 = np.minimum(d2, np.sum((x - centres[-1]) ** 2, axis=1))
    c = np.array(centres)
    for _ in range(steps):
        lab = (np.sum(x ** 2, 1)[:, None] - 2 * x @ c.T + np.sum(c ** 2, 1)).argmin(1)
        new = np.array([x[lab == j].mean(0) if np.any(lab == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return (np.sum(x ** 2, 1)[:, None] - 2 * x @ c.T + np.sum(c ** 2, 1)).argmin(1)


def hard_start(assignment: np.ndarray, n_components: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Responsibilities from a hard assignment (k-means labels, ...) plus U(0, noise), rows normalised."""
    resp = np.eye(n_components)[assignment] + rng.random((len(assignment), n_components)) * noise
    return resp / resp.sum(1, keepdims=True)
