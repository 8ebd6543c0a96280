"""Figures as PNG data URIs, drawn once and shared by the HTML and PDF reports.

Overlays are composed with numpy and a matplotlib colour map (no figure per cell), so hundreds of cells cost
milliseconds; matplotlib figures are used only for charts.

Reading rules every map figure follows (checked by looking at the rendered PDF and HTML):

- colour maps are perceptually ordered: ``inferno`` (sequential, cut before its near-white end) for non-negative
  maps, Moreland's diverging ``coolwarm`` (perceptually balanced arms, blue < 0 < red) for signed maps on a scale
  symmetric around zero (``-vmax … +vmax``); no rainbow (``jet``) map. Chosen by looking at the demo's seven
  explainers side by side: ``RdBu_r``'s dark ends vanish on dark inputs, ``berlin``'s pale ends read as noise;
- the overlay's opacity grows with |value| (:func:`opacity`); the colour bar is drawn with the same colours *and*
  the same opacity over a dark and a light background, so the key matches what the cells show;
- the input under a map is shown in grey with its contrast reduced (:data:`BASE_LOW` … :data:`BASE_HIGH`) so the
  map stays visible on noisy inputs while the anatomy shows through;
- every sample cell is drawn at one display size (:func:`display_px`: integer nearest-neighbour upscaling of small
  inputs, so the region-of-interest outline can be one display pixel wide); the ROI outline is a dashed
  black-and-white line drawn *outside* the region, so it never covers attribution inside it;
- class colours come from Paul Tol's colour-blind-safe "muted" scheme, with a marker shape per class as well;
- charts are SVG with text as text, at most :data:`CHART_WIDTH_IN` wide with text of :data:`MIN_FONT_PT` or more,
  legends outside the plotted data.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.text import Text
from PIL import Image

DISPLAY_PX = 128  # a sample cell's drawn size (longest side), before the page scales it to its printed size
UNSIGNED_CMAP = "inferno"  # sequential, perceptually uniform, readable in greyscale and by colour-blind readers
UNSIGNED_TOP = 0.9  # inferno is cut before its near-white end, which would hide bright anatomy under it
SIGNED_CMAP = "coolwarm"  # diverging (Moreland: perceptually balanced arms), blue < 0 < red, symmetric around zero
ALPHA_MAX = 0.6  # opacity of the strongest attribution in the static (PDF) overlays
ALPHA_FLOOR = 0.08  # |value| / vmax below this is fully transparent (the input shows as is)
ALPHA_GAMMA = 0.75  # < 1 lifts weak but real attribution above the noise floor of the eye
BASE_LOW, BASE_HIGH = 0.1, 0.6  # the grey input under a map is mapped into this range (contrast reduced)
#: Paul Tol's "muted" qualitative scheme (colour-blind safe), then his "dark" greys for more classes
CLASS_COLORS = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499",
                "#555555")
CLASS_MARKERS = ("o", "s", "^", "D", "v", "P", "*", "h", "<", ">", "p", "8")
MIN_FONT_PT = 9.0  # the smallest text in a chart, at its natural size
CHART_WIDTH_IN = 4.4  # the widest chart (inches): 9 pt text at 395 px wide renders at 11.2 px
PAD_IN = 0.05  # white margin around a saved chart (inches)


def png_uri(arr: np.ndarray) -> str:
    """(H, W, 3) or (H, W, 4) float [0,1] or uint8 -> data URI."""
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def fig_uri(fig: plt.Figure) -> str:
    """A chart as an SVG data URI, its text kept as text (legible at any zoom, selectable in the PDF): every text
    raised to at least :data:`MIN_FONT_PT`. Charts are drawn at most :data:`CHART_WIDTH_IN` wide, so that on a
    420 px screen (about 395 px for the figure) their smallest text still renders at 11 px or more, and in print
    at their natural size (8 pt or more)."""
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text() and text.get_fontsize() < MIN_FONT_PT:
            text.set_fontsize(MIN_FONT_PT)
    limit = CHART_WIDTH_IN - 2 * PAD_IN  # the saved box is the tight box plus its padding on both sides
    for _ in range(8):  # labels and legends outside the axes widen the saved (tight) box: narrow the axes instead
        wide = fig.get_tightbbox(fig.canvas.get_renderer()).width - limit
        if wide <= 0.01:
            break
        w, h = fig.get_size_inches()
        fig.set_size_inches(max(w - wide - 0.02, 1.0), h)
    buf = io.BytesIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "model-audit"}):  # same chart, same bytes
        fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=PAD_IN, metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def class_colors(n: int) -> list[str]:
    """``n`` colour-blind-safe class colours (cycled beyond ten: pair them with :data:`CLASS_MARKERS`)."""
    return [CLASS_COLORS[i % len(CLASS_COLORS)] for i in range(n)]


@dataclass(frozen=True)
class Scale:
    """A shared display scale for one explainer's maps."""

    signed: bool
    vmax: float

    def norm(self) -> Normalize:
        v = self.vmax if self.vmax > 0 else 1.0
        return TwoSlopeNorm(vcenter=0.0, vmin=-v, vmax=v) if self.signed else Normalize(0.0, v)

    @property
    def cmap(self) -> str:
        return SIGNED_CMAP if self.signed else UNSIGNED_CMAP

    @property
    def vmin(self) -> float:
        return -self.vmax if self.signed else 0.0


def shared_scale(maps: np.ndarray, signed: bool) -> Scale:
    """99th percentile of |map| (or of the map when unsigned) over all maps of one explainer."""
    finite = maps[np.isfinite(maps)]
    if finite.size == 0:
        return Scale(signed, 1.0)
    v = float(np.percentile(np.abs(finite) if signed else np.clip(finite, 0, None), 99))
    if v <= 0:
        v = float(np.abs(finite).max()) or 1.0
    return Scale(signed, v)


def display_px(image: np.ndarray, target: int = DISPLAY_PX) -> tuple[int, int]:
    """(height, width) a cell of ``image`` is drawn at: small inputs upscaled by the largest integer factor that
    keeps the longest side at most ``target`` (at least 2, so a 1-pixel outline is half an input pixel), large
    inputs downsampled so the longest side is ``target``."""
    h, w = image.shape[:2]
    side = max(h, w)
    if side <= target:
        k = max(2, target // side)
        return h * k, w * k
    s = target / side
    return max(1, round(h * s)), max(1, round(w * s))


def cell_px(image: np.ndarray) -> int:
    """The longest side of a cell of ``image`` in drawn pixels (kept for callers that size by one number)."""
    return max(display_px(image))


def _resize(arr: np.ndarray, hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    h, w = hw
    if arr.dtype == bool:
        return np.asarray(Image.fromarray(arr.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
    if arr.shape[:2] == (h, w):
        return np.clip(arr, 0, 1).astype(np.float32)
    img = Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8))
    small = h >= arr.shape[0]  # upscaling an input: keep its pixels square (nearest); downscaling: average
    method = Image.NEAREST if (nearest and small) else (Image.BILINEAR if small else Image.BOX)
    return np.asarray(img.resize((w, h), method)).astype(np.float32) / 255.0


def _resize_float(m: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float map keeping its values (no 8-bit round trip)."""
    h, w = hw
    if m.shape == (h, w):
        return m.astype(np.float32)
    return np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]


def roi_ring(mask: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The ROI outline at display size: a one-pixel ring just *outside* the region (so nothing inside it is
    covered), as (dark pixels, light pixels) of a dashed line that shows on any background."""
    m = _resize(mask, hw)
    grown = m.copy()
    grown[1:, :] |= m[:-1, :]
    grown[:-1, :] |= m[1:, :]
    grown[:, 1:] |= m[:, :-1]
    grown[:, :-1] |= m[:, 1:]
    ring = grown & ~m
    yy, xx = np.indices(ring.shape)
    dash = ((xx + yy) // 3) % 2 == 0
    return ring & dash, ring & ~dash


def _draw_roi(out: np.ndarray, roi: np.ndarray | None) -> np.ndarray:
    if roi is None:
        return out
    dark, light = roi_ring(roi, out.shape[:2])
    out = out.copy()
    out[dark, :3] = 0.0
    out[light, :3] = 1.0
    if out.shape[2] == 4:
        out[dark | light, 3] = 1.0
    return out


# A finding's regions (``Mark``: a mask at input size and its colour), drawn as solid rings outside the region so
# they differ from the ROI's dashed black-and-white ring; the report's legend names the colours.
JUDGED_RGB = (0.80, 0.0, 0.80)  # magenta: the region the finding judged
CARRIER_RGB = (0.0, 0.70, 0.95)  # cyan: the smaller region that carries the effect
Mark = tuple[np.ndarray, tuple[float, float, float]]


def _draw_marks(out: np.ndarray, marks: Sequence[Mark]) -> np.ndarray:
    for mask, rgb in marks:
        dark, light = roi_ring(mask, out.shape[:2])
        ring = dark | light
        out = out.copy()
        out[ring, :3] = rgb
        if out.shape[2] == 4:
            out[ring, 3] = 1.0
    return out


def image_cell(image: np.ndarray, roi: np.ndarray | None = None, size: int = DISPLAY_PX,
               marks: Sequence[Mark] = ()) -> str:
    """The input as the model saw it (intensities in [0, 1]) at display size, ROI outlined outside the region,
    and a finding's ``marks`` (solid rings) after it."""
    hw = display_px(image, size)
    return png_uri(_draw_marks(_draw_roi(_resize(_rgb(image), hw, nearest=True), roi), marks))


@lru_cache(maxsize=8)
def _lut(cmap: str) -> np.ndarray:
    """The colour map's own 256-entry table (matplotlib indexes it the same way), (256, 3) float32."""
    cm = colormaps[cmap]
    top = UNSIGNED_TOP if cmap == UNSIGNED_CMAP else 1.0
    return cm(np.linspace(0.0, top, 256))[:, :3].astype(np.float32)


def opacity(weight: np.ndarray) -> np.ndarray:
    """Opacity in [0, 1] of a map value whose magnitude is ``weight`` = |value| / vmax (clipped to [0, 1]):
    transparent below :data:`ALPHA_FLOOR`, then rising with exponent :data:`ALPHA_GAMMA` to 1 at vmax."""
    w = np.clip((np.asarray(weight, dtype=np.float32) - ALPHA_FLOOR) / (1.0 - ALPHA_FLOOR), 0.0, 1.0)
    return w ** ALPHA_GAMMA


def _colour_and_weight(m: np.ndarray, scale: Scale) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) colour and (H, W) |value| / vmax of a map under ``scale`` (NaN and inf drawn as zero)."""
    m = np.nan_to_num(m.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    v = scale.vmax or 1.0
    if scale.signed:
        t = np.clip(m / v, -1.0, 1.0)
        pos, weight = (t + 1.0) / 2.0, np.abs(t)  # TwoSlopeNorm(vcenter=0, vmin=-v, vmax=v)
    else:
        weight = np.clip(m / v, 0.0, 1.0)
        pos = weight  # Normalize(0, v), out-of-range clamped like the colour map's under/over
    lut = _lut(scale.cmap)
    idx = np.clip((pos * len(lut)).astype(np.int64), 0, len(lut) - 1)
    return lut[idx], weight


def _base(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    grey = _resize(_rgb(image), hw, nearest=True).mean(axis=2, keepdims=True)
    return BASE_LOW + (BASE_HIGH - BASE_LOW) * grey


def heat_rgba(amap: np.ndarray, scale: Scale, hw: tuple[int, int]) -> np.ndarray:
    """(H, W, 4) float: the map's colours with opacity :func:`opacity` (before :data:`ALPHA_MAX`), at ``hw``."""
    col, weight = _colour_and_weight(_resize_float(amap, hw), scale)
    return np.concatenate([col, opacity(weight)[..., None]], axis=2)


def overlay_cell(image: np.ndarray, amap: np.ndarray, scale: Scale, roi: np.ndarray | None = None,
                 size: int = DISPLAY_PX, alpha: float = ALPHA_MAX, marks: Sequence[Mark] = ()) -> str:
    """The map in the explainer's colour scale blended over a contrast-reduced grey copy of the input, ROI
    outlined outside the region. The map is resized to the cell bilinearly *before* colouring (values, not
    colours, are interpolated)."""
    hw = display_px(image, size)
    heat = heat_rgba(amap, scale, hw)
    a = heat[..., 3:] * alpha
    out = _base(image, hw) * (1 - a) + heat[..., :3] * a
    return png_uri(_draw_marks(_draw_roi(out, roi), marks))


def heat_layer(image: np.ndarray, amap: np.ndarray, scale: Scale, roi: np.ndarray | None = None,
               size: int = DISPLAY_PX) -> str:
    """The map alone as a transparent PNG (opacity = :func:`opacity`), for the HTML report, which stacks it over
    :func:`base_cell` and lets the reader set its overall opacity."""
    hw = display_px(image, size)
    return png_uri(_draw_roi(heat_rgba(amap, scale, hw), roi))


def base_cell(image: np.ndarray, size: int = DISPLAY_PX) -> str:
    """The contrast-reduced grey input that :func:`overlay_cell` draws under a map."""
    hw = display_px(image, size)
    return png_uri(np.repeat(_base(image, hw), 3, axis=2))


def nice_ticks(lo: float, hi: float) -> list[float]:
    """Three tick values: both ends and the middle (zero for a signed scale)."""
    if hi <= lo:
        return [lo]
    return [lo, (lo + hi) / 2, hi]


def scale_exponent(vmax: float) -> int:
    """The power of ten factored out of tick labels (0 when the labels read well as they are)."""
    if not vmax or not math.isfinite(vmax):
        return 0
    e = math.floor(math.log10(abs(vmax)))
    return 0 if -2 <= e <= 2 else e


def tick_text(v: float, vmax: float, exponent: int = 0) -> str:
    """A tick label with two significant digits relative to the scale, after dividing by 10**exponent."""
    if v == 0:
        return "0"
    v, mag = v / 10.0 ** exponent, abs(vmax) / 10.0 ** exponent
    digits = max(0, 1 - math.floor(math.log10(mag))) if mag > 0 else 2
    return f"{v:.{digits}f}".replace("-", "−")


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def colorbar(scale: Scale, label: str, unit: str = "") -> dict[str, Any]:
    """The key of one explainer's maps: a ramp image drawn exactly as the cells are (same colours, same opacity
    over a dark and a light input), three tick labels (ends and middle, a power of ten factored out into the unit
    line when the values are very small or large), the label and the unit. Rendered by the templates as HTML text
    so ticks stay legible at print size."""
    n = 256
    t = np.linspace(scale.vmin, scale.vmax, n, dtype=np.float32)[None, :]
    col, weight = _colour_and_weight(t, scale)
    a = (opacity(weight) * ALPHA_MAX)[..., None]
    rows = []
    for g in (0.15, 0.85):  # over a dark and over a light input
        base = np.full((1, n, 1), BASE_LOW + (BASE_HIGH - BASE_LOW) * g, dtype=np.float32)
        rows.append(np.repeat(base * (1 - a) + col * a, 7, axis=0))
    ramp = np.concatenate([rows[0], np.ones((1, n, 3), dtype=np.float32), rows[1]], axis=0)
    e = scale_exponent(scale.vmax)
    factor = f"values × 10{_superscript(e)}; " if e else ""
    ticks = [{"text": tick_text(v, scale.vmax, e)} for v in nice_ticks(scale.vmin, scale.vmax)]
    return {"ramp": png_uri(ramp), "ticks": ticks, "label": label, "unit": factor + unit, "signed": scale.signed,
            "saturates": f"{scale.vmax:.3g}"}
