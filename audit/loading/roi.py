"""Regions of interest: a box or a mask of the original image, as a boolean mask in model-input pixels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import DataError
from .decode import image_size_of, strict_decoding

if TYPE_CHECKING:
    from .listing import SampleRecord


def check_roi(rec: SampleRecord) -> None:
    """Up front, from the image header: a ROI box lies inside its image, a mask has the image's size and a non-zero
    pixel. An image whose header cannot be read is left to decoding, which fails or skips it (data.on_bad_image)."""
    try:
        w, h = image_size_of(rec.path)
    except DataError:
        return
    roi_mask(rec, (h, w))




def roi_mask(rec: SampleRecord, input_size: tuple[int, int]) -> np.ndarray | None:
    """The sample's ROI as a boolean (H, W) mask in model-input pixels, or None when it has none."""
    H, W = input_size
    if rec.roi_box is None and rec.roi_mask is None:
        return None
    w0, h0 = image_size_of(rec.path)
    if rec.roi_box is not None:
        x0, y0, x1, y1 = rec.roi_box
        if x1 > w0 or y1 > h0:
            raise DataError(f"{rec.source}: ROI box {rec.roi_box} extends outside the {w0}x{h0} image")
        sx, sy = W / w0, H / h0
        m = np.zeros((H, W), dtype=bool)
        c0, c1 = int(np.floor(x0 * sx)), int(np.ceil(x1 * sx))
        r0, r1 = int(np.floor(y0 * sy)), int(np.ceil(y1 * sy))
        m[max(r0, 0):min(r1, H), max(c0, 0):min(c1, W)] = True
        return m
    assert rec.roi_mask is not None
    try:
        with strict_decoding(), Image.open(rec.roi_mask) as im:
            im.load()
            mask_img = im.convert("L")
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, DecompressionBombError, … from a bad file
        raise DataError(f"{rec.source}: roi_mask {rec.roi_mask}: cannot decode: {e}") from None
    if mask_img.size != (w0, h0):
        raise DataError(
            f"{rec.source}: roi_mask {rec.roi_mask} is {mask_img.size[0]}x{mask_img.size[1]} but the image is {w0}x{h0}"
        )
    m = np.asarray(mask_img.resize((W, H), Image.NEAREST)) > 0
    if not m.any():
        raise DataError(f"{rec.source}: roi_mask {rec.roi_mask} is empty (no non-zero pixel)")
    return m
