"""The offline demo end to end: the planted corner marker is caught and named; the clean twin passes."""

import json
from pathlib import Path

import pytest
from pypdf import PdfReader


@pytest.fixture(scope="module")
def demo_runs(demo_report):
    """The release-gate chain of the README: the clean twin is the released model, the confounded one the candidate
    (built once per session by tests/conftest.py's ``demo_report``, which the report lint shares)."""
    clean, confounded = demo_report("clean"), demo_report("gate")
    return _Root(confounded.folder, clean.folder), confounded, clean


class _Root:
    """``root / "demo"`` and ``root / "demo-clean"``: the two report folders."""

    def __init__(self, demo: Path, clean: Path) -> None:
        self.folders = {"demo": demo, "demo-clean": clean}

    def __truediv__(self, name: str) -> Path:
        return self.folders[name]


def test_confounded_demo_fails_naming_the_corner(demo_runs):
    root, confounded, _ = demo_runs
    assert confounded.exit_code == 1, confounded.output
    results = json.loads((root / "demo" / "results.json").read_text())
    assert results["metrics"]["accuracy"] > 0.85  # the metrics alone look releasable
    sweep = {r["id"]: r for r in results["rules"]}["region-sweep"]
    assert sweep["status"] == "fail"
    # the marker sits in the top-left corner: the named region must hold it (the corner box, or the frame / the
    # top-and-bottom band pair, whose top band runs through it: each cell is judged on the smaller of the removal
    # and insertion effects, so a larger region can be the most specific one over the limit)
    assert "'seven'" in sweep["message"] and "top-left corner" in sweep["message"]  # judged there or the strongest one-way effect
    assert sweep["details"]["worst_region"] in ("top_left", "border", "border_wide", "top_bottom", "top_bottom_wide")
    text = "\n".join(p.extract_text() for p in PdfReader(root / "demo" / "report.pdf").pages)
    assert "Verdict: FAIL" in text and "region-sweep" in text
    # its evidence images draw the judged region (and the smaller one that carries the effect), with a legend
    assert "the region judged: " in text and "region-legend" in (root / "demo" / "report.html").read_text()


def test_clean_demo_passes(demo_runs):
    root, _, clean = demo_runs
    assert clean.exit_code == 0, clean.output
    results = json.loads((root / "demo-clean" / "results.json").read_text())
    assert results["verdict"] == "pass"
    assert not [r for r in results["rules"] if r["status"] in ("fail", "error")]


def test_gate_against_the_clean_twin_names_the_new_failure(demo_runs):
    root, _, _ = demo_runs
    results = json.loads((root / "demo" / "results.json").read_text())
    comp = results["comparison"]
    assert comp["paired"]  # both twins were audited on the same held-out images
    assert set(comp["rules"]["newly_failing"]) == {"region-sweep", "concept-marker"}
    rules = {r["id"]: r for r in results["rules"]}
    assert rules["no-new-failures"]["status"] == "fail" and "region-sweep" in rules["no-new-failures"]["message"]
    gradcam = comp["explanations"]["gradcam"]
    assert gradcam["n_compared"] >= 25  # every baseline pick (about 30), explained again with the candidate
    summary = (root / "demo" / "summary.md").read_text()
    assert "region-sweep" in summary and "median Spearman" in summary
    text = "\n".join(p.extract_text() for p in PdfReader(root / "demo" / "report.pdf").pages)
    assert "Changes since baseline" in text and "Explanations of the same samples" in text
    assert "extends demo.toml" in text  # every rule file that shaped the verdict is hashed in the record


def test_confounded_demo_uses_the_marker_concept_for_seven(demo_runs):
    """TCAV of the marker (a folder of marker images against random canvases): the confounded model's 'seven' logit
    rises along the marker's CAV, significantly after Bonferroni, at a layer that separates the marker."""
    root, _, _ = demo_runs
    results = json.loads((root / "demo" / "results.json").read_text())
    rule = {r["id"]: r for r in results["rules"]}["concept-marker"]
    assert rule["status"] == "fail", rule["message"]
    assert "forbidden concept 'marker' is used for 'seven'" in rule["message"]
    seven = [t for t in results["concepts"]["tests"] if t["class"] == "seven"]
    assert len(seven) == len(results["concepts"]["layers"]) == 3
    assert all(t["cav_accuracy"] > 0.9 for t in seven)  # every tested layer separates the marker
    assert any(t["tcav"] >= 0.9 and t["p_bonferroni"] < 1e-3 for t in seven)
    assert rule["sample_ids"]  # the 'seven' inputs whose logit rises most along the marker's CAV
    text = "\n".join(p.extract_text() for p in PdfReader(root / "demo" / "report.pdf").pages)
    assert "Concept tests (TCAV)" in text


def test_clean_twin_does_not_use_the_marker_concept(demo_runs):
    root, _, _ = demo_runs
    results = json.loads((root / "demo-clean" / "results.json").read_text())
    rule = {r["id"]: r for r in results["rules"]}["concept-marker"]
    assert rule["status"] == "pass", rule["message"]
    seven = [t for t in results["concepts"]["tests"] if t["class"] == "seven"]
    assert all(t["cav_accuracy"] > 0.9 for t in seven)  # the layers separate the marker: "not used" is shown
    assert not [t for t in seven if t["tcav"] >= 0.7 and t["p_bonferroni"] < 0.05]
