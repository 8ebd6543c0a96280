"""One scoring batch through the model, as every engine computes it: the forward pass under inference mode (and
autocast when the compute settings ask for it), a failure of the user's forward worded as a ``ModelError``, the
task's output check, non-finite rows, then task scores, penultimate features, per-pixel answers and the input sum.
``LocalEngine.score`` and the Ray scoring actor both call ``score_batch``, so a batch's results do not depend on
which engine or worker ran it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from ..tasks.base import Task
from .compute import Compute


def feature_module(model: nn.Module) -> nn.Module | None:
    """The classifier head whose input are the penultimate features (the last nn.Linear), or None."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else ""


class NonFinite(Exception):
    """The model returned NaN or infinite outputs for these rows of the batch (the caller names their ids)."""

    def __init__(self, rows: list[int]) -> None:
        super().__init__(rows)
        self.rows = rows


@dataclass(frozen=True)
class ScoredBatch:
    probs: np.ndarray  # (B, K) float64 task scores
    features: np.ndarray | None  # (B, D) float32 penultimate features, when gathered
    input_sum: torch.Tensor  # (C, H, W) float64 sum of the batch's inputs
    dense: np.ndarray | None  # (B, H, W) per-pixel answers of per-pixel tasks (Task.dense)


def score_batch(model: nn.Module, task: Task, compute: Compute, x: torch.Tensor, size: tuple[int, int],
                gather_features: bool) -> ScoredBatch:
    """Score one batch ``x`` (CPU tensor); ``size``: the input resolution per-pixel answers are given at. Raises
    ModelError when the forward fails or its outputs are not the task's, NonFinite for NaN or infinite rows."""
    captured: list[torch.Tensor] = []
    head = feature_module(model) if gather_features else None
    hook = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach())) if head else None
    try:
        with torch.inference_mode():
            try:
                with compute.inference():
                    raw = model(compute.to_device(x))
            except RuntimeError:
                raise
            except Exception as e:  # noqa: BLE001 - whatever the user's forward raises is a model problem
                raise ModelError(f"the model failed on the held-out images: {type(e).__name__}: "
                                 f"{first_line(e)}") from None
            out = task.check_outputs(raw, x.shape[0])
            finite = torch.isfinite(out).reshape(out.shape[0], -1).all(1).cpu()
            if not bool(finite.all()):
                raise NonFinite([int(r) for r in np.flatnonzero(~finite.numpy())])
            bsum = x.double().sum(dim=0)
            probs = task.to_scores(out).cpu().numpy().astype(np.float64)
            dense = task.dense(out, size)
            feats = None
            if captured:
                f = captured[-1]
                # a copy: a NumPy view would keep the tensor allocated mid-forward alive, which pins the
                # allocator's heap between the freed activations (peak RSS grew ~20 KB per image)
                feats = f.reshape(f.shape[0], -1).float().cpu().numpy().copy()
    except RuntimeError as e:
        msg = first_line(e) or type(e).__name__
        raise ModelError(f"the model failed on the held-out images (check image_size/channels): {msg}") from None
    finally:
        if hook is not None:
            hook.remove()
    return ScoredBatch(probs, feats, bsum, dense)
