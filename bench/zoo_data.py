"""The shortcut zoo's data: small shape images with one planted confounder kind, in three versions that share
every base image exactly.

Base images (32×32 RGB, three classes disc / square / cross): a smooth random colour field (4×4 noise upsampled,
mean colour jittered per image) with pixel noise, and one shape of 8–13 px, 0.2–0.4 brighter or darker than the
background (low contrast: the shape takes work to learn, as real objects do), kept 4 px clear of the border and out of the top-left 8×8 zone. The ROI is the shape's box.

A confounder kind puts a cue on a subset ``has`` of the images (or on the images of one site):

    corner           a red 5×5 tag in the top-left corner
    letterbox        black bars of 4 px at the top and the bottom
    tint             a colour cast (red +0.10, blue −0.10) over the whole image
    blur             the whole image blurred (Gaussian, sigma 1.2 px): a softer acquisition
    jpeg             stored as JPEG quality 12 (the rest quality 95; every file of this kind is a JPEG)
    text             a burnt-in two-letter marker ("AP"), white, at a random position outside the object
    texture          fine diagonal stripes (period 4 px, ±0.06) in the background
    site_brightness  site A images brighter (+0.12) with less contrast (×0.7)
    site_trace       a metadata column ``site``; site A images carry a faint trace (+0.06 on every 4th row)

Versions (``DataSpec.version``):

- ``confounded`` training data and the i.i.d. held-out set: the cue sits on ``rate`` of the target class's
  images and ``leak`` of the others (site kinds: site A on 85 % of the target class, 15 % of the others);
- ``clean`` training data (the clean twin): the same images with the cue on the same overall share of images,
  drawn independently of the class — the twin sees the artefact but has no reason to use it;
- ``swapped`` held-out copy: the cue moved to the other classes (target: ``leak``, others: ``rate``); a model
  that relies on its cue loses accuracy there (the zoo calls a drop of 15 points or more "relies").

Every version also has a ``scanner`` metadata column correlated with one class (70 % vs 30 %) that leaves no
trace in the images: a pure data-level confounder no model can use.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, zoom

KINDS = ("corner", "letterbox", "tint", "blur", "jpeg", "text", "texture", "site_brightness", "site_trace")
SITE_KINDS = ("site_brightness", "site_trace")
CLASSES = ("disc", "square", "cross")
SIZE = 32
TAG_ZONE = 8  # shapes stay out of the top-left TAG_ZONE × TAG_ZONE pixels
MARGIN = 4

# a 3×5 pixel font for the burnt-in marker
_GLYPHS = {
    "A": ["010", "101", "111", "101", "101"],
    "P": ["110", "101", "110", "100", "100"],
}


@dataclass(frozen=True)
class DataSpec:
    kind: str
    seed: int = 0
    n_train: int = 600
    n_test: int = 300
    rate: float = 0.9
    leak: float = 0.05
    site_rate: float = 0.85
    site_leak: float = 0.15

    @property
    def target(self) -> int:
        """The class that carries the cue (rotates with kind and seed)."""
        return (KINDS.index(self.kind) + self.seed) % len(CLASSES)


@dataclass(frozen=True)
class ZooSet:
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 (exclusive)
    cue: np.ndarray  # (N,) bool: carries the cue
    metadata: dict[str, np.ndarray]  # column -> (N,) str
    fmt: str  # "png" | "jpeg"
    encoded: tuple[bytes, ...] = ()  # jpeg: the files' bytes (images holds them decoded)


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


def _base(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    imgs = np.zeros((n, SIZE, SIZE, 3))
    boxes = np.zeros((n, 4), dtype=np.int64)
    objmask = np.zeros((n, SIZE, SIZE), dtype=bool)
    for i in range(n):
        field = zoom(rng.normal(0, 1, (4, 4, 3)), (SIZE / 4, SIZE / 4, 1), order=3)
        base = 0.45 + rng.normal(0, 0.06, 3)
        bg = base + 0.07 * field + rng.normal(0, 0.05, (SIZE, SIZE, 3))
        s = int(rng.integers(8, 14))
        while True:
            x0 = int(rng.integers(MARGIN, SIZE - MARGIN - s + 1))
            y0 = int(rng.integers(MARGIN, SIZE - MARGIN - s + 1))
            if x0 >= TAG_ZONE or y0 >= TAG_ZONE:
                break
        step = rng.uniform(0.2, 0.4) * (1 if rng.random() < 0.5 else -1)  # low contrast: the shape is work
        col = np.clip(base + step + rng.normal(0, 0.04, 3), 0, 1)
        m = _shape_mask(int(labels[i]), s)[..., None]
        bg[y0:y0 + s, x0:x0 + s] = bg[y0:y0 + s, x0:x0 + s] * (1 - m) + m * col
        imgs[i] = bg
        boxes[i] = (x0, y0, x0 + s, y0 + s)
        objmask[i, y0:y0 + s, x0:x0 + s] = m[..., 0] > 0
    return imgs, labels.astype(np.int64), boxes, objmask


def _text(img: np.ndarray, box: np.ndarray, rng: np.random.Generator) -> None:
    word = "AP"
    w, h = 4 * len(word) - 1, 5
    for _ in range(200):
        x = int(rng.integers(1, SIZE - w - 1))
        y = int(rng.integers(1, SIZE - h - 1))
        x0, y0, x1, y1 = box
        if x + w + 1 <= x0 or x >= x1 + 1 or y + h + 1 <= y0 or y >= y1 + 1:
            break
    for k, ch in enumerate(word):
        for r, row in enumerate(_GLYPHS[ch]):
            for c, bit in enumerate(row):
                if bit == "1":
                    img[y + r, x + 4 * k + c] = 0.96


def _apply(kind: str, imgs: np.ndarray, boxes: np.ndarray, objmask: np.ndarray, has: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    out = imgs.copy()
    idx = np.flatnonzero(has)
    if kind == "corner":
        out[idx, 1:6, 1:6] = (0.95, 0.18, 0.18)
    elif kind == "letterbox":
        out[idx, :4] = 0.0
        out[idx, -4:] = 0.0
    elif kind == "tint":
        out[idx, :, :, 0] += 0.10
        out[idx, :, :, 2] -= 0.10
    elif kind == "blur":
        for i in idx:
            out[i] = gaussian_filter(out[i], sigma=(1.2, 1.2, 0))
    elif kind == "text":
        for i in idx:
            _text(out[i], boxes[i], rng)
    elif kind == "texture":
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        stripes = 0.06 * np.sin(2 * np.pi * (xx + yy) / 4.0)
        for i in idx:
            out[i] += (stripes * ~objmask[i])[..., None]
    elif kind == "site_brightness":
        out[idx] = (out[idx] - 0.5) * 0.7 + 0.5 + 0.12
    elif kind == "site_trace":
        out[idx, ::4] += 0.06
    elif kind == "jpeg":
        pass  # applied when encoding
    else:
        raise ValueError(f"unknown confounder kind {kind!r}")
    return out


def _encode_jpeg(u8: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(u8, mode="RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _decode(blob: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))


def make_set(spec: DataSpec, split: str, version: str) -> ZooSet:
    """``split``: "train" | "test"; ``version``: "confounded" | "clean" | "swapped" (see the module doc).
    The base images depend on (seed, split) only, so every kind and version shares them."""
    n = spec.n_train if split == "train" else spec.n_test
    rng = np.random.default_rng([spec.seed, 1 if split == "train" else 2])
    imgs, labels, boxes, objmask = _base(n, rng)
    crng = np.random.default_rng([spec.seed, 1 if split == "train" else 2, KINDS.index(spec.kind), 7])
    u = crng.random(n)
    is_t = labels == spec.target
    site_kind = spec.kind in SITE_KINDS
    hi, lo = (spec.site_rate, spec.site_leak) if site_kind else (spec.rate, spec.leak)
    if version == "confounded":
        p = np.where(is_t, hi, lo)
    elif version == "swapped":
        p = np.where(is_t, lo, hi)
    elif version == "clean":
        p = np.full(n, (hi + (len(CLASSES) - 1) * lo) / len(CLASSES))
    else:
        raise ValueError(f"unknown version {version!r}")
    has = u < p
    scanner_class = (spec.target + 1) % len(CLASSES)
    v = crng.random(n)
    scanner = np.where(v < np.where(labels == scanner_class, 0.7, 0.3), "s1", "s2")
    meta = {"scanner": scanner.astype(object)}
    if site_kind:
        meta["site"] = np.where(has, "A", "B").astype(object)
    out = _apply(spec.kind, imgs, boxes, objmask, has, crng)
    u8 = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
    if spec.kind == "jpeg":
        blobs = tuple(_encode_jpeg(im, 12 if h else 95) for im, h in zip(u8, has, strict=True))
        return ZooSet(np.stack([_decode(b) for b in blobs]), labels, boxes, has, meta, "jpeg", blobs)
    return ZooSet(u8, labels, boxes, has, meta, "png")


def write_set(zs: ZooSet, folder: Path) -> list[Path]:
    """Write the images as files (PNG, or the JPEG bytes that made them) and return the paths in row order.
    Existing files are kept (sets are deterministic)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(zs.images):
        if zs.fmt == "jpeg":
            p = folder / f"{i:04d}.jpg"
            if not p.exists():
                p.write_bytes(zs.encoded[i])
        else:
            p = folder / f"{i:04d}.png"
            if not p.exists():
                Image.fromarray(img, mode="RGB").save(p)
        paths.append(p)
    return paths
