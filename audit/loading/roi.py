"""Regions of interest: a box or a mask of the image as displayed (EXIF orientation applied), as a boolean mask in
model-input pixels, mapped through the same geometry as the pixels (``data.resize``, see ``geometry.py``)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError
from .decode import decode_image, image_size_of, orientation_of, strict_decoding
from .geometry import Resize, box_to_mask, fit_mask, plan_fit
from .records import SampleRecord


def check_roi(rec: SampleRecord) -> None:
    """Up front, from the image header: a ROI box lies inside its image, a mask has the image's size and a non-zero
    pixel. An image whose header cannot be read is left to decoding, which fails or skips it (data.on_bad_image)."""
    try:
        w, h = image_size_of(rec.path)
    except DataError:
        return
    roi_mask(rec, (h, w))


def _open_mask(rec: SampleRecord) -> Image.Image:
    """The mask as displayed (mode L): JPEG/TIFF orientation applied like the images'."""
    assert rec.roi_mask is not None
    try:
        with strict_decoding(), Image.open(rec.roi_mask) as im:
            orientation = orientation_of(im)
            if orientation == 1 or im.format != "TIFF":
                im.load()
                return (ImageOps.exif_transpose(im) if orientation != 1 else im).convert("L")
        d = decode_image(rec.roi_mask, 1)  # an oriented TIFF: read as stored, oriented like the images
        assert d.array is not None
        return Image.fromarray(np.where(d.array[:, :, 0] > 0, 255, 0).astype(np.uint8))
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, DecompressionBombError, … from a bad file
        raise DataError(f"{rec.source}: roi_mask {rec.roi_mask}: cannot decode: {e}") from None


def roi_mask(rec: SampleRecord, input_size: tuple[int, int], resize: Resize | None = None) -> np.ndarray | None:
    """The sample's ROI as a boolean (H, W) mask in model-input pixels, or None when it has none or when all of it
    lies outside the model input (cut away by center_crop). ``resize`` defaults to the record's (set from
    data.resize when the set was listed)."""
    if rec.roi_box is None and rec.roi_mask is None:
        return None
    w0, h0 = image_size_of(rec.path)
    fit = plan_fit(w0, h0, input_size, resize or rec.resize)
    if rec.roi_box is not None:
        x1, y1 = rec.roi_box[2:]
        if x1 > w0 or y1 > h0:
            raise DataError(f"{rec.source}: ROI box {rec.roi_box} extends outside the {w0}x{h0} image")
        m = box_to_mask(rec.roi_box, fit)
        return m if m.any() else None
    mask_img = _open_mask(rec)
    if mask_img.size != (w0, h0):
        raise DataError(
            f"{rec.source}: roi_mask {rec.roi_mask} is {mask_img.size[0]}x{mask_img.size[1]} but the image is {w0}x{h0}"
        )
    m = fit_mask(mask_img, fit)
    if not m.any():
        if fit.whole or mask_img.getbbox() is None:
            raise DataError(f"{rec.source}: roi_mask {rec.roi_mask} is empty (no non-zero pixel)")
        return None  # cut away by center_crop
    return m
