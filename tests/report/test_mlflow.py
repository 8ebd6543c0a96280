"""[report] mlflow logs a finished audit to a real local MLflow store (file store in a temporary folder):
metrics, rule results as metrics and tags, the verdict, the config and the report folder as artifacts; `audit
compare mlflow:<run id> CANDIDATE` fetches that run's report as the baseline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import ConfigError

runner = CliRunner()


@pytest.fixture(scope="module")
def logged(tiny_model, make_setup, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    setup = make_setup(root / "tiny", tiny_model, extra='mlflow = { tracking_uri = "mlruns", experiment = "audit-tests" }')
    out = root / "report"
    res = runner.invoke(app, ["run", str(setup.config), "--out", str(out), "--set",
                              'report.formats=["html","json","junit","model_card","annex_iv"]'],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    uri = (setup.root / "mlruns").resolve().as_uri()  # the relative URI is read from the config's folder
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("audit-tests")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return client, runs[0], out, uri


def test_run_holds_metrics_rules_verdict_and_identity(logged):
    _, run, out, _ = logged
    results = json.loads((out / "results.json").read_text())
    m, tags, params = run.data.metrics, run.data.tags, run.data.params
    assert m["accuracy"] == pytest.approx(results["metrics"]["accuracy"], rel=1e-5)
    assert m["accuracy_ci95_low"] <= m["accuracy"] <= m["accuracy_ci95_high"]
    assert "recall.left" in m and "ece" in m
    assert m["audit.passed"] == 1.0 and tags["audit.verdict"] == "pass"
    for r in results["rules"]:
        assert tags[f"rule.{r['id']}.status"] == r["status"]
        if r["status"] == "warn":  # a warning passes the gate: neither passed = 0 nor passed = 1
            assert m[f"rule.{r['id']}.warned"] == 1.0 and f"rule.{r['id']}.passed" not in m
        elif r["status"] in ("pass", "fail", "error"):
            assert m[f"rule.{r['id']}.passed"] == (1.0 if r["status"] == "pass" else 0.0)
        if r["value"] is not None:
            assert m[f"rule.{r['id']}.value"] == pytest.approx(r["value"], rel=1e-5)
    assert tags["rule.accuracy-floor.criterion"].startswith("accuracy ")
    assert params["model.sha256"] == results["provenance"]["model"]["sha256"]
    assert params["data.images_sha256"] == results["provenance"]["data"]["images_sha256"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert tags["audit.document_id"] == manifest["document_id"]
    assert run.info.status == "FINISHED"


def test_report_folder_and_config_are_artifacts(logged):
    client, run, out, _ = logged
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"audit-report", "audit_config.json", "audit_config.toml"} <= top
    files = {a.path.split("/", 1)[1] for a in client.list_artifacts(run.info.run_id, "audit-report")}
    assert files == {p.name for p in out.iterdir()}
    assert {"model_card.md", "model_card.json", "annex_iv.md", "annex_iv.json"} <= files


def test_compare_takes_an_mlflow_run_as_baseline(logged):
    _, run, out, uri = logged
    res = runner.invoke(app, ["compare", f"mlflow:{run.info.run_id}", str(out), "--mlflow-uri", uri],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "newly failing rules: none" in res.output
    bad = runner.invoke(app, ["compare", "mlflow:0123456789abcdef", str(out), "--mlflow-uri", uri])
    assert bad.exit_code == 2 and "cannot fetch the baseline from MLflow" in bad.output


def test_missing_mlflow_is_a_config_error(monkeypatch):
    import importlib.util

    from audit.config import MlflowConfig

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises((ValueError, ConfigError), match="model-audit\\[mlflow\\]"):
        MlflowConfig(tracking_uri="mlruns")


def test_the_readmes_read_back_snippet_reads_the_run(logged, tmp_path):
    """The README's snippet, as printed, in a fresh process without MLFLOW_ALLOW_FILE_STORE (MLflow 3 refuses a
    file: store without it): it finds the run and downloads the report folder."""
    _, _, out, uri = logged
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL) if "MLFLOW_ALLOW_FILE_STORE" in b)
    code = snippet.replace("file:///srv/mlruns", uri).replace('"model-audit"', '"audit-tests"')
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ALLOW_FILE_STORE"}
    res = subprocess.run([sys.executable, "-c", code + "\nprint('FOLDER', folder)"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("pass 1.0 PASS")
    folder = Path(res.stdout.split("FOLDER ", 1)[1].strip())
    assert {p.name for p in folder.iterdir()} == {p.name for p in out.iterdir()}
