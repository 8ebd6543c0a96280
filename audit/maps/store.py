"""maps.npz: the report's attribution maps kept on disk (float16 with a float32 scale per map).

One file per report, next to results.json. For every explainer that produced maps it holds the sample ids, the
class explained, the true label, the maps and each map's share of positive mass inside the sample's ROI (NaN
without one). ``audit compare`` and ``audit run --baseline`` read it to compare explanations sample by sample.
Maps are divided by their largest absolute value before the cast, so float16 keeps ~3 significant digits of every
map whatever its magnitude (no overflow at 65504).
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..products import AttributionSet

MAPS_FILE = "maps.npz"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class StoredMaps:
    """Maps of one explainer for a set of samples."""

    explainer: str
    ids: tuple[str, ...]
    targets: np.ndarray  # (n,) int64 class explained
    labels: np.ndarray  # (n,) int64 true class
    maps: np.ndarray  # (n, H, W) float32
    roi_share: np.ndarray  # (n,) float64, NaN without ROI
    signed: bool

    def index(self) -> dict[tuple[str, int], int]:
        return {(sid, int(t)): i for i, (sid, t) in enumerate(zip(self.ids, self.targets, strict=True))}


def _split(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = np.nan_to_num(np.asarray(maps, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    scale = np.abs(m).reshape(len(m), -1).max(axis=1) if len(m) else np.zeros(0)
    safe = np.where(scale > 0, scale, 1.0)
    return (m / safe[:, None, None]).astype(np.float16), scale.astype(np.float32)


def save_maps(path: Path, sets: Mapping[str, StoredMaps]) -> None:
    """Write every set into one compressed npz (keys ``<explainer>:<field>`` and a JSON ``meta``)."""
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT_VERSION, "explainers": {}}
    for name, s in sets.items():
        q, scale = _split(s.maps)
        arrays[f"{name}:ids"] = np.array(s.ids, dtype=str)
        arrays[f"{name}:targets"] = np.asarray(s.targets, dtype=np.int64)
        arrays[f"{name}:labels"] = np.asarray(s.labels, dtype=np.int64)
        arrays[f"{name}:maps"] = q
        arrays[f"{name}:scale"] = scale
        arrays[f"{name}:roi_share"] = np.asarray(s.roi_share, dtype=np.float64)
        meta["explainers"][name] = {"signed": bool(s.signed), "n": len(s.ids)}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_maps(path: Path) -> dict[str, StoredMaps]:
    """Read a maps.npz; DataError naming the file when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT_VERSION:
                raise DataError(f"{path}: maps file format {meta.get('format')!r} is not supported")
            out = {}
            for name, info in meta["explainers"].items():
                scale = z[f"{name}:scale"].astype(np.float32)
                maps = z[f"{name}:maps"].astype(np.float32) * scale[:, None, None]
                out[name] = StoredMaps(
                    explainer=name, ids=tuple(str(s) for s in z[f"{name}:ids"]),
                    targets=z[f"{name}:targets"].astype(np.int64), labels=z[f"{name}:labels"].astype(np.int64),
                    maps=maps, roi_share=z[f"{name}:roi_share"].astype(np.float64), signed=bool(info["signed"]),
                )
            return out
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path}: not a readable model-audit maps file ({type(e).__name__}: {e})") from None


def maps_beside(results_path: str | Path) -> Path | None:
    """The maps.npz next to a results.json (or in a report folder), when there is one."""
    p = Path(results_path)
    folder = p if p.is_dir() else p.parent
    f = folder / MAPS_FILE
    return f if f.is_file() else None


def from_attributions(aset: AttributionSet, labels: np.ndarray,
                      roi_of: Callable[[str, int], np.ndarray | None]) -> StoredMaps:
    """A StoredMaps from an explainer's maps, with the ROI share of each map (``roi_of(id, target)``: the region
    for the explained target, e.g. that class's true region in a segmentation)."""
    from .stats import roi_share

    shares = np.array([roi_share(m, roi_of(sid, int(t)))
                       for sid, m, t in zip(aset.ids, aset.maps, aset.targets, strict=True)])
    return StoredMaps(explainer=aset.explainer, ids=tuple(aset.ids), targets=np.asarray(aset.targets, np.int64),
                      labels=np.asarray(labels, np.int64), maps=np.asarray(aset.maps, np.float32),
                      roi_share=shares.astype(np.float64), signed=aset.signed)
