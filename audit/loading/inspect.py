"""The model-free decoding pass: per-image facts computed where each image is decoded (the data checks'
properties and hashes, the file's hash for the data fingerprint), handed to the driver a batch at a time.

An ``Inspector`` (``datachecks.inspect.ImageInspector``) is a picklable callable: it gets the listing row, the
record and the decoded image (or the reason it could not be decoded) and returns one row of facts; ``collate``
turns a batch of rows into arrays (``row`` is always one of them). ``inspect_locally`` runs it in DataLoader
worker processes (``data.num_workers``); the driver keeps only what its reduction keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from ..errors import AuditError
from .decode import DecodedImage, DecodeOptions, decode_image
from .records import SampleRecord

Facts = dict[str, np.ndarray]


class Inspector(Protocol):
    needs_pixels: bool  # whether the facts need the decoded image (else only the file is read)
    channels: int
    decode: DecodeOptions

    def __call__(self, row: int, rec: SampleRecord, image: DecodedImage | None, error: str) -> dict[str, Any]: ...

    def collate(self, rows: list[dict[str, Any]]) -> Facts: ...


class InspectingDataset(torch.utils.data.Dataset):
    """Decodes each record once (when the inspector needs pixels) and returns the inspector's row of facts."""

    def __init__(self, records: Sequence[SampleRecord], inspector: Inspector) -> None:
        self.records = records
        self.inspector = inspector

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rec = self.records[i]
        img, err = None, ""
        if self.inspector.needs_pixels:
            try:
                img = decode_image(rec.path, self.inspector.channels, self.inspector.decode)
            except (AuditError, OSError, ValueError) as e:  # counted as unreadable by the reduction
                err = str(e) or type(e).__name__
        return self.inspector(i, rec, img, err)


def inspect_locally(records: Sequence[SampleRecord], rows: np.ndarray, inspector: Inspector,
                    on_facts: Callable[[Facts], None], batch_size: int = 64, num_workers: int = 0) -> None:
    """The facts of ``records[rows]``, decoded in ``num_workers`` loader processes (0: this one), each batch's
    handed to ``on_facts`` in order."""
    if not len(rows):
        return
    ds = torch.utils.data.Subset(InspectingDataset(records, inspector), np.asarray(rows, dtype=np.int64).tolist())
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         collate_fn=inspector.collate)
    for facts in loader:
        on_facts(facts)
