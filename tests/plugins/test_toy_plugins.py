"""A new rule kind, explainer, engine and output format is one module and one registration: the test-only plugins
of toys/ (one module each, one entry-point line each in toys/toy_plugins-0.1.dist-info) get a full audit through
the ordinary command line, as tests/core/test_toy_task.py does for a task type."""

from __future__ import annotations

import json

import numpy as np
import torch
from captum.attr import InputXGradient
from safetensors.torch import load_file
from typer.testing import CliRunner

from audit.cli import app
from audit.config import load_config
from audit.demo.model import DemoCNN
from audit.engine import registry as engine_registry
from audit.explainers import registry as explainer_registry
from audit.loading.dataset import ImageDataset
from audit.loading.listing import load_heldout
from audit.loading.preprocess import make_preprocess
from audit.maps.store import load_maps
from audit.report.writers import registry as output_registry
from audit.rules import registry as rule_registry

PACK = """[[rule]]
id = "unsure-answers"
kind = "toy_low_confidence"
min_confidence = 0.9
max_share = 0.5
"""


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return res.exit_code, res.output


def test_the_toys_are_found_through_their_entry_points_only(toy_plugins):
    assert rule_registry()["toy_low_confidence"].__module__ == "toy_rule"
    assert explainer_registry()["toy_input_x_gradient"].__module__ == "toy_explainer"
    assert engine_registry()["toy_thread"].__module__ == "toy_engine"
    assert output_registry()["toy_findings_csv"].__module__ == "toy_output"
    code, out = run("list")
    assert code == 0
    for name in ("toy_low_confidence", "toy_input_x_gradient", "toy_thread", "toy_findings_csv"):
        assert f"  {name}" in out, name


def test_a_toy_rule_explainer_and_output_format_get_a_full_audit(toy_plugins, tiny, tmp_path):
    pack = tmp_path / "toy.toml"
    pack.write_text(PACK)
    out = tmp_path / "report"
    sets = ["--set", f'rules.pack="{pack}"', "--set", 'explainers.methods=["gradcam", "toy_input_x_gradient"]',
            "--set", 'report.formats=["json", "html", "toy_findings_csv"]', "--set", "cache.enabled=false"]
    code, output = run("run", tiny.config, "--out", out, *sets)
    assert code in (0, 1), output
    doc = json.loads((out / "results.json").read_text())

    # the rule kind: judged as a built-in one, its criterion stated, its value checked by hand
    rule = next(r for r in doc["rules"] if r["id"] == "unsure-answers")
    share = float(np.mean(np.asarray(doc["predictions"]["confidence"]) < 0.9))
    assert rule["kind"] == "toy_low_confidence" and rule["value"] == round(share, 6)
    assert rule["status"] == ("fail" if share > 0.5 else "pass")
    assert rule["criterion"] == {"name": "share of answers below the confidence floor", "unit": "fraction of samples",
                                 "direction": "max", "source": "rule"}

    # the explainer: its maps are captum's InputXGradient summed over channels, its unit captions the colour bar
    toy = next(e for e in doc["explainers"] if e["name"] == "toy_input_x_gradient")
    assert toy["status"] == "ok" and toy["n_maps"] > 0
    cfg = load_config(tiny.config)
    model = DemoCNN(num_classes=3, width=4)
    model.load_state_dict(load_file(str(tiny.weights)))
    stored = load_maps(out / "maps.npz")["toy_input_x_gradient"]
    by_id = {r.id: r for r in load_heldout(cfg).records}
    ds = ImageDataset([by_id[i] for i in stored.ids], make_preprocess(cfg.data))
    x = torch.stack([ds[i][1] for i in range(len(stored.ids))]).requires_grad_(True)
    ref = InputXGradient(model.eval()).attribute(x, target=torch.as_tensor(stored.targets)).sum(dim=1).detach()
    for got, want in zip(stored.maps, ref.numpy(), strict=True):  # float16 in maps.npz: 3 digits of the largest value
        np.testing.assert_allclose(got, want, atol=float(np.abs(want).max()) * 1e-3)
    assert "toy unit: input × ∂ output / ∂ input" in (out / "report.html").read_text()

    # the output format: written, listed in the manifest, read back, replaced by the next run, verified
    manifest = json.loads((out / "manifest.json").read_text())
    assert "findings.csv" in manifest["files"]
    rows = (out / "findings.csv").read_text().splitlines()
    assert rows[0] == "rule,kind,status,value,threshold" and rows[1].startswith("unsure-answers,toy_low_confidence,")
    assert run("verify", out)[0] == 0
    code, output = run("run", tiny.config, "--out", out, *sets)  # an earlier report with findings.csv is replaced
    assert code in (0, 1), output


def test_an_unregistered_toy_is_refused_with_the_known_names(tiny, tmp_path):
    assert "toy_" not in run("list")[1]  # registered only while a test asks for them
    pack = tmp_path / "toy.toml"
    pack.write_text(PACK)
    code, output = run("run", tiny.config, "--out", tmp_path / "out", "--set", f'rules.pack="{pack}"')
    assert code == 2 and "unknown rule kind 'toy_low_confidence'" in output
    code, output = run("run", tiny.config, "--out", tmp_path / "out", "--set", 'report.formats=["toy_findings_csv"]')
    assert code == 2 and "report.formats: unknown output format 'toy_findings_csv'; known: " in output
    code, output = run("run", tiny.config, "--out", tmp_path / "out", "--set", 'compute.engine="toy_thread"')
    assert code == 2 and "compute.engine: unknown engine 'toy_thread'; known: local, ray" in output
    assert not (tmp_path / "out").exists()  # refused before the audit ran
