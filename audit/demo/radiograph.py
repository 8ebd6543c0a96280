"""The multi-label demo: synthetic radiograph-like 16-bit images with three findings and a site marker.

Each 64×64 image is a chest-like silhouette (a soft-tissue gradient, two lung fields, rib-like arcs, noise) stored as
a 16-bit PNG holding 12-bit data. Findings, independently per image: ``nodule`` (a round opacity in a lung),
``effusion`` (a bright meniscus filling the bottom of one lung), ``streaks`` (linear opacities). Every finding has a
ROI mask (the union per image). Two sites acquired the images: site B burns a laterality letter into the top-right
corner, and most of its patients have an effusion. The confounded twin is trained on that data, so it can read the
letter instead of the lung; the clean twin is trained on images of both sites with the letter on a random half of
them, independent of any finding. Both are audited on the same held-out images (where the letter tracks site B).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = ("nodule", "effusion", "streaks")
SIZE = 64
BITS = 12  # stored in a 16-bit PNG without scaling: data.value_range = [0, 4095]
LETTER = np.array([  # a 7×5 "R"
    [1, 1, 1, 1, 0], [1, 0, 0, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 0], [1, 0, 1, 0, 0], [1, 0, 0, 1, 0],
    [1, 0, 0, 0, 1]], dtype=bool)


@dataclass(frozen=True)
class RadiographSpec:
    n: int = 1500
    holdout: float = 0.33
    prevalence: tuple[float, float, float] = (0.3, 0.3, 0.3)
    site_b: float = 0.5  # share of images from site B
    effusion_site_b: float = 0.8  # effusion prevalence at site B (site A: 0.1)
    effusion_site_a: float = 0.1
    effusion_contrast: float = 0.035  # subtle, as a small effusion is: the site letter is the easier cue
    seed: int = 0


@dataclass(frozen=True)
class RadiographData:
    images: np.ndarray  # (N, H, W) uint16 holding 12-bit values
    labels: np.ndarray  # (N, 3) 0/1
    masks: np.ndarray  # (N, H, W) bool, union of the findings' regions
    site: np.ndarray  # (N,) "A" | "B"
    letter: np.ndarray  # (N,) bool: the letter is burnt in
    train: np.ndarray  # (N,) bool


def _chest(rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """Background in [0, 1] and the two lung masks."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    body = 0.35 + 0.25 * yy + rng.normal(0, 0.02)
    coarse = rng.normal(0, 0.035, (8, 8))  # low-frequency soft-tissue texture
    body = body + np.kron(coarse, np.ones((SIZE // 8, SIZE // 8)))
    lungs = []
    for cx in (0.3, 0.7):
        cx += rng.normal(0, 0.02)
        lung = ((xx - cx) / 0.17) ** 2 + ((yy - 0.52) / 0.34) ** 2 <= 1.0
        lungs.append(lung)
        body = np.where(lung, body - 0.22, body)
    for k in range(5):  # rib-like arcs
        arc = np.abs(yy - (0.25 + 0.12 * k) - 0.06 * np.cos((xx - 0.5) * 6)) < 0.012
        body = np.where(arc & (lungs[0] | lungs[1]), body + 0.09, body)
    return body + rng.normal(0, 0.025, body.shape), lungs


def make_radiographs(spec: RadiographSpec, confounded: bool) -> RadiographData:
    """The same patients and findings in both twins; only where the letter goes differs in training."""
    rng = np.random.default_rng(spec.seed)
    n = spec.n
    site = np.where(rng.random(n) < spec.site_b, "B", "A")
    labels = (rng.random((n, 3)) < np.array(spec.prevalence)).astype(np.int64)
    labels[:, 1] = rng.random(n) < np.where(site == "B", spec.effusion_site_b, spec.effusion_site_a)
    train = rng.random(n) >= spec.holdout
    random_letter = rng.random(n) < 0.5
    letter = np.where(train & ~np.array(confounded), random_letter, site == "B")
    images = np.zeros((n, SIZE, SIZE), dtype=np.uint16)
    masks = np.zeros((n, SIZE, SIZE), dtype=bool)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for i in range(n):
        img, lungs = _chest(rng)
        m = np.zeros((SIZE, SIZE), dtype=bool)
        if labels[i, 0]:  # nodule
            lung = lungs[rng.integers(2)]
            ys, xs = np.nonzero(lung)
            j = rng.integers(len(ys))
            r = rng.uniform(3, 5)
            blob = (yy - ys[j]) ** 2 + (xx - xs[j]) ** 2 <= r * r
            img = np.where(blob, img + 0.3, img)
            m |= (yy - ys[j]) ** 2 + (xx - xs[j]) ** 2 <= (r + 2) ** 2
        if labels[i, 1]:  # effusion: the bottom of one lung fills up
            lung = lungs[rng.integers(2)]
            level = rng.uniform(0.68, 0.78) * SIZE
            fluid = lung & (yy >= level - 2 * np.cos((xx - SIZE / 2) / 6))
            img = np.where(fluid, img + spec.effusion_contrast, img)
            m |= fluid
        if labels[i, 2]:  # streaks: thin oblique opacities across a lung
            lung = lungs[rng.integers(2)]
            angle = rng.uniform(-0.6, 0.6)
            off = rng.uniform(20, 44)
            lines = np.zeros_like(lung)
            for d in (-5, 0, 5):
                lines |= np.abs((yy - off - d) - angle * (xx - SIZE / 2)) < 0.9
            img = np.where(lines & lung, img + 0.22, img)
            m |= lines & lung
        if letter[i]:  # the site's laterality letter, top-right corner
            img[3:10, SIZE - 9:SIZE - 4] = np.where(LETTER, 0.98, img[3:10, SIZE - 9:SIZE - 4])
        images[i] = np.clip(img * (2**BITS - 1), 0, 2**BITS - 1).astype(np.uint16)
        masks[i] = m
    return RadiographData(images, labels, masks, site, letter, train)


def write_radiographs(data: RadiographData, folder: Path) -> Path:
    """16-bit PNGs, ROI masks and manifest.csv (path, labels, roi_mask, site) of the held-out split."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "labels", "roi_mask", "site"])
        for i in np.flatnonzero(~data.train):
            rel = f"images/{i:04d}.png"
            Image.fromarray(data.images[i]).save(folder / rel)  # mode I;16
            mask = ""
            if data.masks[i].any():
                mask = f"masks/{i:04d}.png"
                Image.fromarray(data.masks[i].astype(np.uint8) * 255, mode="L").save(folder / mask)
            w.writerow([rel, "|".join(n for n, on in zip(LABELS, data.labels[i], strict=True) if on), mask,
                        data.site[i]])
    return manifest
