"""A manifest: one row per sample (path, label, optional id, ROI box or mask, metadata columns), from a CSV file
or a pandas DataFrame (the Python API), validated row by row; errors name the source, row and field."""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import DataConfig
from ..errors import DataError
from .geometry import geometry_of
from .labelmask import check_label_mask
from .records import HeldOutSet, SampleRecord
from .roi import check_roi

_INDEX = re.compile(r"-?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|nan|inf|infinity)",
                     re.ASCII | re.IGNORECASE)  # non-finite values reach the ROI box check
ROI_BOX = ("roi_x0", "roi_y0", "roi_x1", "roi_y1")
RESERVED = {"path", "label", "labels", "mask", "id", "roi_mask", *ROI_BOX}


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


def label_mode(header: list[str], classes: Sequence[str] | None, name: str, task: str = "auto") -> str:
    """How rows give their labels: 'label' (one class), 'labels' (a '|'-separated set), 'columns' (one 0/1 column
    per class, the columns named as in data.classes) or 'mask' (a per-pixel class mask: segmentation; beside a
    'label' column, 'mask' holds defect masks of an inspection set). ``task``: model.task, which settles a
    manifest that has both a 'label' column and one 0/1 column per class."""
    per_class = bool(classes) and all(c in header for c in classes or ())
    if "mask" in header and "label" in header and task == "segmentation":
        raise DataError(f"{name}: column 'label' does not belong in a segmentation manifest: each sample's classes "
                        "come from its 'mask' (class indices per pixel); drop the 'label' column ('label' beside "
                        "'mask' lists an inspection set with defect masks: model.task = \"anomaly\")")
    if "mask" in header and "label" not in header and "labels" not in header:
        if not classes:
            raise DataError(f"{name}: a 'mask' column needs data.classes (the mask values index it)")
        return "mask"
    if "label" in header and "labels" in header:
        raise DataError(f"{name}: give either a 'label' column (one class) or 'labels' (a set), not both")
    if "labels" in header:
        return "labels"
    if "label" in header and per_class:
        if task == "multilabel":
            return "columns"
        if task == "auto":
            raise DataError(f"{name}: has a 'label' column and a 0/1 column for every class: set model.task = "
                            "\"multilabel\" (independent sigmoids, the columns are the labels) or \"multiclass\" (one "
                            "softmax, the 'label' column is the class)")
        return "label"
    if "label" in header:
        return "label"
    if per_class:
        return "columns"
    raise DataError(f"{name}: missing column 'label' (or 'labels' for multi-label sets, or one 0/1 column per class "
                    f"named as in data.classes; columns are: {', '.join(header) or 'none'})")


def _parse_label_set(row: dict[str, Any], mode: str, classes: Sequence[str] | None, sep: str,
                     where: str) -> tuple[str, ...]:
    """A multi-label row's positive labels as names (validated against ``classes`` when given)."""
    if mode == "columns":
        assert classes is not None
        out = []
        for c in classes:
            raw = str(row.get(c, "")).strip()
            if raw not in ("0", "1"):
                raise DataError(f"{where}: field {c!r}: {raw!r} is not 0 or 1")
            if raw == "1":
                out.append(c)
        return tuple(out)
    names = tuple(dict.fromkeys(n.strip() for n in str(row.get("labels", "")).split(sep) if n.strip()))
    if classes is not None:
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise DataError(f"{where}: field 'labels': {unknown[0]!r} is not in classes ({', '.join(classes)})")
    return names


def _file(row: dict[str, Any], col: str, root: Path, allow_outside: bool, where: str) -> Path | None:
    """A file named in column ``col`` (relative to the manifest), checked to exist and to stay in the data root."""
    raw = str(row.get(col, "")).strip()
    if not raw:
        return None
    rel = Path(raw)
    full = rel if rel.is_absolute() else root / rel
    if not allow_outside and not _within(root, full):
        raise DataError(f"{where}: field {col!r}: {raw!r} points outside the data root {root}")
    if not full.is_file():
        raise DataError(f"{where}: field {col!r}: file not found: {full}")
    return full


def _refuse_nul(header: Sequence[str], rows: Sequence[dict[str, Any]], name: str, first_row: int) -> None:
    """A NUL character is in no file name, class or metadata value: it marks a binary or damaged file (the csv
    module reads it as text)."""
    for h in header:
        if "\x00" in h:
            raise DataError(f"{name}: the header has a NUL character in column {h!r} (a binary or damaged file?)")
    for lineno, row in enumerate(rows, start=first_row):
        for col, value in row.items():
            if "\x00" in str(value):
                raise DataError(f"{name} row {lineno}: field {col!r} contains a NUL character (a binary or damaged "
                                "file?)")


def _check_header(header: list[str], name: str) -> list[str]:
    if "path" not in header:
        raise DataError(f"{name}: missing column 'path' (columns are: {', '.join(header) or 'none'})")
    box_cols = [c for c in ROI_BOX if c in header]
    if box_cols and len(box_cols) != 4:
        missing = sorted(set(ROI_BOX) - set(box_cols))
        raise DataError(f"{name}: ROI box needs all of {', '.join(ROI_BOX)}; missing {', '.join(missing)}")
    if box_cols and "roi_mask" in header:
        raise DataError(f"{name}: give either roi_x0..roi_y1 or roi_mask, not both")
    return box_cols


def read_rows(cfg: DataConfig, header: list[str], rows: Sequence[dict[str, Any]], root: Path, name: str,
              first_row: int, allow_outside: bool, manifest: Path | None, task: str = "auto") -> HeldOutSet:
    """Records from manifest rows (values as text; ``first_row`` is the number the first row is called by)."""
    box_cols = _check_header(header, name)
    classes = tuple(cfg.classes) if cfg.classes else None
    mode = label_mode(header, classes, name, task)
    if not rows:
        raise DataError(f"{name}: the manifest has no rows")
    geometry = geometry_of(cfg)
    label_cols = set(classes or ()) if mode == "columns" else set()
    meta_cols = tuple(h for h in header if h not in RESERVED and h not in label_cols)
    label_sets: list[tuple[str, ...]] = []
    raw_labels: list[str | int] = []
    records: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    seen_paths: dict[Path, tuple[int, str | int]] = {}
    _refuse_nul(header, rows, name, first_row)
    for lineno, row in enumerate(rows, start=first_row):
        where = f"{name} row {lineno}"
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
        if mode == "label":
            raw_labels.append(_parse_label(row.get("label", ""), classes, where))
        elif mode == "mask":
            label_sets.append(())  # filled from the mask below
            raw_labels.append(row.get("mask", ""))
        else:
            label_sets.append(_parse_label_set(row, mode, classes, cfg.label_separator, where))
            raw_labels.append("|".join(label_sets[-1]))
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
        label_mask = None
        if mode == "mask":
            label_mask = _file(row, "mask", root, allow_outside, where)
            if label_mask is None:
                raise DataError(f"{where}: field 'mask' is empty (every sample of a segmentation set needs its mask)")
        elif "mask" in header:  # an inspection set's defect mask (anomaly task); may be empty for a normal image
            label_mask = _file(row, "mask", root, allow_outside, where)
            if label_mask is not None:
                check_label_mask(label_mask, full, None, where)
        records.append(
            {"id": sid, "path": full, "roi_box": box, "roi_mask": mask, "mask": label_mask,
             "metadata": {c: row.get(c, "") for c in meta_cols}, "source": where}
        )
    if mode == "mask":
        assert classes is not None
        label_sets = [tuple(classes[int(v)] for v in np.unique(check_label_mask(r["mask"], r["path"], len(classes),
                                                                              r["source"])) if v >= 0)
                      for r in records]
    if mode != "label":
        if classes is None:
            classes = tuple(sorted({n for s in label_sets for n in s}))
            if len(classes) < 1:
                raise DataError(f"{name}: no row lists a label; set data.classes")
        recs = tuple(SampleRecord(label=-1, label_set=tuple(sorted(classes.index(n) for n in s)), resize=geometry,
                                  **r) for s, r in zip(label_sets, records, strict=True))
    else:
        if classes is None:
            names = sorted({str(lbl) for lbl in raw_labels})
            if len(names) < 2:
                raise DataError(f"{name}: only one label value ({names[0]!r}); set data.classes")
            classes = tuple(names)
            raw_labels = [classes.index(str(lbl)) for lbl in raw_labels]
        recs = tuple(SampleRecord(label=int(lbl), resize=geometry, **r)
                     for lbl, r in zip(raw_labels, records, strict=True))
    for rec in recs:
        if rec.roi_box is not None or rec.roi_mask is not None:
            check_roi(rec)
    return HeldOutSet(recs, classes, meta_cols, root, manifest, multilabel=mode != "label", masks=mode == "mask",
                      defect_masks=mode == "label" and "mask" in header)


def read_csv(cfg: DataConfig, manifest: Path, allow_outside: bool, task: str = "auto") -> HeldOutSet:
    """A CSV manifest (UTF-8, with or without BOM); paths are relative to its folder."""
    if not manifest.is_file():
        raise DataError(f"{manifest}: manifest file not found")
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{manifest}: cannot read as CSV: {e}") from None
    for lineno, row in enumerate(rows, start=2):
        if None in row:
            raise DataError(f"{manifest} row {lineno}: more fields than columns in the header")
    header = [h.strip() for h in header]
    clean = [{k.strip(): (v if v is not None else "") for k, v in row.items()} for row in rows]
    return read_rows(cfg, header, clean, manifest.parent, str(manifest), 2, allow_outside, manifest, task)


def read_frame(cfg: DataConfig, frame: pd.DataFrame, root: Path, allow_outside: bool, task: str = "auto"
               ) -> HeldOutSet:
    """A manifest given as a DataFrame (the Python API): the same columns as the CSV; paths relative to ``root``;
    rows are named by their position (0-based)."""
    header = [str(c).strip() for c in frame.columns]
    text = frame.astype(object).where(frame.notna(), "")
    rows = [{h: ("" if v is None else str(v)) for h, v in zip(header, values, strict=True)}
            for values in text.itertuples(index=False, name=None)]
    hs = read_rows(cfg, header, rows, root, "data frame", 0, allow_outside, None, task)
    return dataclasses.replace(hs, name=f"data frame ({len(rows)} rows)")
