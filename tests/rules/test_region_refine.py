"""The overlaps refine() tries: regions that do not touch give no candidate (the zoo's photos/letterbox model had a
letterbox band and a corner that do not overlap, and naming their empty overlap crashed region-sweep)."""

from __future__ import annotations

import numpy as np

from audit.rules.region.plan import Test as RegionTest
from audit.rules.region.refine import _candidates
from audit.rules.region.regions import Region


def _test(key: str, mask: np.ndarray) -> RegionTest:
    return RegionTest(key, key.replace("_", " "), "swap", Region(key, key.replace("_", " "), mask))  # type: ignore[arg-type]


def _mask(ys: slice, xs: slice) -> np.ndarray:
    m = np.zeros((32, 32), dtype=bool)
    m[ys, xs] = True
    return m


def test_disjoint_failing_regions_give_no_overlap_candidate():
    bands = _test("top_bottom", _mask(slice(0, 4), slice(0, 32)) | _mask(slice(28, 32), slice(0, 32)))
    corner = _test("centre", _mask(slice(12, 20), slice(12, 20)))  # touches neither band
    found = _candidates(bands, [(corner, {"failed": True, "dirs": {}})], set())
    assert [t.key for t in found] == ["top_bottom#1", "top_bottom#2"]  # the two bands alone, no overlap


def test_an_overlap_is_named_by_its_box():
    frame = _test("frame", ~_mask(slice(4, 28), slice(4, 28)))
    corner = _test("top_left", _mask(slice(0, 8), slice(0, 8)))
    found = _candidates(frame, [(corner, {"failed": True, "dirs": {}})], set())
    overlap = next(t for t in found if t.key == "frame&top_left")
    assert int(overlap.region.mask.sum()) == 64 - 16
    assert overlap.label.endswith("where the frame and the top left overlap")
