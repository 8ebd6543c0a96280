"""DICOM images (optional extra ``dicom``: ``pip install model-audit[dicom]``, pydicom >= 3).

A file is DICOM when it has the "DICM" marker at byte 128 or the extension ``.dcm``. Greyscale
(MONOCHROME1/MONOCHROME2) pixels go through:

1. the modality rescale: ``value = stored * RescaleSlope + RescaleIntercept`` (defaults 1 and 0);
2. a VOI window, from ``data.window = [center, width]`` when set (it wins over the file's tags), else from the
   file's WindowCenter/WindowWidth (the first value when there are several), else the full range the stored bits
   can hold (BitsStored, PixelRepresentation) through the same rescale. The window function is the file's
   VOILUTFunction: LINEAR (default; DICOM PS3.3 C.11.2.1.2.1), LINEAR_EXACT or SIGMOID, output in [0, 1];
3. MONOCHROME1 is inverted (1 - value), so that higher always means brighter.

Colour (RGB, and YBR_FULL / YBR_FULL_422 which pydicom converts to RGB) is divided by 2**BitsStored - 1; no window.
Refused with a one-line message: multi-frame files, other photometric interpretations, Modality LUT sequences,
compressed transfer syntaxes pydicom cannot decode without a plugin, a missing pydicom."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

EXTENSIONS = {".dcm"}
EXTRA_HINT = "pip install model-audit[dicom]"


def is_dicom(path: Path, head: bytes | None = None) -> bool:
    """By the "DICM" marker at byte 128, or by the .dcm extension."""
    if path.suffix.lower() in EXTENSIONS:
        return True
    if head is None:
        try:
            with path.open("rb") as fh:
                head = fh.read(132)
        except OSError:
            return False
    return head[128:132] == b"DICM"


def _pydicom(path: Path) -> Any:
    try:
        import pydicom
    except ImportError:
        raise DataError(f"{path}: reading DICOM needs pydicom: {EXTRA_HINT}") from None
    return pydicom


def read_dicom(path: Path, pixels: bool = True) -> Any:
    """The dataset (header only unless ``pixels``); errors name the file."""
    pydicom = _pydicom(path)
    try:
        with path.open("rb") as fh:
            marked = fh.read(132)[128:132] == b"DICM"
        ds = pydicom.dcmread(path, stop_before_pixels=not pixels, force=not marked)
        _ = (int(ds.Rows), int(ds.Columns))  # a forced read of a non-DICOM file has neither
    except Exception as e:  # noqa: BLE001 - pydicom raises many types for a bad file
        raise DataError(f"{path}: not a readable DICOM file ({type(e).__name__}: {e})") from None
    return ds


def dicom_size(path: Path) -> tuple[int, int]:
    """(width, height) = (Columns, Rows) from the header."""
    ds = read_dicom(path, pixels=False)
    return int(ds.Columns), int(ds.Rows)


def number(ds: Any, keyword: str, default: float, path: Path) -> float:
    """A numeric tag (the first value when multi-valued), ``default`` when absent or empty; errors name the tag."""
    value = ds.get(keyword, None)
    if value is None or value == "":
        return default
    try:
        if not isinstance(value, str | bytes) and hasattr(value, "__len__"):
            value = value[0]
        out = float(value)
    except (TypeError, ValueError, IndexError):
        raise DataError(f"{path}: DICOM tag {keyword} has an unusable value {str(value)[:40]!r}") from None
    if not math.isfinite(out):
        raise DataError(f"{path}: DICOM tag {keyword} is not finite ({out})")
    return out


def window_of(ds: Any, window: tuple[float, float] | None, path: Path) -> tuple[str, float | None, float | None]:
    """(source, center, width): source is "data.window", "tags" or "stored range" (center/width None)."""
    if window is not None:
        return "data.window", float(window[0]), float(window[1])
    if ds.get("WindowCenter", None) not in (None, "") and ds.get("WindowWidth", None) not in (None, ""):
        return "tags", number(ds, "WindowCenter", 0, path), number(ds, "WindowWidth", 0, path)
    return "stored range", None, None


def apply_window(x: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """VOI window to [0, 1] (DICOM PS3.3 C.11.2.1.2 with y_min = 0, y_max = 1)."""
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if width == 1:  # LINEAR with width 1 is a threshold
        return (x > center - 0.5).astype(np.float64)
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _stored_range(ds: Any, slope: float, intercept: float, path: Path) -> tuple[float, float]:
    bits = int(number(ds, "BitsStored", number(ds, "BitsAllocated", 16, path), path))
    signed = number(ds, "PixelRepresentation", 0, path) != 0
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    a, b = lo * slope + intercept, hi * slope + intercept
    return min(a, b), max(a, b)


def _pixels(path: Path, ds: Any) -> np.ndarray:
    if "PixelData" not in ds:
        raise DataError(f"{path}: DICOM file has no pixel data")
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        return np.asarray(ds.pixel_array)
    except Exception as e:  # noqa: BLE001 - missing decoder plugins raise RuntimeError, bad data ValueError, …
        if ts is not None and ts.is_compressed:
            raise DataError(
                f"{path}: DICOM transfer syntax '{ts.name}' ({ts}) is compressed and pydicom has no installed "
                f"decoder for it; install one (e.g. pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg, or "
                f"python-gdcm) or convert the file to an uncompressed transfer syntax") from None
        raise DataError(f"{path}: cannot decode DICOM pixel data: {e}") from None


def decode_dicom(path: Path, window: tuple[float, float] | None, max_pixels: int | None) -> np.ndarray:
    """One DICOM file -> float32 (H, W, 1) or (H, W, 3) in [0, 1] by the rules in this module's docstring."""
    ds = read_dicom(path, pixels=True)
    frames = int(number(ds, "NumberOfFrames", 1, path))
    if frames > 1:
        raise DataError(f"{path}: multi-frame DICOM ({frames} frames) is not supported; export one frame per file")
    rows, cols = int(ds.Rows), int(ds.Columns)
    if max_pixels is not None and rows * cols > max_pixels:
        raise DataError(f"{path}: image refused as a possible decompression bomb ({cols}x{rows} pixels)")
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if pi in ("RGB", "YBR_FULL", "YBR_FULL_422"):
        arr = _pixels(path, ds)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise DataError(f"{path}: DICOM {pi} pixel data has shape {arr.shape}; expected rows x columns x 3")
        bits = int(number(ds, "BitsStored", 8, path))
        return (arr.astype(np.float64) / (2**bits - 1)).clip(0.0, 1.0).astype(np.float32)
    if pi not in ("MONOCHROME1", "MONOCHROME2"):
        raise DataError(f"{path}: DICOM photometric interpretation {pi or '(missing)'!r} is not supported "
                        f"(supported: MONOCHROME1, MONOCHROME2, RGB, YBR_FULL, YBR_FULL_422)")
    if "ModalityLUTSequence" in ds:
        raise DataError(f"{path}: DICOM Modality LUT Sequence is not supported (only RescaleSlope/RescaleIntercept)")
    arr = _pixels(path, ds)
    if arr.ndim != 2:
        raise DataError(f"{path}: DICOM greyscale pixel data has shape {arr.shape}; expected rows x columns")
    slope = number(ds, "RescaleSlope", 1, path)
    intercept = number(ds, "RescaleIntercept", 0, path)
    if slope == 0:
        raise DataError(f"{path}: DICOM RescaleSlope is 0")
    x = arr.astype(np.float64) * slope + intercept
    source, center, width = window_of(ds, window, path)
    if source == "stored range":
        lo, hi = _stored_range(ds, slope, intercept, path)
        y = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    else:
        assert center is not None and width is not None
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
        if not (math.isfinite(center) and math.isfinite(width)) or width < 1 or function not in (
                "LINEAR", "LINEAR_EXACT", "SIGMOID"):
            raise DataError(f"{path}: unusable VOI window from {source}: center {center}, width {width}, "
                            f"function {function} (width must be >= 1; set data.window)")
        y = apply_window(x, center, width, function)
    if pi == "MONOCHROME1":
        y = 1.0 - y
    return y.astype(np.float32)[:, :, None]
