"""Decoding one image file into a PIL image the model pipeline can use; errors name the file."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import DataError


@contextmanager
def strict_decoding() -> Iterator[None]:
    """Truncated files are errors and decompression-bomb warnings are refusals while an image is decoded.
    (WeasyPrint sets the process-wide ImageFile.LOAD_TRUNCATED_IMAGES = True on import, which would let a
    truncated held-out image through as a partly black picture.)"""
    prev = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = prev


def open_image(path: Path, channels: int) -> Image.Image:
    """Decode one image fully and convert it to L or RGB; errors name the file."""
    try:
        with strict_decoding(), Image.open(path) as im:
            im.load()
            img = im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: image refused as a possible decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (empty, corrupt or unknown format)") from None
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, ValueError, struct.error, … from a bad file
        raise DataError(f"{path}: cannot decode image: {e}") from None
    mode = img.mode
    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(img, dtype=np.float64)
            hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
            img = Image.fromarray(np.clip(np.nan_to_num(arr) / hi * 255.0, 0, 255).astype(np.uint8), mode="L")
        target = "L" if channels == 1 else "RGB"
        if img.mode != target:
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA")
                bg = Image.new("RGBA", img.size, (0, 0, 0, 255))
                img = Image.alpha_composite(bg, img)
            img = img.convert(target)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: unsupported image mode {mode!r} ({e})") from None
    return img



def image_size_of(path: Path) -> tuple[int, int]:
    """(width, height) from the header only."""
    try:
        with strict_decoding(), Image.open(path) as im:
            return im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: image refused as a possible decompression bomb ({e})") from None
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, … from a bad file
        raise DataError(f"{path}: cannot read image header: {e}") from None
