"""shortcut_discovery mechanics: eigengap, windows, flagged clusters, unusable maps."""

from __future__ import annotations

import json

import numpy as np

from audit.rules.shortcut_discovery import ShortcutDiscovery, best_window, eigengap_k, knn_affinity


def rule(**kw) -> ShortcutDiscovery:
    return ShortcutDiscovery(ShortcutDiscovery.Params.model_validate({"id": "s", "kind": "shortcut_discovery",
                                                                      **kw}))


def test_eigengap_counts_separated_groups() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    X = np.vstack([c + rng.normal(0, 0.3, (20, 3)) for c in centres])
    k, ev = eigengap_k(knn_affinity(X, 5), 6)
    assert k == 3 and ev[0] < 1e-8
    m = np.zeros((16, 16))
    m[2:5, 10:13] = 1.0
    mass, (r, c) = best_window(m / m.sum(), 5)
    assert mass == 1.0 and r <= 2 and c <= 10 and r + 5 >= 5 and c + 5 >= 13


def test_frame_class_forms_a_flagged_cluster(zoo_evidence) -> None:
    f = rule().check(zoo_evidence("frame"))[0]
    assert f.status == "fail" and f.details["worst_class"] == "square"
    sq = f.details["classes"]["square"]
    flagged = [c for c in sq["clusters"] if c["flagged"]]
    assert flagged and sum(c["size"] for c in flagged) / sq["n"] == f.value > 0.4
    mm = np.array(flagged[0]["mean_map"])
    assert mm.shape == (16, 16) and mm.max() == 1.0
    assert set(f.sample_ids) <= {sid for c in flagged for sid in c["member_ids"]}
    assert set(f.details["classes"]) == {"disc", "square", "cross"}
    json.dumps(f.details)


def test_clean_model_has_no_flagged_cluster(zoo_evidence) -> None:
    f = rule().check(zoo_evidence("none"))[0]
    assert f.status == "pass" and f.value == 0.0
    for t in f.details["classes"].values():
        assert sum(t["cluster_sizes"]) == t["n"]


def test_unusable_maps_are_not_a_pass(zoo_evidence, with_test_explainers) -> None:
    ev = with_test_explainers(zoo_evidence("none", fresh=True))
    checked = rule(explainer="test_zero").check(ev)[0]  # the explainer's checks stop it first, and say why
    assert checked.status == "not_applicable" and "map is constant" in checked.message
    f = rule(explainer="test_zero", trust={"enabled": False}).check(ev)[0]
    assert f.status == "fail" and "unusable" in f.message and "judged untested" in f.message


def test_an_explainer_that_ignores_the_model_is_not_clustered(zoo_evidence, with_test_explainers) -> None:
    """Edge maps do not change when the model is randomised: not_applicable with the reason, never a pass."""
    ev = with_test_explainers(zoo_evidence("frame", fresh=True))
    f = rule(explainer="test_edges").check(ev)[0]
    assert f.status == "not_applicable" and "barely change when the top" in f.message


def test_a_cluster_is_judged_against_the_share_of_the_image_its_objects_cover(zoo_evidence) -> None:
    """A cluster is flagged for the object when its share inside the grown ROIs is below ``min_enrichment`` times
    their mean share of the image; the figures behind it are in each cluster's details."""
    ev = zoo_evidence("none")
    f = rule().check(ev)[0]
    for t in f.details["classes"].values():
        for c in t["clusters"]:
            inside, area = 1.0 - c["outside_share"], c["area_share"]
            assert 0.0 < area < 0.5 and inside > area  # the clean CNN's clusters lie on their objects
    strict = rule(min_enrichment=50.0).check(ev)[0]  # no map can put 50 times a ROI's share inside it
    assert strict.status == "fail" and strict.value > f.value
    assert any("of the mass inside the object, which covers" in r for t in strict.details["classes"].values()
               for c in t["clusters"] for r in c["reasons"])
