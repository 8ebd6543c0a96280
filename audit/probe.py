"""The one service through which rules and the runner call the model: batched, cached, hook-safe.

Everything that needs the model after scoring (explanations, counterfactual probes, deletion curves,
randomisation tests) goes through ``ModelProbe`` so that batching, device placement and caching live in
one place.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .cache import AttributionStore
from .compute import Compute
from .errors import ExplainerError
from .explainers import ExplainContext, Explainer, build_explainer
from .loading.data import ImageDataset, Preprocess, SampleRecord, roi_mask
from .types import AttributionSet, Predictions


@dataclass
class ModelProbe:
    model: nn.Module  # in eval mode, on ``device``
    records: Sequence[SampleRecord]
    preprocess: Preprocess
    predictions: Predictions
    device: torch.device
    seed: int = 0
    batch_size: int = 64
    explain_batch_size: int = 16
    explainer_options: dict[str, dict] = field(default_factory=dict)
    dataset_mean: torch.Tensor | None = None
    attribution_store: Callable[[str], AttributionStore] | None = None  # disk cache per explainer name
    compute: Compute | None = None  # autocast / memory format of inference passes (explainers: float32 always)
    _attr_cache: dict[tuple[str, str, int], np.ndarray] = field(default_factory=dict, repr=False)
    _roi_cache: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)
    _explainers: dict[str, Explainer] = field(default_factory=dict, repr=False)

    # ---- data -------------------------------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        assert self.preprocess.size is not None
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

    def roi(self, sample_id: str) -> np.ndarray | None:
        """Boolean (H, W) ROI mask in model-input pixels, or None."""
        if sample_id not in self._roi_cache:
            rec = self.records[int(self._rows([sample_id])[0])]
            self._roi_cache[sample_id] = roi_mask(rec, self.input_size)
        return self._roi_cache[sample_id]

    def has_roi(self) -> bool:
        return any(r.roi_box is not None or r.roi_mask is not None for r in self.records)

    # ---- model calls ------------------------------------------------------------------------
    def _batches(self, x: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
        for s in range(0, x.shape[0], size):
            yield x[s:s + size]

    def probs(self, x: torch.Tensor, model: nn.Module | None = None) -> np.ndarray:
        """Softmax outputs (n, C) for a CPU or device tensor of inputs, batched."""
        m = model if model is not None else self.model
        out = []
        comp = self.compute or Compute(self.device)
        with torch.inference_mode(), comp.inference():
            for b in self._batches(x, self.batch_size):
                logits = m(comp.to_device(b))
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64))
        if not out:
            return np.zeros((0, self.predictions.num_classes))
        return np.concatenate(out)

    def map_over_perturbations(
        self, x: torch.Tensor, perturb: Callable[[torch.Tensor], torch.Tensor], model: nn.Module | None = None
    ) -> np.ndarray:
        """Probabilities of ``perturb(batch)`` for every batch of ``x`` (perturbation done on the device)."""
        m = model if model is not None else self.model
        out = []
        comp = self.compute or Compute(self.device)
        with torch.inference_mode():
            for b in self._batches(x, self.batch_size):
                pb = perturb(comp.to_device(b))
                with comp.inference():
                    logits = m(pb)
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0, self.predictions.num_classes))

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
        m = model if model is not None else self.model
        ex = self.explainer(name)
        ex.check(m)
        t = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        out = []
        for s in range(0, x.shape[0], self.explain_batch_size):
            xb = x[s:s + self.explain_batch_size].to(self.device)
            tb = t[s:s + self.explain_batch_size].to(self.device)
            maps = ex.explain(m, xb, tb)
            if maps.dim() != 3 or maps.shape[0] != xb.shape[0]:
                raise ExplainerError(f"explainer {name!r} returned shape {tuple(maps.shape)}, expected (B, H, W)")
            out.append(maps.detach().float().cpu().numpy())
        if not out:
            return np.zeros((0, *self.input_size), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def targets_for(self, ids: Sequence[str], target: str | np.ndarray = "predicted") -> np.ndarray:
        """Class explained per sample: the predicted class, the label, or given explicitly (one per id)."""
        if not isinstance(target, str):
            t = np.asarray(target, dtype=np.int64)
            if t.shape != (len(ids),):
                raise ValueError(f"{len(ids)} sample ids but {t.shape} targets")
            return t
        rows = self._rows(ids)
        if target == "predicted":
            return self.predictions.preds[rows]
        if target == "label":
            return self.predictions.labels[rows]
        raise ValueError(f"target must be 'predicted' or 'label'; got {target!r}")

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
        for s in range(0, len(todo), self.explain_batch_size):
            part = todo[s:s + self.explain_batch_size]  # one batch, stored as soon as it is done (resumable)
            part_ids, part_t = [sid for _, sid in part], targets[[i for i, _ in part]]
            maps = self.explain_tensor(name, self.images(part_ids), part_t)
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
