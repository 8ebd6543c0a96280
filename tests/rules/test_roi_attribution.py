"""roi_attribution: per-class aggregation, the reference a map that knows nothing meets (the ROI's share of the
image), the explainer's checks on the audited model (an untrusted explainer is not_applicable, never a pass), unusable
maps never pass, samples without ROI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from audit.rules.roi_attribution import RoiAttribution


def rule(**kw) -> RoiAttribution:
    base = {"id": "roi", "kind": "roi_attribution", "min_share_inside": 0.15, "max_fraction_failing": 0.4}
    return RoiAttribution(RoiAttribution.Params.model_validate({**base, **kw}))


def test_reports_every_class_and_fails_on_the_worst(zoo_evidence) -> None:
    f = rule().check(zoo_evidence("frame"))[0]
    assert f.status == "fail"
    table = f.details["per_class"]
    assert set(table) == {"disc", "square", "cross"}
    worst = f.details["worst_class"]
    assert table[worst]["fraction_failing"] == f.value == max(t["fraction_failing"] for t in table.values())
    for t in table.values():
        assert {"mean_share_inside", "fraction_failing", "hit_rate", "n"} <= set(t)
    # evidence: the worst samples of the worst class, lowest share first
    ev = zoo_evidence("frame")
    rows = ev.predictions.index_of(list(f.sample_ids))
    assert (ev.predictions.labels[rows] == ev.classes.index(worst)).all()
    json.dumps(f.details)


def test_per_class_override_applies_to_that_class_only(zoo_evidence) -> None:
    ev = zoo_evidence("none")
    assert rule().check(ev)[0].status == "pass"
    f = rule(per_class={"square": {"min_share_inside": 0.95}}).check(ev)[0]
    assert f.status == "fail" and f.details["worst_class"] == "square"
    assert f.details["per_class"]["square"]["fraction_failing"] == 1.0
    assert f.details["per_class"]["disc"]["min_share_inside"] == 0.15


def test_all_zero_maps_fail_with_the_reason(zoo_evidence, with_test_explainers) -> None:
    ev = with_test_explainers(zoo_evidence("none", fresh=True))
    checked = rule(explainer="test_zero").check(ev)[0]
    assert checked.status == "not_applicable" and "map is constant" in checked.message
    f = rule(explainer="test_zero", trust={"enabled": False}).check(ev)[0]
    assert f.status == "fail" and f.value == 1.0
    assert "are disabled (trust.enabled = false): its maps are judged untested" in f.message
    assert f.details["unusable_maps"] == {"all-zero map": f.details["n_evaluated"]}
    assert "all-zero map" in f.message


def test_no_roi_is_not_applicable_and_says_so(zoo_evidence) -> None:
    f = rule().check(zoo_evidence("none", with_roi=False))[0]
    assert f.status == "not_applicable" and not f.blocking and "ROI" in f.message


def test_subset_is_seeded_and_group_by_predicted(zoo_evidence) -> None:
    ev = zoo_evidence("corner")
    a = rule(n=20, group_by="predicted").check(ev)[0]
    b = rule(n=20, group_by="predicted").check(ev)[0]
    assert a.details == b.details and a.sample_ids == b.sample_ids
    assert all(t["n"] <= 20 for t in a.details["per_class"].values())
    assert a.details["group_by"] == "predicted"
    assert np.isfinite(a.value)


def test_margin_counts_mass_next_to_the_roi_as_inside(zoo_evidence, with_test_explainers) -> None:
    """``margin_px``: the share is recomputed by hand with the ROI grown by scipy's binary dilation (an edge map
    puts its mass on both sides of the object's outline, so the grown ROI holds more of it)."""
    ev = with_test_explainers(zoo_evidence("none", fresh=True))
    probe = ev.probe
    shares = {}
    for m in (0, 2):
        f = rule(explainer="test_edges", scope="all", n=None, margin_px=m, trust={"enabled": False}).check(ev)[0]
        shares[m] = {c: t["mean_share_inside"] for c, t in f.details["per_class"].items()}
    ids = [str(s) for s in ev.predictions.ids]
    targets = probe.targets_for(ids, "predicted")
    maps = np.clip(probe.attributions("test_edges", ids, targets).maps, 0, None)
    for ci, cname in enumerate(ev.classes):
        rows = np.flatnonzero(ev.predictions.labels == ci)
        by_hand = [maps[i][binary_dilation(probe.roi(ids[i]), iterations=2)].sum() / maps[i].sum() for i in rows]
        assert shares[2][cname] == pytest.approx(float(np.mean(by_hand)), abs=1e-4)
        assert shares[2][cname] > shares[0][cname] + 0.05


def test_clean_twin_passes_and_models_reliant_outside_the_roi_fail_at_the_defaults(zoo_evidence) -> None:
    """The pack-free defaults (auto explainer, checked on the model; a sample fails below the ROI's own share of the
    image): the clean twin passes, the frame and corner models (their cue lies outside the ROI) fail on the class
    that carries the cue."""
    def default(**kw):
        return RoiAttribution(RoiAttribution.Params.model_validate({"id": "roi", "kind": "roi_attribution", **kw}))

    for kind, cls in (("frame", "square"), ("corner", "cross")):
        f = default().check(zoo_evidence(kind))[0]
        assert f.status == "fail" and f.details["worst_class"] == cls, (kind, f.message)
        assert f.details["explainer"] == "gradcam" and "passes the checks" in f.message
    f = default().check(zoo_evidence("none"))[0]
    assert f.status == "pass", f.message
    # on a CNN, auto tries transformer LRP first: it cannot run there and is not named in the message
    assert f.details["explainers_tried"]["transformer_lrp"]["runs"] is False and "Not used" not in f.message
    for t in f.details["per_class"].values():
        assert t["median_enrichment"] > 2.0  # the clean CNN's Grad-CAM mass is several times the ROI's area


def test_reference_is_the_roi_share_of_the_image(zoo_evidence, with_test_explainers) -> None:
    """Recomputed by hand: a sample fails when its positive mass inside the ROI is below ``min_enrichment`` times the
    ROI's share of the image; the absolute floor is optional."""
    ev = with_test_explainers(zoo_evidence("none", fresh=True))
    probe = ev.probe
    ids = [str(s) for s in ev.predictions.ids]
    maps = np.clip(probe.attributions("test_edges", ids, probe.targets_for(ids, "predicted")).maps, 0, None)
    for ratio in (1.0, 3.0):
        f = rule(explainer="test_edges", scope="all", n=None, min_share_inside=None, min_enrichment=ratio,
                 trust={"enabled": False}).check(ev)[0]
        for ci, cname in enumerate(ev.classes):
            rows = np.flatnonzero(ev.predictions.labels == ci)
            fails = [maps[i][probe.roi(ids[i])].sum() / maps[i].sum() < ratio * probe.roi(ids[i]).mean() for i in rows]
            assert f.details["per_class"][cname]["fraction_failing"] == pytest.approx(np.mean(fails), abs=1e-6)
            assert f.details["per_class"][cname]["min_enrichment"] == ratio


def test_an_explainer_that_ignores_the_model_is_not_judged(zoo_evidence, with_test_explainers) -> None:
    """An edge map does not change when the model is randomised: the rule says so (not_applicable, with the
    randomisation figure), it does not pass or fail on it; with a list, the first candidate that passes is used."""
    ev = with_test_explainers(zoo_evidence("frame", fresh=True))
    f = rule(explainer="test_edges").check(ev)[0]
    assert f.status == "not_applicable" and not f.blocking
    assert "barely change when the top" in f.message and f.details["explainers_tried"]["test_edges"]["trusted"] is False
    g = rule(explainer=["test_edges", "gradcam"]).check(ev)[0]
    assert g.status == "fail" and g.details["explainer"] == "gradcam"
    assert "Not used: Edge map (ignores the model) maps barely change" in g.message


def test_rois_that_cover_most_of_the_image_are_not_judged(zoo_evidence) -> None:
    ev = zoo_evidence("none")
    f = rule(max_area_share=0.01).check(ev)[0]
    assert f.status == "not_applicable" and "covers more than 1 % of the image" in f.message
    g = rule(margin_px=3, max_area_share=0.28).check(ev)[0]  # grown boxes of 15–19 px on 32: 22–35 %
    assert g.details["n_roi_too_large"] > 0 and "whose ROI covers more than 28 %" in g.message
    assert g.details["n_evaluated"] > 0  # the smaller ROIs are still judged
