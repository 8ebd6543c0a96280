"""A test-only engine: every model pass runs on a worker thread of its own (as an engine that runs elsewhere hands
work to its workers). This module and one line of entry_points.txt are all it takes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

from audit.engine.base import PredictOutput, ScoringOptions, ScoringProgress
from audit.engine.local import LocalEngine
from audit.explainers import Explainer
from audit.loading.preprocess import Preprocess
from audit.loading.records import HeldOutSet


class ThreadEngine(LocalEngine):
    name = "toy_thread"
    title = "toy: every model pass on a worker thread"

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="toy-engine") as pool:
            return pool.submit(fn, *args).result()  # the worker's exception is raised here, as it was

    def score(self, heldout: HeldOutSet, preprocess: Preprocess, options: ScoringOptions,
              resume: ScoringProgress | None = None) -> PredictOutput:
        return self._run(super().score, heldout, preprocess, options, resume)

    def outputs(self, x: torch.Tensor, model: nn.Module | None = None) -> np.ndarray:
        return self._run(super().outputs, x, model)

    def map_over_perturbations(self, x: torch.Tensor, perturb: Callable[[torch.Tensor], torch.Tensor],
                               model: nn.Module | None = None) -> np.ndarray:
        return self._run(super().map_over_perturbations, x, perturb, model)

    def explain(self, explainer: Explainer, x: torch.Tensor, targets: np.ndarray,
                model: nn.Module | None = None) -> np.ndarray:
        return self._run(super().explain, explainer, x, targets, model)
