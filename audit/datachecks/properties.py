"""Per-image properties that can carry a label without the object: how bright, how sharp, how noisy, how
compressed, how framed, how big and in which file format an image is (no model needed).

Pixel properties are measured on the decoded image (the loader's rules: 16-bit and DICOM keep their range) at
its own resolution, reduced by an area mean to at most ``MAX_SIDE`` pixels per side so that a large set stays
fast; file properties come from the header. When the sample has a ROI, pixel properties are measured on the
context only (everything outside the ROI grown by 5 % of the shorter side): the object's own look (a square's
long edges raise "noise" and "sharpness") is then not mistaken for an acquisition property.

    brightness        mean luminance (0–1)
    contrast          standard deviation of the luminance
    sharpness         log10 of the variance of the Laplacian of the luminance (higher = sharper)
    noise             noise sigma from Immerkær's (1996) 3×3 mask, robustly: median |response| / (0.6745 × 6),
                      so edges (sparse) do not count as noise
    blockiness        JPEG 8×8 blocking: mean |step| across 8-px block edges / mean |step| elsewhere
    jpeg_quality      for JPEG files: the quality (1–100) whose standard luminance table is closest to the
                      file's (libjpeg scaling); missing for other formats
    border_darkness   mean luminance of the inner image minus that of its outer 5 % frame (letterbox bars, a
                      dark collimation edge)
    colour_red_blue   mean red minus mean blue (a colour cast); RGB images only
    colour_green      mean green minus the mean of red and blue; RGB images only
    aspect_ratio      width / height of the file
    pixels            log10 of width × height of the file
    file_format       PNG, JPEG, TIFF, DICOM, … (categorical)
    bit_depth         bits per sample of the file (categorical)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import binary_dilation

from ..loading import dicom
from ..loading.decode import DecodeOptions, decode_image

MAX_SIDE = 512
NUMERIC = ("brightness", "contrast", "sharpness", "noise", "blockiness", "jpeg_quality", "border_darkness",
           "colour_red_blue", "colour_green", "aspect_ratio", "pixels")
CATEGORICAL = ("file_format", "bit_depth")
DESCRIPTIONS = {
    "brightness": "mean luminance",
    "contrast": "luminance standard deviation",
    "sharpness": "log10 variance of the Laplacian (higher = sharper)",
    "noise": "noise sigma (Immerkær 1996)",
    "blockiness": "JPEG 8×8 block-edge steps relative to other steps",
    "jpeg_quality": "JPEG quality from the quantisation table (JPEG files only)",
    "border_darkness": "inner luminance minus the outer 5 % frame's",
    "colour_red_blue": "mean red minus mean blue",
    "colour_green": "mean green minus mean of red and blue",
    "aspect_ratio": "file width / height",
    "pixels": "log10 of the file's pixel count",
    "file_format": "file format",
    "bit_depth": "bits per sample of the file",
}

# the IJG standard luminance quantisation table (quality 50), in natural order
_STD_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                      92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)
_MODE_BITS = {"1": 1, "L": 8, "P": 8, "RGB": 8, "RGBA": 8, "LA": 8, "PA": 8, "CMYK": 8, "YCbCr": 8, "I;16": 16,
              "I;16B": 16, "I;16L": 16, "I;16N": 16, "I;16S": 16, "I": 32, "F": 32}


@dataclass(frozen=True)
class FileInfo:
    file_format: str
    bit_depth: str
    width: int
    height: int
    jpeg_quality: float


def jpeg_table_quality(table: list[int] | np.ndarray) -> float:
    """The IJG quality (1–100) whose scaled standard luminance table is closest (mean absolute difference) to
    ``table`` (64 values in any order: the comparison is on sorted values)."""
    t = np.sort(np.asarray(table, dtype=np.float64).ravel()[:64])
    best, best_err = 50.0, math.inf
    for q in range(1, 101):
        scale = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
        ref = np.sort(np.clip(np.floor((_STD_LUMA * scale + 50.0) / 100.0), 1, 255))
        err = float(np.abs(ref - t).mean())
        if err < best_err:
            best, best_err = float(q), err
    return best


def file_info(path: Path) -> FileInfo:
    if dicom.is_dicom(path):
        w, h = dicom.dicom_size(path)
        try:
            ds = dicom.read_dicom(path, pixels=False)
            bits = str(int(ds.get("BitsStored", ds.get("BitsAllocated", 16))))
        except Exception:  # noqa: BLE001 - a header field we cannot read is reported as unknown
            bits = "unknown"
        return FileInfo("DICOM", bits, int(w), int(h), math.nan)
    try:
        with Image.open(path) as im:
            fmt = str(im.format or path.suffix.lstrip(".").upper() or "unknown")
            bits = str(_MODE_BITS.get(im.mode, "unknown"))
            w, h = im.size
            q = math.nan
            if fmt == "JPEG":
                tables = getattr(im, "quantization", None) or {}
                if tables:
                    q = jpeg_table_quality(tables[min(tables)])
        return FileInfo(fmt, bits, int(w), int(h), q)
    except Exception:  # noqa: BLE001 - a file the loader reads otherwise (e.g. a TIFF Pillow cannot open)
        return FileInfo(path.suffix.lstrip(".").upper() or "unknown", "unknown", 0, 0, math.nan)


def _reduce(a: np.ndarray, k: int) -> np.ndarray:
    if k <= 1:
        return a
    H, W = (a.shape[0] // k) * k, (a.shape[1] // k) * k
    return a[:H, :W].reshape(H // k, k, W // k, k, -1).mean(axis=(1, 3))


def _mean(x: np.ndarray, m: np.ndarray) -> float:
    return float(x[m].mean()) if m.any() else math.nan


def _lap(y: np.ndarray) -> np.ndarray:
    return y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4.0 * y[1:-1, 1:-1]


def pixel_properties(a: np.ndarray, context: np.ndarray | None = None) -> dict[str, float]:
    """Numeric pixel properties of one decoded image (H, W, C) in [0, 1], measured where ``context`` (H, W bool,
    default everywhere) is true."""
    k = math.ceil(max(a.shape[:2]) / MAX_SIDE)
    a = _reduce(np.asarray(a, dtype=np.float64), k)
    H, W = a.shape[:2]
    ctx = np.ones((H, W), dtype=bool) if context is None else _reduce(context[..., None].astype(float), k)[..., 0] > 0.5
    if not ctx.any():
        ctx = np.ones((H, W), dtype=bool)
    rgb = a.shape[2] == 3
    y = a @ np.array([0.299, 0.587, 0.114]) if rgb else a[:, :, 0]
    out: dict[str, float] = {"brightness": _mean(y, ctx), "contrast": float(y[ctx].std())}
    if H >= 3 and W >= 3:
        inner = ctx[:-2, :-2] & ctx[:-2, 2:] & ctx[2:, :-2] & ctx[2:, 2:] & ctx[1:-1, 1:-1]
        if not inner.any():
            inner = np.ones_like(inner)
        lap = _lap(y)[inner]
        out["sharpness"] = float(np.log10(lap.var() + 1e-12))
        # Immerkær's mask [1 -2 1; -2 4 -2; 1 -2 1] cancels smooth structure; the median ignores sparse edges
        n = (y[:-2, :-2] - 2 * y[:-2, 1:-1] + y[:-2, 2:] - 2 * y[1:-1, :-2] + 4 * y[1:-1, 1:-1] - 2 * y[1:-1, 2:]
             + y[2:, :-2] - 2 * y[2:, 1:-1] + y[2:, 2:])[inner]
        out["noise"] = float(np.median(np.abs(n)) / (0.6745 * 6.0))
    else:
        out["sharpness"] = out["noise"] = math.nan
    if H >= 16 and W >= 16:
        dx = np.abs(np.diff(y, axis=1))
        dy = np.abs(np.diff(y, axis=0))
        mx = ctx[:, 1:] & ctx[:, :-1]
        my = ctx[1:] & ctx[:-1]
        at_x = np.broadcast_to((np.arange(W - 1) % 8) == 7, dx.shape)
        at_y = np.broadcast_to(((np.arange(H - 1) % 8) == 7)[:, None], dy.shape)
        edge = (_mean(dx, mx & at_x) + _mean(dy, my & at_y)) / 2
        rest = (_mean(dx, mx & ~at_x) + _mean(dy, my & ~at_y)) / 2
        out["blockiness"] = float(edge / rest) if rest > 0 else math.nan
    else:
        out["blockiness"] = math.nan
    b = max(1, round(0.05 * min(H, W)))
    frame = np.zeros((H, W), dtype=bool)
    frame[:b] = frame[-b:] = True
    frame[:, :b] = frame[:, -b:] = True
    out["border_darkness"] = _mean(y, ~frame & ctx) - _mean(y, frame & ctx)
    if rgb:
        m = a[ctx].mean(0)
        out["colour_red_blue"] = float(m[0] - m[2])
        out["colour_green"] = float(m[1] - (m[0] + m[2]) / 2)
    else:
        out["colour_red_blue"] = out["colour_green"] = math.nan
    return out


def properties_of(path: Path, a: np.ndarray, roi: np.ndarray | None = None) -> dict[str, float | str]:
    """Every property of one file from its decoded pixels ``a`` (H, W, C) and its header. ``roi``: the object's
    mask in the image's own pixels (pixel properties are then measured on the context)."""
    info = file_info(path)
    context = None
    if roi is not None and roi.shape == a.shape[:2]:
        grow = max(1, round(0.05 * min(roi.shape)))
        context = ~binary_dilation(roi, iterations=grow)
    props: dict[str, float | str] = dict(pixel_properties(a, context))
    props["jpeg_quality"] = info.jpeg_quality
    w, h = (info.width, info.height) if info.width and info.height else (a.shape[1], a.shape[0])
    props["aspect_ratio"] = w / h
    props["pixels"] = math.log10(w * h)
    props["file_format"] = info.file_format
    props["bit_depth"] = info.bit_depth
    return props


def image_properties(path: Path, channels: int, opts: DecodeOptions, roi: np.ndarray | None = None
                     ) -> tuple[dict[str, float | str], np.ndarray]:
    """Every property of one file, and its decoded pixels (H, W, C) for the duplicate hashes."""
    a = decode_image(path, channels, opts).to_array()
    return properties_of(path, a, roi), a
