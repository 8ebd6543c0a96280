"""What the listing notices from image headers (nothing is decoded): images whose aspect ratio differs from
image_size's under resize = "stretch", mixed image sizes, how DICOM files are windowed, hidden files skipped.
Each finding is logged as a warning and kept as one sentence for the report."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import DataError
from . import dicom
from .decode import image_size_of
from .records import SampleRecord

log = logging.getLogger("audit.loading")
ASPECT_TOLERANCE = 0.10  # relative difference of width/height ratios that counts as a different aspect


@dataclass(frozen=True)
class Survey:
    n_aspect_mismatch: int
    n_image_sizes: int
    notes: tuple[str, ...]
    swapped_size: str = ""  # the sentence naming a likely (width, height) image_size, when audited anyway


def aspect_differs(w: int, h: int, size: tuple[int, int]) -> bool:
    """The image's width/height ratio differs from the input's by more than ASPECT_TOLERANCE (either way)."""
    r = (w / h) / (size[1] / size[0])
    return max(r, 1 / r) > 1 + ASPECT_TOLERANCE


def swapped_size(sizes: Counter[tuple[int, int]], size: tuple[int, int]) -> str:
    """A sentence naming the likely swap when most images have the aspect ratio of ``size`` = (H, W) read the
    other way round (and not its own), else ''. A square size, or one whose two readings are within the aspect
    tolerance of each other, cannot be told apart and is never flagged."""
    h, w = size
    if not aspect_differs(h, w, size):
        return ""
    n = sum(sizes.values())
    turned = Counter({wh: k for wh, k in sizes.items() if aspect_differs(*wh, size) and not aspect_differs(*wh, (w, h))})
    if 2 * sum(turned.values()) <= n:
        return ""
    (w0, h0), _ = turned.most_common(1)[0]
    return (f"data.image_size = [{h}, {w}] is (height, width), but {sum(turned.values())} of {n} images have the "
            f"aspect ratio of [{w}, {h}] (e.g. {w0}x{h0}, width x height): the two numbers look swapped; set "
            f"data.image_size = [{w}, {h}] (or data.swapped_size = \"finding\" to audit as configured, with an "
            "error finding)")


def _dicom_notes(records: Sequence[SampleRecord], window: tuple[float, float] | None) -> list[str]:
    sources: Counter[str] = Counter()
    overridden = 0
    for r in records:
        if not dicom.is_dicom(r.path):
            continue
        try:
            ds = dicom.read_dicom(r.path, pixels=False)
            if str(ds.get("PhotometricInterpretation", "")).upper() not in ("MONOCHROME1", "MONOCHROME2"):
                continue
            source, _, _ = dicom.window_of(ds, window, r.path)
            overridden += source == "data.window" and dicom.window_of(ds, None, r.path)[0] == "tags"
        except DataError:
            continue  # left to decoding (missing pydicom, bad file or tags), which fails or skips it
        sources[source] += 1
    notes = []
    if sources["data.window"]:
        assert window is not None
        notes.append(f"{sources['data.window']} DICOM image(s) windowed by data.window (center {window[0]:g}, width "
                     f"{window[1]:g}); it overrides the window tags of {overridden} of them")
    if sources["tags"]:
        notes.append(f"{sources['tags']} DICOM image(s) windowed by their own WindowCenter/WindowWidth tags")
    if sources["stored range"]:
        notes.append(f"{sources['stored range']} DICOM image(s) have no window: the full range of their stored bits "
                     f"is mapped to [0, 1] (set data.window to choose one)")
    return notes


def survey(records: Sequence[SampleRecord], size: tuple[int, int] | None, resize: str,
           window: tuple[float, float] | None, n_hidden: int = 0, on_swap: str = "refuse") -> Survey:
    """Header-only look at every listed image; unreadable headers are left to decoding. A likely swapped
    image_size is a DataError unless ``on_swap`` is "finding" (then it is kept as ``swapped_size``)."""
    sizes: Counter[tuple[int, int]] = Counter()
    for r in records:
        try:
            sizes[image_size_of(r.path)] += 1
        except DataError:
            continue
    swap = swapped_size(sizes, size) if size is not None and sizes else ""
    if swap and on_swap == "refuse":
        raise DataError(swap)
    notes = [f"{swap}; audited as configured (data.swapped_size = \"finding\")"] if swap else []
    if n_hidden:
        notes.append(f"{n_hidden} hidden file(s) (a path component starting with '.') skipped in the image folder")
    mismatch = 0
    if size is not None and resize == "stretch":
        mismatch = sum(n for (w, h), n in sizes.items() if aspect_differs(w, h, size))
        if mismatch:
            notes.append(f"{mismatch} of {sum(sizes.values())} image(s) differ in aspect ratio from image_size "
                         f"({size[0]}x{size[1]}, height x width) by more than {ASPECT_TOLERANCE:.0%} and are "
                         f"stretched (data.resize = \"letterbox\" or \"center_crop\" keeps the aspect)")
    if len(sizes) > 1:
        common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.most_common(3))
        notes.append(f"images come in {len(sizes)} different sizes (width x height: {common}"
                     f"{', …' if len(sizes) > 3 else ''}); each is resized to image_size by {resize}")
    notes += _dicom_notes(records, window)
    for n in notes:
        log.warning(n)
    return Survey(n_aspect_mismatch=mismatch, n_image_sizes=len(sizes), notes=tuple(notes), swapped_size=swap)
