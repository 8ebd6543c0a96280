"""The held-out set as listed: a CSV manifest, a DataFrame or an image folder, validated up front (no image is
decoded)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import AuditConfig, DataConfig
from ..errors import DataError
from .geometry import geometry_of
from .manifest import _within, read_csv, read_frame
from .records import HeldOutSet, SampleRecord
from .survey import survey

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".dcm"}

__all__ = ["IMAGE_EXTENSIONS", "HeldOutSet", "SampleRecord", "load_heldout"]


def _hidden(folder: Path, p: Path) -> bool:
    """A path below ``folder`` with a component starting with '.' (.ipynb_checkpoints, .DS_Store, ._name, …)."""
    return any(part.startswith(".") for part in p.relative_to(folder).parts)


def _read_folder(cfg: DataConfig, folder: Path) -> HeldOutSet:
    """One subfolder per class; hidden files and folders are skipped at every depth and counted."""
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    subdirs = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    n_hidden = sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and _hidden(folder, p)
                   and p.is_file())
    classes = tuple(cfg.classes) if cfg.classes else tuple(subdirs)
    if len(classes) < 2:
        raise DataError(f"{folder}: needs one subfolder per class (found {len(subdirs)})")
    unknown = sorted(set(subdirs) - set(classes))
    if unknown:
        raise DataError(f"{folder}: subfolder(s) {', '.join(unknown)} not in classes ({', '.join(classes)})")
    recs: list[SampleRecord] = []
    seen: dict[Path, tuple[str, str]] = {}
    for ci, name in enumerate(classes):
        d = folder / name
        files = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(folder, p)
                       and p.is_file()) if d.is_dir() else []
        for f in files:
            if not cfg.allow_outside_root and not _within(folder, f):
                raise DataError(f"{f}: points outside the image folder {folder} (a link?); "
                                f"set data.allow_outside_root to allow it")
            rel = f.relative_to(folder).as_posix()
            key = f.resolve()
            if key in seen:
                other, other_class = seen[key]
                what = "in two classes" if other_class != name else "twice (it would be counted twice)"
                raise DataError(f"{f}: the same file as {other} (a link?) is listed {what}")
            seen[key] = (str(f), name)
            recs.append(SampleRecord(id=rel, path=f, label=ci, source=str(f), resize=geometry_of(cfg)))
    if not recs:
        raise DataError(f"{folder}: no images found (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return HeldOutSet(tuple(recs), classes, (), folder, None, n_hidden_skipped=n_hidden)


def load_heldout(cfg: AuditConfig, frame: pd.DataFrame | None = None) -> HeldOutSet:
    """Validate the listing (files exist, labels known, ROIs sane) without decoding images. ``frame``: a manifest
    as a DataFrame (the Python API; paths relative to the config's base folder) instead of data.manifest."""
    d = cfg.data
    if d.dataframe is not None:
        if frame is None:
            raise DataError("data.dataframe is set by audit.run(data=...) only; a config file names a manifest")
        hs = read_frame(d, frame, cfg.base_dir, d.allow_outside_root, cfg.model.task)
    elif d.manifest is not None:
        hs = read_csv(d, cfg.resolve(d.manifest), d.allow_outside_root, cfg.model.task)
    else:
        assert d.image_folder is not None
        hs = _read_folder(d, cfg.resolve(d.image_folder))
    if hs.multilabel and not hs.masks:
        positives = hs.label_array().sum(axis=0)
        rare = [c for c, n in zip(hs.classes, positives, strict=True) if n == 0 or n == len(hs.records)]
        if rare:  # a label's AUROC and sensitivity need positives and negatives: reported as unavailable
            note = (f"label(s) {', '.join(rare)} are positive in none or all of the held-out samples: their ranking "
                    "metrics are unavailable")
            hs = dataclasses.replace(hs, notes=(*hs.notes, note))
    elif not hs.multilabel:
        counts = np.bincount([r.label for r in hs.records], minlength=len(hs.classes))
        empty = [c for c, n in zip(hs.classes, counts, strict=False) if n == 0]
        if empty and hs.defect_masks and cfg.model.task != "anomaly":
            raise DataError(f"{hs.manifest or hs.root}: class(es) {', '.join(empty)} appear in no row's 'label' "
                            "column: with a 'label' and a 'mask' column the manifest reads as an inspection set "
                            "(defect masks); for segmentation drop the 'label' column (the masks give the classes)")
        if empty:
            raise DataError(f"{hs.manifest or hs.root}: class(es) with no held-out samples: {', '.join(empty)}")
    for col in d.subgroups:
        if col not in hs.metadata_columns:
            raise DataError(
                f"data.subgroups: column {col!r} not in the manifest (metadata columns: "
                f"{', '.join(hs.metadata_columns) or 'none'})"
            )
    s = survey(hs.records, d.image_size, d.resize, d.window, hs.n_hidden_skipped, d.swapped_size)
    return dataclasses.replace(hs, n_aspect_mismatch=s.n_aspect_mismatch, n_image_sizes=s.n_image_sizes,
                               notes=(*hs.notes, *s.notes), swapped_size=s.swapped_size)
