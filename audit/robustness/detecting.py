"""The out-of-distribution part of the robustness stage: OOD scores of a seeded in-distribution subset of the
held-out set and of each OOD set (a user's folder, built-in far-OOD sets), from the model's raw outputs and the
classifier head's input features, read through the engine (``Engine.map_batches``); AUROC with DeLong intervals,
FPR at 95 % TPR with bootstrap intervals (``stats``).

Mahalanobis and k-NN are fitted on in-distribution features: a seeded part (``fit_fraction``) of the subset whose
other part is scored, or the images of ``fit_manifest``; never on the samples they score. A one-logit model z reads
as the logits (0, z) (softmax = sigmoid); a model that returns probabilities p as log p (MSP only: energy and
max-logit read logits)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import AuditConfig, OODConfig
from ..engine.base import BatchContext
from ..engine.forward import feature_module
from ..engine.probe import ModelProbe
from ..errors import ConfigError
from ..loading.listing import load_heldout
from .farood import far_ood
from .images import Normalise, chunks, decode_all, folder_images, subset_rows
from .ood import Detector, Outputs
from .result import OODResult, OODRun
from .stats import separation


@dataclass(frozen=True)
class LogitsAndFeatures:
    """The batch function: logits (as the module docstring reads them) and the classifier head's input."""

    probabilities: bool

    def __call__(self, ctx: BatchContext, x: Tensor, side: Tensor | None) -> dict[str, Any]:
        head = feature_module(ctx.model)
        captured: list[Tensor] = []
        hook = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach())) if head else None
        try:
            with torch.inference_mode(), ctx.compute.inference():
                out = ctx.task.check_outputs(ctx.model(x), x.shape[0]).double()
        finally:
            if hook is not None:
                hook.remove()
        if out.shape[1] == 1:
            out = torch.cat([1 - out, out] if self.probabilities else [torch.zeros_like(out), out], dim=1)
        logits = out.clamp(min=1e-300).log() if self.probabilities else out
        feats = captured[-1].flatten(1).float() if captured else torch.zeros(x.shape[0], 0, device=x.device)
        return {"logits": logits, "features": feats}


def _outputs(probe: ModelProbe, x: Tensor, fn: LogitsAndFeatures) -> Outputs:
    got = probe.engine.map_batches(fn, x)
    if not got:
        return Outputs(torch.zeros(0, len(probe.task.classes), dtype=torch.float64), torch.zeros(0, 0))
    return Outputs(torch.from_numpy(got["logits"]), torch.from_numpy(got["features"]))


def _of_rows(probe: ModelProbe, rows: np.ndarray, fn: LogitsAndFeatures) -> Outputs:
    norm = Normalise.of(probe.preprocess)
    parts = [_outputs(probe, norm(x), fn) for _, x in chunks(probe, rows)]
    if not parts:
        return _outputs(probe, torch.zeros(0), fn)
    return Outputs(torch.cat([p.logits for p in parts]), torch.cat([p.features for p in parts]))


def ood_sets(cfg: AuditConfig, probe: ModelProbe, ood: OODConfig, seed: int) -> dict[str, tuple[Tensor, str]]:
    """Set name -> (model inputs, where they came from)."""
    norm = Normalise.of(probe.preprocess)
    c, size = probe.preprocess.channels, probe.input_size
    out: dict[str, tuple[Tensor, str]] = {}
    if ood.folder is not None:
        folder = cfg.resolve(ood.folder)
        files = folder_images(folder)
        if not files:
            raise ConfigError(f"robustness.ood.folder: no images in {folder}")
        pick = subset_rows(len(files), ood.n_ood, seed, "ood-folder")
        where = f"{len(pick)} of {len(files)} images in {ood.folder}"
        out["folder"] = (decode_all([files[i] for i in pick], probe.preprocess), where)
    for name in ood.far_ood:
        out[name] = (norm(far_ood(name, ood.n_ood, c, size, seed)), "built-in far-OOD set (generated, seeded)")
    return out


def _fit_data(cfg: AuditConfig, probe: ModelProbe, ood: OODConfig, rows: np.ndarray, seed: int,
              fn: LogitsAndFeatures) -> tuple[np.ndarray, Outputs | None, Tensor | None, str]:
    """(rows scored as in-distribution, fit outputs, fit labels, how it was fitted)."""
    preds = probe.predictions
    if ood.fit_manifest is not None:
        listing = load_heldout(cfg.model_copy(update={"data": cfg.data.model_copy(
            update={"manifest": ood.fit_manifest, "image_folder": None, "subgroups": []})}))
        recs = listing.records
        x = decode_all([r.path for r in recs], probe.preprocess, [r.source for r in recs])
        how = f"{len(recs)} images of {ood.fit_manifest}"
        return rows, _outputs(probe, x, fn), torch.tensor([r.label for r in recs]), how
    order = np.random.default_rng(seed).permutation(len(rows))
    n_fit = max(1, min(len(rows) - 1, round(ood.fit_fraction * len(rows))))
    fit, test = np.sort(rows[order[:n_fit]]), np.sort(rows[order[n_fit:]])
    if preds.features is not None:  # the scoring pass's features (the same hook on the same inputs)
        feats = torch.from_numpy(np.asarray(preds.features[fit], dtype=np.float32))
        out = Outputs(torch.zeros(len(fit), 0, dtype=torch.float64), feats)
    else:
        out = _of_rows(probe, fit, fn)
    return test, out, torch.from_numpy(preds.labels[fit].astype(np.int64)), (
        f"a seeded {ood.fit_fraction:.0%} of the in-distribution subset ({len(fit)} samples), the rest scored")


def not_applicable(reason: str) -> OODRun:
    return OODRun(0, 0, "", {}, (), {}, "not_applicable", reason)


def run_ood(cfg: AuditConfig, probe: ModelProbe, ood: OODConfig, detectors: Mapping[str, Detector],
            seed: int) -> OODRun:
    t0 = time.perf_counter()
    task, preds = probe.task, probe.predictions
    if "single_label" not in task.provides or preds.labels.ndim != 1:
        return not_applicable(f"task {task.name!r}: the OOD scores read one softmax over classes per sample")
    fn = LogitsAndFeatures(task.output_kind == "probabilities")
    rows = subset_rows(preds.n, ood.subset, seed, "ood")
    skipped: dict[str, str] = {}
    use = {}
    for name, d in detectors.items():
        if d.needs_logits and fn.probabilities:
            skipped[name] = "model.output_kind = \"probabilities\": the score reads logits"
        else:
            use[name] = d
    fit_desc, fit_out, fit_labels = "not fitted (no detector needs it)", None, None
    if any(d.needs_fit for d in use.values()):
        rows, fit_out, fit_labels, fit_desc = _fit_data(cfg, probe, ood, rows, seed, fn)
    id_out = _of_rows(probe, rows, fn)
    if id_out.logits.ndim != 2:  # e.g. an inspection model's anomaly map: no class scores to read
        return not_applicable(f"task {task.name!r}: the model answers with outputs of shape "
                              f"{tuple(id_out.logits.shape[1:])} per sample, not one score per class, which the OOD "
                              "scores read")
    sets = ood_sets(cfg, probe, ood, seed)
    outs = {name: _outputs(probe, x, fn) for name, (x, _) in sets.items()}
    results, scores = [], {}
    for name, d in use.items():
        if d.needs_fit:
            assert fit_out is not None and fit_labels is not None
            if fit_out.features.shape[1] == 0:
                skipped[name] = "the model has no linear classifier head whose input features could be read"
                continue
            try:
                d = d.fit(fit_out, fit_labels)
            except ConfigError as e:
                skipped[name] = str(e)
                continue
        id_scores = d.score(id_out).numpy()
        scores[name] = {"in": id_scores}
        for set_name, out in outs.items():
            s = d.score(out).numpy()
            scores[name][set_name] = s
            results.append(OODResult(name, set_name, separation(id_scores, s, seed=seed)))
    return OODRun(len(rows), 0 if fit_labels is None else len(fit_labels), fit_desc,
                  {k: v for k, (_, v) in sets.items()}, tuple(results), skipped, "measured", scores=scores,
                  seconds=time.perf_counter() - t0)
