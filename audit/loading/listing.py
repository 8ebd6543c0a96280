"""The held-out set as listed: a CSV manifest or an image folder, validated up front (no image is decoded)."""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import AuditConfig, DataConfig
from ..errors import DataError
from .geometry import ResizeMode
from .roi import check_roi
from .survey import survey

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".dcm"}
_INDEX = re.compile(r"-?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|nan|inf|infinity)",
                     re.ASCII | re.IGNORECASE)  # non-finite values reach the ROI box check
ROI_BOX = ("roi_x0", "roi_y0", "roi_x1", "roi_y1")
RESERVED = {"path", "label", "id", "roi_mask", *ROI_BOX}


@dataclass(frozen=True)
class SampleRecord:
    """One held-out sample as listed (not yet decoded)."""

    id: str
    path: Path
    label: int
    roi_box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in original pixels
    roi_mask: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # "manifest.csv row 7" — for error messages
    resize: ResizeMode = "stretch"  # data.resize, so that ROI masks follow the pixels' geometry


@dataclass(frozen=True)
class HeldOutSet:
    """The listed samples, plus what the listing noticed: hidden files skipped in an image folder, images whose
    aspect ratio differs from image_size's by more than 10 % under resize = "stretch", the number of distinct
    image sizes, and ``notes`` (one sentence each, for the report; also logged as warnings)."""

    records: tuple[SampleRecord, ...]
    classes: tuple[str, ...]
    metadata_columns: tuple[str, ...]
    root: Path
    manifest: Path | None
    n_hidden_skipped: int = 0
    n_aspect_mismatch: int = 0
    n_image_sizes: int = 0
    notes: tuple[str, ...] = ()

    def metadata_frame(self) -> pd.DataFrame:
        rows = [r.metadata for r in self.records]
        return pd.DataFrame(rows, columns=list(self.metadata_columns))


def _within(root: Path, p: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _parse_label(raw: str, classes: Sequence[str] | None, where: str) -> str | int:
    raw = raw.strip()
    if classes is not None:
        if raw in classes:
            return classes.index(raw)
        if _INDEX.fullmatch(raw):  # ASCII digits only: int() would accept other scripts' digits
            i = int(raw)
            if 0 <= i < len(classes):
                return i
        raise DataError(f"{where}: field 'label': {raw!r} is not in classes ({', '.join(classes)})")
    if raw == "":
        raise DataError(f"{where}: field 'label' is empty")
    return raw


def _check_duplicate(seen: dict[Path, tuple[int, str | int]], full: Path, lineno: int, label: str | int,
                     where: str, rel: str) -> None:
    """One file, one sample: the same file (after resolving links and '..') listed twice is refused, naming both
    rows — with different labels the set contradicts itself, with the same label the sample would count twice."""
    key = full.resolve()
    if key in seen:
        first, first_label = seen[key]
        if first_label != label:
            raise DataError(f"{where}: field 'path': {rel!r} is the same file as row {first} but with another label "
                            f"({label!r} here, {first_label!r} there)")
        raise DataError(f"{where}: field 'path': {rel!r} is the same file as row {first} (listed twice, it would be "
                        f"counted twice)")
    seen[key] = (lineno, label)


def _read_manifest(cfg: DataConfig, manifest: Path, allow_outside: bool) -> HeldOutSet:
    if not manifest.is_file():
        raise DataError(f"{manifest}: manifest file not found")
    root = manifest.parent
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{manifest}: cannot read as CSV: {e}") from None
    header = [h.strip() for h in header]
    for col in ("path", "label"):
        if col not in header:
            raise DataError(f"{manifest}: missing column {col!r} (columns are: {', '.join(header) or 'none'})")
    box_cols = [c for c in ROI_BOX if c in header]
    if box_cols and len(box_cols) != 4:
        missing = sorted(set(ROI_BOX) - set(box_cols))
        raise DataError(f"{manifest}: ROI box needs all of {', '.join(ROI_BOX)}; missing {', '.join(missing)}")
    if box_cols and "roi_mask" in header:
        raise DataError(f"{manifest}: give either roi_x0..roi_y1 or roi_mask, not both")
    if not rows:
        raise DataError(f"{manifest}: the manifest has no rows")
    meta_cols = tuple(h for h in header if h not in RESERVED)
    classes = tuple(cfg.classes) if cfg.classes else None
    raw_labels: list[str | int] = []
    records: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    seen_paths: dict[Path, tuple[int, str | int]] = {}
    for lineno, row in enumerate(rows, start=2):
        where = f"{manifest} row {lineno}"
        if None in row:
            raise DataError(f"{where}: more fields than columns in the header")
        row = {k.strip(): (v if v is not None else "") for k, v in row.items()}
        rel = row.get("path", "").strip()
        if not rel:
            raise DataError(f"{where}: field 'path' is empty")
        p = Path(rel)
        if p.is_absolute() and not allow_outside:
            raise DataError(f"{where}: field 'path': absolute path {rel!r} not allowed (set data.allow_outside_root)")
        full = p if p.is_absolute() else root / p
        if not allow_outside and not _within(root, full):
            raise DataError(f"{where}: field 'path': {rel!r} points outside the data root {root}")
        if not full.is_file():
            raise DataError(f"{where}: field 'path': image file not found: {full}")
        sid = row.get("id", "").strip() or rel
        if sid in seen_ids:
            raise DataError(f"{where}: duplicate sample id {sid!r} (first at row {seen_ids[sid]})")
        seen_ids[sid] = lineno
        raw_labels.append(_parse_label(row.get("label", ""), classes, where))
        _check_duplicate(seen_paths, full, lineno, raw_labels[-1], where, rel)
        box = None
        if box_cols:
            vals = []
            for c in ROI_BOX:
                raw = (row[c] or "").strip()
                if not _NUMBER.fullmatch(raw):  # float() would also take '1_0' and other scripts' digits
                    raise DataError(f"{where}: field {c!r}: {row[c]!r} is not a number")
                vals.append(float(raw))
            x0, y0, x1, y1 = vals
            if not (np.isfinite(vals).all() and x1 > x0 and y1 > y0 and x0 >= 0 and y0 >= 0):
                raise DataError(f"{where}: ROI box {tuple(vals)} is empty, inverted or negative (need x0<x1, y0<y1)")
            box = (x0, y0, x1, y1)
        mask = None
        if "roi_mask" in header and row.get("roi_mask", "").strip():
            mrel = Path(row["roi_mask"].strip())
            mask = mrel if mrel.is_absolute() else root / mrel
            if not allow_outside and not _within(root, mask):
                raise DataError(f"{where}: field 'roi_mask': {str(mrel)!r} points outside the data root {root}")
            if not mask.is_file():
                raise DataError(f"{where}: field 'roi_mask': mask file not found: {mask}")
        records.append(
            {"id": sid, "path": full, "roi_box": box, "roi_mask": mask,
             "metadata": {c: row.get(c, "") for c in meta_cols}, "source": where}
        )
    if classes is None:
        names = sorted({str(lbl) for lbl in raw_labels})
        if len(names) < 2:
            raise DataError(f"{manifest}: only one label value ({names[0]!r}); set data.classes")
        classes = tuple(names)
        raw_labels = [classes.index(str(lbl)) for lbl in raw_labels]
    recs = tuple(SampleRecord(label=int(lbl), resize=cfg.resize, **r)
                 for lbl, r in zip(raw_labels, records, strict=True))
    for rec in recs:
        if rec.roi_box is not None or rec.roi_mask is not None:
            check_roi(rec)
    return HeldOutSet(recs, classes, meta_cols, root, manifest)


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
            recs.append(SampleRecord(id=rel, path=f, label=ci, source=str(f), resize=cfg.resize))
    if not recs:
        raise DataError(f"{folder}: no images found (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return HeldOutSet(tuple(recs), classes, (), folder, None, n_hidden_skipped=n_hidden)


def load_heldout(cfg: AuditConfig) -> HeldOutSet:
    """Validate the listing (files exist, labels known, ROIs sane) without decoding images."""
    d = cfg.data
    if d.manifest is not None:
        hs = _read_manifest(d, cfg.resolve(d.manifest), d.allow_outside_root)
    else:
        assert d.image_folder is not None
        hs = _read_folder(d, cfg.resolve(d.image_folder))
    counts = np.bincount([r.label for r in hs.records], minlength=len(hs.classes))
    empty = [c for c, n in zip(hs.classes, counts, strict=False) if n == 0]
    if empty:
        raise DataError(f"{hs.manifest or hs.root}: class(es) with no held-out samples: {', '.join(empty)}")
    for col in d.subgroups:
        if col not in hs.metadata_columns:
            raise DataError(
                f"data.subgroups: column {col!r} not in the manifest (metadata columns: "
                f"{', '.join(hs.metadata_columns) or 'none'})"
            )
    s = survey(hs.records, d.image_size, d.resize, d.window, hs.n_hidden_skipped)
    return dataclasses.replace(hs, n_aspect_mismatch=s.n_aspect_mismatch, n_image_sizes=s.n_image_sizes,
                               notes=s.notes)
