"""`audit demo --task family` end to end through the command line: the recipe whose seeds 1 and 3 learned the corner
marker fails the family rules naming them (the released seed-0 passes every rule of its own), the clean family
passes, and the marker family compared with the clean one as its baseline states the changes. Each run trains four
small CNNs (about 15 s of CPU)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from audit.cli import app


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("family-demo")
    clean = CliRunner().invoke(app, ["demo", "--task", "family", "--clean", "--out", str(root / "clean")])
    cue = CliRunner().invoke(app, ["demo", "--task", "family", "--baseline", str(root / "clean"),
                                   "--out", str(root / "cue")])
    return root, clean, cue


def rules(folder):
    doc = json.loads((folder / "results.json").read_text())
    return doc, {r["id"]: r for r in doc["rules"]}


def test_marker_seeds_fail_the_family_by_name(demos):
    root, _, cue = demos
    assert cue.exit_code == 1, cue.output
    doc, r = rules(root / "cue")
    assert r["accuracy-floor"]["status"] == "pass" and r["marker-use"]["status"] == "pass"  # the released seed
    assert r["marker-members"]["status"] == "fail"
    assert r["marker-members"]["details"]["failing"] == ["seed-1", "seed-3"]
    assert r["accuracy-spread"]["status"] == "fail" and r["answer-agreement"]["status"] == "fail"
    fam = doc["family"]
    marker = next(x for x in fam["rules"] if x["rule"] == "marker-use")
    shifts = {m["member"]: m["value"] for m in marker["members"]}
    assert min(shifts["seed-1"], shifts["seed-3"]) > 0.1 > max(shifts["seed-0"], shifts["seed-2"])


def test_clean_family_passes(demos):
    root, clean, _ = demos
    assert clean.exit_code == 0, clean.output
    doc, r = rules(root / "clean")
    assert all(x["status"] == "pass" for x in r.values()), {k: x["status"] for k, x in r.items()}
    assert all(x["k"] == 0 for x in doc["family"]["rules"])


def test_comparison_with_the_baseline_family(demos):
    root, _, _ = demos
    doc, _ = rules(root / "cue")
    base, _ = rules(root / "clean")
    comp = doc["family"]["comparison"]
    marker = next(x for x in comp["rules"] if x["rule"] == "marker-use")
    assert (marker["baseline"]["k"], marker["current"]["k"], marker["delta_k"]) == (0, 2, 2)
    sd = comp["spread"]["accuracy"]["sd"]
    assert sd["baseline"] == base["family"]["spread"]["accuracy"]["sd"] and sd["delta"] > 0
    assert [m["name"] for m in comp["members"]] == ["seed-0", "seed-1", "seed-2", "seed-3", "ensemble"]
    assert comp["only_current"] == [] and comp["only_baseline"] == []
