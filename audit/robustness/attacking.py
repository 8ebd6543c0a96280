"""The adversarial part of the robustness stage: PGD or APGD-CE at every configured eps on a seeded subset, and the
gradient-masking checks, each run through the engine as a batch function (``Engine.map_batches``), so the Ray
engine runs them on its workers. The attacked model is the task's explanation model (``Task.explaining``: logits
whose argmax is the answer) behind the input normalisation, on [0, 1] images. Random starts are seeded per batch
from (stage seed, the batch's first row)."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import AdversarialConfig
from ..engine.base import BatchContext
from ..engine.probe import ModelProbe
from .apgd import APGDConfig, apgd
from .attacks import AttackOutcome, Normalised, PGDConfig, pgd
from .images import Normalise, display, subset_rows, unit_images
from .masking import Check, MaskingConfig, MaskingVerdict, gradient_masking_checks, robust_accuracy
from .metric import rows_of
from .result import AdversarialExample, AdversarialRun

# side columns of the attacked batch
LABEL, CORRECT, KEEP, ROW = range(4)


def generator(seed: int, salt: str, first_row: int) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}:{salt}:{first_row}".encode()))


@dataclass(frozen=True)
class Attack:
    """The batch function of the attack: for each eps, which samples some iterate broke; the adversarial images of
    the samples marked KEEP at the largest eps, and the answers on them."""

    cfg: AdversarialConfig
    normalise: Normalise
    seed: int

    def run(self, net: torch.nn.Module, x: Tensor, y: Tensor, correct: Tensor, eps: float,
            g: torch.Generator) -> AttackOutcome:
        c = self.cfg
        if c.attack == "apgd":
            return apgd(net, x, y, APGDConfig(eps, c.norm, c.steps, c.restarts), g, clean_correct=correct)
        return pgd(net, x, y, PGDConfig(eps, c.norm, c.steps, c.step_size, c.restarts), g, clean_correct=correct)

    def __call__(self, ctx: BatchContext, x: Tensor, side: Tensor | None) -> dict[str, Any]:
        assert side is not None
        y, correct = side[:, LABEL].long(), side[:, CORRECT] > 0.5
        keep = side[:, KEEP] > 0.5
        g = generator(self.seed, "attack", int(side[0, ROW]))
        broken, adv, answers = [], x[keep], torch.zeros(int(keep.sum()), dtype=torch.long)
        with ctx.task.explaining(ctx.model, self.normalise(x)) as m:
            net = Normalised(m, self.normalise.mean, self.normalise.std).to(x.device)
            for eps in self.cfg.budgets:
                out = self.run(net, x, y, correct, eps, g)
                broken.append(out.broken)
                adv = out.x_adv[keep]
            with torch.no_grad():
                if len(adv):
                    answers = net(adv).argmax(1)
        return {"broken": torch.stack(broken, dim=1), "x_adv": adv, "answer": answers}


@dataclass(frozen=True)
class Checks:
    """The batch function of the gradient-masking checks (one batch: one verdict)."""

    cfg: MaskingConfig
    normalise: Normalise
    seed: int

    def __call__(self, ctx: BatchContext, x: Tensor, side: Tensor | None) -> dict[str, Any]:
        assert side is not None
        with ctx.task.explaining(ctx.model, self.normalise(x)) as m:
            net = Normalised(m, self.normalise.mean, self.normalise.std).to(x.device)
            v = gradient_masking_checks(net, x, side[:, LABEL].long(), self.cfg,
                                        generator(self.seed, "checks", int(side[0, ROW])))
        return {"accuracy": np.array([v.accuracy]), "passed": np.array([[c.passed for c in v.checks]]),
                "names": np.array([[c.name for c in v.checks]]), "details": np.array([[c.detail for c in v.checks]]),
                "n": np.array([v.n])}


def not_applicable(cfg: AdversarialConfig, reason: str) -> AdversarialRun:
    return AdversarialRun(cfg.attack, cfg.norm, cfg.steps, cfg.step_size, cfg.restarts, 0, (), None,
                          "not_applicable", reason)


def applies(probe: ModelProbe, rows: np.ndarray) -> str:
    """Why an attack cannot be judged on this task ("" when it can): it needs one class per sample, and answers that
    are the argmax of the outputs the attack pushes (not a threshold elsewhere)."""
    task, preds = probe.task, probe.predictions
    if "single_label" not in task.provides or preds.labels.ndim != 1:
        return f"task {task.name!r} has no single class per sample for the attack's cross-entropy loss"
    if preds.decisions is not None and not np.array_equal(preds.decisions[rows], preds.probs[rows].argmax(1)):
        return (f"task {task.name!r} decides at an operating threshold, not at the argmax of its outputs: an attack "
                "on the argmax would not measure its answers")
    return ""


def run_attacks(probe: ModelProbe, cfg: AdversarialConfig, seed: int) -> AdversarialRun:
    t0 = time.perf_counter()
    preds = probe.predictions
    rows = subset_rows(preds.n, cfg.subset, seed, "adversarial")
    why = applies(probe, rows)
    if why:
        return not_applicable(cfg, why)
    norm = Normalise.of(probe.preprocess)
    x = unit_images(probe, rows)
    y = preds.labels[rows].astype(np.int64)
    correct = preds.preds[rows] == y
    keep = np.zeros(len(rows), dtype=bool)  # example candidates: a few correct samples (broken ones shown first)
    keep[np.flatnonzero(correct)[:4 * cfg.examples]] = True
    side = torch.from_numpy(np.stack([y, correct, keep, np.arange(len(rows))], axis=1).astype(np.float32))
    got = probe.engine.map_batches(Attack(cfg, norm, seed), x, side)
    k = min(cfg.check_subset, probe.engine.batch_size, len(rows))
    mcfg = MaskingConfig(norm=cfg.norm, eps_grid=tuple(cfg.budgets), steps=cfg.steps)
    chk = probe.engine.map_batches(Checks(mcfg, norm, seed), x[:k], side[:k])
    verdict = MaskingVerdict(tuple(Check(str(nm), bool(ok), str(d)) for nm, ok, d in
                                   zip(chk["names"][0], chk["passed"][0], chk["details"][0], strict=True)),
                             (0.0, *sorted(cfg.budgets)), tuple(float(a) for a in chk["accuracy"][0]), int(chk["n"][0]))
    clean_correct = torch.from_numpy(correct)
    results = tuple(robust_accuracy(AttackOutcome(torch.empty(0), clean_correct, torch.from_numpy(got["broken"][:, j])),
                                    cfg.attack, cfg.norm, eps, verdict) for j, eps in enumerate(cfg.budgets))
    candidates = np.flatnonzero(keep)
    broken_last = got["broken"][candidates, -1]
    chosen = sorted(range(len(candidates)), key=lambda i: (not broken_last[i], i))[:cfg.examples]
    shown = rows_of(preds, rows[candidates])
    task = probe.task
    examples = tuple(
        AdversarialExample(str(shown.ids[i]), task.describe(shown, i).label, max(cfg.budgets),
                           display(x[candidates[i]]), display(torch.from_numpy(got["x_adv"][i])),
                           task.classes[int(got["answer"][i])], bool(broken_last[i]))
        for i in chosen)
    status = "measured" if verdict.measurable else "not_measurable"
    reason = verdict.reason if verdict.measurable else f"robustness not measurable: {verdict.reason}"
    return AdversarialRun(cfg.attack, cfg.norm, cfg.steps, cfg.step_size, cfg.restarts, len(rows), results, verdict,
                          status, reason, examples, time.perf_counter() - t0)
