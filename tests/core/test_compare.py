"""Release gate against a baseline: regression named, self-comparison neutral, unpaired sets refused."""

import copy
import json

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from audit.cli import app
from audit.compare.reports import compare_results
from audit.errors import DataError

runner = CliRunner()


@pytest.fixture()
def baseline_and_worse(tiny, tiny_model, tmp_path):
    base_out = tmp_path / "base"
    assert runner.invoke(app, ["run", str(tiny.config), "--out", str(base_out)]).exit_code == 0
    worse = copy.deepcopy(tiny_model)
    with torch.no_grad():
        worse.fc.bias[1] -= 8.0  # the candidate stops predicting "middle"
    save_file({k: v.contiguous() for k, v in worse.state_dict().items()}, str(tiny.root / "worse.safetensors"))
    return tiny, base_out


def test_gate_fails_naming_the_regressed_class(baseline_and_worse, tmp_path):
    tiny, base_out = baseline_and_worse
    out = tmp_path / "cand"
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(out), "--rules", "ci-gate",
                              "--baseline", str(base_out), "--set", 'model.weights="worse.safetensors"'])
    assert res.exit_code == 1, res.output
    results = json.loads((out / "results.json").read_text())
    by_id = {r["id"]: r for r in results["rules"]}
    assert by_id["class-recall-drop"]["status"] == "fail"
    assert "'middle'" in by_id["class-recall-drop"]["message"]
    assert by_id["accuracy-drop"]["status"] == "fail"
    assert results["comparison"]["flips"]["to_wrong"] > 0
    assert "Changes since baseline" in (out / "report.html").read_text()


def test_self_comparison_has_zero_deltas(baseline_and_worse):
    _, base_out = baseline_and_worse
    res = json.loads((base_out / "results.json").read_text())
    comp = compare_results(res, res)
    assert comp["paired"]
    assert all(d["delta"] == 0 for d in comp["metrics"].values())
    assert comp["metrics"]["accuracy"]["delta_ci95"] == [0.0, 0.0]
    assert comp["flips"]["to_wrong"] == 0 and comp["flips"]["to_right"] == 0
    assert comp["rules"]["newly_failing"] == []
    assert runner.invoke(app, ["compare", str(base_out), str(base_out)]).exit_code == 0


def test_unpaired_sets_are_refused(baseline_and_worse):
    _, base_out = baseline_and_worse
    res = json.loads((base_out / "results.json").read_text())
    other = copy.deepcopy(res)
    other["predictions"]["ids"] = [i + "-x" for i in other["predictions"]["ids"]]
    with pytest.raises(DataError, match="different held-out sets"):
        compare_results(res, other)
    comp = compare_results(res, other, unpaired=True)
    assert not comp["paired"] and "flips" not in comp
    cli = runner.invoke(app, ["compare", str(base_out / "results.json"), str(base_out / "results.json")])
    assert cli.exit_code == 0


def test_baseline_rules_without_baseline_are_errors(tiny, tmp_path):
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "o"), "--rules", "ci-gate"])
    assert res.exit_code == 1
    rules = {r["id"]: r for r in json.loads((tmp_path / "o" / "results.json").read_text())["rules"]}
    assert rules["accuracy-drop"]["status"] == "error" and "--baseline" in rules["accuracy-drop"]["message"]


def test_vectorised_bootstrap_metrics_equal_sklearn():
    import numpy as np
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from audit.compare.reports import _resampled_metrics

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    p[:5] = 3
    idx = rng.integers(0, 60, size=(5, 60))
    weights = np.stack([np.bincount(i, minlength=60) for i in idx]).astype(float)
    got = _resampled_metrics(y, p, weights, 4)
    for r in range(5):
        yi, pi = y[idx[r]], p[idx[r]]
        assert got["accuracy"][r] == pytest.approx(accuracy_score(yi, pi))
        assert got["balanced_accuracy"][r] == pytest.approx(balanced_accuracy_score(yi, pi))
        assert got["macro_f1"][r] == pytest.approx(f1_score(yi, pi, average="macro", zero_division=0))
