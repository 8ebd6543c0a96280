"""The one service through which rules and the stages after scoring reach the model: data access, explainers
and attribution caching, with every model pass delegated to the engine (batching and device placement live
there); ``open_probe`` is the stage that opens it."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import AuditConfig
from ..explainers import ExplainContext, Explainer, build_explainer
from ..loading.dataset import ImageDataset
from ..loading.preprocess import Preprocess
from ..loading.records import SampleRecord
from ..loading.roi import roi_mask
from ..products import AttributionSet, Predictions
from ..tasks.base import Task
from .attribution_store import AttributionStore, attribution_key
from .base import Engine
from .compute import Compute
from .local import LocalEngine
from .predict import Scored


@dataclass
class ModelProbe:
    engine: Engine
    records: Sequence[SampleRecord]  # the scored samples, in prediction-row order
    preprocess: Preprocess
    predictions: Predictions
    seed: int = 0
    explainer_options: dict[str, dict] = field(default_factory=dict)
    dataset_mean: torch.Tensor | None = None
    attribution_store: Callable[[str], AttributionStore] | None = None  # disk cache per explainer name
    _attr_cache: dict[tuple[str, str, int], np.ndarray] = field(default_factory=dict, repr=False)
    _roi_cache: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)
    _explainers: dict[str, Explainer] = field(default_factory=dict, repr=False)

    @classmethod
    def local(cls, model: nn.Module, records: Sequence[SampleRecord], preprocess: Preprocess, predictions: Predictions,
              task: Task, device: torch.device | None = None, seed: int = 0, batch_size: int = 64,
              explain_batch_size: int = 16, compute: Compute | None = None, **kwargs: Any) -> ModelProbe:
        """A probe over ``model`` in the local engine, without the runner (tests, benchmarks, notebooks), for
        ``task`` (e.g. ``MulticlassTask(classes)``)."""
        engine = LocalEngine(model, task, compute or Compute(device or torch.device("cpu")),
                             batch_size=batch_size, explain_batch_size=explain_batch_size)
        return cls(engine=engine, records=records, preprocess=preprocess, predictions=predictions, seed=seed, **kwargs)

    @property
    def model(self) -> nn.Module:
        return self.engine.model

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def task(self) -> Task:
        return self.engine.task

    # ---- data -------------------------------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        if self.preprocess.size is None:
            raise ValueError("data.image_size is not set")
        return self.preprocess.size

    def _rows(self, ids: Sequence[str]) -> np.ndarray:
        return self.predictions.index_of(ids)

    def images(self, ids: Sequence[str]) -> torch.Tensor:
        """Model inputs (n, C, H, W) on the CPU for the given sample ids."""
        ds = ImageDataset(self.records, self.preprocess)
        rows = self._rows(ids)
        if len(rows) == 0:
            return torch.empty(0, self.preprocess.channels, *self.input_size)
        return torch.stack([ds[int(r)][1] for r in rows])  # type: ignore[misc]

    def roi(self, sample_id: str, target: int | None = None) -> np.ndarray | None:
        """Boolean (H, W) mask in model-input pixels of where the evidence should lie, or None: the sample's ROI,
        or for a task with per-pixel truth the task's region (a segmentation's true region of the ``target``
        class, an inspection image's defect)."""
        if sample_id not in self._roi_cache:
            rec = self.records[int(self._rows([sample_id])[0])]
            self._roi_cache[sample_id] = roi_mask(rec, self.input_size)
        roi = self._roi_cache[sample_id]
        truth = self.predictions.dense_truth
        if truth is None:
            return roi
        return self.task.target_region(roi, truth[int(self._rows([sample_id])[0])],
                                       None if target is None else int(target))

    def has_roi(self) -> bool:
        truth = self.predictions.dense_truth
        return (truth is not None and bool((truth > 0).any())) or \
            any(r.roi_box is not None or r.roi_mask is not None for r in self.records)

    # ---- model passes (run by the engine) ---------------------------------------------------
    def probs(self, x: torch.Tensor, model: nn.Module | None = None) -> np.ndarray:
        """Task scores (n, K) for a CPU or device tensor of inputs, batched."""
        return self.engine.outputs(x, model)

    def map_over_perturbations(
        self, x: torch.Tensor, perturb: Callable[[torch.Tensor], torch.Tensor], model: nn.Module | None = None
    ) -> np.ndarray:
        """Task scores of ``perturb(batch)`` for every batch of ``x`` (perturbation done on the device)."""
        return self.engine.map_over_perturbations(x, perturb, model)

    # ---- explanations ------------------------------------------------------------------------
    def explainer(self, name: str) -> Explainer:
        if name not in self._explainers:
            ctx = ExplainContext(seed=self.seed, dataset_mean=self.dataset_mean, device=self.device)
            self._explainers[name] = build_explainer(name, self.explainer_options.get(name), ctx)
        return self._explainers[name]

    def explain_tensor(
        self, name: str, x: torch.Tensor, targets: torch.Tensor | np.ndarray, model: nn.Module | None = None
    ) -> np.ndarray:
        """Maps (n, H, W) float32 for inputs ``x`` and targets, batched; ``model`` defaults to the audited one."""
        ex = self.explainer(name)
        ex.check(model if model is not None else self.model)
        if x.shape[0] == 0:
            return np.zeros((0, *self.input_size), dtype=np.float32)
        return self.engine.explain(ex, x, np.asarray(targets), model)

    def _explain_batches(self, name: str, batches: Iterable[tuple[torch.Tensor, np.ndarray]]) -> Iterator[np.ndarray]:
        """Maps of every (inputs, targets) batch, in order: one ``explain_tensor`` call per batch, or the engine's
        stream when the engine works on several batches at once (workers)."""
        if type(self.engine).explain_stream is Engine.explain_stream:
            for x, t in batches:
                yield self.explain_tensor(name, x, t)
            return
        ex = self.explainer(name)
        ex.check(self.model)
        yield from self.engine.explain_stream(ex, batches)

    def targets_for(self, ids: Sequence[str], target: str | np.ndarray = "predicted") -> np.ndarray:
        """Output column explained per sample: the task's target for the prediction or the label, or given
        explicitly (one per id)."""
        if not isinstance(target, str):
            t = np.asarray(target, dtype=np.int64)
            if t.shape != (len(ids),):
                raise ValueError(f"{len(ids)} sample ids but {t.shape} targets")
            return t
        if target not in ("predicted", "label"):
            raise ValueError(f"target must be 'predicted' or 'label'; got {target!r}")
        return self.task.targets(self.predictions, self._rows(ids), target)  # type: ignore[arg-type]

    def attributions(self, name: str, ids: Sequence[str], target: str | np.ndarray = "predicted") -> AttributionSet:
        """Maps of explainer ``name`` for the given samples of the audited model, cached per sample."""
        ids = list(ids)
        targets = self.targets_for(ids, target)
        todo = [(i, sid) for i, sid in enumerate(ids) if (name, sid, int(targets[i])) not in self._attr_cache]
        store = self.attribution_store(name) if self.attribution_store is not None and todo else None
        if store is not None:
            for (sid, t), mp in store.get([(sid, int(targets[i])) for i, sid in todo]).items():
                self._attr_cache[(name, sid, t)] = mp
            todo = [(i, sid) for i, sid in todo if (name, sid, int(targets[i])) not in self._attr_cache]
        size = self.engine.explain_batch_size
        parts = [todo[s:s + size] for s in range(0, len(todo), size)]  # one batch each, stored as soon as it is done
        batches = ((self.images([sid for _, sid in part]), targets[[i for i, _ in part]]) for part in parts)
        for part, maps in zip(parts, self._explain_batches(name, batches), strict=True):
            part_ids, part_t = [sid for _, sid in part], targets[[i for i, _ in part]]
            if store is not None:
                store.put(part_ids, part_t, maps)
            for (i, sid), mp in zip(part, maps, strict=True):
                self._attr_cache[(name, sid, int(targets[i]))] = mp
        maps_arr = (
            np.stack([self._attr_cache[(name, sid, int(targets[i]))] for i, sid in enumerate(ids)])
            if ids else np.zeros((0, *self.input_size), dtype=np.float32)
        )
        return AttributionSet(
            explainer=name, ids=tuple(ids), targets=targets, maps=maps_arr, signed=self.explainer(name).signed
        )

    # ---- model variants ----------------------------------------------------------------------
    def parameter_layers(self) -> list[str]:
        """Names of modules holding parameters directly, from the input to the output."""
        return [n for n, mod in self.model.named_modules() if any(True for _ in mod.parameters(recurse=False))]

    def randomized_copy(self, layer_names: Sequence[str], seed: int) -> nn.Module:
        """A deep copy of the model with the named layers re-initialised (the audited model is untouched)."""
        m = copy.deepcopy(self.model)
        modules = dict(m.named_modules())
        gen = torch.Generator(device="cpu").manual_seed(seed)
        with torch.no_grad():
            for name in layer_names:
                for pname, p in modules[name].named_parameters(recurse=False):
                    if p.dim() >= 2:
                        fan_in = p[0].numel()
                        std = (2.0 / fan_in) ** 0.5  # Kaiming normal
                        p.copy_(torch.randn(p.shape, generator=gen) * std)
                    elif "weight" in pname:
                        p.copy_(torch.ones_like(p) + 0.1 * torch.randn(p.shape, generator=gen))
                    else:
                        p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        m.eval()
        return m


def open_probe(cfg: AuditConfig, preprocess: Preprocess, engine: Engine, scored: Scored) -> ModelProbe:
    """The model service of the stages after scoring, with the per-explainer disk cache of maps when enabled."""
    stores: dict[str, AttributionStore] = {}

    def store(name: str) -> AttributionStore:
        if name not in stores:
            key = attribution_key(scored.cache_key, name, cfg.explainers.options.get(name), cfg.seed,
                                  cfg.explainers.batch_size)
            stores[name] = AttributionStore(cfg.resolve(cfg.cache.dir), key, name, scored.cache_log)
        return stores[name]

    return ModelProbe(engine=engine, records=scored.records, preprocess=preprocess,
                      predictions=scored.predictions, seed=cfg.seed, explainer_options=dict(cfg.explainers.options),
                      dataset_mean=scored.dataset_mean, attribution_store=store if cfg.cache.enabled else None)
