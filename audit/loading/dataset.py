"""A torch Dataset over listed samples: decode and preprocess on demand, bad images reported, not raised."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import DataError
from .decode import decode_image
from .preprocess import Preprocess
from .records import SampleRecord


class ImageDataset(torch.utils.data.Dataset):
    """Decodes records on demand. With ``skip_bad`` a bad image yields (index, None, reason)."""

    def __init__(self, records: Sequence[SampleRecord], preprocess: Preprocess, skip_bad: bool = False) -> None:
        self.records = records
        self.preprocess = preprocess
        self.skip_bad = skip_bad

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        rec = self.records[i]
        try:
            img = decode_image(rec.path, self.preprocess.channels, self.preprocess.decode)
            if self.preprocess.size is None:
                raise DataError(f"{rec.path}: data.image_size is not set")
            return i, self.preprocess(img), ""
        except DataError as e:
            msg = str(e) if rec.source in ("", str(rec.path)) else f"{rec.source}: {e}"  # name the manifest row
            if self.skip_bad:
                return i, None, msg
            raise DataError(msg) from None


def collate(batch: list[tuple[int, torch.Tensor | None, str]]) -> tuple[torch.Tensor, torch.Tensor | None, list[tuple[int, str]]]:
    ok = [(i, x) for i, x, _ in batch if x is not None]
    bad = [(i, err) for i, x, err in batch if x is None]
    if not ok:
        return torch.empty(0, dtype=torch.long), None, bad
    idx = torch.tensor([i for i, _ in ok], dtype=torch.long)
    return idx, torch.stack([x for _, x in ok]), bad
