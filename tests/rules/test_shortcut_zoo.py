"""The shortcut zoo against the bundled pack rules/shortcuts.toml: every confounded model is flagged by its
intended rule, no rule flags the clean twin (trained on the same images without the shortcut)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.rules import registry
from audit.rules.engine import evaluate
from audit.rules.pack import load_pack

PACK = Path(__file__).resolve().parents[2] / "rules" / "shortcuts.toml"

# shortcut kind -> the pack rules meant to catch it
INTENDED = {
    "corner": ("region-sweep",),
    "frame": ("region-sweep", "roi-attribution", "shortcut-discovery"),
    "tint": ("colour-cast",),
    "site": ("metadata-confounders",),
}


@pytest.fixture(scope="module")
def pack():
    return load_pack(PACK)


def test_pack_kinds_are_registered(pack) -> None:
    reg = registry()
    kinds = {r.kind for r in pack.rules}
    assert kinds == {"roi_attribution", "confounder_region", "confounder_metadata", "shortcut_discovery",
                     "explanation_sanity", "faithfulness"}
    assert all(k in reg for k in kinds)


def test_clean_twin_passes_every_rule(pack, zoo_evidence) -> None:
    ev = zoo_evidence("none")
    findings = evaluate(pack.rules, ev)
    bad = {f.rule: (f.status, f.message) for f in findings if f.status != "pass"}
    assert not bad, bad
    for f in findings:
        json.dumps(f.details)  # JSON-safe as produced
        assert f.value is not None and f.threshold is not None


@pytest.mark.parametrize("kind", sorted(INTENDED))
def test_confounded_model_is_flagged_by_its_rule(pack, zoo_evidence, kind: str) -> None:
    ev = zoo_evidence(kind)
    rules = [r for r in pack.rules if r.params.id in INTENDED[kind]]
    assert len(rules) == len(INTENDED[kind])
    for f in evaluate(rules, ev):
        assert f.status in ("fail", "warn"), (kind, f.rule, f.status, f.message)
        assert f.sample_ids, (kind, f.rule)
        json.dumps(f.details)


def test_corner_message_names_region_class_and_numbers(pack, zoo_evidence) -> None:
    rule = next(r for r in pack.rules if r.params.id == "region-sweep")
    f = rule.check(zoo_evidence("corner"))[0]
    assert f.status == "fail"
    assert f.details["worst_region"] == "top_left" and f.details["worst_class"] == "cross"
    assert "top-left corner box" in f.message and "'cross'" in f.message and "flips" in f.message
    # every region and every class has its figures
    assert set(f.details["regions"]) == {"top_left", "top_right", "bottom_left", "bottom_right", "border", "top",
                                         "bottom", "left", "right"}
    for reg in f.details["regions"].values():
        assert set(reg["per_class"]) == {"disc", "square", "cross"}
    # evidence: samples predicted 'cross' (the worst cell's class)
    ev = zoo_evidence("corner")
    assert (ev.predictions.preds[ev.predictions.index_of(list(f.sample_ids))] == 2).all()


def test_site_confounder_is_information_beyond_the_label(pack, zoo_evidence) -> None:
    """The clean twin's 'site' is as correlated with the label as the confounded one's; only the confounded
    model's features carry it within a class."""
    rule = next(r for r in pack.rules if r.params.id == "metadata-confounders")
    clean = rule.check(zoo_evidence("none"))[0].details["columns"]["site"]
    conf = rule.check(zoo_evidence("site"))[0].details["columns"]["site"]
    assert clean["label_only_pooled_auc"] > 0.75  # the label alone predicts the site well...
    assert clean["probe_auc_within_class"] < 0.7  # ...but within a class the clean features do not
    assert conf["probe_auc_within_class"] > 0.9
    assert conf["p_value"] < 0.01 <= clean["p_value"]
