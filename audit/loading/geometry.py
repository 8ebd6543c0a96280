"""How an image is fitted to the model input (``data.resize``), for pixels, ROI boxes and ROI masks alike.

- ``stretch`` (default): the whole image is resized to image_size; the aspect ratio changes when it differs.
- ``letterbox``: the whole image is scaled by one factor to fit inside image_size, centred, and the borders are
  filled with ``data.pad_value`` (a decoded intensity in [0, 1], before mean/std normalisation).
- ``center_crop``: the image is scaled by one factor to cover image_size and the centre is cut out (a sub-pixel
  box resampled in one step). With ``resize_to`` (or ``crop_pct``) it is done in two steps as torchvision's
  ``Resize`` + ``CenterCrop``, timm's eval transform and Hugging Face's processors do it: the whole image is
  resized (an int: its shortest edge to that length, the long edge to ``int(length * long / short)``; [h, w]:
  to that size), then the integer box image_size is cut at offset (resized - image_size) / 2 rounded by
  ``crop_rounding``.

Resampling uses ``data.interpolation`` (default bilinear; antialiased when shrinking) by Pillow: on the 8-bit
image for 8-bit files (results identical to earlier versions) and on float32 planes (mode "F") for everything
else, so no bit is lost; ``data.resampler = "torch"`` resamples with torchvision's tensor resize instead (see
``resample.py``). Masks are always resampled nearest-neighbour with Pillow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
from PIL import Image

from ..config import DataConfig
from ..errors import DataError

ResizeMode = Literal["stretch", "letterbox", "center_crop"]
PIL_FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
               "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}


@dataclass(frozen=True)
class Fit:
    """``src``: the box of the (displayed) image that is resampled (x0, y0, x1, y1, float pixels);
    ``dst``: where it lands in the model input (x, y, width, height); ``size``: the input (height, width)."""

    src: tuple[float, float, float, float]
    dst: tuple[int, int, int, int]
    size: tuple[int, int]
    image_size: tuple[int, int]  # (width, height) of the displayed image
    scaled: tuple[int, int] | None = None  # two-step crop: the whole image resized to (w, h) first …
    offset: tuple[int, int] = (0, 0)  # … and the input-sized box cut there at (x, y); src is that box in image pixels

    @property
    def whole(self) -> bool:
        """The whole image is resampled (stretch and letterbox)."""
        w0, h0 = self.image_size
        return self.src == (0, 0, w0, h0)

    @property
    def identity(self) -> bool:
        """Nothing to resample or pad: the image already has the input's size."""
        w0, h0 = self.image_size
        return self.whole and self.dst == (0, 0, w0, h0) and self.size == (h0, w0)


@dataclass(frozen=True)
class Geometry:
    """How images meet the input size: ``data.resize`` with its two-step crop settings (``resize_to`` or
    ``crop_pct``, ``crop_rounding``)."""

    mode: ResizeMode = "stretch"
    resize_to: int | tuple[int, int] | None = None
    crop_pct: float | None = None
    crop_rounding: Literal["round", "floor"] = "round"

    def scale_size(self, size: tuple[int, int]) -> int | tuple[int, int] | None:
        """The first step's target: an int shortest edge or an (h, w) size; None for a one-step fit."""
        if self.resize_to is not None:
            return self.resize_to
        if self.crop_pct is None:
            return None
        h, w = (math.floor(s / self.crop_pct) for s in size)  # timm's and ConvNeXt's rule
        return h if size[0] == size[1] else (h, w)


Resize = Union[ResizeMode, Geometry]  # noqa: UP007 - a runtime alias


def geometry_of(d: DataConfig) -> Geometry:
    """The data section's fitting rule (resize mode with its two-step crop settings)."""
    return Geometry(d.resize, d.resize_to, d.crop_pct, d.crop_rounding)


def _scaled(width: int, height: int, to: int | tuple[int, int]) -> tuple[int, int]:
    """(w, h) after the first step: [h, w] as given, an int as the shortest edge (the long edge truncated, as
    torchvision and Hugging Face compute it)."""
    if not isinstance(to, int):
        return to[1], to[0]
    if width <= height:
        return to, int(to * height / width)
    return int(to * width / height), to


def _two_step(width: int, height: int, size: tuple[int, int], g: Geometry, to: int | tuple[int, int]) -> Fit:
    H, W = size
    sw, sh = _scaled(width, height, to)
    if sw < W or sh < H:
        raise DataError(f"the {width}x{height} image resized to {sw}x{sh} is smaller than the {W}x{H} centre crop "
                        "(padding is not reproduced)")
    rnd = round if g.crop_rounding == "round" else math.floor
    x, y = int(rnd((sw - W) / 2)), int(rnd((sh - H) / 2))
    kx, ky = width / sw, height / sh
    return Fit((x * kx, y * ky, (x + W) * kx, (y + H) * ky), (0, 0, W, H), size, (width, height), (sw, sh), (x, y))


def plan_fit(width: int, height: int, size: tuple[int, int], mode: Resize = "stretch") -> Fit:
    """The geometry that maps a ``width`` x ``height`` image onto an input of ``size`` = (H, W). ``mode``: a
    data.resize name, or a Geometry with the two-step crop settings."""
    if isinstance(mode, Geometry):
        to = mode.scale_size(size) if mode.mode == "center_crop" else None
        if to is not None:
            return _two_step(width, height, size, mode, to)
        mode = mode.mode
    H, W = size
    if mode == "stretch":
        return Fit((0, 0, width, height), (0, 0, W, H), size, (width, height))
    if mode == "letterbox":
        s = min(W / width, H / height)
        nw = min(W, max(1, int(width * s + 0.5)))
        nh = min(H, max(1, int(height * s + 0.5)))
        return Fit((0, 0, width, height), ((W - nw) // 2, (H - nh) // 2, nw, nh), size, (width, height))
    if mode == "center_crop":
        s = max(W / width, H / height)
        cw, ch = W / s, H / s
        x0, y0 = (width - cw) / 2, (height - ch) / 2
        return Fit((x0, y0, x0 + cw, y0 + ch), (0, 0, W, H), size, (width, height))
    raise ValueError(f"unknown resize mode {mode!r}")


def _resample(img: Image.Image, fit: Fit, resample: Image.Resampling) -> Image.Image:
    _, _, nw, nh = fit.dst
    if fit.scaled is not None:
        if img.size != fit.scaled:
            img = img.resize(fit.scaled, resample)
        x, y = fit.offset
        return img.crop((x, y, x + nw, y + nh))
    if fit.whole:
        if (img.width, img.height) == (nw, nh):
            return img
        return img.resize((nw, nh), resample)
    return img.resize((nw, nh), resample, box=fit.src)


def place(arr: np.ndarray, fit: Fit, fill: float) -> np.ndarray:
    """``arr`` (h, w, C) placed at fit.dst on an input-sized canvas filled with ``fill``."""
    x, y, nw, nh = fit.dst
    H, W = fit.size
    if (x, y, nw, nh) == (0, 0, W, H):
        return arr
    canvas = np.full((H, W, arr.shape[2]), fill, dtype=arr.dtype)
    canvas[y:y + nh, x:x + nw] = arr
    return canvas


def fit_pil(img: Image.Image, fit: Fit, fill: float, interpolation: str = "bilinear") -> np.ndarray:
    """An 8-bit L/RGB image -> float32 (H, W, C) in [0, 1]. Under stretch this is exactly the earlier pipeline:
    ``Image.resize(BILINEAR)`` then /255."""
    arr = np.asarray(_resample(img, fit, PIL_FILTERS[interpolation]), dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return place(arr, fit, fill)


def fit_float(arr: np.ndarray, fit: Fit, fill: float, interpolation: str = "bilinear") -> np.ndarray:
    """A float32 (h, w, C) array -> float32 (H, W, C), each channel resampled as a mode "F" image."""
    if fit.identity:
        return arr
    planes = [np.asarray(_resample(Image.fromarray(np.ascontiguousarray(arr[:, :, c], dtype=np.float32)), fit,
                                   PIL_FILTERS[interpolation]), dtype=np.float32) for c in range(arr.shape[2])]
    return place(np.stack(planes, axis=2), fit, fill)


def box_to_mask(box: tuple[float, float, float, float], fit: Fit) -> np.ndarray:
    """A box in displayed-image pixels -> boolean (H, W) mask of the input pixels it touches (outward rounding),
    cut to where the image lands (letterbox borders and cropped-away parts are outside)."""
    H, W = fit.size
    sx0, sy0, sx1, sy1 = fit.src
    ox, oy, nw, nh = fit.dst
    kx, ky = nw / (sx1 - sx0), nh / (sy1 - sy0)
    x0, y0, x1, y1 = box
    c0, c1 = math.floor(ox + (x0 - sx0) * kx), math.ceil(ox + (x1 - sx0) * kx)
    r0, r1 = math.floor(oy + (y0 - sy0) * ky), math.ceil(oy + (y1 - sy0) * ky)
    r0, r1, c0, c1 = max(r0, oy), min(r1, oy + nh), max(c0, ox), min(c1, ox + nw)
    m = np.zeros((H, W), dtype=bool)
    if r0 < r1 and c0 < c1:
        m[r0:r1, c0:c1] = True
    return m


def fit_nearest(img: Image.Image, fit: Fit, fill: int) -> np.ndarray:
    """A single-band image (displayed-image size) -> its (H, W) values, nearest-neighbour resampled, ``fill``
    where the image does not land (letterbox borders)."""
    m = np.asarray(_resample(img, fit, Image.NEAREST))
    return place(m[:, :, None], fit, fill)[:, :, 0]


def fit_mask(mask: Image.Image, fit: Fit) -> np.ndarray:
    """A mask image (mode L, displayed-image size) -> boolean (H, W) mask, nearest-neighbour resampled."""
    return fit_nearest(mask, fit, 0) > 0
