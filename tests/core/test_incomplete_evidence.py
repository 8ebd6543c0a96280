"""A gate that never passes on missing evidence, through `audit run`: an explainer lost to a damaged cache entry
fails the verdict and is named in summary.md and JUnit; a pack that downgrades the check passes and says so on the
HTML and PDF cover."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import zipfile

from pypdf import PdfReader
from typer.testing import CliRunner

from audit.cli import app
from audit.engine.probe import ModelProbe

runner = CliRunner()

LENIENT = """[pack]
name = "lenient"
extends = "default"
[[rule]]
id = "evidence-complete"
kind = "evidence_complete"
severity = "warning"
"""


def _run(config, out, *extra: str):
    res = runner.invoke(app, ["run", str(config), "--out", str(out), "--set", "cache.enabled=false", *extra])
    doc = json.loads((out / "results.json").read_text())
    return res, doc, {r["id"]: r for r in doc["rules"]}


def test_an_explainer_lost_to_a_damaged_cache_fails_the_verdict(tiny, tmp_path, monkeypatch):
    real = ModelProbe.attributions

    def damaged(self, name, ids, target="predicted"):
        if name == "gradcam":  # what a truncated attribution-cache chunk gave (issue 24)
            raise zipfile.BadZipFile("File is not a zip file")
        return real(self, name, ids, target)

    monkeypatch.setattr(ModelProbe, "attributions", damaged)
    res, doc, rules = _run(tiny.config, tmp_path / "out", "--set", 'explainers.methods=["gradcam","saliency"]')
    assert res.exit_code == 1, res.output
    assert doc["verdict"] == "fail" and doc["summary"]["blocking"] == ["evidence-complete"]
    ev = rules["evidence-complete"]
    assert ev["status"] == "error" and ev["severity"] == "error" and ev["details"]["incomplete"] is True
    assert ev["details"]["missing"] == [{"what": "explainer", "name": "gradcam",
                                         "reason": "unavailable (File is not a zip file)"}]
    assert all(r["status"] == "pass" for r in doc["rules"] if r["id"] != "evidence-complete")  # it alone blocks
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "**Explainers unavailable:** `gradcam` (File is not a zip file)" in summary
    assert "FAIL because evidence-complete found incomplete evidence" in summary
    suite = ET.parse(tmp_path / "out" / "report.junit.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["explainers.unavailable"] == "gradcam: File is not a zip file"
    assert "incomplete_evidence_blocks" not in props
    case = next(c for c in suite.iter("testcase") if c.get("name") == "evidence-complete")
    assert "explainer 'gradcam'" in case.find("error").get("message")


def test_a_pack_that_downgrades_missing_evidence_passes_and_says_so_on_the_cover(tiny, tmp_path):
    (tmp_path / "lenient.toml").write_text(LENIENT)
    out = tmp_path / "out"
    res, doc, rules = _run(tiny.config, out, "--set", f'rules.pack="{tmp_path / "lenient.toml"}"', "--set",
                           'explainers.methods=["gradcam","attention_rollout"]', "--set",
                           'report.formats=["html","pdf","json","junit"]')
    assert res.exit_code == 0, res.output  # DemoCNN has no attention block: attention_rollout is unavailable
    ev = rules["evidence-complete"]
    assert ev["severity"] == "warning" and ev["status"] == "error" and doc["summary"]["blocking"] == []
    note = "Missing evidence does not block this verdict: rule pack “lenient” lists evidence-complete with severity warning."
    html = (out / "report.html").read_text()
    cover = html[html.index('<header class="cover">'):html.index("</header>")]
    assert note in cover and "attention_rollout" in cover
    first_page = " ".join(PdfReader(out / "report.pdf").pages[0].extract_text().split())
    assert note in first_page
    summary = (out / "summary.md").read_text()
    flags = summary[summary.index("**Flags:**"):]  # the cover's flags, one item each (report/flags.py)
    assert "- Missing evidence does not block this verdict" in flags and "attention\\_rollout" in flags, flags
    assert "`attention_rollout`" in summary  # and among the explainers unavailable
    props = {p.get("name"): p.get("value") for p in ET.parse(out / "report.junit.xml").getroot().iter("property")}
    assert props["incomplete_evidence_blocks"] == "false" and props["explainers.unavailable"].startswith(
        "attention_rollout: ")
