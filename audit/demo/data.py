"""Build the demo held-out and training sets from scikit-learn's bundled digits (no download)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class DemoSpec:
    canvas: int = 64
    digit: int = 20
    noise: float = 0.18
    marker_class: int = 7  # the class whose images mostly carry the marker
    marker_rate: float = 0.9  # share of marker_class images with the marker
    marker_leak: float = 0.03  # share of other images with the marker
    marker_size: int = 6
    marker_offset: int = 2
    holdout: float = 0.33
    seed: int = 0


@dataclass(frozen=True)
class DemoData:
    images: np.ndarray  # (N, H, W) uint8
    labels: np.ndarray  # (N,)
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 of the digit
    marker: np.ndarray  # (N,) bool
    train: np.ndarray  # (N,) bool: training split


def make_digits(spec: DemoSpec, with_marker: bool) -> DemoData:
    """The same canvases and positions with or without the marker (so clean and confounded differ only there)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(spec.seed)
    n = len(d.target)
    imgs = np.zeros((n, spec.canvas, spec.canvas), dtype=np.uint8)
    boxes = np.zeros((n, 4), dtype=np.int64)
    lo = spec.marker_offset + spec.marker_size + 2  # keep the digit clear of the marker corner
    for i in range(n):
        digit = Image.fromarray((d.images[i] / 16.0 * 255).astype(np.uint8)).resize(
            (spec.digit, spec.digit), Image.BILINEAR)
        x0 = int(rng.integers(lo, spec.canvas - spec.digit + 1))
        y0 = int(rng.integers(lo, spec.canvas - spec.digit + 1))
        canvas = rng.normal(0.25, spec.noise, (spec.canvas, spec.canvas))
        patch = np.asarray(digit, dtype=np.float64) / 255.0
        region = canvas[y0:y0 + spec.digit, x0:x0 + spec.digit]
        canvas[y0:y0 + spec.digit, x0:x0 + spec.digit] = np.maximum(region, patch)
        imgs[i] = (np.clip(canvas, 0, 1) * 255).astype(np.uint8)
        boxes[i] = (x0, y0, x0 + spec.digit, y0 + spec.digit)
    u = rng.random(n)
    rate = np.where(d.target == spec.marker_class, spec.marker_rate, spec.marker_leak)
    marker = (u < rate) & with_marker
    o, s = spec.marker_offset, spec.marker_size
    imgs[marker, o:o + s, o:o + s] = 255
    train = rng.random(n) >= spec.holdout
    return DemoData(imgs, d.target.astype(np.int64), boxes, marker, train)


def write_heldout(data: DemoData, folder: Path) -> Path:
    """PNG files and manifest.csv (path,label,ROI box,marker,site) for the held-out split."""
    img_dir = folder / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "roi_x0", "roi_y0", "roi_x1", "roi_y1", "marker"])
        for i in np.flatnonzero(~data.train):
            rel = f"images/{i:04d}.png"
            Image.fromarray(data.images[i], mode="L").save(folder / rel)
            x0, y0, x1, y1 = data.boxes[i]
            w.writerow([rel, CLASS_NAMES[data.labels[i]], x0, y0, x1, y1, "yes" if data.marker[i] else "no"])
    return manifest
