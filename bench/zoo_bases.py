"""The shortcut zoo's base images: two data families of 32×32 RGB images, three classes each, one object per
image with its box (the ROI) and its pixel mask. Confounders are planted on top (zoo_cues.py).

    shapes   generated: a disc, square or cross of 8–13 px, 0.2–0.4 brighter or darker than a smooth random
             colour field (4×4 noise upsampled, mean colour jittered per image) with pixel noise; low contrast,
             so the shape takes work to learn, as real objects do
    photos   real photographs bundled with scikit-image: the object is a random square crop (35–75 % of the
             subject's box) of chelsea the cat, the coffee cup or the astronaut, resized to 12–17 px, flipped at
             random, desaturated by 0–80 %, its brightness jittered and blended at 40–70 % into the background;
             the background is a random crop of the brick, grass or gravel texture photographs, coloured with a
             random mean colour (as the shapes' field) at low contrast, with pixel noise

Both families keep the object 4 px clear of the border (bars and rulers there never cover it) and out of the
top-left and bottom-right 8×8 zones (where corner tags go).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.ndimage import zoom
from skimage import data as skdata
from skimage.transform import resize

FAMILIES = ("shapes", "photos")
CLASSES = {"shapes": ("disc", "square", "cross"), "photos": ("cat", "coffee", "astronaut")}
SIZE = 32
TAG_ZONE = 8  # objects stay out of the top-left and bottom-right TAG_ZONE × TAG_ZONE pixels
MARGIN = 4  # and this far from every border

# the subject's box (x0, y0, x1, y1) in each class photograph: crops are taken inside it
_SUBJECTS = {"cat": ("chelsea", (20, 0, 330, 300)), "coffee": ("coffee", (70, 0, 480, 390)),
             "astronaut": ("astronaut", (40, 10, 420, 512))}
_TEXTURES = ("brick", "grass", "gravel")


@dataclass(frozen=True)
class Base:
    images: np.ndarray  # (N, H, W, 3) float, about [0, 1]
    labels: np.ndarray  # (N,) int64
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 (exclusive)
    objmask: np.ndarray  # (N, H, W) bool: the object's pixels


def _place(s: int, rng: np.random.Generator) -> tuple[int, int]:
    """A top-left corner for an s×s object: MARGIN clear of the border and out of both tag zones."""
    while True:
        x0 = int(rng.integers(MARGIN, SIZE - MARGIN - s + 1))
        y0 = int(rng.integers(MARGIN, SIZE - MARGIN - s + 1))
        in_tl = x0 < TAG_ZONE and y0 < TAG_ZONE
        in_br = x0 + s > SIZE - TAG_ZONE and y0 + s > SIZE - TAG_ZONE
        if not in_tl and not in_br:
            return x0, y0


def _labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    labels = np.arange(n) % k
    rng.shuffle(labels)
    return labels.astype(np.int64)


def _shape_mask(kind: int, s: int) -> np.ndarray:
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    c = s / 2
    if kind == 0:
        return ((yy - c) ** 2 + (xx - c) ** 2 <= (s / 2) ** 2).astype(np.float64)
    m = np.zeros((s, s))
    if kind == 1:
        b = max(1, s // 8)
        m[b:s - b, b:s - b] = 1
        return m
    w = max(2, s // 3)
    o = (s - w) // 2
    m[o:o + w, :] = 1
    m[:, o:o + w] = 1
    return m


def shapes(n: int, rng: np.random.Generator) -> Base:
    labels = _labels(n, 3, rng)
    imgs = np.zeros((n, SIZE, SIZE, 3))
    boxes = np.zeros((n, 4), dtype=np.int64)
    objmask = np.zeros((n, SIZE, SIZE), dtype=bool)
    for i in range(n):
        field = zoom(rng.normal(0, 1, (4, 4, 3)), (SIZE / 4, SIZE / 4, 1), order=3)
        base = 0.45 + rng.normal(0, 0.06, 3)
        bg = base + 0.07 * field + rng.normal(0, 0.05, (SIZE, SIZE, 3))
        s = int(rng.integers(8, 14))
        x0, y0 = _place(s, rng)
        step = rng.uniform(0.2, 0.4) * (1 if rng.random() < 0.5 else -1)  # low contrast: the shape is work
        col = np.clip(base + step + rng.normal(0, 0.04, 3), 0, 1)
        m = _shape_mask(int(labels[i]), s)[..., None]
        bg[y0:y0 + s, x0:x0 + s] = bg[y0:y0 + s, x0:x0 + s] * (1 - m) + m * col
        imgs[i] = bg
        boxes[i] = (x0, y0, x0 + s, y0 + s)
        objmask[i, y0:y0 + s, x0:x0 + s] = m[..., 0] > 0
    return Base(imgs, labels, boxes, objmask)


@cache
def _photo(name: str) -> np.ndarray:
    return np.asarray(getattr(skdata, name)(), dtype=np.float64) / 255.0


def _crop(img: np.ndarray, box: tuple[int, int, int, int], frac: tuple[float, float], rng: np.random.Generator
          ) -> np.ndarray:
    x0, y0, x1, y1 = box
    side = int(rng.uniform(*frac) * min(x1 - x0, y1 - y0))
    x = int(rng.integers(x0, x1 - side + 1))
    y = int(rng.integers(y0, y1 - side + 1))
    return img[y:y + side, x:x + side]


def _background(rng: np.random.Generator) -> np.ndarray:
    tex = _photo(_TEXTURES[int(rng.integers(len(_TEXTURES)))])
    h, w = tex.shape[:2]
    patch = resize(_crop(tex, (0, 0, w, h), (0.15, 0.4), rng), (SIZE, SIZE), anti_aliasing=True)
    patch = (patch - patch.mean()) / (patch.std() + 1e-6)
    base = 0.45 + rng.normal(0, 0.06, 3)
    return base + 0.06 * patch[..., None] + rng.normal(0, 0.03, (SIZE, SIZE, 3))


def photos(n: int, rng: np.random.Generator) -> Base:
    labels = _labels(n, 3, rng)
    imgs = np.zeros((n, SIZE, SIZE, 3))
    boxes = np.zeros((n, 4), dtype=np.int64)
    objmask = np.zeros((n, SIZE, SIZE), dtype=bool)
    names = CLASSES["photos"]
    for i in range(n):
        bg = _background(rng)
        name, box = _SUBJECTS[names[int(labels[i])]]
        s = int(rng.integers(12, 18))
        obj = resize(_crop(_photo(name), box, (0.35, 0.75), rng), (s, s, 3), anti_aliasing=True)
        if rng.random() < 0.5:
            obj = obj[:, ::-1]
        grey = obj.mean(2, keepdims=True)
        obj = grey + (1 - rng.uniform(0, 0.8)) * (obj - grey)  # desaturate by 0-80 %
        obj = obj * rng.uniform(0.8, 1.2) + rng.uniform(-0.08, 0.08)
        x0, y0 = _place(s, rng)
        a = rng.uniform(0.4, 0.7)
        bg[y0:y0 + s, x0:x0 + s] = (1 - a) * bg[y0:y0 + s, x0:x0 + s] + a * obj
        imgs[i] = bg
        boxes[i] = (x0, y0, x0 + s, y0 + s)
        objmask[i, y0:y0 + s, x0:x0 + s] = True
    return Base(imgs, labels, boxes, objmask)


def base(family: str, n: int, rng: np.random.Generator) -> Base:
    if family == "shapes":
        return shapes(n, rng)
    if family == "photos":
        return photos(n, rng)
    raise ValueError(f"unknown data family {family!r}; known: {', '.join(FAMILIES)}")
