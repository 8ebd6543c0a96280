"""The offline demo end to end: the planted corner marker is caught and named; the clean twin passes."""

import json

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from audit.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    clean = runner.invoke(app, ["demo", "--clean", "--out", str(root / "demo-clean")])
    # the release-gate chain of the README: the clean twin is the released model, the confounded one the candidate
    confounded = runner.invoke(app, ["demo", "--out", str(root / "demo"), "--baseline", str(root / "demo-clean")])
    return root, confounded, clean


def test_confounded_demo_fails_naming_the_corner(demo_runs):
    root, confounded, _ = demo_runs
    assert confounded.exit_code == 1, confounded.output
    results = json.loads((root / "demo" / "results.json").read_text())
    assert results["metrics"]["accuracy"] > 0.85  # the metrics alone look releasable
    sweep = {r["id"]: r for r in results["rules"]}["region-sweep"]
    assert sweep["status"] == "fail"
    assert "top-left" in sweep["message"] and "'seven'" in sweep["message"]
    text = "\n".join(p.extract_text() for p in PdfReader(root / "demo" / "report.pdf").pages)
    assert "Verdict: FAIL" in text and "region-sweep" in text


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
    assert comp["rules"]["newly_failing"] == ["region-sweep"]
    rules = {r["id"]: r for r in results["rules"]}
    assert rules["no-new-failures"]["status"] == "fail" and "region-sweep" in rules["no-new-failures"]["message"]
    gradcam = comp["explanations"]["gradcam"]
    assert gradcam["n_compared"] >= 25  # every baseline pick (about 30), explained again with the candidate
    summary = (root / "demo" / "summary.md").read_text()
    assert "region-sweep" in summary and "median Spearman" in summary
    text = "\n".join(p.extract_text() for p in PdfReader(root / "demo" / "report.pdf").pages)
    assert "Changes since baseline" in text and "Explanations of the same samples" in text
    assert "extends demo.toml" in text  # every rule file that shaped the verdict is hashed in the record
