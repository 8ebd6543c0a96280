"""Decoding one image file into model intensities in [0, 1]; errors name the file.

One rule per kind of raw sample (Pillow mode, or the sample type of files read without Pillow):

- 8-bit modes (1, L, P, LA, PA, RGB, RGBA, CMYK, YCbCr, …): converted by Pillow to L or RGB (alpha composited
  over black), then /255. These stay an 8-bit Pillow image until resized, so results are bit-identical to
  earlier versions.
- 16-bit (I;16, I;16B, I;16L; 16-bit grey or colour PNG, 16-bit TIFF, PGM/PPM): /65535, the container's full
  range, never through 8 bits. 12-bit data stored unscaled in 16 bits therefore spans [0, 4095/65535]: declare
  ``data.value_range = [0, 4095]`` to stretch it. PGM/PPM: /maxval.
- I (32-bit integer) and other integer samples (int16, int32, uint32 TIFF): /65535 when every value lies in
  [0, 65535] (16-bit data in a wider container); otherwise refused unless ``data.value_range`` is set.
- F (float16/32/64): kept as they are when every value lies in [0, 1]; otherwise (negative values, values above
  1) the range is ambiguous and the image is refused unless ``data.value_range`` is set. NaN or infinite
  values are always refused.
- ``data.value_range = [lo, hi]`` (when set) replaces these rules for every non-DICOM image, 8-bit included:
  ``(raw - lo) / (hi - lo)``, clipped to [0, 1].
- DICOM: rescale slope/intercept, VOI window, MONOCHROME1 inversion (see ``dicom.py``; ``data.window``).

EXIF orientation (tag 274) of JPEG and TIFF files is applied: pixels, ``image_size_of``, ROI boxes and ROI masks
are all in the displayed orientation. Channels: RGB -> L by Pillow's rule (L = R*299/1000 + G*587/1000 +
B*114/1000, the same weights for float data), L -> RGB replicates.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import DataError
from . import dicom, highbit

ORIENTED_FORMATS = {"JPEG", "MPO", "TIFF"}
HIGH_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I;16S", "I", "F"}  # Pillow keeps every bit of these
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class DecodeOptions:
    """``value_range``: raw (lo, hi) mapped to [0, 1] for non-DICOM images; ``window``: DICOM (center, width)."""

    value_range: tuple[float, float] | None = None
    window: tuple[float, float] | None = None


@dataclass(frozen=True)
class DecodedImage:
    """Either an 8-bit L/RGB Pillow image (ordinary 8-bit files) or float32 (H, W, C) intensities in [0, 1]."""

    pil: Image.Image | None = None
    array: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        if self.pil is not None:
            return self.pil.size
        assert self.array is not None
        return self.array.shape[1], self.array.shape[0]

    def to_array(self) -> np.ndarray:
        if self.array is not None:
            return self.array
        assert self.pil is not None
        a = np.asarray(self.pil, dtype=np.float32) / 255.0
        return a[:, :, None] if a.ndim == 2 else a


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


def _bomb(path: Path, e: Exception) -> DataError:
    return DataError(f"{path}: image refused as a possible decompression bomb ({e})")


def _check_pixels(path: Path, w: int, h: int) -> None:
    """Pillow's decompression-bomb limit for files read without Pillow."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and w * h > limit:
        raise DataError(f"{path}: image refused as a possible decompression bomb ({w}x{h} pixels > {limit})")


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(512)
    except OSError as e:
        raise DataError(f"{path}: cannot read image: {e.strerror or e}") from None


def _is_tiff(head: bytes) -> bool:
    return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def orientation_of(im: Image.Image) -> int:
    """EXIF/TIFF Orientation (1…8) of an opened JPEG or TIFF, 1 for other formats or a broken tag. TIFF reads the
    IFD tag itself: Pillow versions differ in whether (and how well) they apply it while loading."""
    if im.format not in ORIENTED_FORMATS:
        return 1
    try:
        tags = im.tag_v2 if im.format == "TIFF" else im.getexif()  # type: ignore[attr-defined]
        value = int(tags.get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is ignored, as viewers do
        return 1
    return value if 1 <= value <= 8 else 1


def stored_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as stored in the file (some Pillow versions report a TIFF's oriented size)."""
    if im.format == "TIFF":
        return int(im.tag_v2.get(256, im.size[0])), int(im.tag_v2.get(257, im.size[1]))  # type: ignore[attr-defined]
    return im.size


def _to_unit(raw: np.ndarray, path: Path, opts: DecodeOptions, scale: float | None = None) -> np.ndarray:
    """Raw samples -> float64 in [0, 1] by the module's rules."""
    if opts.value_range is not None:
        lo, hi = opts.value_range
        x = raw.astype(np.float64)
        if not np.isfinite(x).all():
            raise DataError(f"{path}: image has NaN or infinite values")
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    if raw.dtype == np.bool_:
        return raw.astype(np.float64)
    if raw.dtype == np.uint8:
        return raw / 255.0
    if raw.dtype.kind in "ui":
        if scale is not None:
            return raw / scale
        lo, hi = int(raw.min(initial=0)), int(raw.max(initial=0))
        if raw.dtype == np.uint16 or (lo >= 0 and hi <= 65535):
            return raw / 65535.0
        raise DataError(f"{path}: {raw.dtype} image with values in [{lo}, {hi}] fits no rule (16-bit data must lie "
                        f"in [0, 65535]); set data.value_range = [lo, hi] to state the range")
    if raw.dtype.kind == "f":
        x = raw.astype(np.float64)
        if not np.isfinite(x).all():
            raise DataError(f"{path}: float image has NaN or infinite values")
        lo, hi = float(x.min(initial=0.0)), float(x.max(initial=0.0))
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{path}: float image with values in [{lo:g}, {hi:g}] has no known range (only [0, 1] is "
                            f"implied); set data.value_range = [lo, hi] to state it")
        return x
    raise DataError(f"{path}: unsupported sample type {raw.dtype}")


def _channels(x: np.ndarray, alpha: bool, premultiplied: bool, channels: int) -> np.ndarray:
    """(H, W[, S]) unit samples -> float32 (H, W, channels); alpha composited over black."""
    if x.ndim == 2:
        x = x[:, :, None]
    if alpha:
        x = x[:, :, :-1] if premultiplied else x[:, :, :-1] * x[:, :, -1:]
    if x.shape[2] == 3 and channels == 1:
        x = (x @ _LUMA)[:, :, None]
    elif x.shape[2] == 1 and channels == 3:
        x = np.repeat(x, 3, axis=2)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def _from_raw(r: highbit.Raw, path: Path, channels: int, opts: DecodeOptions, orientation: int = 1) -> DecodedImage:
    x = _to_unit(r.samples, path, opts, r.scale)
    if r.invert:
        x = 1.0 - x
    return DecodedImage(array=highbit.orient(_channels(x, r.alpha, r.premultiplied, channels), orientation))


def _pil_8bit(img: Image.Image, channels: int) -> Image.Image:
    """The earlier conversion of 8-bit modes to L or RGB (alpha over black)."""
    target = "L" if channels == 1 else "RGB"
    if img.mode != target:
        if img.mode in ("RGBA", "LA", "P", "PA"):
            img = img.convert("RGBA")
            bg = Image.new("RGBA", img.size, (0, 0, 0, 255))
            img = Image.alpha_composite(bg, img)
        img = img.convert(target)
    return img


def _decode_pil(path: Path, head: bytes, channels: int, opts: DecodeOptions) -> DecodedImage:
    try:
        with strict_decoding(), Image.open(path) as im:
            fmt, mode, orientation = im.format, im.mode, orientation_of(im)
            if fmt == "TIFF" and (orientation != 1 or (
                    mode not in HIGH_BIT_MODES and max(im.tag_v2.get(258, (8,)) or (8,)) > 8)):
                # more than 8 bits that Pillow would reduce (16-bit RGB), or an orientation to apply
                raw, orientation = highbit.read_tiff(path)
                return _from_raw(raw, path, channels, opts, orientation)
            png = highbit.png_header(head) if fmt == "PNG" else None
            if png is not None and png[0] == 16 and png[1] in (2, 4, 6):
                return _from_raw(highbit.read_png16(path), path, channels, opts)
            ppm = highbit.ppm_header(head) if fmt == "PPM" else None
            if ppm is not None and ppm[0] == "P6" and ppm[3] > 255:
                return _from_raw(highbit.read_ppm16(path), path, channels, opts)
            im.load()
            img = ImageOps.exif_transpose(im) if orientation != 1 else im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _bomb(path, e) from None
    except UnidentifiedImageError:
        if _is_tiff(head):  # e.g. float64 TIFF, which Pillow cannot open
            _check_pixels(path, *highbit.tiff_size(path)[:2])
            raw, orientation = highbit.read_tiff(path)
            return _from_raw(raw, path, channels, opts, orientation)
        raise DataError(f"{path}: not a readable image (empty, corrupt or unknown format)") from None
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, ValueError, struct.error, … from a bad file
        raise DataError(f"{path}: cannot decode image: {e}") from None
    try:
        if mode in HIGH_BIT_MODES:
            return _from_raw(highbit.Raw(np.asarray(img)), path, channels, opts)
        img = _pil_8bit(img, channels)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: unsupported image mode {mode!r} ({e})") from None
    if opts.value_range is not None:
        return _from_raw(highbit.Raw(np.asarray(img)), path, channels, opts)
    return DecodedImage(pil=img)


def decode_image(path: Path, channels: int, opts: DecodeOptions | None = None) -> DecodedImage:
    """Decode one image fully into ``channels`` (1 or 3) channels by the module's rules; errors name the file."""
    opts = opts or DecodeOptions()
    head = _head(path)
    if dicom.is_dicom(path, head):
        x = dicom.decode_dicom(path, opts.window, Image.MAX_IMAGE_PIXELS)
        return DecodedImage(array=_channels(x.astype(np.float64), False, False, channels))
    return _decode_pil(path, head, channels, opts)


def open_image(path: Path, channels: int, opts: DecodeOptions | None = None) -> Image.Image:
    """An 8-bit L or RGB view of the decoded image (for display). Scoring uses ``decode_image``, which keeps
    every bit of 16-bit, float and DICOM images."""
    d = decode_image(path, channels, opts)
    if d.pil is not None:
        return d.pil
    assert d.array is not None
    a = np.rint(d.array.astype(np.float64) * 255.0).astype(np.uint8)
    return Image.fromarray(a[:, :, 0] if channels == 1 else a)


def image_size_of(path: Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the header only."""
    head = _head(path)
    if dicom.is_dicom(path, head):
        return dicom.dicom_size(path)
    try:
        with strict_decoding(), Image.open(path) as im:
            w, h = stored_size(im)
            return (h, w) if orientation_of(im) in (5, 6, 7, 8) else (w, h)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _bomb(path, e) from None
    except UnidentifiedImageError:
        if _is_tiff(head):
            w, h, orientation = highbit.tiff_size(path)
            return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
        raise DataError(f"{path}: cannot read image header: not a readable image") from None
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, … from a bad file
        raise DataError(f"{path}: cannot read image header: {e}") from None
