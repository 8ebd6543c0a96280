"""Concept tests through `audit run`: [concepts] in the config, the concept_reliance rule in the pack, and the
results in results.json, the HTML report and JUnit; bad concept input is a one-line exit 2."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from audit.cli import app

PACK = """[pack]
name = "concepts-test"
[[rule]]
id = "uses-left-square"
kind = "concept_reliance"
"""

CONCEPTS = """
[concepts]
layers = ["features.8"]
runs = 4
set_size = 10
min_inputs = 5
[concepts.sets.left-square]
folder = "concepts/left"
required = true
classes = ["left"]
description = "a bright square on the left"
"""


def write_concept(folder: Path, n: int, seed: int) -> None:
    """Squares where the tiny set's class 'left' has them (x 2..4), on the same kind of noisy canvas."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.clip(rng.normal(0.2, 0.08, (32, 32)), 0, 1)
        x0, y0 = int(2 + rng.integers(0, 3)), int(rng.integers(2, 22))
        img[y0:y0 + 8, x0:x0 + 8] = 0.9
        Image.fromarray((img * 255).astype(np.uint8), mode="L").save(folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def audited(tmp_path_factory, make_setup, tiny_model):
    root = tmp_path_factory.mktemp("concepts")
    (root / "pack.toml").write_text(PACK)
    setup = make_setup(root / "tiny", tiny_model, pack=str(root / "pack.toml"), extra=CONCEPTS)
    write_concept(setup.root / "concepts" / "left", 30, 1)  # more than set_size: each run draws its own 10
    out = root / "report"
    res = CliRunner().invoke(app, ["run", str(setup.config), "--out", str(out), "--set", "cache.enabled=false"])
    return setup, out, res


def test_results_json_holds_every_test(audited):
    _, out, res = audited
    assert res.exit_code in (0, 1), res.output
    doc = json.loads((out / "results.json").read_text())
    c = doc["concepts"]
    assert c["layers"] == ["features.8"] and c["runs"] == 4 and c["n_tests"] == 1
    (t,) = c["tests"]
    assert t["concept"] == "left-square" and t["class"] == "left" and t["n_inputs"] == 15
    assert len(t["scores"]) == 4 and len(t["random_scores"]) == 4 and 0 <= t["tcav"] <= 1
    assert t["p_bonferroni"] == pytest.approx(t["p"], rel=1e-5)  # one test: m = 1
    assert {a["concept"] for a in c["cav_accuracy"]} == {"left-square", "(random)"}
    assert c["concepts"][0]["n_images"] == 10 and c["concepts"][0]["n_found"] == 30
    (rule,) = [r for r in doc["rules"] if r["id"] == "uses-left-square"]
    assert rule["kind"] == "concept_reliance" and "'left-square'" in rule["message"]
    assert rule["status"] in ("pass", "fail", "error")
    assert doc["provenance"]["config"]["concepts"]["sets"]["left-square"]["required"] is True


def test_report_and_junit_show_it(audited):
    _, out, _ = audited
    html = (out / "report.html").read_text()
    assert "Concept tests (TCAV)" in html and "left-square" in html and "Bonferroni" in html
    suite = ET.fromstring((out / "report.junit.xml").read_bytes()).find("testsuite")
    assert suite is not None
    assert any(c.get("name", "").startswith("uses-left-square") for c in suite.iter("testcase"))


def test_without_concepts_the_rule_cannot_run(tmp_path, make_setup, tiny_model):
    (tmp_path / "pack.toml").write_text(PACK)
    setup = make_setup(tmp_path / "tiny", tiny_model, pack=str(tmp_path / "pack.toml"))
    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["run", str(setup.config), "--out", str(out), "--set", "cache.enabled=false",
                                   "--set", 'report.formats=["json"]'])
    assert res.exit_code == 1, res.output  # an error finding blocks: a gate never passes what it could not check
    doc = json.loads((out / "results.json").read_text())
    assert "concepts" not in doc and "concepts" not in doc["provenance"]["config"]
    rule, complete = doc["rules"]
    assert rule["status"] == "error" and "[concepts]" in rule["message"]
    assert complete["id"] == "evidence-complete" and complete["details"]["missing"][0]["name"] == "uses-left-square"


@pytest.mark.parametrize(("extra", "message"), [
    ('[concepts]\n[concepts.sets.x]\nfolder = "nowhere"\n', "folder not found (concepts.sets.x.folder)"),
    ('[concepts]\nlayers = ["nope"]\n[concepts.sets.x]\nfolder = "img"\n', "concepts.layers: layer 'nope'"),
    ('[concepts]\n[concepts.sets.x]\nfolder = "img"\nclasses = ["cat"]\n', "concepts.sets.x.classes: 'cat'"),
    ('[concepts]\n[concepts.sets.x]\nfolder = "img"\nforbidden = true\nrequired = true\n', "both forbidden"),
    ('[concepts]\nsets = {}\n', "at least one concept set"),
    ('[concepts]\nruns = 2\n[concepts.sets.x]\nfolder = "img"\n', "concepts.runs"),
])
def test_bad_concept_input_is_exit_2_naming_the_key(tmp_path, make_setup, tiny_model, extra, message):
    setup = make_setup(tmp_path / "tiny", tiny_model, extra=extra)
    res = CliRunner().invoke(app, ["run", str(setup.config), "--out", str(tmp_path / "out"),
                                   "--set", "cache.enabled=false", "--set", 'report.formats=["json"]'])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
