"""confounder_region mechanics: region parsing, replacement methods, per-class counterfactuals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from audit.rules._shortcuts import fill_region, gaussian_blur
from audit.rules.confounder_region import ConfounderRegion, build_regions


def params(**kw):
    return ConfounderRegion.Params.model_validate({"id": "r", "kind": "confounder_region", **kw})


def test_regions_from_names_boxes_and_sweep() -> None:
    regs = {r.key: r for r in build_regions(params(regions=["top_left", "border", {"box": [0, 0, 0.5, 0.25],
                                                                                  "units": "fraction",
                                                                                  "name": "ruler"}],
                                                   size_px=6, band_px=2), 32, 32)}
    assert regs["top_left"].mask[:6, :6].all() and regs["top_left"].mask.sum() == 36
    assert "top-left corner box 6×6 px" in regs["top_left"].label
    b = regs["border"].mask
    assert b[0].all() and b[:, -1].all() and not b[2:-2, 2:-2].any()
    assert regs["ruler"].mask[:8, :16].all() and regs["ruler"].mask.sum() == 128
    swept = build_regions(params(sweep=True), 32, 32)
    assert [r.key for r in swept] == ["top_left", "top_right", "bottom_left", "bottom_right", "border", "top",
                                      "bottom", "left", "right"]
    assert swept[1].mask[:8, 24:].all()  # size 0.25 of 32 px


def test_params_are_validated() -> None:
    with pytest.raises(ValidationError, match="regions"):
        params()
    with pytest.raises(ValidationError):
        params(regions=[{"box": [5, 5, 2, 8]}])
    with pytest.raises(ValidationError):
        params(regions=["top_middle"])


def test_fill_methods() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g)
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[:4, :4] = True
    y = fill_region(x, mask, "mean")
    assert torch.equal(y[:, :, 4:, :], x[:, :, 4:, :])
    outside = x.masked_fill(mask, 0).sum((2, 3)) / (~mask).sum()
    assert torch.allclose(y[:, :, 0, 0], outside, atol=1e-6)
    n1 = fill_region(x, mask, "noise", generator=torch.Generator().manual_seed(1))
    n2 = fill_region(x, mask, "noise", generator=torch.Generator().manual_seed(1))
    assert torch.equal(n1, n2) and not torch.equal(n1, y)
    tinted = x.clone()
    tinted[:, 0] += 0.2
    tinted[:, 2] -= 0.2 * 0.299 / 0.114  # same luminance, different colour
    full = torch.ones(16, 16, dtype=torch.bool)
    assert torch.allclose(fill_region(tinted, full, "greyscale"), fill_region(x, full, "greyscale"), atol=1e-5)
    assert torch.allclose(gaussian_blur(torch.ones(1, 1, 8, 8), 2.0), torch.ones(1, 1, 8, 8), atol=1e-6)


def test_clean_model_is_not_sensitive_to_background_regions(zoo_evidence) -> None:
    f = ConfounderRegion(params(sweep=True)).check(zoo_evidence("none"))[0]
    assert f.status == "pass"
    for reg in f.details["regions"].values():
        assert reg["flip_rate"] <= 0.05
    json.dumps(f.details)


def test_frame_needs_the_whole_border(zoo_evidence) -> None:
    """Counterfactual per predicted class: only the frame class flips, and only when the frame goes."""
    ev = zoo_evidence("frame")
    f = ConfounderRegion(params(regions=["border", "top_left"], attribution=False)).check(ev)[0]
    assert f.status == "fail" and f.details["worst_region"] == "border" and f.details["worst_class"] == "square"
    border = f.details["regions"]["border"]["per_class"]
    assert border["square"]["flip_rate"] > 0.8
    assert f.details["regions"]["top_left"]["per_class"]["square"]["flip_rate"] < 0.2
    assert f.details["explainer"] is None and "flips" in f.message


def test_colour_cast_via_greyscale(zoo_evidence) -> None:
    p = params(regions=["full"], replace="greyscale", attribution=False)
    f = ConfounderRegion(p).check(zoo_evidence("tint"))[0]
    assert f.status == "fail" and f.details["worst_class"] == "disc" and "colour" in f.message
    assert ConfounderRegion(p).check(zoo_evidence("none"))[0].status == "pass"
    assert np.isfinite(f.value)


def test_swap_is_judged_against_a_same_class_control(zoo_evidence) -> None:
    f = ConfounderRegion(params(regions=["top_left"], attribution=False)).check(zoo_evidence("corner"))[0]
    cell = f.details["regions"]["top_left"]["per_class"]["cross"]
    assert cell["raw_flip_rate"] > 0.5 and cell["control_flip_rate"] < 0.1  # tag swapped out vs kept
    assert cell["flip_rate"] == pytest.approx(cell["raw_flip_rate"] - cell["control_flip_rate"], abs=1e-3)
    assert "from other 'cross' images" in f.message
