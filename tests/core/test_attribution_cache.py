"""Attribution maps cached on disk: a re-run computes none, an interrupted run resumes, results do not change."""

import json
import re

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.engine.probe import ModelProbe

runner = CliRunner()
SMALL_BATCHES = ["--set", "explainers.batch_size=2", "--set", 'explainers.methods=["gradcam", "smoothgrad"]']


def _results_text(folder):
    """results.json without the run times and the cache switch (the config is recorded in provenance)."""
    text = (folder / "results.json").read_text()
    text = re.sub(r'"(started|finished)": "[^"]*"', r'"\1": ""', text)
    return re.sub(r'"enabled": (true|false)', '"enabled": null', text)


@pytest.fixture()
def counted(monkeypatch):
    """Counts the batches of maps the audited model computes, per explainer."""
    calls: list[str] = []
    original = ModelProbe.explain_tensor

    def explain_tensor(self, name, x, targets, model=None):
        if model is None:
            calls.append(name)
        return original(self, name, x, targets, model)

    monkeypatch.setattr(ModelProbe, "explain_tensor", explain_tensor)
    return calls


def test_rerun_computes_no_map_and_gives_the_same_results(tiny, tmp_path, counted):
    first = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "a"), *SMALL_BATCHES])
    assert first.exit_code in (0, 1), first.output
    assert counted.count("gradcam") > 1
    counted.clear()
    second = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "b"), *SMALL_BATCHES])
    assert second.exit_code == first.exit_code
    assert counted == []  # every map came from the cache
    fresh = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "c"), *SMALL_BATCHES,
                                "--set", "cache.enabled=false"])
    assert fresh.exit_code == first.exit_code
    assert _results_text(tmp_path / "b") == _results_text(tmp_path / "a") == _results_text(tmp_path / "c")


def test_interrupted_run_resumes_from_the_last_finished_batch(tiny, tmp_path, monkeypatch):
    original = ModelProbe.explain_tensor
    done: list[str] = []

    def interrupt_on_third(self, name, x, targets, model=None):
        if model is None and name == "gradcam":
            if len(done) == 2:
                raise KeyboardInterrupt
            done.append(name)
        return original(self, name, x, targets, model)

    monkeypatch.setattr(ModelProbe, "explain_tensor", interrupt_on_third)
    stopped = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "a"), *SMALL_BATCHES])
    assert stopped.exit_code == 130 and not (tmp_path / "a").exists()

    calls: list[str] = []

    def count(self, name, x, targets, model=None):
        if model is None:
            calls.append(name)
        return original(self, name, x, targets, model)

    monkeypatch.setattr(ModelProbe, "explain_tensor", count)
    resumed = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "b"), *SMALL_BATCHES])
    assert resumed.exit_code in (0, 1), resumed.output
    assert "reused from the cache" in resumed.output  # predictions
    resumed_batches = calls.count("gradcam")
    calls.clear()
    fresh = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "c"), *SMALL_BATCHES,
                                "--set", "cache.enabled=false"])
    assert fresh.exit_code == resumed.exit_code
    assert resumed_batches == calls.count("gradcam") - 2  # the two finished batches were not recomputed
    assert _results_text(tmp_path / "b") == _results_text(tmp_path / "c")


def test_changed_explainer_options_do_not_reuse_maps(tiny, tmp_path, counted):
    runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "a"), *SMALL_BATCHES])
    counted.clear()
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "b"), *SMALL_BATCHES,
                              "--set", 'explainers.options={smoothgrad={n_samples=4}}'])
    assert res.exit_code in (0, 1), res.output
    assert "smoothgrad" in counted and "gradcam" not in counted
    assert json.loads((tmp_path / "b" / "results.json").read_text())["explainers"]


def test_interrupted_scoring_resumes_at_the_last_checkpoint(tiny, tmp_path, monkeypatch):
    """45 images in batches of 16, progress saved after every batch: a stop in the third batch resumes at 32."""
    from audit.loading.dataset import ImageDataset

    original = ImageDataset.__getitem__

    def stop_in_third_batch(self, i):
        if i == 40:
            raise KeyboardInterrupt
        return original(self, i)

    monkeypatch.setattr(ImageDataset, "__getitem__", stop_in_third_batch)
    every_batch = ["--set", "cache.checkpoint_seconds=0"]
    stopped = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "a"), *every_batch])
    assert stopped.exit_code == 130
    assert list((tiny.root / ".audit-cache").glob("*.partial.npz"))
    monkeypatch.setattr(ImageDataset, "__getitem__", original)
    resumed = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "b"), *every_batch])
    assert resumed.exit_code in (0, 1), resumed.output
    assert "resumed an interrupted scoring run at sample 32" in resumed.output
    assert not list((tiny.root / ".audit-cache").glob("*.partial.npz"))  # removed once scoring completed
    fresh = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "c"), *every_batch,
                                "--set", "cache.enabled=false"])
    assert fresh.exit_code == resumed.exit_code
    assert _results_text(tmp_path / "b") == _results_text(tmp_path / "c")
