"""The shortcut zoo's data: a family's base images (zoo_bases.py) with one planted confounder kind
(zoo_cues.py), in three versions that share every base image exactly.

Versions (``DataSpec.version``):

- ``confounded`` training data and the i.i.d. held-out set: the cue sits on ``rate`` (90 %) of the target
  class's images and ``leak`` (5 %) of the others (site kinds: site A on 85 % of the target class, 15 % of the
  others) — the held-out set is confounded as in deployment, the cue riding with the class;
- ``clean`` training data (the clean twin): the same images with the cue on half of them (50/50), drawn
  independently of the class — the twin sees the artefact but has no reason to use it;
- ``swapped`` held-out copy: the cue moved to the other classes (target: ``leak``, others: ``rate``); a model
  that relies on its cue loses accuracy there (the zoo calls a drop of 15 points or more "relies").

Every version also has a ``scanner`` metadata column correlated with one class (70 % vs 30 %) that leaves no
trace in the images: a pure data-level confounder no model can use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from zoo_bases import CLASSES, FAMILIES, Base, base
from zoo_cues import JPEG_QUALITY, KINDS, SITE_KINDS, apply, decode, encode_jpeg

__all__ = ["CLASSES", "FAMILIES", "KINDS", "SITE_KINDS", "DataSpec", "ZooSet", "make_set", "write_set"]
CLEAN_RATE = 0.5


@dataclass(frozen=True)
class DataSpec:
    kind: str
    seed: int = 0
    family: str = "shapes"
    n_train: int = 600
    n_test: int = 300
    rate: float = 0.9
    leak: float = 0.05
    site_rate: float = 0.85
    site_leak: float = 0.15

    @property
    def target(self) -> int:
        """The class that carries the cue (rotates with kind and seed)."""
        return (KINDS.index(self.kind) + self.seed) % len(self.classes)

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASSES[self.family]


@dataclass(frozen=True)
class ZooSet:
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 (exclusive)
    cue: np.ndarray  # (N,) bool: carries the cue
    metadata: dict[str, np.ndarray]  # column -> (N,) str
    fmt: str  # "png" | "jpeg"
    encoded: tuple[bytes, ...] = ()  # jpeg: the files' bytes (images holds them decoded)


@cache
def _base(family: str, n: int, seed: int, split: int) -> Base:
    """A family's base images, shared by every kind and version (read only: the cues copy them)."""
    return base(family, n, np.random.default_rng([seed, split, FAMILIES.index(family)]))


def make_set(spec: DataSpec, split: str, version: str) -> ZooSet:
    """``split``: "train" | "test"; ``version``: "confounded" | "clean" | "swapped" (see the module doc).
    The base images depend on (family, seed, split) only, so every kind and version shares them."""
    n = spec.n_train if split == "train" else spec.n_test
    fam = FAMILIES.index(spec.family)
    s = 1 if split == "train" else 2
    b = _base(spec.family, n, spec.seed, s)
    crng = np.random.default_rng([spec.seed, s, fam, KINDS.index(spec.kind), 7])
    u = crng.random(n)
    is_t = b.labels == spec.target
    site_kind = spec.kind in SITE_KINDS
    hi, lo = (spec.site_rate, spec.site_leak) if site_kind else (spec.rate, spec.leak)
    if version == "confounded":
        p = np.where(is_t, hi, lo)
    elif version == "swapped":
        p = np.where(is_t, lo, hi)
    elif version == "clean":
        p = np.full(n, CLEAN_RATE)
    else:
        raise ValueError(f"unknown version {version!r}")
    has = u < p
    scanner_class = (spec.target + 1) % len(spec.classes)
    v = crng.random(n)
    scanner = np.where(v < np.where(b.labels == scanner_class, 0.7, 0.3), "s1", "s2")
    meta = {"scanner": scanner.astype(object)}
    if site_kind:
        meta["site"] = np.where(has, "A", "B").astype(object)
    out = apply(spec.kind, b.images, b.boxes, b.objmask, has, crng)
    u8 = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
    if spec.kind == "jpeg":
        blobs = tuple(encode_jpeg(im, JPEG_QUALITY[0] if h else JPEG_QUALITY[1]) for im, h in zip(u8, has, strict=True))
        return ZooSet(np.stack([decode(blob) for blob in blobs]), b.labels, b.boxes, has, meta, "jpeg", blobs)
    return ZooSet(u8, b.labels, b.boxes, has, meta, "png")


def write_set(zs: ZooSet, folder: Path) -> list[Path]:
    """Write the images as files (PNG, or the JPEG bytes that made them) and return the paths in row order.
    Existing files are kept (sets are deterministic; the folder name carries the data key)."""
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
