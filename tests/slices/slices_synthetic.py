"""Synthetic embeddings with (or without) a planted failure slice, shared by the slice tests."""

from __future__ import annotations

import numpy as np

from audit.slices import SliceInputs


def planted(seed: int, n: int = 1500, classes: int = 3, dim: int = 32, fraction: float = 0.08, shift: float = 2.5,
            slice_error: float = 0.8, base_error: float = 0.06, plant: bool = True
            ) -> tuple[SliceInputs, np.ndarray]:
    """Classes are Gaussian clusters; the slice is ``fraction`` of class 0 moved by a random direction of length
    ``shift`` per dimension, wrong with probability ``slice_error`` (everyone else ``base_error``, independent of
    the embedding). Wrong predictions put 0.9 on a random other class. Returns the inputs and the slice mask."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    z = rng.normal(0, 3, (classes, dim))[y] + rng.normal(0, 1, (n, dim))
    member = np.zeros(n, dtype=bool)
    if plant:
        idx = np.flatnonzero(y == 0)
        member[rng.choice(idx, round(fraction * len(idx)), replace=False)] = True
        z[member] += rng.normal(0, shift, dim)
    wrong = rng.random(n) < np.where(member, slice_error, base_error)
    pred = np.where(wrong, (y + rng.integers(1, classes, n)) % classes, y)
    probs = np.full((n, classes), 0.1 / (classes - 1))
    probs[np.arange(n), pred] = 0.9
    return SliceInputs.from_classification(z, y, probs), member


def planted_dice(seed: int, n: int = 800, dim: int = 24, fraction: float = 0.06, plant: bool = True
                 ) -> tuple[SliceInputs, np.ndarray]:
    """A segmentation-like set: per-image Dice ~ Beta(18, 2) (mean 0.9), a planted cluster's Dice ~ Beta(4, 4)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, (n, dim))
    member = np.zeros(n, dtype=bool)
    if plant:
        member[rng.choice(n, round(fraction * n), replace=False)] = True
        z[member] += rng.normal(0, 2.5, dim)
    dice = np.where(member, rng.beta(4, 4, n), rng.beta(18, 2, n))
    return SliceInputs(z, dice, "Dice", True), member
