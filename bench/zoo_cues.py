"""The shortcut zoo's confounder kinds: each puts one cue on a subset ``has`` of a family's base images.

    corner           a red 5×5 tag in the top-left corner
    letterbox        black bars of 4 px at the top and the bottom
    tint             a colour cast (red +0.10, blue −0.10) over the whole image
    blur             the whole image blurred (Gaussian, sigma 1.2 px): a softer acquisition
    jpeg             stored as JPEG quality 12 (the rest quality 95; every file of this kind is a JPEG)
    text             a burnt-in two-letter marker ("AP"), white, at a random position outside the object
    texture          fine diagonal stripes (period 4 px, ±0.06) in the background
    site_brightness  site A images brighter (+0.12) with less contrast (×0.7); a metadata column ``site``
    site_trace       a metadata column ``site``; site A images carry a faint trace (+0.06 on every 4th row)
    checker          a black-and-white checkerboard tag (6×6, 2 px squares) in the bottom-right corner
    bg_hue           the background alone shifted towards teal (red −0.08, green +0.04, blue +0.08); the object
                     keeps its colour
    watermark        a faint tiled overlay ("AP" every 8 px, +0.06) over the whole image, object included
    lowres           a low-resolution site: 2×2 blocks averaged, then upsampled by nearest neighbour (pixelated)
    logo             a small logo (a blue ring with a yellow centre, 5×5) at a random position outside the object
    noise            a noisy sensor: Gaussian pixel noise (sd 0.07) over the whole image
    ruler            a light ruler strip with dark ticks along the bottom 3 rows (one border, not a pair)
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from zoo_bases import SIZE, TAG_ZONE

KINDS = ("corner", "letterbox", "tint", "blur", "jpeg", "text", "texture", "site_brightness", "site_trace",
         "checker", "bg_hue", "watermark", "lowres", "logo", "noise", "ruler")
SITE_KINDS = ("site_brightness", "site_trace")  # the cue comes with a metadata column ``site``
JPEG_QUALITY = (12, 95)  # cue, no cue

# a 3×5 pixel font for the burnt-in marker and the watermark
_GLYPHS = {
    "A": ["010", "101", "111", "101", "101"],
    "P": ["110", "101", "110", "100", "100"],
}


def _word(word: str) -> np.ndarray:
    out = np.zeros((5, 4 * len(word) - 1), dtype=bool)
    for k, ch in enumerate(word):
        for r, row in enumerate(_GLYPHS[ch]):
            for c, bit in enumerate(row):
                out[r, 4 * k + c] = bit == "1"
    return out


def _logo() -> tuple[np.ndarray, np.ndarray]:
    """A 5×5 logo: RGB values and where it is drawn."""
    yy, xx = np.mgrid[0:5, 0:5] - 2.0
    r = np.hypot(yy, xx)
    rgb = np.zeros((5, 5, 3))
    rgb[:] = (0.12, 0.3, 0.92)
    rgb[r < 1.0] = (0.98, 0.85, 0.1)
    return rgb, r <= 2.3


def _free_spot(box: np.ndarray, w: int, h: int, rng: np.random.Generator) -> tuple[int, int]:
    """A random top-left corner for a w×h mark clear of the object's box (by one pixel)."""
    x0, y0, x1, y1 = box
    for _ in range(200):
        x = int(rng.integers(1, SIZE - w - 1))
        y = int(rng.integers(1, SIZE - h - 1))
        if x + w + 1 <= x0 or x >= x1 + 1 or y + h + 1 <= y0 or y >= y1 + 1:
            break
    return x, y


def _watermark() -> np.ndarray:
    mark = np.zeros((SIZE, SIZE), dtype=bool)
    glyph = _word("AP")
    for y in range(1, SIZE, 8):
        for x in range((y // 8 % 2) * 4, SIZE, 8):
            h, w = min(5, SIZE - y), min(glyph.shape[1], SIZE - x)
            mark[y:y + h, x:x + w] |= glyph[:h, :w]
    return mark


def _ruler() -> np.ndarray:
    strip = np.full((3, SIZE), 0.85)
    strip[:2, ::3] = 0.15
    strip[:, ::9] = 0.15
    return strip


def apply(kind: str, imgs: np.ndarray, boxes: np.ndarray, objmask: np.ndarray, has: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """The images with ``kind``'s cue on the rows ``has`` selects (float, before clipping; JPEG is applied when
    encoding)."""
    out = imgs.copy()
    idx = np.flatnonzero(has)
    if kind == "corner":
        out[idx, 1:6, 1:6] = (0.95, 0.18, 0.18)
    elif kind == "letterbox":
        out[idx, :4] = 0.0
        out[idx, -4:] = 0.0
    elif kind == "tint":
        out[idx, :, :, 0] += 0.10
        out[idx, :, :, 2] -= 0.10
    elif kind == "blur":
        for i in idx:
            out[i] = gaussian_filter(out[i], sigma=(1.2, 1.2, 0))
    elif kind == "text":
        glyph = _word("AP")
        for i in idx:
            x, y = _free_spot(boxes[i], glyph.shape[1], 5, rng)
            out[i, y:y + 5, x:x + glyph.shape[1]][glyph] = 0.96
    elif kind == "texture":
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        stripes = 0.06 * np.sin(2 * np.pi * (xx + yy) / 4.0)
        for i in idx:
            out[i] += (stripes * ~objmask[i])[..., None]
    elif kind == "site_brightness":
        out[idx] = (out[idx] - 0.5) * 0.7 + 0.5 + 0.12
    elif kind == "site_trace":
        out[idx, ::4] += 0.06
    elif kind == "checker":
        yy, xx = np.mgrid[0:6, 0:6]
        board = np.where((yy // 2 + xx // 2) % 2 == 0, 0.05, 0.95)
        lo = SIZE - TAG_ZONE + 1
        out[idx, lo:lo + 6, lo:lo + 6] = board[..., None]
    elif kind == "bg_hue":
        shift = np.array([-0.08, 0.04, 0.08])
        for i in idx:
            out[i] += (~objmask[i])[..., None] * shift
    elif kind == "watermark":
        out[idx] += 0.06 * _watermark()[None, ..., None]
    elif kind == "lowres":
        h = SIZE // 2
        small = out[idx].reshape(len(idx), h, 2, h, 2, 3).mean((2, 4))
        out[idx] = small.repeat(2, axis=1).repeat(2, axis=2)
    elif kind == "logo":
        rgb, where = _logo()
        for i in idx:
            x, y = _free_spot(boxes[i], 5, 5, rng)
            out[i, y:y + 5, x:x + 5][where] = rgb[where]
    elif kind == "noise":
        out[idx] += rng.normal(0, 0.07, out[idx].shape)
    elif kind == "ruler":
        out[idx, -3:] = _ruler()[None, ..., None]
    elif kind != "jpeg":
        raise ValueError(f"unknown confounder kind {kind!r}; known: {', '.join(KINDS)}")
    return out


def encode_jpeg(u8: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(u8, mode="RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode(blob: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
