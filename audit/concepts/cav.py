"""Concept Activation Vectors: a linear classifier separates a concept's layer activations from a random
counterexample set's; the CAV is the unit normal of its decision boundary, pointing towards the concept
(Kim et al. 2018, section 3.1).

``LinearCAVClassifier`` is a captum ``captum.concept.Classifier``, so captum's own ``TCAV`` can train the same CAVs
(tests/concepts cross-check our scores with captum's). Unlike captum's default classifier it is seeded (captum's
shuffles with Python's global ``random``), splits stratified and balances unequal set sizes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from captum.concept import Classifier

ClassifierKind = Literal["sgd", "logistic"]
TEST_FRACTION = 1 / 3  # held-out share of each CAV's training images, for its accuracy (Kim et al.: 0.33)


@dataclass(frozen=True)
class CAV:
    weights: np.ndarray  # (D,) the classifier's weights towards the concept (zero when the fit found none)
    accuracy: float  # accuracy on the held-out split of the concept and counterexample activations


class LinearCAVClassifier(Classifier):
    """A seeded linear classifier on activations: ``sgd`` = sklearn SGDClassifier(alpha=0.01) with hinge loss (the
    default of Kim et al.'s implementation and of captum), ``logistic`` = sklearn LogisticRegression."""

    def __init__(self, kind: ClassifierKind = "sgd", seed: int = 0, test_fraction: float = TEST_FRACTION) -> None:
        self.kind = kind
        self.seed = int(seed)
        self.test_fraction = test_fraction
        self._coef: np.ndarray | None = None
        self._classes: np.ndarray | None = None

    def _model(self) -> Any:
        from sklearn.linear_model import LogisticRegression, SGDClassifier

        if self.kind == "sgd":
            return SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3, class_weight="balanced",
                                 random_state=self.seed)
        return LogisticRegression(max_iter=1000, class_weight="balanced")

    def fit(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fit on a stratified, seeded split of (x, y) with two labels; return the accuracy on the held-out part."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import train_test_split

        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        y = np.asarray(y)
        labels, counts = np.unique(y, return_counts=True)
        if len(labels) != 2 or counts.min() < 2:
            raise ValueError(f"a CAV needs two sets of at least 2 examples each; got labels {labels.tolist()} "
                             f"with counts {counts.tolist()}")
        n_test = max(2, round(self.test_fraction * len(y)))
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=n_test, stratify=y, random_state=self.seed)
        model = self._model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x_tr, y_tr)
        self._coef = np.asarray(model.coef_, dtype=np.float64).reshape(1, -1)
        self._classes = np.asarray(model.classes_)
        return float((model.predict(x_te) == y_te).mean())

    # ---- captum's Classifier interface -------------------------------------------------------------------------
    def train_and_eval(self, dataloader: Any, **kwargs: Any) -> dict[str, Any]:
        xs, ys = [], []
        for x, y in dataloader:
            xs.append(x.detach().cpu().float().numpy().reshape(len(x), -1))
            ys.append(y.detach().cpu().numpy())
        acc = self.fit(np.concatenate(xs), np.concatenate(ys))
        return {"accs": torch.tensor(acc)}

    def weights(self) -> torch.Tensor:
        """(2, D): one row per label in ``classes()`` order, the second pointing towards the larger label (captum's
        convention for two concepts)."""
        if self._coef is None:
            raise RuntimeError("the classifier has not been fitted")
        w = torch.from_numpy(self._coef[0]).float()
        return torch.stack([-w, w])

    def classes(self) -> list[int]:
        if self._classes is None:
            raise RuntimeError("the classifier has not been fitted")
        return [int(c) for c in self._classes]


def train_cav(concept: np.ndarray, counter: np.ndarray, kind: ClassifierKind = "sgd", seed: int = 0) -> CAV:
    """The CAV of ``concept`` activations (n, D) against ``counter`` activations (m, D): the classifier's weight
    vector towards the concept, unnormalised (``unit`` normalises; a row space's ``lift`` maps it back first)."""
    clf = LinearCAVClassifier(kind, seed)
    x = np.concatenate([counter, concept])
    y = np.concatenate([np.zeros(len(counter), dtype=np.int64), np.ones(len(concept), dtype=np.int64)])
    acc = clf.fit(x, y)
    return CAV(clf.weights()[1].numpy().astype(np.float64), acc)  # row 1: towards label 1, the concept


def unit(w: np.ndarray) -> np.ndarray:
    """Rows of ``w`` scaled to length 1 (float32); a row without direction (all zero, non-finite) stays zero."""
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    norm = np.linalg.norm(w, axis=1, keepdims=True)
    ok = np.isfinite(norm) & (norm > 0)
    return np.where(ok, w / np.where(ok, norm, 1.0), 0.0).astype(np.float32)


class RowSpace:
    """Coordinates of activation vectors in an orthonormal basis of the space their rows span.

    A CAV's classifier is trained on a few hundred vectors of tens of thousands of dimensions. With an L2 penalty
    (both classifiers here) its weight vector lies in the span of its training vectors, and both the fit and the
    predictions depend on the vectors only through their inner products, which the basis keeps: training on the
    coordinates gives the same classifier, mapped back by ``lift``, at a fraction of the cost (the basis comes
    from the Gram matrix A A^T, computed once per layer in float32, so "the same" holds to float32 rounding)."""

    def __init__(self, a: np.ndarray) -> None:
        from threadpoolctl import threadpool_limits

        self.a = a  # (P, D) float32, kept (not copied) for ``lift``
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        gram = (t @ t.T).double().numpy()  # float32 products: inner products to ~1e-6 relative
        gram = (gram + gram.T) / 2
        with threadpool_limits(limits=1, user_api="blas"):  # a small matrix: BLAS threads only add waiting
            lam, u = np.linalg.eigh(gram)
        keep = lam > max(float(lam.max(initial=0.0)), 1e-300) * 1e-6  # below: float32 rounding, not data
        self.u, self.sqrt_lam = u[:, keep], np.sqrt(lam[keep])
        self.coords = self.u * self.sqrt_lam  # (P, r): A = coords @ V^T with V = A^T U diag(1/sqrt(lam))

    def lift(self, w: np.ndarray) -> np.ndarray:
        """(k, r) weights in coordinates -> (k, D) weights in activation space (V w = A^T U diag(1/sqrt(lam)) w)."""
        alpha = torch.from_numpy(((self.u / self.sqrt_lam) @ np.atleast_2d(w).T).astype(np.float32))  # (P, k)
        return (torch.from_numpy(np.ascontiguousarray(self.a, dtype=np.float32)).T @ alpha).T.double().numpy()
