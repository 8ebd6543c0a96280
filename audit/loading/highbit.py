"""Readers for files that Pillow would reduce to 8 bits or cannot open: TIFF with more than 8 bits per sample or
float samples (tifffile), 16-bit colour PNG (OpenCV, extra ``png16``) and 16-bit colour PPM (read here).

Each returns raw samples (H, W) or (H, W, S) with their own dtype, plus what the rules in ``decode.py`` need."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class Raw:
    """Raw samples of one image. ``alpha``: the last sample is alpha (``premultiplied``: colour already
    multiplied by it); ``scale``: the container's full-scale value when it declares one (PPM maxval)."""

    samples: np.ndarray
    alpha: bool = False
    premultiplied: bool = False
    invert: bool = False  # TIFF MINISWHITE: 0 is white
    scale: float | None = None


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF/TIFF orientation 1…8 applied to an (H, W, …) array, as PIL's ``ImageOps.exif_transpose`` does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    op = ops.get(int(orientation))
    return np.ascontiguousarray(op(arr)) if op else arr


def tiff_size(path: Path) -> tuple[int, int, int]:
    """(width, height) of the first page as stored, and its Orientation tag (1 when absent)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            tag = page.tags.get(274)
            return int(page.imagewidth), int(page.imagelength), int(tag.value) if tag is not None else 1
    except Exception as e:  # noqa: BLE001 - tifffile raises many types for a bad file
        raise DataError(f"{path}: cannot read TIFF header: {e}") from None


def read_tiff(path: Path) -> tuple[Raw, int]:
    """First page of a TIFF with tifffile -> (raw samples (H, W[, S]), orientation)."""
    try:
        import tifffile
    except ImportError:
        raise DataError(f"{path}: reading a TIFF with more than 8 bits per sample needs tifffile "
                        "(pip install tifffile)") from None
    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            arr = page.asarray()
            axes = page.axes
            photometric = int(page.photometric)
            extra = tuple(int(e) for e in (page.extrasamples or ()))
            tag = page.tags.get(274)
            orientation = int(tag.value) if tag is not None else 1
    except Exception as e:  # noqa: BLE001 - tifffile raises many types for a bad file
        hint = " (pip install imagecodecs)" if "imagecodecs" in str(e) else ""
        raise DataError(f"{path}: cannot decode image: {e}{hint}") from None
    if "S" in axes and axes.index("S") == 0 and arr.ndim == 3:  # planar: (S, H, W)
        arr = np.moveaxis(arr, 0, 2)
    if arr.ndim not in (2, 3):
        raise DataError(f"{path}: unsupported TIFF layout (axes {axes}, shape {arr.shape})")
    if photometric not in (0, 1, 2):  # MINISWHITE, MINISBLACK, RGB
        raise DataError(f"{path}: unsupported TIFF photometric interpretation {photometric} for a TIFF with an "
                        f"orientation tag or more than 8 bits per sample (supported: grey, RGB)")
    s = 1 if arr.ndim == 2 else arr.shape[2]
    colour = 3 if photometric == 2 else 1
    alpha = s > colour and extra[:1] in ((1,), (2,))
    arr = arr if s == colour or arr.ndim == 2 else arr[:, :, :colour + (1 if alpha else 0)]
    return Raw(arr, alpha=alpha, premultiplied=alpha and extra[0] == 1, invert=photometric == 0), orientation


def png_header(head: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's first bytes, or None when they are not a PNG IHDR."""
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR" or len(head) < 26:
        return None
    return head[24], head[25]


def read_png16(path: Path) -> Raw:
    """A 16-bit PNG with colour or alpha (colour types 2, 4, 6) with OpenCV: Pillow keeps 8 bits of these."""
    try:
        import cv2
    except ImportError:
        raise DataError(f"{path}: a 16-bit colour PNG needs OpenCV to be read without losing its low 8 bits: "
                        "pip install model-audit[png16] (or save it as 16-bit TIFF)") from None
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise DataError(f"{path}: cannot decode image: OpenCV could not read it as a 16-bit PNG")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):  # OpenCV orders channels BGR / BGRA
        arr = arr[:, :, [2, 1, 0, 3][:arr.shape[2]]]
    s = 1 if arr.ndim == 2 else arr.shape[2]
    return Raw(arr, alpha=s in (2, 4))


def ppm_header(head: bytes) -> tuple[str, int, int, int, int] | None:
    """(magic, width, height, maxval, header length) of a binary PPM/PGM, or None."""
    if head[:2] not in (b"P5", b"P6"):
        return None
    tokens: list[bytes] = []
    i = 2
    while len(tokens) < 3 and i < len(head):
        c = head[i:i + 1]
        if c == b"#":
            while i < len(head) and head[i:i + 1] not in (b"\n", b"\r"):
                i += 1
        elif c.isspace():
            i += 1
        else:
            j = i
            while j < len(head) and not head[j:j + 1].isspace() and head[j:j + 1] != b"#":
                j += 1
            tokens.append(head[i:j])
            i = j
    if len(tokens) < 3 or not all(t.isdigit() for t in tokens) or i >= len(head):
        return None
    w, h, maxval = (int(t) for t in tokens)
    return head[:2].decode(), w, h, maxval, i + 1  # one whitespace byte ends the header


def read_ppm16(path: Path) -> Raw:
    """A binary PPM (P6) with maxval > 255: big-endian 16-bit samples, full scale = maxval."""
    raw = path.read_bytes()
    hdr = ppm_header(raw[:512])
    if hdr is None:
        raise DataError(f"{path}: cannot decode image: bad PPM header")
    _, w, h, maxval, start = hdr
    n = w * h * 3 * 2
    if not 255 < maxval < 65536 or len(raw) < start + n:
        raise DataError(f"{path}: cannot decode image: truncated or invalid 16-bit PPM")
    arr = np.frombuffer(raw, dtype=">u2", count=w * h * 3, offset=start).reshape(h, w, 3)
    if int(arr.max(initial=0)) > maxval:
        raise DataError(f"{path}: PPM sample values exceed the declared maxval {maxval}")
    return Raw(arr.astype(np.uint16), scale=float(maxval))
