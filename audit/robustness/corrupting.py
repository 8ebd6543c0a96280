"""The corruption part of the robustness stage: every (corruption, severity) pass over a seeded subset of the
scored samples runs through the engine (``map_over_perturbations``, or ``map_batches`` where the task's metric
reads per-pixel answers), the corruption applied on the device the model runs on.

Random corruptions are seeded per batch from (stage seed, corruption, severity, the batch's first row): each
sample's row in the subset travels with it as an extra input channel, so every engine (and worker) draws the same
noise for the same batch. Results therefore depend on ``data.batch_size`` (the batches), not on the engine."""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..engine.base import BatchContext
from ..engine.probe import ModelProbe
from ..products import Predictions
from .ce import corruption_errors
from .corruptions import Corruption
from .images import Normalise, chunks, display, subset_rows
from .metric import measure, needs_dense, rows_of, with_answers
from .result import Cell, CorruptionRun, Example

MAX_EXAMPLE_CORRUPTIONS = 4  # corruptions drawn with examples (those the metric falls most under)


def batch_seed(seed: int, corruption: str, severity: int, first_row: int) -> int:
    return zlib.crc32(f"{seed}:{corruption}:{severity}:{first_row}".encode())


@dataclass(frozen=True)
class Corrupt:
    """The perturbation of one (corruption, severity) pass: packed [0, 1] images + a row-index channel -> the
    model's inputs. Picklable (it travels to engine workers)."""

    corruption: Corruption
    severity: int
    seed: int
    normalise: Normalise

    def images(self, packed: Tensor) -> Tensor:
        x, first = packed[:, :-1], int(packed[0, -1, 0, 0].item())
        g = torch.Generator().manual_seed(batch_seed(self.seed, self.corruption.name, self.severity, first)) \
            if self.corruption.stochastic else None
        return self.corruption(x, self.severity, g)

    def __call__(self, packed: Tensor) -> Tensor:
        return self.normalise(self.images(packed))


@dataclass(frozen=True)
class CorruptDense:
    """The batch function of a per-pixel task: the corrupted batch's task scores and per-pixel answers."""

    corrupt: Corrupt

    def __call__(self, ctx: BatchContext, packed: Tensor, side: Tensor | None) -> dict[str, Any]:
        x = self.corrupt(packed)
        with torch.inference_mode(), ctx.compute.inference():
            out = ctx.task.check_outputs(ctx.model(x), x.shape[0])
        return {"scores": ctx.task.to_scores(out).double(), "dense": ctx.task.dense(out, tuple(x.shape[-2:]))}


def pack(x: Tensor, first_row: int) -> Tensor:
    """[0, 1] images with their row numbers (first_row, first_row + 1, ...) as one more channel."""
    idx = torch.arange(first_row, first_row + x.shape[0], dtype=x.dtype).view(-1, 1, 1, 1)
    return torch.cat([x, idx.expand(-1, 1, *x.shape[-2:])], dim=1)


def _answers(probe: ModelProbe, clean: Predictions, scores: np.ndarray) -> list[str]:
    task = probe.task
    p = with_answers(task, clean, scores)
    out = []
    for i in range(p.n):
        try:
            out.append(task.describe(p, i).predicted)
        except (KeyError, ValueError, IndexError, TypeError):  # a task that describes only from per-pixel answers
            out.append("—")
    return out


def examples(probe: ModelProbe, rows: np.ndarray, names: list[str], corruptions: Mapping[str, Corruption],
             severities: list[int], seed: int, k: int) -> tuple[Example, ...]:
    """``k`` samples at every severity of each named corruption with the model's answers (one engine pass of the
    few images, corrupted here with a generator seeded per sample)."""
    if k == 0 or not names:
        return ()
    norm = Normalise.of(probe.preprocess)
    clean = rows_of(probe.predictions, rows[:k])
    x = norm.undo(probe.images([str(s) for s in clean.ids]))
    imgs, order = [], []
    for name in names:
        c = corruptions[name]
        for s in severities:
            g = torch.Generator().manual_seed(batch_seed(seed, name, s, -1))
            imgs.append(c(x, s, g) if c.stochastic else c(x, s))
            order.append((name, s))
    stacked = torch.cat(imgs)
    scores = probe.engine.outputs(norm(stacked))
    labels = [probe.task.describe(clean, i).label for i in range(clean.n)]
    clean_answers = [probe.task.describe(clean, i).predicted for i in range(clean.n)]
    answers = _answers(probe, rows_of(clean, np.tile(np.arange(clean.n), len(order))), scores)
    out = []
    for name in names:
        for i in range(clean.n):
            pics, said = [display(x[i])], [clean_answers[i]]
            for j, (n2, _s) in enumerate(order):
                if n2 == name:
                    pics.append(display(stacked[j * clean.n + i]))
                    said.append(answers[j * clean.n + i])
            out.append(Example(str(clean.ids[i]), name, labels[i], tuple(pics), tuple(said)))
    return tuple(out)


def _versus(run_errors: dict[str, list[float]], clean_error: float, metric: str, severities: list[int],
            baseline: Mapping[str, Any] | None) -> tuple[Any, str]:
    """CE / relative CE against the baseline report's corruption results, or why there is no comparison."""
    if baseline is None:
        return None, ""
    b = (baseline.get("robustness") or {}).get("corruptions")
    if not isinstance(b, Mapping):
        return None, "the baseline's results.json holds no corruption results ([robustness.corruptions])"
    if b.get("metric") != metric:
        return None, f"the baseline measured {b.get('metric')!r}, this audit {metric!r}"
    if list(b.get("severities") or []) != severities:
        return None, f"the baseline measured severities {b.get('severities')}, this audit {severities}"
    base_err = {n: [1.0 - float(c["value"]) for c in b["cells"] if c["corruption"] == n] for n in b.get("names", [])}
    common = {n: v for n, v in run_errors.items() if n in base_err}
    if not common:
        return None, "the baseline measured none of these corruptions"
    v = corruption_errors(common, clean_error, base_err, 1.0 - float(b["clean"]["value"]))
    return v, ""


def run_corruptions(probe: ModelProbe, names: list[str], corruptions: Mapping[str, Corruption],
                    severities: list[int], subset: int, seed: int, n_examples: int,
                    baseline: Mapping[str, Any] | None) -> CorruptionRun:
    """The key metric of the task under every (corruption, severity) on a seeded subset."""
    t0 = time.perf_counter()
    task, preds = probe.task, probe.predictions
    rows = subset_rows(preds.n, subset, seed, "corruptions")
    clean = rows_of(preds, rows)
    dense = needs_dense(task, clean, seed)
    norm = Normalise.of(probe.preprocess)
    n = len(rows)
    scores = {(c, s): np.zeros((n, preds.probs.shape[1])) for c in names for s in severities}
    maps: dict[tuple[str, int], list[np.ndarray]] = {(c, s): [] for c in names for s in severities}
    for pos, x in chunks(probe, rows):
        packed = pack(x, int(pos[0]))
        for c in names:
            for s in severities:
                f = Corrupt(corruptions[c], s, seed, norm)
                if dense:
                    got = probe.engine.map_batches(CorruptDense(f), packed)
                    scores[(c, s)][pos] = got["scores"]
                    maps[(c, s)].append(got["dense"])
                else:
                    scores[(c, s)][pos] = probe.engine.map_over_perturbations(packed, f)
    cells = []
    for c in names:
        for s in severities:
            table = with_answers(task, clean, scores[(c, s)], np.concatenate(maps[(c, s)]) if dense else None)
            overall, groups = measure(task, table, seed, f"{c}:{s}")
            cells.append(Cell(c, s, overall, groups))
    clean_overall, clean_groups = measure(task, clean, seed, "clean")
    run = CorruptionRun(task.key_metric, n, clean_overall, clean_groups, tuple(names), tuple(severities),
                        tuple(cells), {c: corruptions[c].source + (f" ({corruptions[c].note})" if corruptions[c].note
                                                                   else "") for c in names})
    versus, note = _versus(run.errors(), 1.0 - clean_overall.value, task.key_metric, severities, baseline)
    worst = sorted(names, key=lambda c: run.mean(c))[:MAX_EXAMPLE_CORRUPTIONS]
    shown = examples(probe, rows, worst, corruptions, severities, seed, min(n_examples, n))
    return CorruptionRun(run.metric, run.n, run.clean, run.clean_groups, run.names, run.severities, run.cells,
                         run.sources, shown, versus, note, time.perf_counter() - t0)
