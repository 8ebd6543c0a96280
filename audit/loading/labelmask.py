"""Label masks of segmentation and inspection sets: a PNG (or TIFF) of class indices per pixel, the image's size,
read in the displayed orientation and fitted to the model input like the image (nearest neighbour).

Values are indices into data.classes; 255 marks pixels to ignore (an unlabelled border, say). Colour (RGB) masks
are refused: a colour is not a class index. Pixels outside the image after a letterbox are ignored too (-1).
An inspection set's defect masks are binary instead: any non-zero value is a defect pixel (MVTec AD stores 255)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError
from .decode import image_size_of, orientation_of, strict_decoding
from .geometry import Resize, fit_nearest, plan_fit

IGNORE = 255


def read_label_mask(path: Path, n_classes: int, where: str) -> np.ndarray:
    """(H0, W0) int16 class indices as displayed (-1 = ignored); DataError naming the file for anything else."""
    mode, img = _decoded(path, where)
    if mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
        raise DataError(f"{where}: mask {path}: mode {mode} is not a mask of class indices (save one index per pixel, "
                        "mode L or P)")
    arr = np.asarray(img, dtype=np.int64)
    out = np.where(arr == IGNORE, -1, arr)
    bad = out >= n_classes
    if bad.any():
        raise DataError(f"{where}: mask {path}: value {int(out[bad][0])} is not a class index (0..{n_classes - 1}, or "
                        f"{IGNORE} to ignore a pixel)")
    return out.astype(np.int16)


def _decoded(path: Path, where: str) -> tuple[str, Image.Image]:
    try:
        with strict_decoding(), Image.open(path) as im:
            im.load()
            return im.mode, ImageOps.exif_transpose(im) if orientation_of(im) != 1 else im.copy()
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, DecompressionBombError, … from a bad file
        raise DataError(f"{where}: mask {path}: cannot decode: {e}") from None


def read_defect_mask(path: Path, where: str) -> np.ndarray:
    """(H0, W0) int16: 1 on defect pixels (any non-zero value), 0 elsewhere, as displayed."""
    mode, img = _decoded(path, where)
    if mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
        raise DataError(f"{where}: mask {path}: mode {mode} is not a defect mask (save it single-channel: 0 = normal, "
                        "non-zero = defect)")
    return (np.asarray(img) != 0).astype(np.int16)


def check_label_mask(path: Path, image: Path, n_classes: int | None, where: str) -> np.ndarray:
    """Read a class mask (a defect mask when ``n_classes`` is None) and check it has its image's (displayed) size;
    returns the mask."""
    m = read_label_mask(path, n_classes, where) if n_classes is not None else read_defect_mask(path, where)
    w, h = image_size_of(image)
    if m.shape != (h, w):
        raise DataError(f"{where}: mask {path} is {m.shape[1]}x{m.shape[0]} but the image is {w}x{h}")
    return m


def fitted_label_mask(mask: np.ndarray, input_size: tuple[int, int], resize: Resize) -> np.ndarray:
    """The displayed mask fitted to the model input the way its image is (nearest neighbour; -1 outside)."""
    h0, w0 = mask.shape
    fit = plan_fit(w0, h0, input_size, resize)
    shifted = Image.fromarray((mask.astype(np.int32) + 1).astype(np.uint16))  # -1 -> 0 survives the resample
    return (fit_nearest(shifted, fit, 0).astype(np.int32) - 1).astype(np.int16)
