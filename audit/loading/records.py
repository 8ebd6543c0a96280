"""What a listing produces: one record per listed sample, and the held-out set they form."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .geometry import ResizeMode


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
    name: str = ""  # how messages name a listing that is no file (e.g. "data frame (45 rows)")

    def metadata_frame(self) -> pd.DataFrame:
        rows = [r.metadata for r in self.records]
        return pd.DataFrame(rows, columns=list(self.metadata_columns))
