"""maps.npz: the report's attribution maps (``audit.maps.store``), kept for comparisons with a later audit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from ...maps.store import MAPS_FILE, save_maps
from ...result import AuditResult
from .base import OutputFormat, Report


def check_npz(p: Path) -> None:
    with p.open("rb") as fh:
        if fh.read(2) != b"PK":
            raise ValueError("not an .npz (zip) archive")
    with np.load(p, allow_pickle=False) as z:
        if not list(z.keys()):
            raise ValueError("holds no arrays")


class MapsOutput(OutputFormat):
    """Written when ``report.save_maps`` is on and the explainers kept maps, whatever report.formats lists."""

    name = "maps"
    title = "attribution maps (maps.npz)"
    files: ClassVar = {"maps": MAPS_FILE}
    parsers: ClassVar = {MAPS_FILE: check_npz}
    selectable = False

    def wanted(self, result: AuditResult, formats: Sequence[str]) -> bool:
        return result.config.report.save_maps and bool(result.explanations.kept)

    def write(self, report: Report, folder: Path) -> None:
        save_maps(folder / MAPS_FILE, report.result.explanations.kept)
