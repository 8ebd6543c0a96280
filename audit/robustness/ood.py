"""Out-of-distribution scores of a classifier (higher = more likely out-of-distribution), and the registry.

- ``msp``: -max softmax probability (Hendrycks & Gimpel 2017)
- ``energy``: -T logsumexp(logits / T) (Liu et al. 2020), T = 1
- ``max_logit``: -max logit (Hendrycks et al. 2022)
- ``mahalanobis``: half the squared Mahalanobis distance of the penultimate features to the closest class mean,
  with class-conditional means and one shared covariance (the pooled within-class scatter / N, plus
  ``ridge`` x its mean variance on the diagonal) fitted on in-distribution features (Lee et al. 2018; no input
  preprocessing, no feature ensemble)
- ``knn``: Euclidean distance of the L2-normalised feature to its k-th nearest normalised in-distribution
  feature (Sun et al. 2022)

Own code; pytorch-ood 0.4 (Apache-2.0) is the test reference for each. A detector is a frozen dataclass:
``fit(features, labels)`` returns a fitted copy (the logit scores need nothing), ``score(Outputs)`` the scores.
The registry (``REGISTRY``, a ``plugins.Registry`` of the classes; entry-point group ``model_audit.ood_detectors``)
finds one by name; ``needs_logits`` says whether it reads the logits (then a model that returns probabilities
cannot be scored by it) and ``needs_fit`` whether it is fitted on in-distribution features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from audit.errors import ConfigError
from audit.plugins import Registry
from audit.robustness.attacks import eval_mode


@dataclass(frozen=True)
class Outputs:
    """A model's logits (N, K) and penultimate features (N, D) for a set of images."""

    logits: Tensor
    features: Tensor


class Detector(Protocol):
    name: str
    needs_logits: bool
    needs_fit: bool

    def fit(self, train: Outputs, labels: Tensor) -> Detector: ...

    def score(self, out: Outputs) -> Tensor: ...


class LogitScore:
    """A score of the logits alone: fitting is a no-op."""

    needs_logits = True
    needs_fit = False

    def fit(self, train: Outputs, labels: Tensor) -> LogitScore:
        return self


@dataclass(frozen=True)
class MSP(LogitScore):
    temperature: float = 1.0
    name: str = "msp"
    needs_logits = False  # the softmax of log-probabilities gives them back: log(p) serves a model that returns p

    def score(self, out: Outputs) -> Tensor:
        return -torch.softmax(out.logits.double() / self.temperature, 1).amax(1)


@dataclass(frozen=True)
class Energy(LogitScore):
    temperature: float = 1.0
    name: str = "energy"

    def score(self, out: Outputs) -> Tensor:
        return -self.temperature * torch.logsumexp(out.logits.double() / self.temperature, 1)


@dataclass(frozen=True)
class MaxLogit(LogitScore):
    name: str = "max_logit"

    def score(self, out: Outputs) -> Tensor:
        return -out.logits.double().amax(1)


def _unfitted(name: str) -> ConfigError:
    return ConfigError(f"OOD detector {name} must be fitted on in-distribution features first")


class FeatureScore:
    """A score of the penultimate features, fitted on in-distribution ones."""

    needs_logits = False
    needs_fit = True


@dataclass(frozen=True)
class Mahalanobis(FeatureScore):
    ridge: float = 1e-6
    means: Tensor | None = None
    precision: Tensor | None = None
    name: str = "mahalanobis"

    def fit(self, train: Outputs, labels: Tensor) -> Mahalanobis:
        f = train.features.double()
        labels = labels.to(f.device)
        classes = labels.unique()
        means = torch.stack([f[labels == c].mean(0) for c in classes])
        centred = f - means[torch.searchsorted(classes, labels)]
        cov = centred.T @ centred / len(f)
        cov = cov + torch.eye(len(cov), dtype=cov.dtype, device=cov.device) * self.ridge * cov.diagonal().mean()
        return replace(self, means=means, precision=torch.linalg.pinv(cov, hermitian=True))

    def score(self, out: Outputs) -> Tensor:
        if self.means is None or self.precision is None:
            raise _unfitted(self.name)
        f = out.features.double().to(self.means.device)
        d = f[:, None, :] - self.means[None]  # (N, K, D)
        dist = torch.einsum("nkd,de,nke->nk", d, self.precision, d)
        return 0.5 * dist.amin(1)


def normalise(f: Tensor) -> Tensor:
    return f / f.norm(dim=1, keepdim=True).clamp(min=1e-12)


@dataclass(frozen=True)
class KNN(FeatureScore):
    k: int = 50
    bank: Tensor | None = None
    name: str = "knn"

    def fit(self, train: Outputs, labels: Tensor) -> KNN:
        if len(train.features) < self.k:
            raise ConfigError(f"knn: k = {self.k} but only {len(train.features)} in-distribution features")
        return replace(self, bank=normalise(train.features.double()))

    def score(self, out: Outputs, chunk: int = 1024) -> Tensor:
        if self.bank is None:
            raise _unfitted(self.name)
        z = normalise(out.features.double().to(self.bank.device))
        parts = [torch.cdist(z[s:s + chunk], self.bank).topk(self.k, 1, largest=False).values[:, -1]
                 for s in range(0, len(z), chunk)]
        return torch.cat(parts) if parts else z.new_zeros(0)


_BUILTIN: tuple[type[Detector], ...] = (MSP, Energy, MaxLogit, Mahalanobis, KNN)  # type: ignore[assignment]
ENTRY_POINT_GROUP = "model_audit.ood_detectors"
REGISTRY: Registry[type[Detector]] = Registry(_BUILTIN, ENTRY_POINT_GROUP, "name", "robustness.ood.detectors",
                                              "OOD detector")
#: the built-in detectors' names, in the order the report lists them
DETECTORS: tuple[str, ...] = tuple(d.name for d in _BUILTIN)


def detector(name: str, extra: Mapping[str, type[Detector]] | None = None, **params: Any) -> Detector:
    """A new detector called ``name`` with ``params`` (e.g. ``k`` of knn); ConfigError naming
    ``robustness.ood.detectors`` and the known names for an unknown one."""
    return REGISTRY.get(name, extra)(**params)


@torch.no_grad()
def model_outputs(model: nn.Module, classifier: nn.Module, x: Tensor, batch_size: int = 256) -> Outputs:
    """Logits and the classifier layer's input (the penultimate features) for images x, in eval mode."""
    captured: list[Tensor] = []
    handle = classifier.register_forward_hook(lambda _m, inp, _o: captured.append(inp[0].flatten(1).detach()))
    try:
        with eval_mode(model):
            logits = torch.cat([model(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])
    finally:
        handle.remove()
    return Outputs(logits, torch.cat(captured))
