"""The Engine interface: every model pass of an audit runs through one engine.

An engine runs (1) the scoring pass over the held-out set and (2) batched passes over tensors the stages
prepare: plain inputs, perturbed inputs, explanations, and batch functions (``map_batches``: a function of the
model and one batch that may take gradients, e.g. an adversarial attack, or read raw outputs and features). Stages and rules never loop over the model
themselves, so an engine that runs elsewhere (a cluster) is one new module beside ``local.py``.
Engines return task scores (``Task.to_scores`` of the outputs), never raw outputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..explainers import Explainer
from ..loading.preprocess import Preprocess
from ..loading.records import HeldOutSet
from ..products import Predictions, SkippedSample
from ..tasks.base import Task
from ..timing import Meter
from .compute import Compute
from .sealed import CacheNote

if TYPE_CHECKING:
    from ..config import AuditConfig
    from ..loading.model import LoadedModel


@dataclass(frozen=True)
class BatchContext:
    """What a batch function (``Engine.map_batches``) gets beside its batch: the model (eval mode, on the device
    the batch is on), the task, and the compute settings of the engine (worker) running it."""

    model: nn.Module
    task: Task
    compute: Compute


#: fn(context, batch, side batch or None) -> named arrays (tensors or NumPy), rows concatenated in batch order
BatchFn = Callable[[BatchContext, torch.Tensor, "torch.Tensor | None"], Mapping[str, "torch.Tensor | np.ndarray"]]


def gather(parts: Iterable[Mapping[str, torch.Tensor | np.ndarray]]) -> dict[str, np.ndarray]:
    """Batch functions' results in batch order -> one array per name (rows concatenated)."""
    out: dict[str, list[np.ndarray]] = {}
    for part in parts:
        for k, v in part.items():
            out.setdefault(k, []).append(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
    return {k: np.concatenate(v) for k, v in out.items()}


@dataclass(frozen=True)
class ScoringProgress:
    """Scoring done so far: every record before ``next_row`` (a batch boundary) has been scored or skipped."""

    next_row: int
    probs: np.ndarray  # (k, K) task scores
    features: np.ndarray | None  # (k, D)
    rows: np.ndarray  # (k,) positions in the held-out listing
    skipped: tuple[SkippedSample, ...]
    input_sum: torch.Tensor | None
    dense: np.ndarray | None = None  # (k, H, W) per-pixel answers of per-pixel tasks (Task.dense)


@dataclass(frozen=True)
class PredictOutput:
    """What the scoring pass produced."""

    predictions: Predictions
    skipped: tuple[SkippedSample, ...]
    kept_rows: np.ndarray  # positions in the held-out listing of the scored samples
    input_sum: torch.Tensor | None  # sum of model inputs (C,H,W), for a dataset-mean baseline
    resumed_rows: int = 0  # rows scored by an earlier, interrupted run of an engine that keeps its own progress
    cache_notes: tuple[CacheNote, ...] = ()  # that engine's own files found damaged, discarded and scored again


@dataclass(frozen=True)
class ScoringOptions:
    """How the scoring pass runs (what it computes does not depend on these)."""

    batch_size: int = 64
    num_workers: int = 0
    skip_bad: bool = False
    gather_features: bool = True
    progress: bool | None = None
    checkpoint: Callable[[ScoringProgress], None] | None = None
    checkpoint_seconds: float = 30.0
    key: str = ""  # the prediction cache key: an engine that keeps its own partial results (Ray) files them under it


class Engine(ABC):
    """Runs the audited model (and variants of it) for the stages."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # what runs where, for `audit list`
    own_progress: ClassVar[bool] = False  # score() keeps and resumes its own partial results under options.key
    # its model passes run in this process, where ``meter``'s hooks count them (timings.json)
    counts_passes: ClassVar[bool] = True

    def __init__(self, model: nn.Module, task: Task, compute: Compute, batch_size: int = 64,
                 explain_batch_size: int = 16) -> None:
        self.model = model  # in eval mode, on compute.device
        self.task = task  # replaced by the runner once the task has settled its operating point (Task.fit)
        self.compute = compute
        self.batch_size = batch_size
        self.explain_batch_size = explain_batch_size
        self.meter = Meter()  # counts and times every model pass (the runner hands in the audit's own)

    @classmethod
    def from_config(cls, cfg: AuditConfig, loaded: LoadedModel, task: Task) -> Engine:
        """The engine of an audit: the model on the configured device with the compute settings resolved."""
        from ..loading.model import resolve_device
        from .compute import resolve_compute

        device = resolve_device(cfg.device)
        model = loaded.module.to(device)
        compute = resolve_compute(device, cfg.compute.autocast, cfg.compute.channels_last, model,
                                  (cfg.data.channels, *cfg.data.image_size) if cfg.data.image_size else None)
        return cls(model, task, compute, batch_size=cfg.data.batch_size,
                   explain_batch_size=cfg.explainers.batch_size)

    @classmethod
    def check_available(cls) -> None:
        """ConfigError naming ``compute.engine`` when what this engine needs is not installed (checked by the inputs
        stage, before the model runs)."""

    @property
    def device(self) -> torch.device:
        return self.compute.device

    def cache_identity(self) -> tuple[dict[str, object], torch.device]:
        """What of the engine can change a score, for the prediction cache key: the compute settings and the device
        of the passes that score (an engine whose workers compute as this process does shares its cache entries)."""
        return self.compute.describe(), self.device

    def discard_progress(self, key: str) -> None:
        """Drop the partial results kept under ``key`` (called once the finished scoring result is cached)."""

    def close(self) -> None:
        """Release what the engine holds beyond this process (workers); the engine is unusable afterwards."""

    @abstractmethod
    def score(self, heldout: HeldOutSet, preprocess: Preprocess, options: ScoringOptions,
              resume: ScoringProgress | None = None) -> PredictOutput:
        """One pass over the held-out set: task scores, penultimate features, skipped images."""

    @abstractmethod
    def outputs(self, x: torch.Tensor, model: nn.Module | None = None) -> np.ndarray:
        """Task scores (n, K) of inputs ``x`` (CPU or device tensor), batched; ``model`` defaults to the audited one."""

    @abstractmethod
    def map_over_perturbations(self, x: torch.Tensor, perturb: Callable[[torch.Tensor], torch.Tensor],
                               model: nn.Module | None = None) -> np.ndarray:
        """Task scores of ``perturb(batch)`` for every batch of ``x`` (the perturbation runs on the device)."""

    def map_batches(self, fn: BatchFn, x: torch.Tensor, side: torch.Tensor | None = None,
                    model: nn.Module | None = None) -> dict[str, np.ndarray]:
        """``fn(context, batch, side batch)`` for every batch of ``x`` (``side``: per-sample data cut at the same
        rows, e.g. labels), on the device the model lives on and outside inference mode, so that ``fn`` may take
        gradients (it chooses autocast through ``context.compute``); the arrays ``fn`` returns are concatenated
        by name in batch order (``fn`` may return any number of rows per batch). The batches are the ones
        ``outputs`` uses (``batch_size``), so a function seeded per batch gives the same answer on every engine."""
        raise ConfigError(f"compute.engine: engine {self.name!r} cannot run batch functions (gradient passes)")

    @abstractmethod
    def explain(self, explainer: Explainer, x: torch.Tensor, targets: np.ndarray,
                model: nn.Module | None = None) -> np.ndarray:
        """Maps (n, H, W) float32 of ``explainer`` over batches of ``x`` for the task's explanation model."""

    def explain_stream(self, explainer: Explainer, batches: Iterable[tuple[torch.Tensor, np.ndarray]],
                       model: nn.Module | None = None) -> Iterator[np.ndarray]:
        """``explain`` of every (inputs, targets) batch, yielded in order as each is done (an engine with workers
        runs several at once; the caller can store each as it arrives)."""
        for x, targets in batches:
            yield self.explain(explainer, x, targets, model)
