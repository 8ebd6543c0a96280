"""What the decoding step computes per image for the data checks and the data fingerprint (runs in loader
processes and Ray tasks: it must pickle and must not need the driver).

Per listed image: the LtHash lanes of its fingerprint line (``fingerprint.py``; the file's SHA-256 is read from
the file, so an image that does not decode is still fingerprinted) and, from the decoded pixels, the properties
of ``properties.py`` and the hashes and thumbnail of ``duplicates.py``. A batch of rows becomes arrays
(``collate``): per row its listing row, whether it decoded, the numeric properties, the two file categories,
the perceptual hash, the exact digest and the 32×32 thumbnail; per batch the sum of the lanes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AuditError
from ..loading.decode import DecodedImage, DecodeOptions, decode_image
from ..loading.model import sha256_file
from ..loading.records import SampleRecord
from ..loading.roi import roi_mask
from .duplicates import THUMB, image_hashes
from .fingerprint import LANES, lanes, line
from .properties import NUMERIC, properties_of

_NAN = np.full(len(NUMERIC), np.nan)


def relative(path: Path, root: str) -> str:
    """The path relative to the (resolved) data root, else absolute (as the fingerprint lines name images)."""
    p = path.resolve()
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def label_text(rec: SampleRecord) -> str:
    """The class index, or a multi-label sample's '|'-joined label set."""
    return "|".join(map(str, rec.label_set)) if rec.label < 0 else str(rec.label)


def fingerprint_line(rec: SampleRecord, root: str) -> bytes:
    try:
        sha = sha256_file(rec.path)
    except OSError as e:
        sha = f"unreadable ({e.strerror or e})"
    mask = sha256_file(rec.mask) if rec.mask is not None else ""
    return line(relative(rec.path, root), sha, label_text(rec), mask)


def _roi(rec: SampleRecord, shape: tuple[int, ...]) -> np.ndarray | None:
    """The ROI in the image's own pixels, or None (also when it cannot be read: the loader reports that)."""
    if rec.roi_box is None and rec.roi_mask is None:
        return None
    try:
        return roi_mask(rec, (shape[0], shape[1]), "stretch")
    except (AuditError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class ImageInspector:
    """``root``: the resolved data root; ``properties`` / ``hashes``: which facts the configured checks need."""

    root: str
    channels: int
    decode: DecodeOptions
    properties: bool
    hashes: bool

    @property
    def needs_pixels(self) -> bool:
        return self.properties or self.hashes

    def __call__(self, row: int, rec: SampleRecord, image: DecodedImage | None, error: str) -> dict[str, Any]:
        out: dict[str, Any] = {"row": int(row), "lanes": lanes(fingerprint_line(rec, self.root)), "ok": False}
        if not self.needs_pixels:  # nothing to decode (metadata only, or no checks): every listed row counts
            out["ok"] = True
            return out
        try:
            if image is None and not error:
                image = decode_image(rec.path, self.channels, self.decode)
            if image is None:
                return out
            a = image.to_array()
            if self.properties:
                props = properties_of(rec.path, a, _roi(rec, a.shape))
                out["props"] = np.array([float(props[k]) for k in NUMERIC])
                out["fmt"], out["bits"] = str(props["file_format"]), str(props["bit_depth"])
            if self.hashes:
                out["phash"], out["exact"], out["thumb"] = image_hashes(a)
        except (AuditError, OSError, ValueError):
            return {"row": out["row"], "lanes": out["lanes"], "ok": False}
        out["ok"] = True
        return out

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        n = len(rows)
        ok = np.array([r["ok"] for r in rows], dtype=bool)
        out = {"row": np.array([r["row"] for r in rows], dtype=np.int64), "ok": ok,
               "lane_sum": np.sum([r["lanes"] for r in rows], axis=0, dtype=np.uint64) if n
               else np.zeros(LANES, dtype=np.uint64), "n_lines": np.array(n, dtype=np.int64)}
        if self.properties:
            out["props"] = np.stack([r["props"] if r["ok"] else _NAN for r in rows]) if n \
                else np.zeros((0, len(NUMERIC)))
            out["fmt"] = np.array([r["fmt"] if r["ok"] else "" for r in rows], dtype=str)
            out["bits"] = np.array([r["bits"] if r["ok"] else "" for r in rows], dtype=str)
        if self.hashes:
            out["phash"] = np.array([r["phash"] if r["ok"] else 0 for r in rows], dtype=np.uint64)
            out["exact"] = np.frombuffer(b"".join(r["exact"] if r["ok"] else bytes(16) for r in rows),
                                         dtype=np.uint64).reshape(n, 2).copy()
            out["thumb"] = np.stack([r["thumb"].reshape(-1) if r["ok"] else np.zeros(THUMB * THUMB, np.uint8)
                                     for r in rows]) if n else np.zeros((0, THUMB * THUMB), dtype=np.uint8)
        return out
