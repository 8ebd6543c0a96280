"""The demo's concept folders: the planted marker as a TCAV concept, and random counterexamples.

Both are drawn like the demo's canvases (noise, one scikit-learn digit of any class at a random position, the
digit kept clear of the marker corner) from the digits of the training split, so the only thing that tells the
two folders apart is the white square in the top-left corner.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .data import DemoData, DemoSpec


def concept_canvases(data: DemoData, spec: DemoSpec, n: int, marker: bool, seed: int) -> np.ndarray:
    """(n, H, W) uint8 canvases with a training-split digit each, with or without the marker."""
    from sklearn.datasets import load_digits

    digits = load_digits().images  # the same order as ``data`` (make_digits draws one canvas per digit)
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(data.train)
    out = np.zeros((n, spec.canvas, spec.canvas), dtype=np.uint8)
    lo = spec.marker_offset + spec.marker_size + 2
    # every digit class equally often, so that the folders differ in the marker only, not in their mix of digits
    by_class = [rng.permutation(pool[data.labels[pool] == c]) for c in np.unique(data.labels[pool])]
    picks = [int(by_class[k % len(by_class)][(k // len(by_class)) % len(by_class[k % len(by_class)])])
             for k in range(n)]
    for k, i in enumerate(picks):
        digit = np.asarray(Image.fromarray((digits[i] / 16.0 * 255).astype(np.uint8)).resize(
            (spec.digit, spec.digit), Image.BILINEAR), dtype=np.float64) / 255.0
        canvas = rng.normal(0.25, spec.noise, (spec.canvas, spec.canvas))
        nx = int(rng.integers(lo, spec.canvas - spec.digit + 1))
        ny = int(rng.integers(lo, spec.canvas - spec.digit + 1))
        region = canvas[ny:ny + spec.digit, nx:nx + spec.digit]
        canvas[ny:ny + spec.digit, nx:nx + spec.digit] = np.maximum(region, digit)
        img = (np.clip(canvas, 0, 1) * 255).astype(np.uint8)
        o, s = spec.marker_offset, spec.marker_size
        img[o:o + s, o:o + s] = 255 if marker else img[o:o + s, o:o + s]
        out[k] = img
    return out


def write_concepts(data: DemoData, spec: DemoSpec, folder: Path, n_concept: int = 150, n_random: int = 500,
                   seed: int = 0) -> tuple[Path, Path]:
    """``folder/marker`` (the concept) and ``folder/random`` (counterexamples) as PNG files; returns both."""
    made = []
    for name, n, marker, salt in (("marker", n_concept, True, 1), ("random", n_random, False, 2)):
        d = folder / name
        d.mkdir(parents=True, exist_ok=True)
        for k, img in enumerate(concept_canvases(data, spec, n, marker, seed * 1000 + salt)):
            Image.fromarray(img, mode="L").save(d / f"{name}-{k:04d}.png")
        made.append(d)
    return made[0], made[1]
