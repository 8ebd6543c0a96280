"""The shortcut zoo against the bundled pack rules/shortcuts.toml: every confounded model is flagged by its
intended rule, no rule flags the clean twin (trained on the same images without the shortcut)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.rules import registry
from audit.rules.evaluate import evaluate
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
    assert kinds == {"data_confounder", "data_duplicates", "roi_attribution", "confounder_region",
                     "confounder_metadata", "shortcut_discovery", "explanation_sanity", "faithfulness"}
    assert all(k in reg for k in kinds)


def test_clean_twin_passes_every_rule(pack, zoo_evidence) -> None:
    """Every rule applies (the data checks ran, with the training listing) and passes, except the data-level
    warning that the zoo plants in every version: the 'site' column alone predicts 'disc' (85 % vs 15 %)."""
    ev = zoo_evidence("none")
    assert ev.data is not None and ev.data.train is not None
    findings = evaluate(pack.rules, ev)
    bad = {f.rule: (f.status, f.message) for f in findings
           if f.status != "pass" and not (f.rule == "data-confounders" and f.status == "warn")}
    assert not bad, bad
    data = next(f for f in findings if f.rule == "data-confounders")
    assert {(x["property"], x["group"]) for x in data.details["flagged"]} == {("site", "disc")}
    assert next(f for f in findings if f.rule == "train-heldout-overlap").value == 0.0
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
    # the sweep: corners, and the border bands as whole artefacts (frame, letterbox pair, pillarbox pair) at the
    # band width and twice it; a single band is never swapped alone (half an artefact is out of distribution)
    assert set(f.details["regions"]) == {"top_left", "top_right", "bottom_left", "bottom_right", "border",
                                         "top_bottom", "left_right", "border_wide", "top_bottom_wide",
                                         "left_right_wide"}
    for reg in f.details["regions"].values():
        assert set(reg["per_group"]) == {"disc", "square", "cross"}
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


def test_data_checks_see_a_planted_colour_cue(pack, zoo_evidence) -> None:
    """The tint confounder (a red/blue cast on 90 % of 'disc' images) is visible to the data checks before any
    model: the red-blue balance alone predicts 'disc'; the clean version's colour balance predicts nothing."""
    rule = next(r for r in pack.rules if r.params.id == "data-confounders")
    tint = rule.check(zoo_evidence("tint"))[0]
    flagged = {(x["property"], x["group"]) for x in tint.details["flagged"]}
    assert ("colour_red_blue", "disc") in flagged, tint.message
    clean = rule.check(zoo_evidence("none"))[0]
    assert not any(x["source"] != "metadata" for x in clean.details["flagged"]), clean.message
