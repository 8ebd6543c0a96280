"""confounder_region mechanics: regions, edits and their controls, per-group counterfactuals in both directions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from audit.rules._shortcuts import colour_transfer, fill_region, gaussian_blur, radial_bins, spectrum_transfer
from audit.rules.region.confounder_region import ConfounderRegion, build_regions


def params(**kw):
    return ConfounderRegion.Params.model_validate({"id": "r", "kind": "confounder_region", **kw})


def test_regions_from_names_boxes_and_sweep() -> None:
    regs = {r.key: r for r in build_regions(params(regions=["top_left", "border", "top_bottom", "outside_roi",
                                                            {"box": [0, 0, 0.5, 0.25], "units": "fraction",
                                                             "name": "ruler"}],
                                                   size_px=6, band_px=2), 32, 32)}
    assert regs["top_left"].mask[:6, :6].all() and regs["top_left"].mask.sum() == 36
    assert "top-left corner box 6×6 px" in regs["top_left"].label
    b = regs["border"].mask
    assert b[0].all() and b[:, -1].all() and not b[2:-2, 2:-2].any()
    tb = regs["top_bottom"].mask
    assert tb[:2].all() and tb[-2:].all() and not tb[2:-2].any() and "letterbox" in regs["top_bottom"].label
    assert regs["outside_roi"].per_sample and not regs["top_left"].per_sample
    assert regs["ruler"].mask[:8, :16].all() and regs["ruler"].mask.sum() == 128
    swept = build_regions(params(sweep=True), 32, 32)
    # whole artefacts only (no single band: half a letterbox is no image any training set holds), bands twice as
    # wide too, so that a bar wider than the band is not cut in two
    assert [r.key for r in swept] == ["top_left", "top_right", "bottom_left", "bottom_right", "border", "top_bottom",
                                      "left_right", "border_wide", "top_bottom_wide", "left_right_wide"]
    assert swept[1].mask[:8, 24:].all()  # size 0.25 of 32 px
    assert swept[5].mask[:3].all() and swept[8].mask[:6].all() and not swept[8].mask[6:-6].any()


def test_params_are_validated() -> None:
    with pytest.raises(ValidationError, match="regions"):
        params()
    with pytest.raises(ValidationError):
        params(regions=[{"box": [5, 5, 2, 8]}])
    with pytest.raises(ValidationError):
        params(regions=["top_middle"])
    with pytest.raises(ValidationError, match="colour"):
        params(regions=["full"])  # swapping the whole image is no test


def test_fill_methods() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g)
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[:4, :4] = True
    y = fill_region(x, mask, "mean")
    assert torch.equal(y[:, :, 4:, :], x[:, :, 4:, :])
    outside = x.masked_fill(mask, 0).sum((2, 3)) / (~mask).sum()
    assert torch.allclose(y[:, :, 0, 0], outside, atol=1e-6)
    per_sample = mask[None, None].expand(2, 1, 16, 16)
    assert torch.allclose(fill_region(x, per_sample, "mean"), y, atol=1e-6)
    n1 = fill_region(x, mask, "noise", generator=torch.Generator().manual_seed(1))
    n2 = fill_region(x, mask, "noise", generator=torch.Generator().manual_seed(1))
    assert torch.equal(n1, n2) and not torch.equal(n1, y)
    tinted = x.clone()
    tinted[:, 0] += 0.2
    tinted[:, 2] -= 0.2 * 0.299 / 0.114  # same luminance, different colour
    full = torch.ones(16, 16, dtype=torch.bool)
    assert torch.allclose(fill_region(tinted, full, "greyscale"), fill_region(x, full, "greyscale"), atol=1e-5)
    assert torch.allclose(gaussian_blur(torch.ones(1, 1, 8, 8), 2.0), torch.ones(1, 1, 8, 8), atol=1e-6)


def test_colour_and_spectrum_transfer() -> None:
    norm = ((0.5,) * 3, (0.25,) * 3)
    g = torch.Generator().manual_seed(0)
    raw_x = 0.3 + 0.1 * torch.rand(1, 3, 32, 32, generator=g)
    raw_d = 0.6 + 0.2 * torch.rand(1, 3, 32, 32, generator=g)
    x, d = (raw_x - 0.5) / 0.25, (raw_d - 0.5) / 0.25
    m = torch.ones(1, 1, 32, 32)
    y = colour_transfer(x, d, m, norm) * 0.25 + 0.5
    # the donor's per-channel mean and spread, the sample's pattern (correlation 1 within each channel)
    assert torch.allclose(y.mean((2, 3)), raw_d.mean((2, 3)), atol=1e-4)
    assert torch.allclose(y.std((2, 3)), raw_d.std((2, 3)), atol=1e-3)
    assert torch.corrcoef(torch.stack([y[0, 0].ravel(), raw_x[0, 0].ravel()]))[0, 1] > 0.999
    # spectrum: low frequencies (the picture) stay the sample's, high-frequency energy becomes the donor's
    xx = torch.arange(32.0).view(1, -1).expand(32, 32)
    smooth = (0.5 + 0.2 * torch.sin(2 * torch.pi * xx / 16)).expand(1, 3, 32, 32)  # periodic: no edge leakage
    noisy = 0.5 + 0.03 * torch.randn(1, 3, 32, 32, generator=g)  # small: nothing is clipped
    out = spectrum_transfer((smooth - 0.5) / 0.25, (noisy - 0.5) / 0.25, m, 0.5, norm) * 0.25 + 0.5
    fy = torch.fft.fftfreq(32).abs().view(-1, 1) / 0.5
    fx = torch.fft.rfftfreq(32).view(1, -1) / 0.5
    low = (fy**2 + fx**2).sqrt() <= 0.5
    f_out, f_smooth, f_noisy = (torch.fft.rfft2(t) for t in (out, smooth, noisy))
    assert torch.allclose(f_out[..., low], f_smooth[..., low], atol=0.5)  # the picture: the sample's (a few clipped px)
    # fine detail: as much per ring of radial frequency as the donor has (a faint grain, as 8-bit rounding
    # leaves, is scaled up to the donor's level; an exactly empty ring has nothing to scale and stays empty)
    grainy = smooth + 0.002 * torch.randn(1, 3, 32, 32, generator=g)
    out = spectrum_transfer((grainy - 0.5) / 0.25, (noisy - 0.5) / 0.25, m, 0.5, norm) * 0.25 + 0.5
    f_out = torch.fft.rfft2(out)
    ring = radial_bins(32, 32)

    def per_ring(f: torch.Tensor) -> torch.Tensor:
        return torch.stack([(f.abs()[0, 0][(ring == b) & ~low] ** 2).mean() for b in range(9, 17)])

    torch.testing.assert_close(per_ring(f_out), per_ring(f_noisy), rtol=0.05, atol=1e-6)


def test_spectrum_transfer_keeps_the_orientation_of_the_fine_detail() -> None:
    """A sample with fine vertical stripes given the spectrum of a donor with finer horizontal stripes keeps
    its stripes vertical (shape stays the sample's), only their strength changes to the donor's level."""
    norm = ((0.5,) * 3, (0.25,) * 3)
    i = torch.arange(32.0)
    vertical = (0.5 + 0.1 * torch.cos(2 * torch.pi * 12 * i / 32)).view(1, -1).expand(32, 32).expand(1, 3, 32, 32)
    horizontal = (0.5 + 0.3 * torch.cos(2 * torch.pi * 12 * i / 32)).view(-1, 1).expand(32, 32).expand(1, 3, 32, 32)
    out = spectrum_transfer((vertical - 0.5) / 0.25, (horizontal - 0.5) / 0.25, torch.ones(1, 1, 32, 32), 0.5,
                            norm) * 0.25 + 0.5
    dev = out[0, 0] - out[0, 0].mean()
    assert dev.std(0).max() < 1e-4  # every column constant: the stripes are still vertical
    assert dev[0].std() == pytest.approx(0.3 / 2**0.5, rel=0.02)  # with the donor's amplitude


def test_clean_model_passes_every_edit(zoo_evidence) -> None:
    ev = zoo_evidence("none")
    for kw in ({"sweep": True}, {"regions": ["outside_roi"]}, {"regions": ["full"], "replace": "colour"},
               {"regions": ["full"], "replace": "spectrum"}):
        f = ConfounderRegion(params(**kw)).check(ev)[0]
        assert f.status == "pass", (kw, f.message)
        assert f.details["criterion"]["name"] == "excess score change" and f.details["criterion"]["direction"] == "above"
        assert f.message.startswith("excess score change ") and " ≤ 0.10 for '" in f.message
        json.dumps(f.details)


def test_frame_is_named_as_a_band_unit(zoo_evidence) -> None:
    f = ConfounderRegion(params(sweep=True, attribution=False)).check(zoo_evidence("frame"))[0]
    assert f.status == "fail" and f.details["worst_group"] == "square"
    assert f.details["worst_region"] in ("border", "top_bottom", "left_right")
    cell = f.details["regions"]["top_left"]["per_group"]["square"]
    assert cell["excess"] < 0.2  # a corner box holds too little of the frame
    assert f.details["explainer"] is None
    # both directions are stated, each with its control and interval, and the smaller one is judged
    assert "lowers the 'square' score by" in f.message and "raises the 'square' score by" in f.message
    assert "the smaller excess" in f.message and f.message.count("95 % interval") == 2
    both = (cell := f.details["regions"][f.details["worst_region"]]["per_group"]["square"])["removal"], cell["insertion"]
    assert f.value == pytest.approx(min(d["excess"] for d in both), abs=1e-4)


def test_colour_cast_by_colour_statistics(zoo_evidence) -> None:
    p = params(regions=["full"], replace="colour", attribution=False)
    f = ConfounderRegion(p).check(zoo_evidence("tint"))[0]
    assert f.status == "fail" and f.details["worst_group"] == "disc" and "colour statistics" in f.message
    assert ConfounderRegion(p).check(zoo_evidence("none"))[0].status == "pass"
    assert np.isfinite(f.value)


def test_swap_is_judged_against_a_same_group_control(zoo_evidence) -> None:
    f = ConfounderRegion(params(regions=["top_left"], attribution=False)).check(zoo_evidence("corner"))[0]
    assert f.status == "fail" and f.details["worst_group"] == "cross"
    rm = f.details["regions"]["top_left"]["per_group"]["cross"]["removal"]
    assert rm["effect"] > 0.5 and rm["control"] < 0.2  # tag swapped out vs kept (10 % of crosses carry none)
    assert rm["excess"] == pytest.approx(rm["effect"] - rm["control"], abs=1e-3)
    assert "from other 'cross' images; excess" in f.message and "from images of other groups; excess" in f.message
    assert f.message.startswith("excess score change ") and "> 0.10 for 'cross', top-left corner" in f.message
    # evidence: samples the model assigns to 'cross'
    ev = zoo_evidence("corner")
    assert (ev.predictions.preds[ev.predictions.index_of(list(f.sample_ids))] == 2).all()


def test_background_needs_rois(zoo_evidence) -> None:
    ev = zoo_evidence("corner", with_roi=False)
    f = ConfounderRegion(params(regions=["outside_roi"])).check(ev)[0]
    assert f.status == "not_applicable" and not f.blocking and "ROI" in f.message
    f = ConfounderRegion(params(regions=["outside_roi"], attribution=False)).check(zoo_evidence("corner"))[0]
    assert f.status == "fail" and f.details["worst_group"] == "cross"


def test_occlusion_is_judged_against_the_other_groups(zoo_evidence) -> None:
    """Greyscale is out of distribution for a colour model; the control (the same edit on the other groups)
    keeps a clean model from failing, while the tint model still does."""
    p = params(regions=["full"], replace="greyscale", attribution=False)
    assert ConfounderRegion(p).check(zoo_evidence("none"))[0].status == "pass"
    f = ConfounderRegion(p).check(zoo_evidence("tint"))[0]
    assert f.status == "fail" and "images of the other groups (control)" in f.message


def test_a_sample_without_a_close_enough_donor_is_left_out_and_counted(zoo_evidence) -> None:
    """A colour edit may only move colour: a sample whose nearest donors of another group differ from it in
    layout or sharpness beyond the pool's usual nearest-neighbour distance is left out and counted; a rule
    where that leaves no judged cell says it cannot tell the cue apart (not applicable), never pass or fail."""
    ev = zoo_evidence("tint")
    usual = ConfounderRegion(params(regions=["full"], replace="colour", attribution=False)).check(ev)[0]
    cell = usual.details["regions"]["background"]["per_group"]["disc"]
    assert usual.status == "fail" and 0 < sum(cell["n_unmatched"].values()) < cell["n"]
    assert "more without a close enough donor, left out" in usual.message
    loose = ConfounderRegion(params(regions=["full"], replace="colour", attribution=False, match_quantile=None))
    f = loose.check(ev)[0]
    assert f.status == "fail" and "n_unmatched" not in f.details["regions"]["background"]["per_group"]["disc"]
    strict = ConfounderRegion(params(regions=["full"], replace="colour", attribution=False, match_quantile=1e-9))
    f = strict.check(ev)[0]
    assert f.status == "not_applicable" and "cannot be tested apart" in f.message and "layout and sharpness" in f.message
