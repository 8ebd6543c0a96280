"""roi_attribution mechanics: per-class aggregation, unusable maps never pass, samples without ROI."""

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
    f = rule(explainer="test_zero").check(ev)[0]
    assert f.status == "fail" and f.value == 1.0
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
        f = rule(explainer="test_edges", scope="all", n=None, margin_px=m).check(ev)[0]
        shares[m] = {c: t["mean_share_inside"] for c, t in f.details["per_class"].items()}
    ids = [str(s) for s in ev.predictions.ids]
    targets = probe.targets_for(ids, "predicted")
    maps = np.clip(probe.attributions("test_edges", ids, targets).maps, 0, None)
    for ci, cname in enumerate(ev.classes):
        rows = np.flatnonzero(ev.predictions.labels == ci)
        by_hand = [maps[i][binary_dilation(probe.roi(ids[i]), iterations=2)].sum() / maps[i].sum() for i in rows]
        assert shares[2][cname] == pytest.approx(float(np.mean(by_hand)), abs=1e-4)
        assert shares[2][cname] > shares[0][cname] + 0.05
