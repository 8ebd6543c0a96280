"""Image regions a shortcut may live in: named corners, border bands, boxes, the whole image (model-input pixels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import BoxRegion, ConfounderRegionParams, RegionName

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
BANDS = ("border", "top_bottom", "left_right", "top", "bottom", "left", "right")
# What a sweep tests: every corner and the border bands as whole artefacts (the frame, the letterbox pair, the
# pillarbox pair), each band unit at the band width and at twice it (a bar wider than the band would otherwise
# be cut in two). A single band is left out: swapping one bar of a letterbox makes an image with half an
# artefact, a combination that never occurs in training, which any model may misread.
BAND_UNITS = ("border", "top_bottom", "left_right")
SWEEP = (*CORNERS, *BAND_UNITS)


@dataclass(frozen=True)
class Region:
    key: str
    label: str  # plain words for messages
    mask: np.ndarray  # (H, W) bool; for per-sample regions all True (the mask is each sample's: off or on its ROI)
    per_sample: bool = False  # the background or the object: the region depends on each image's (and donor's) ROI
    inside: bool = False  # a per-sample region on the object (its ROI) rather than off it
    info: bool = False  # reported, not judged (the object's own statistics)

    @property
    def area(self) -> float:
        """Pixels of a fixed region (infinite for a per-sample one: never the smallest)."""
        return float("inf") if self.per_sample else float(self.mask.sum())


def background(H: int, W: int) -> Region:
    return Region("background", "background (the whole image outside the object's ROI)", np.ones((H, W), dtype=bool),
                  per_sample=True)


def object_region(H: int, W: int) -> Region:
    return Region("object", "object (inside its ROI)", np.ones((H, W), dtype=bool), per_sample=True, inside=True,
                  info=True)


def box_region(key: str, label: str, H: int, W: int, x0: int, y0: int, x1: int, y1: int) -> Region:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return Region(key, label, m)


def boxes_of(mask: np.ndarray) -> list[list[int]]:
    """A fixed region as boxes [x0, y0, x1, y1] (x1, y1 exclusive) whose union it is: one per run of equal rows."""
    out: list[list[int]] = []
    H = mask.shape[0]
    y = 0
    while y < H:
        row = mask[y]
        y1 = y + 1
        while y1 < H and np.array_equal(mask[y1], row):
            y1 += 1
        if row.any():
            edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
            out += [[int(a), y, int(b), y1] for a, b in zip(edges[::2], edges[1::2], strict=True)]
        y = y1
    return out


def _corner(name: str, H: int, W: int, sw: int, sh: int) -> Region:
    m = np.zeros((H, W), dtype=bool)
    top, left = name.startswith("top"), name.endswith("left")
    ys = slice(0, sh) if top else slice(H - sh, H)
    xs = slice(0, sw) if left else slice(W - sw, W)
    m[ys, xs] = True
    words = name.replace("_", "-")
    return Region(name, f"{words} corner box {sw}×{sh} px (x {xs.start}–{xs.stop}, y {ys.start}–{ys.stop})", m)


def _band(name: str, H: int, W: int, b: int, key: str | None = None) -> Region:
    m = np.zeros((H, W), dtype=bool)
    if name in ("border", "top", "top_bottom"):
        m[:b, :] = True
    if name in ("border", "bottom", "top_bottom"):
        m[H - b:, :] = True
    if name in ("border", "left", "left_right"):
        m[:, :b] = True
    if name in ("border", "right", "left_right"):
        m[:, W - b:] = True
    label = {"border": f"border frame {b} px wide", "top_bottom": f"top and bottom bands {b} px (letterbox)",
             "left_right": f"left and right bands {b} px (pillarbox)"}.get(name, f"{name} band {b} px")
    return Region(key or name, label, m)


def build_regions(p: ConfounderRegionParams, H: int, W: int) -> list[Region]:
    sw = p.size_px if p.size_px is not None else max(1, round(p.size * W))
    sh = p.size_px if p.size_px is not None else max(1, round(p.size * H))
    sw, sh = min(sw, W), min(sh, H)
    b = p.band_px if p.band_px is not None else max(1, round(p.band * min(H, W)))
    b = min(b, max(1, min(H, W) // 2 - 1))
    out: dict[str, Region] = {}
    wanted: list[RegionName | BoxRegion] = list(p.regions)
    if p.sweep:
        wanted += list(SWEEP)  # type: ignore[arg-type]
    for i, r in enumerate(wanted):
        if isinstance(r, BoxRegion):
            x0, y0, x1, y1 = r.box
            if r.units == "fraction":
                x0, x1, y0, y1 = x0 * W, x1 * W, y0 * H, y1 * H
            c0, c1 = int(np.floor(x0)), int(np.ceil(min(x1, W)))
            r0, r1 = int(np.floor(y0)), int(np.ceil(min(y1, H)))
            m = np.zeros((H, W), dtype=bool)
            m[r0:r1, c0:c1] = True
            if not m.any():
                raise ValueError(f"region {r.box} ({r.units}) lies outside the {W}×{H} model input")
            key = r.name or f"box{i}"
            out[key] = Region(key, f"box{' ' + repr(r.name) if r.name else ''} x {c0}–{c1}, y {r0}–{r1} px", m)
        elif r in CORNERS:
            out.setdefault(r, _corner(r, H, W, sw, sh))
        elif r == "full":
            out.setdefault(r, Region("full", "whole image", np.ones((H, W), dtype=bool)))
        elif r == "outside_roi":
            out.setdefault(r, Region("outside_roi", "background (everything outside the object's ROI)",
                                     np.ones((H, W), dtype=bool), per_sample=True))
        else:
            out.setdefault(r, _band(r, H, W, b))
    if p.sweep:
        wide = min(2 * b, max(1, min(H, W) // 2 - 1))
        if wide > b:
            for r in BAND_UNITS:
                out.setdefault(f"{r}_wide", _band(r, H, W, wide, f"{r}_wide"))
    return list(out.values())


