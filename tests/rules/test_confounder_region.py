"""confounder_region mechanics: regions, edits and their controls, per-group counterfactuals in both directions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import region_cases
import torch
from pydantic import ValidationError

from audit.rules._shortcuts import colour_transfer, fill_region, gaussian_blur, radial_bins, spectrum_transfer
from audit.rules.pack import load_pack
from audit.rules.region.confounder_region import ConfounderRegion, build_regions
from audit.rules.region.sequential import boundaries, look, looks


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


# ---- issue 31: edits that move only the cue; issue 32: sequential sampling; issue 25: the region named --------

PACK = {r.params.id: r for r in load_pack(Path(__file__).resolve().parents[2] / "rules" / "shortcuts.toml").rules}


@pytest.fixture(scope="session")
def cue_evidence(tmp_path_factory: pytest.TempPathFactory):
    """Evidence for a planted cue of ``region_cases`` (models cached with the zoo's), one per setting."""
    root = tmp_path_factory.mktemp("cues")
    cache: dict = {}

    def get(kind: str, version: str = "confounded", rois: bool = True, **spec_kw):
        spec = region_cases.CueSpec(kind, version, **spec_kw)
        key = (spec, rois)
        if key not in cache:
            cache[key] = region_cases.evidence(spec, root / f"{kind}-{version}-{spec.key()}", rois=rois)
        return cache[key]

    return get


def test_group_sequential_boundaries_match_the_published_obrien_fleming_values() -> None:
    """Lan-DeMets O'Brien-Fleming-type spending, two-sided alpha 0.05, five equally spaced looks: the boundaries of
    Jennison & Turnbull (2000) / gsDesign's sfLDOF (4.877, 3.357, 2.680, 2.290, 2.031)."""
    b = boundaries((0.2, 0.4, 0.6, 0.8, 1.0))
    assert b == pytest.approx((4.877, 3.357, 2.680, 2.290, 2.031), abs=2e-3)
    assert boundaries((1.0,))[0] == pytest.approx(1.95996, abs=1e-4)  # one look: the fixed-sample test
    assert looks(100) == (20, 40, 60, 80, 100) and looks(15) == (15,) and looks(50) == (20, 40, 50)


def test_stopping_early_keeps_the_error_rate() -> None:
    """Differences whose mean sits exactly at the limit: the sequential test says 'above' (a false fail) in at most
    alpha / 2 of the runs, looks included (Monte Carlo, 2,000 runs of 100 samples; 3 standard errors of slack),
    and a clear effect stops at the first look."""
    rng = np.random.default_rng(0)
    sched = looks(100)
    above = 0
    for _ in range(2000):
        a = 0.1 + rng.normal(0.0, 0.2, 100)
        for k in range(len(sched)):
            s = look(a, 0.1, sched, k)
            if s.done:
                above += s.decided == "above"
                break
    rate = above / 2000
    assert 0.005 < rate <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / 2000)
    clear = look(0.5 + rng.normal(0.0, 0.2, 100), 0.1, sched, 0)
    assert clear.decided == "above" and clear.n == 20 and clear.lo > 0.1
    near = look(0.1 + rng.normal(0.0, 0.2, 100), 0.1, sched, len(sched) - 1)
    assert near.lo <= 0.1 <= near.hi or near.decided is not None


@pytest.mark.parametrize("kind, rule, cell, spec_kw", [
    ("bg_hue", "background-swap", "outside_roi", {}),
    ("bg_hue", "colour-cast", "background", {}),
    ("pixel", "acquisition", "resolution:background", {"colour_spread": 0.3}),  # else colour alone does the job
])
def test_a_background_cue_is_caught_and_its_clean_twin_passes(cue_evidence, kind, rule, cell, spec_kw) -> None:
    """Issue 31: a model trained with a background-only hue or a low-resolution site on 97 % of 'disc' images fails the pack's background rule, with the edit that moves that cue over the limit for 'disc';
    its clean twin (the cue on the same share of images of every class) passes, although the objects' own colours
    differ between the classes (a whole-image colour edit moved them with the cue)."""
    spec = region_cases.CueSpec(kind, **spec_kw)
    model = region_cases.train(spec)
    reliance = (region_cases.accuracy(model, region_cases.make(spec, "test", "confounded"))
                - region_cases.accuracy(model, region_cases.make(spec, "test", "swapped")))
    assert reliance >= 0.15  # the zoo's criterion: accuracy drops 15 points when the cue changes sides
    f = PACK[rule].check(cue_evidence(kind, **spec_kw))[0]
    assert f.status == "fail" and f.details["worst_group"] == "disc", f.message
    entry = f.details["regions"][cell]["per_group"]["disc"]
    assert entry["failed"] and entry["excess"] > 0.1
    clean = PACK[rule].check(cue_evidence(kind, "clean", **spec_kw))[0]
    assert clean.status == "pass", clean.message
    json.dumps(f.details)


def test_colour_edits_act_on_the_background_and_report_the_object_apart(cue_evidence) -> None:
    """With ROIs, a colour edit of the whole image is judged on the background; the object's own colour (which
    tells the classes apart here) is measured too, as information that never fails the rule."""
    ev = cue_evidence("bg_hue", "clean")
    f = PACK["colour-cast"].check(ev)[0]
    assert f.status == "pass"
    obj = f.details["regions"]["object"]
    assert obj["information"] is True and max(e["excess"] for e in obj["per_group"].values()) > 0.3
    assert not any(e["failed"] for e in obj["per_group"].values())
    assert any(e["over_limit"] for e in obj["per_group"].values())
    assert "background" in f.details["regions"] and "full" not in f.details["regions"]
    assert f.details["worst_region"] == "background"


def test_a_whole_image_statistic_without_rois_is_not_applicable_where_it_tells_classes_apart(cue_evidence) -> None:
    """Without ROIs the colour edit would move the objects' own colours with any cue: the rule says so with the
    statistic's AUC, never a pass or fail; the acquisition edits whose statistic tells no class apart are judged."""
    ev = cue_evidence("bg_hue", "clean", rois=False)
    f = PACK["colour-cast"].check(ev)[0]
    assert f.status == "not_applicable" and not f.blocking
    assert "tells" in f.message and "ROC AUC" in f.message and "add ROI boxes or masks" in f.message
    assert set(f.details["not_judged"]) == {"full"}
    acq = PACK["acquisition"].check(ev)[0]
    assert acq.status == "pass" and set(acq.details["regions"]) <= {f"{e}:full" for e in
                                                                   ("spectrum", "resolution", "blur", "jpeg", "noise")}
    assert all(k.endswith(":full") for k in acq.details.get("not_judged", {}))
    assert ("Not judged: " in acq.message) == bool(acq.details.get("not_judged"))


def test_a_clean_twin_without_rois_is_not_failed_by_a_whole_image_colour_edit(cue_evidence) -> None:
    """Issue 31's false alarm: a clean twin whose objects' colours differ by class only weakly on the whole image
    (ROC AUC 0.68 of the best colour statistic) still decides by the object's colour, and a whole-image colour
    edit failed it (0.14 at the old AUC bound 0.7); without ROIs the rule now says it cannot judge, naming the AUC."""
    ev = cue_evidence("pixel", "clean", rois=False, colour_spread=0.3)
    f = PACK["colour-cast"].check(ev)[0]
    assert f.status == "not_applicable" and "ROC AUC 0.68 ≥ 0.60" in f.message
    loose = ConfounderRegion(PACK["colour-cast"].params.model_copy(update={"max_statistic_auc": 0.7})).check(ev)[0]
    assert loose.status == "fail"  # what the bound prevents: the object's own colour moved with the edit


def test_acquisition_tests_each_degradation_as_its_own_edit(cue_evidence) -> None:
    f = PACK["acquisition"].check(cue_evidence("pixel", colour_spread=0.3))[0]
    judged = {k for k, v in f.details["regions"].items() if not v.get("information")}
    assert judged == {f"{e}:background" for e in ("spectrum", "resolution", "blur", "jpeg", "noise")}
    res = f.details["regions"]["resolution:background"]["per_group"]["disc"]
    assert res["insertion"] is not None and res["removal"] is None  # a degradation can be given, not taken away
    assert "A degradation can be given but not taken away" in f.message or f.details["worst_region"] != \
        "resolution:background"


def test_sequential_sampling_keeps_the_verdict_with_fewer_passes(cue_evidence) -> None:
    """Issue 32: sampling until the interval clears the limit gives the fixed design's verdict on a reliant and a
    clean model with far fewer edited images; the finding states both counts."""
    for version in ("confounded", "clean"):
        ev = cue_evidence("bg_hue", version)
        seq = PACK["background-swap"].check(ev)[0]
        fixed = ConfounderRegion(PACK["background-swap"].params.model_copy(update={"sequential": False})).check(ev)[0]
        assert seq.status == fixed.status
        assert seq.details["model_passes"] < 0.8 * fixed.details["model_passes"]
        # one look: every sample of a measured direction is edited; an insertion is still left out where its
        # removal is clearly below the limit (the smaller direction is judged, so it cannot change the cell)
        assert fixed.details["model_passes"] <= fixed.details["model_passes_fixed"] == seq.details["model_passes_fixed"]
        assert f"Model passes: {seq.details['model_passes']:,}" in seq.message


def test_an_interval_that_straddles_the_limit_says_so(cue_evidence) -> None:
    """A finding whose judged interval still contains its limit when the samples are spent says so in its
    message and details; the estimate decides the verdict."""
    ev = cue_evidence("bg_hue")
    p = PACK["background-swap"].params.model_copy(update={"sequential": False})
    first = ConfounderRegion(p).check(ev)[0]
    lo, hi = first.details["regions"]["outside_roi"]["per_group"]["disc"]["ci95"]
    limit = round(first.value - 0.25 * (first.value - lo), 4)  # inside the interval, below the estimate
    assert lo < limit < hi
    f = ConfounderRegion(p.model_copy(update={"max_prob_drop": limit})).check(ev)[0]
    assert f.status == "fail" and f.details["decision"] == "inconclusive near the limit"
    assert "Inconclusive near the limit" in f.message and f"the limit {limit:.2f}" in f.message
    assert any(c["cell"] == "outside_roi/disc" for c in f.details["inconclusive"])
    assert first.details["decision"] == "conclusive" or first.details["inconclusive"]


def test_the_finding_names_the_smallest_region_that_carries_the_effect(zoo_evidence) -> None:
    """Issue 25: a corner tag lies inside the corner box, the frame and the band pairs, and several fail; the finding
    names the smallest region that still carries the effect in both directions, with its boxes to draw."""
    f = ConfounderRegion(params(sweep=True, attribution=False)).check(zoo_evidence("corner"))[0]
    assert f.status == "fail" and f.details["worst_group"] == "cross"
    named, judged = f.details["named_region"], f.details["judged_region"]
    area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in named["boxes"])
    assert area <= sum((b[2] - b[0]) * (b[3] - b[1]) for b in judged["boxes"])
    assert all(b[0] == 0 and b[1] == 0 for b in named["boxes"][:1])  # at the tag's corner
    assert area <= 8 * 8 and named["label"] in f.message
