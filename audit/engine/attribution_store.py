"""Attribution maps on disk, per explainer, keyed by everything that changes them.

The key is the prediction key (model, images, preprocessing, device, torch) plus the explainer's options, the
seed, the explain batch size and the tool and captum versions. Every batch of maps is written as soon as it is
computed, so an interrupted audit resumes where it stopped; a damaged chunk is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ..version import __version__
from .cache import CACHE_VERSION


def attribution_key(prediction_key: str, explainer: str, options: dict[str, Any] | None, seed: int,
                    batch_size: int) -> str:
    """Key of one explainer's maps: the prediction key (model, images, preprocessing, device, torch) plus what
    changes the maps."""


    try:
        captum_version = version("captum")
    except PackageNotFoundError:  # pragma: no cover - captum is a dependency
        captum_version = "?"
    payload = json.dumps({
        "v": CACHE_VERSION, "predictions": prediction_key, "explainer": explainer, "options": options or {},
        "seed": seed, "batch": batch_size, "tool": __version__, "captum": captum_version,
    }, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class AttributionStore:
    """Maps of one explainer on disk: ``<folder>/<key>/chunk-*.npz`` (ids, targets, float32 maps), one file per
    computed batch. Lookups read only the files that hold the wanted (sample id, target) pairs."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder = folder / f"attributions-{key}"
        self._index: dict[tuple[str, int], tuple[Path, int]] | None = None

    def _load_index(self) -> dict[tuple[str, int], tuple[Path, int]]:
        if self._index is None:
            self._index = {}
            for f in sorted(self.folder.glob("chunk-*.npz")) if self.folder.is_dir() else []:
                try:
                    with np.load(f, allow_pickle=False) as z:
                        for row, (sid, t) in enumerate(zip(z["ids"].tolist(), z["targets"].tolist(), strict=True)):
                            self._index.setdefault((str(sid), int(t)), (f, row))
                except (OSError, ValueError, KeyError):
                    continue  # a damaged chunk is recomputed
        return self._index

    def get(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
        """The cached maps among ``keys`` (a damaged file yields nothing, so its maps are recomputed)."""
        index = self._load_index()
        by_file: dict[Path, list[tuple[tuple[str, int], int]]] = {}
        for k in keys:
            if k in index:
                f, row = index[k]
                by_file.setdefault(f, []).append((k, row))
        out: dict[tuple[str, int], np.ndarray] = {}
        for f, wanted in by_file.items():
            try:
                with np.load(f, allow_pickle=False) as z:
                    maps = z["maps"]
                    for k, row in wanted:
                        out[k] = maps[row].astype(np.float32)
            except (OSError, ValueError, KeyError, IndexError):
                for k, _ in wanted:
                    index.pop(k, None)
        return out

    def put(self, ids: list[str], targets: np.ndarray, maps: np.ndarray) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha256(json.dumps([ids, np.asarray(targets).tolist()]).encode()).hexdigest()[:24]
            fd, tmp = tempfile.mkstemp(prefix=".chunk-", suffix=".npz", dir=self.folder)
            os.close(fd)
            np.savez(tmp, ids=np.array(ids, dtype=str), targets=np.asarray(targets, dtype=np.int64),
                     maps=np.asarray(maps, dtype=np.float32))
            final = self.folder / f"chunk-{name}.npz"
            os.replace(tmp, final)
        except OSError:
            return
        index = self._load_index()
        for row, (sid, t) in enumerate(zip(ids, np.asarray(targets).tolist(), strict=True)):
            index.setdefault((sid, int(t)), (final, row))
