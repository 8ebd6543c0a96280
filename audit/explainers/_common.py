"""Helpers shared by the explainers: seeded randomness without global leaks, baselines, layer capture."""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ExplainerError
from .base import ExplainContext

BaselineKind = Literal["zeros", "blur", "mean"]


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch (CPU and ``device``), NumPy and ``random`` inside; restore every global state on exit.

    captum draws its noise and samples from the global generators, so methods that sample run inside this.
    """
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.default_generator.manual_seed(seed)
            for idx in cuda:
                with torch.cuda.device(idx):
                    torch.cuda.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


@contextmanager
def quiet_relu_hooks() -> Iterator[None]:
    """Silence captum's notice that it temporarily hooks ReLU modules (guided backprop, deconvnet)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        yield


def target_scores(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, K) logits, (B,) class indices -> (B,) scores of the target classes."""
    return logits.gather(1, targets.view(-1, 1).to(logits.device)).squeeze(1)


def gaussian_blur(inputs: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur per channel with replicate padding; the kernel is cut at 3 sigma."""
    radius = max(1, round(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=inputs.device, dtype=inputs.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = inputs.shape[1]
    x = F.pad(inputs, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def make_baseline(kind: BaselineKind, inputs: torch.Tensor, context: ExplainContext, blur_sigma: float) -> torch.Tensor:
    """Reference input in the model's (normalised) input space, shaped like ``inputs``.

    zeros: the all-zero normalised tensor (the dataset-mean colour when inputs are mean/std normalised);
    blur: a Gaussian blur of each input; mean: ``context.dataset_mean`` (an error when absent).
    """
    if kind == "zeros":
        return torch.zeros_like(inputs)
    if kind == "blur":
        return gaussian_blur(inputs, blur_sigma)
    if context.dataset_mean is None:
        raise ExplainerError("baseline 'mean' needs the dataset mean input, which this run did not provide")
    mean = context.dataset_mean.to(device=inputs.device, dtype=inputs.dtype)
    if tuple(mean.shape) != tuple(inputs.shape[1:]):
        raise ExplainerError(f"dataset mean has shape {tuple(mean.shape)}, inputs are {tuple(inputs.shape[1:])}")
    return mean.unsqueeze(0).expand_as(inputs).contiguous()


class _Stop(Exception):
    """Raised from a forward hook to end a forward pass once the wanted activations are captured."""


def capture(
    model: nn.Module, layers: dict[str, nn.Module], inputs: torch.Tensor, stop_early: bool = False
) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """Run ``model(inputs)`` and return (logits, {name: output of that module}) with the graph kept.

    Each captured output is handed on as a clone, so later in-place ops (``ReLU(inplace=True)``) leave
    the captured tensor intact. With ``stop_early`` the forward ends after the last layer and logits is None.
    """
    found: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> torch.Tensor | None:
            if name in found or not isinstance(out, torch.Tensor):
                return None
            found[name] = out
            if stop_early and len(found) == len(layers):
                raise _Stop
            return out.clone()

        return hook

    logits = None
    try:
        for name, module in layers.items():
            handles.append(module.register_forward_hook(hook_for(name)))
        try:
            logits = model(inputs)
        except _Stop:
            pass
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in layers if n not in found]
    if missing:
        raise ExplainerError(f"layer(s) {', '.join(missing)} gave no tensor output in the forward pass")
    return logits, found
