"""The planted-slice benchmark's data (in the spirit of dcbench, Eyuboglu et al. 2022): small image sets with a
rare subgroup of one class that a trained model gets wrong.

Two sources, 32x32 RGB, four classes each:

    shapes   generated: a disc, square, triangle or cross (7-13 px, random position, a colour from a warm
             palette blended 30-70 % into the background) on a smooth random colour field, pixel noise (sd 0.08)
    photos   skimage.data's sample photographs (chelsea the cat, coffee, the astronaut, the rocket): random square
             crops of 24-128 px, resized, randomly flipped, desaturated by 0-70 %, brightness x U(0.75, 1.25)
             + U(-0.1, 0.1), pixel noise (sd 0.06)

A planted slice (``SliceSpec.kind``) is ``fraction`` (2-10 %) of the target class, changed by:

    colour    the colour channels permuted (R, G, B) -> (B, R, G)
    rotation  rotated by 45 degrees (shapes; reflected edges) or 90 degrees (photos)
    texture   fine diagonal stripes (period 4 px, +-0.18) over the whole image
    blur      Gaussian blur, sigma 1.6 px

Training sets (``SliceSpec.mode``): ``mislabelled`` keeps the subgroup in training at the same rate but labelled
as the next class (a noisy-label slice); ``absent`` leaves it out (the model never saw it). Validation and test
sets contain the subgroup with its true label. The target class rotates with the seed; the rotation kind never
targets the disc (a rotated disc is a disc).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.ndimage import gaussian_filter, rotate, zoom
from skimage import data as skdata
from skimage.transform import resize

SOURCES = ("shapes", "photos")
KINDS = ("colour", "rotation", "texture", "blur")
MODES = ("mislabelled", "absent")
CLASSES = {"shapes": ("disc", "square", "triangle", "cross"), "photos": ("cat", "coffee", "astronaut", "rocket")}
FRACTIONS = (0.03, 0.05, 0.08, 0.10, 0.04)
SIZE = 32


@dataclass(frozen=True)
class SliceSpec:
    source: str
    kind: str
    mode: str
    seed: int
    n_train_per_class: int = 250
    n_eval_per_class: int = 400  # for each of validation and test

    @property
    def fraction(self) -> float:
        return FRACTIONS[self.seed % len(FRACTIONS)]

    @property
    def target(self) -> int:
        t = (KINDS.index(self.kind) + self.seed) % 4
        if self.source == "shapes" and self.kind == "rotation" and t == 0:
            t = 1
        return t


@dataclass(frozen=True)
class SliceSet:
    images: np.ndarray  # (N, 32, 32, 3) uint8
    labels: np.ndarray  # (N,) int64, the labels the set carries (mislabelled in a mislabelled training set)
    planted: np.ndarray  # (N,) bool


def _shape_mask(kind: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    dx, dy = xx - cx, yy - cy
    if kind == 0:
        return dx ** 2 + dy ** 2 <= r ** 2
    if kind == 1:
        return (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
    if kind == 2:
        return (dy <= 0.8 * r) & (dy >= -r + 2.0 * np.abs(dx) * 0.9)
    w = 0.3 * r
    return ((np.abs(dx) <= w) & (np.abs(dy) <= r)) | ((np.abs(dy) <= w) & (np.abs(dx) <= r))


def _shape_image(label: int, rng: np.random.Generator) -> np.ndarray:
    field = zoom(rng.uniform(0.15, 0.6, (4, 4, 3)), (SIZE / 4, SIZE / 4, 1), order=1)
    r = rng.uniform(3.5, 6.5)
    cx, cy = rng.uniform(r + 2, SIZE - r - 2, 2)
    hue = rng.uniform(0.0, 1.0)
    colour = np.array([0.85 + 0.15 * hue, 0.35 + 0.45 * hue, 0.1 + 0.1 * rng.random()])  # red to yellow
    mask = _shape_mask(label, cx, cy, r)
    alpha = rng.uniform(0.3, 0.7)  # low contrast: the shape takes work to see
    img = field.copy()
    img[mask] = (1 - alpha) * img[mask] + alpha * colour
    return np.clip(img + rng.normal(0, 0.08, img.shape), 0, 1)


@cache
def _photos() -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(f(), dtype=np.float64) / 255.0
                 for f in (skdata.chelsea, skdata.coffee, skdata.astronaut, skdata.rocket))


def _photo_image(label: int, rng: np.random.Generator) -> np.ndarray:
    photo = _photos()[label]
    h, w = photo.shape[:2]
    side = int(rng.integers(24, min(128, h, w) + 1))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = resize(photo[y0:y0 + side, x0:x0 + side], (SIZE, SIZE), anti_aliasing=True)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    grey = crop.mean(2, keepdims=True)
    crop = grey + (crop - grey) * rng.uniform(0.3, 1.0)  # desaturated by up to 70 %
    crop = crop * rng.uniform(0.75, 1.25) + rng.uniform(-0.1, 0.1)
    return np.clip(crop + rng.normal(0, 0.06, crop.shape), 0, 1)


def plant(img: np.ndarray, kind: str, source: str) -> np.ndarray:
    """The planted change of one image (float RGB in [0, 1])."""
    if kind == "colour":
        return img[..., [2, 0, 1]]
    if kind == "rotation":
        if source == "photos":
            return np.rot90(img, 1, axes=(0, 1)).copy()
        return np.clip(rotate(img, 45, axes=(1, 0), reshape=False, order=1, mode="reflect"), 0, 1)
    if kind == "texture":
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        return np.clip(img + 0.18 * np.where(((xx + yy) // 2) % 2 == 0, 1.0, -1.0)[..., None], 0, 1)
    if kind == "blur":
        return gaussian_filter(img, sigma=(1.6, 1.6, 0))
    raise ValueError(f"unknown slice kind {kind!r}; known: {', '.join(KINDS)}")


def make_set(spec: SliceSpec, split: str) -> SliceSet:
    """``split``: "train", "val" or "test" (independent draws; the planted subgroup in each)."""
    salt = {"train": 0, "val": 1, "test": 2}[split]
    rng = np.random.default_rng([spec.seed, salt, SOURCES.index(spec.source), KINDS.index(spec.kind),
                                 MODES.index(spec.mode)])
    per = spec.n_train_per_class if split == "train" else spec.n_eval_per_class
    labels = np.repeat(np.arange(4), per)
    planted = np.zeros(len(labels), dtype=bool)
    idx = np.flatnonzero(labels == spec.target)
    planted[rng.choice(idx, int(round(spec.fraction * per)), replace=False)] = True
    draw = _shape_image if spec.source == "shapes" else _photo_image
    images = np.empty((len(labels), SIZE, SIZE, 3), dtype=np.uint8)
    for i, y in enumerate(labels):
        img = draw(int(y), rng)
        if planted[i]:
            img = plant(img, spec.kind, spec.source)
        images[i] = np.round(img * 255).astype(np.uint8)
    carried = labels.copy()
    if split == "train":
        if spec.mode == "mislabelled":
            carried[planted] = (spec.target + 1) % 4
        else:
            keep = ~planted
            return SliceSet(images[keep], carried[keep], planted[keep])
    return SliceSet(images, carried, planted)
