"""The images the robustness stage perturbs: seeded subsets of the scored samples as [0, 1] tensors (the model's
inputs with the mean/std normalisation undone), in memory-bounded chunks, and the normalisation as the model's
input expects it; other images (an OOD folder, a fit manifest) decoded with the held-out preprocessing."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..engine.probe import ModelProbe
from ..errors import DataError
from ..loading.dataset import ImageDataset
from ..loading.preprocess import Preprocess

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".dcm")
CHUNK_VALUES = 1 << 25  # floats of [0, 1] images held at once (128 MiB)


def subset_rows(n: int, size: int, seed: int, salt: str) -> np.ndarray:
    """Sorted row positions of a seeded subset of ``size`` of ``n`` rows (all rows when ``size`` is 0 or >= n)."""
    if size <= 0 or size >= n:
        return np.arange(n)
    rng = np.random.default_rng([seed, zlib.crc32(salt.encode())])
    return np.sort(rng.choice(n, size=size, replace=False))


@dataclass(frozen=True)
class Normalise:
    """[0, 1] images -> model inputs: (x - mean) / std per channel (picklable: it travels to engine workers)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, preprocess: Preprocess) -> Normalise:
        return cls(tuple(preprocess.mean), tuple(preprocess.std))

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        m = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)
        s = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)
        return m, s

    def __call__(self, x: Tensor) -> Tensor:
        m, s = self._stats(x)
        return (x - m) / s

    def undo(self, x: Tensor) -> Tensor:
        """Model inputs -> [0, 1] images (clipped: the float round trip can step outside by an ulp)."""
        m, s = self._stats(x)
        return (x * s + m).clamp(0.0, 1.0)


def display(x: Tensor) -> np.ndarray:
    """One [0, 1] image (C, H, W) as an (H, W, 3) array for the report."""
    a = x.detach().cpu().float().clamp(0, 1).numpy().transpose(1, 2, 0)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a[..., :3]


def unit_images(probe: ModelProbe, rows: np.ndarray) -> Tensor:
    """The scored samples at ``rows`` as [0, 1] images (n, C, H, W) on the CPU."""
    ids = [str(s) for s in probe.predictions.ids[rows]]
    return Normalise.of(probe.preprocess).undo(probe.images(ids))


def chunks(probe: ModelProbe, rows: np.ndarray) -> Iterator[tuple[np.ndarray, Tensor]]:
    """(positions in ``rows``, [0, 1] images) in chunks of at most ``CHUNK_VALUES`` values."""
    c = probe.preprocess.channels
    h, w = probe.input_size
    per = max(1, CHUNK_VALUES // max(c * h * w, 1))
    for s in range(0, len(rows), per):
        pos = np.arange(s, min(s + per, len(rows)))
        yield pos, unit_images(probe, rows[pos])


@dataclass(frozen=True)
class Listed:
    """What ImageDataset reads of a record: the path and the row or file to name in an error."""

    path: Path
    source: str


def folder_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted, hidden files left out)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: OOD image folder not found")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def decode_all(paths: Sequence[Path], preprocess: Preprocess, sources: Sequence[str] | None = None) -> Tensor:
    """Model inputs (n, C, H, W) of image files, decoded and preprocessed as the held-out set (an unreadable file
    is a DataError naming it)."""
    recs = [Listed(p, sources[i] if sources is not None else str(p)) for i, p in enumerate(paths)]
    ds = ImageDataset(recs, preprocess)  # type: ignore[arg-type]
    if not recs:
        return torch.empty(0, preprocess.channels, *(preprocess.size or (0, 0)))
    return torch.stack([ds[i][1] for i in range(len(recs))])  # type: ignore[misc]
