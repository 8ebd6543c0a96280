"""The driver's side of the data pass: the facts of each decoded batch (``inspect.py``) reduced as they arrive.

Per listing: the data fingerprint (a running LtHash), which rows were seen and decoded, and, for the checks that
need them, one ``stats.Cells`` per image property (counts per quantised value, fold and group) and the per-image
hashes the duplicate search needs: the perceptual hash (8 bytes) and exact digest (16 bytes) in memory, the 32×32
thumbnails (1 KiB each) in a file mapped from disk (read back only for candidate pairs). Batches may come in any
order; a row seen twice is an error.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence

import numpy as np

from ..loading.decode import DecodeOptions
from ..loading.records import SampleRecord, ids_at, targets_at
from .duplicates import THUMB
from .fingerprint import Fingerprint
from .inspect import ImageInspector
from .properties import CATEGORICAL, NUMERIC
from .stats import Cells, folds_of

CHECKS = ("properties", "metadata", "duplicates", "train_overlap")
HASH_CHECKS = ("duplicates", "train_overlap")


class Thumbnails:
    """(n, 1024) uint8 thumbnails in a temporary file mapped from disk (deleted when closed)."""

    def __init__(self, n: int) -> None:
        self._file = tempfile.TemporaryFile(prefix="model-audit-thumbs-")  # noqa: SIM115 - closed by close()
        self._file.truncate(max(1, n) * THUMB * THUMB)
        self.array: np.ndarray = np.memmap(self._file, dtype=np.uint8, mode="r+", shape=(max(1, n), THUMB * THUMB))

    def close(self) -> None:
        del self.array
        self._file.close()


class DataPass:
    """Reduces the inspected batches of one listing (``records``, rooted at ``root``) for ``checks``."""

    def __init__(self, records: Sequence[SampleRecord], root: str, n_groups: int, checks: Sequence[str], seed: int,
                 channels: int, decode: DecodeOptions) -> None:
        self.records, self.n_groups, self.seed = records, n_groups, seed
        self.checks = tuple(c for c in CHECKS if c in checks)
        props = "properties" in self.checks
        hashes = any(c in self.checks for c in HASH_CHECKS)
        self.inspector = ImageInspector(root=root, channels=channels, decode=decode, properties=props, hashes=hashes)
        n = len(records)
        self.seen = np.zeros(n, dtype=bool)
        self.ok = np.zeros(n, dtype=bool)
        self.fp = Fingerprint()
        self.cells: dict[str, Cells] = {}
        if props:
            self.cells = {k: Cells(n_groups, False) for k in NUMERIC} | {k: Cells(n_groups, True) for k in CATEGORICAL}
        self.phash = np.zeros(n if hashes else 0, dtype=np.uint64)
        self.exact = np.zeros((n if hashes else 0, 2), dtype=np.uint64)
        self.thumbs: Thumbnails | None = Thumbnails(n) if hashes else None
        self.seconds = 0.0

    def add(self, facts: dict[str, np.ndarray]) -> None:
        t0 = time.perf_counter()
        rows = np.asarray(facts["row"], dtype=np.int64)
        seen = self.seen[rows]
        if seen.any():
            raise RuntimeError(f"data pass: rows {rows[seen][:3].tolist()} inspected twice")
        self.seen[rows] = True
        ok = np.asarray(facts["ok"], dtype=bool)
        self.ok[rows] = ok
        self.fp.add_sum(facts["lane_sum"], int(facts["n_lines"]))
        r = rows[ok]
        if self.cells and len(r):
            fold = folds_of(ids_at(self.records, r), self.seed)
            targets = targets_at(self.records, r, self.n_groups)
            props = np.asarray(facts["props"])[ok]
            for j, name in enumerate(NUMERIC):
                self.cells[name].add(props[:, j], fold, targets)
            self.cells["file_format"].add(np.asarray(facts["fmt"])[ok], fold, targets)
            self.cells["bit_depth"].add(np.asarray(facts["bits"])[ok], fold, targets)
        if self.thumbs is not None and len(r):
            self.phash[r] = np.asarray(facts["phash"])[ok]
            self.exact[r] = np.asarray(facts["exact"])[ok]
            self.thumbs.array[r] = np.asarray(facts["thumb"])[ok]
        self.seconds += time.perf_counter() - t0

    @property
    def fingerprint(self) -> str:
        return self.fp.hexdigest()

    def close(self) -> None:
        if self.thumbs is not None:
            self.thumbs.close()
            self.thumbs = None
