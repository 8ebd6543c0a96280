"""Attribution maps on disk, per explainer, keyed by everything that changes them.

The key is the prediction key (model, images, preprocessing, device, torch) plus the explainer's options, the
seed, the explain batch size and the tool and captum versions. Every batch of maps is written as soon as it is
computed (sealed: ``sealed.py``), so an interrupted audit resumes where it stopped; a chunk that fails its check
is deleted, noted in the audit's ``CacheLog`` and recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ..version import __version__
from .cache import CACHE_VERSION
from .sealed import UNREADABLE, CacheLog, CacheNote, Damaged, discard, relative, unseal, write_sealed_bytes


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


CHUNK = "attribution chunk"


def _read_chunk(data: bytes) -> tuple[list[str], list[int], np.ndarray]:
    """(ids, targets, maps) of a chunk's checked payload; Damaged when its arrays disagree."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            ids, targets, maps = [str(i) for i in z["ids"].tolist()], [int(t) for t in z["targets"].tolist()], z["maps"]
    except UNREADABLE as e:
        raise Damaged(f"unreadable payload ({type(e).__name__}: {e})") from None
    if not (len(ids) == len(targets) == (len(maps) if maps.ndim else -1)):
        raise Damaged(f"inconsistent: {len(ids)} ids, {len(targets)} targets, {len(maps) if maps.ndim else 0} maps")
    return ids, targets, maps


class AttributionStore:
    """Maps of one explainer on disk: ``<folder>/<key>/chunk-*.npz`` (ids, targets, float32 maps), one sealed file
    per computed batch (``sealed.py``). Lookups read only the files that hold the wanted (sample id, target)
    pairs, and check each file on every read: a damaged one is deleted, its maps are computed again, and ``log``
    notes it."""

    def __init__(self, folder: Path, key: str, explainer: str = "", log: CacheLog | None = None) -> None:
        self.root = folder
        self.folder = folder / f"attributions-{key}"
        self.key = key
        self.store = f"attribution cache ({explainer})" if explainer else "attribution cache"
        self.log = log
        self._index: dict[tuple[str, int], tuple[Path, int]] | None = None

    def _read(self, f: Path) -> tuple[list[str], list[int], np.ndarray] | None:
        """The chunk's contents, or None after discarding it when it fails its check."""
        try:
            return _read_chunk(unseal(f.read_bytes(), CHUNK, f"{self.key}/{f.name}"))
        except FileNotFoundError:
            return None  # removed since it was listed (another audit discarded it)
        except Damaged as e:
            problem = e.reason
        except OSError as e:
            problem = f"cannot be read ({e.strerror or e})"
        discard(f)
        if self.log is not None:
            self.log.add(CacheNote(self.store, relative(f, self.root), problem, "discarded; its maps were computed again"))
        return None

    def _load_index(self) -> dict[tuple[str, int], tuple[Path, int]]:
        if self._index is None:
            self._index = {}
            for f in sorted(self.folder.glob("chunk-*.npz")) if self.folder.is_dir() else []:
                chunk = self._read(f)
                for row, (sid, t) in enumerate(zip(*chunk[:2], strict=True)) if chunk is not None else ():
                    self._index.setdefault((sid, t), (f, row))
        return self._index

    def get(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
        """The cached maps among ``keys`` (a file that fails its check yields nothing, so its maps are
        recomputed)."""
        index = self._load_index()
        by_file: dict[Path, list[tuple[tuple[str, int], int]]] = {}
        for k in keys:
            if k in index:
                f, row = index[k]
                by_file.setdefault(f, []).append((k, row))
        out: dict[tuple[str, int], np.ndarray] = {}
        for f, wanted in by_file.items():
            chunk = self._read(f)
            for k, row in wanted:
                if chunk is not None and row < len(chunk[0]) and (chunk[0][row], chunk[1][row]) == k:
                    out[k] = chunk[2][row].astype(np.float32)
                else:  # gone or changed since it was indexed
                    index.pop(k, None)
        return out

    def put(self, ids: list[str], targets: np.ndarray, maps: np.ndarray) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha256(json.dumps([ids, np.asarray(targets).tolist()]).encode()).hexdigest()[:24]
            final = self.folder / f"chunk-{name}.npz"
            buf = io.BytesIO()
            np.savez(buf, ids=np.array(ids, dtype=str), targets=np.asarray(targets, dtype=np.int64),
                     maps=np.asarray(maps, dtype=np.float32))
            write_sealed_bytes(final, CHUNK, f"{self.key}/{final.name}", buf.getvalue())
        except OSError:
            return
        index = self._load_index()
        for row, (sid, t) in enumerate(zip(ids, np.asarray(targets).tolist(), strict=True)):
            index.setdefault((sid, int(t)), (final, row))
