"""What a listing produces: one record per listed sample, and the held-out set they form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .geometry import Resize


@dataclass(frozen=True)
class SampleRecord:
    """One held-out sample as listed (not yet decoded)."""

    id: str
    path: Path
    label: int  # index into classes; -1 for a multi-label sample (see label_set)
    roi_box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in original pixels
    roi_mask: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # "manifest.csv row 7" — for error messages
    resize: Resize = "stretch"  # data.resize (a Geometry with its crop settings), so ROIs follow the pixels
    label_set: tuple[int, ...] = ()  # a multi-label sample's positive labels (indices into classes)
    mask: Path | None = None  # a segmentation sample's class mask (PNG of class indices) or a defect mask


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
    name: str = ""  # how messages name a listing that is no file (e.g. "data frame (45 rows)")
    multilabel: bool = False  # each sample lists a set of labels (a 'labels' column or one 0/1 column per class)
    masks: bool = False  # each sample has a class mask (segmentation); its label set = the classes in it
    defect_masks: bool = False  # a 'mask' column beside 'label': defect masks of an inspection set (anomaly)
    swapped_size: str = ""  # audited with a likely swapped image_size (data.swapped_size = "finding"): why

    @property
    def source(self) -> str:
        """The data source as named in messages and the report: the manifest, else the image folder."""
        if self.manifest is None and self.name:
            return self.name
        return str(self.manifest or self.root)

    def label_array(self) -> np.ndarray:
        """(N,) class indices, or (N, K) 0/1 for a multi-label listing."""
        return label_array(self.records, len(self.classes), self.multilabel)

    def metadata_frame(self) -> pd.DataFrame:
        rows = [r.metadata for r in self.records]
        return pd.DataFrame(rows, columns=list(self.metadata_columns))


def label_array(records: Sequence[SampleRecord], n_classes: int, multilabel: bool) -> np.ndarray:
    """(n,) int64 class indices, or (n, K) int64 0/1 rows for multi-label records."""
    if not multilabel:
        return np.array([r.label for r in records], dtype=np.int64)
    out = np.zeros((len(records), n_classes), dtype=np.int64)
    for i, r in enumerate(records):
        out[i, list(r.label_set)] = 1
    return out


def ids_at(records: Sequence[SampleRecord], rows: np.ndarray) -> list[str]:
    """The sample ids of ``records[rows]``."""
    return [str(records[int(r)].id) for r in rows]


def targets_at(records: Sequence[SampleRecord], rows: np.ndarray, n_groups: int) -> np.ndarray:
    """(len(rows), n_groups) int64 0/1 of ``records[rows]``: one-hot classes, or the label sets of multi-label
    records."""
    out = np.zeros((len(rows), n_groups), dtype=np.int64)
    for i, r in enumerate(rows):
        rec = records[int(r)]
        if rec.label >= 0:
            out[i, rec.label] = 1
        out[i, list(rec.label_set)] = 1
    return out
