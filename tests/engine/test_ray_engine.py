"""The Ray engine on a local Ray cluster (tests/engine/conftest.py): `audit run --set compute.engine=ray` writes the
results.json (and maps.npz) of the local engine, also when Ray workers die mid-run or the driver is killed and the
run is started again; the engine's model passes match the local engine's bit for bit; errors read as locally."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from audit.cli import app
from audit.config import load_config
from audit.engine import LocalEngine, ScoringOptions
from audit.engine.ray_engine import RayEngine
from audit.errors import DataError
from audit.inputs import prepare_inputs, with_model_defaults
from audit.loading.model import load_model

ENGINE_FIELDS = {"engine", "workers", "num_cpus", "num_gpus", "decode_cpus", "shipped_code"}
EXPLAINERS = 'explainers.methods=["gradcam","saliency"]'


def audit(config: Path, out: Path, *sets: str) -> tuple[int, str]:
    args = ["run", str(config), "--out", str(out), "--set", EXPLAINERS, "--set", 'report.formats=["json"]']
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    return res.exit_code, res.output


def without_timing(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: without_timing(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [without_timing(v) for v in doc]
    return doc


def comparable(out: Path) -> dict[str, Any]:
    """results.json without timing (provenance start / finish, any "seconds") and the engine fields (the compute and
    cache sections of the echoed config, the engine's keys of provenance.compute)."""
    doc = without_timing(json.loads((out / "results.json").read_text()))
    prov = doc["provenance"]
    for k in ("started", "finished"):
        prov.pop(k)
    prov["config"].pop("compute")
    prov["config"].pop("cache")
    prov["compute"] = {k: v for k, v in prov["compute"].items() if k not in ENGINE_FIELDS}
    return doc


def maps(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "maps.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a) + [k for k in b if k not in a]
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {str(a)[:120]!r} != {str(b)[:120]!r}"]


def assert_same_report(got: Path, ref: Path) -> None:
    a, b = comparable(ref), comparable(got)
    diff = differences(a, b)
    assert not diff, "results.json differs:\n" + "\n".join(diff[:20])
    ma, mb = maps(ref), maps(got)
    assert ma.keys() == mb.keys()
    for k in ma:
        assert np.array_equal(ma[k], mb[k]), k


@pytest.fixture(scope="module")
def reference(faulty_setup, tmp_path_factory) -> Path:
    """The local engine's report (no cache)."""
    out = tmp_path_factory.mktemp("ref") / "report"
    code, output = audit(faulty_setup.config, out, "cache.enabled=false")
    assert code in (0, 1), output
    doc = json.loads((out / "results.json").read_text())
    assert doc["skipped"] and doc["skipped"][0]["path"].endswith("broken.png")  # the skip path is covered too
    assert {r["kind"] for r in doc["rules"]} >= {"roi_attribution", "confounder_region", "explanation_sanity",
                                                 "faithfulness", "shortcut_discovery"}
    return out


def test_ray_run_writes_the_local_results(ray_cluster, faulty_setup, reference, tmp_path):
    out = tmp_path / "report"
    code, output = audit(faulty_setup.config, out, 'compute.engine="ray"', "cache.enabled=false")
    assert code in (0, 1), output
    assert_same_report(out, reference)
    prov = json.loads((out / "results.json").read_text())["provenance"]
    assert prov["compute"]["engine"] == "ray" and prov["config"]["compute"]["engine"] == "ray"


def test_workers_killed_mid_run_still_give_the_full_identical_result(ray_cluster, faulty_setup, reference, tmp_path):
    # the scoring actor exits on its 3rd batch, a model worker on its first explainer pass; Ray restarts both and
    # retries their calls
    kills = [faulty_setup.flags / "exit-scoring-3", faulty_setup.flags / "exit-explaining"]
    for f in kills:
        f.touch()
    cache = tmp_path / "cache"
    out = tmp_path / "report"
    try:
        code, output = audit(faulty_setup.config, out, 'compute.engine="ray"', f'cache.dir="{cache}"')
        assert [f.name for f in kills if f.exists()] == [], "a worker was not killed"
    finally:
        for f in kills:
            f.unlink(missing_ok=True)
    assert code in (0, 1), output
    assert_same_report(out, reference)
    assert not list((cache / "ray").glob("scoring-*")), "the finished run's batch files were not removed"
    # the finished run is an ordinary cache entry: the local engine reuses it (same key on CPU workers)
    code, output = audit(faulty_setup.config, tmp_path / "again", f'cache.dir="{cache}"')
    assert code in (0, 1), output
    assert "predictions: reused from the cache" in output
    assert_same_report(tmp_path / "again", reference)


def test_a_killed_driver_resumes_from_the_written_batches(ray_cluster, faulty_setup, reference, tmp_path):
    cache = tmp_path / "cache"
    slow = faulty_setup.flags / "slow-1500"
    slow.touch()
    address = ray_cluster.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "audit.cli", "run", str(faulty_setup.config), "--out", str(tmp_path / "first"),
           "--set", EXPLAINERS, "--set", 'report.formats=["json"]', "--set", 'compute.engine="ray"',
           "--set", f'compute.address="{address}"', "--set", f'cache.dir="{cache}"']
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        written: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            written = list((cache / "ray").glob("scoring-*/batch-*.parquet"))
            if len(written) >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
        assert len(written) >= 3, "the first run wrote no batches in time"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver dies mid-run
        proc.wait(timeout=30)
    finally:
        slow.unlink(missing_ok=True)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    kept = {p.name for p in (cache / "ray").glob("scoring-*/batch-*.parquet")}
    assert 3 <= len(kept) < 12
    out = tmp_path / "report"
    code, output = audit(faulty_setup.config, out, 'compute.engine="ray"', f'cache.dir="{cache}"')
    assert code in (0, 1), output
    assert "resumed an interrupted scoring run" in output
    assert_same_report(out, reference)


# ---- the engine itself ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engines(ray_cluster, faulty_setup):
    cfg = load_config(faulty_setup.config, ['compute.engine="ray"', "cache.enabled=false"])
    cfg, notes = with_model_defaults(cfg)
    inputs = prepare_inputs(cfg, None, notes)
    loaded = load_model(cfg, len(inputs.classes))
    ray_engine = RayEngine.from_config(cfg, loaded, inputs.task)
    local = LocalEngine(ray_engine.model, inputs.task, ray_engine.worker_compute, batch_size=4, explain_batch_size=3)
    ray_engine.explain_batch_size = 3
    yield ray_engine, local, inputs
    ray_engine.close()


def test_model_passes_match_the_local_engine_bit_for_bit(engines):
    from audit.explainers import ExplainContext, build_explainer

    ray_engine, local, _ = engines
    g = torch.Generator().manual_seed(0)
    x = torch.randn(11, 1, 32, 32, generator=g)
    assert np.array_equal(ray_engine.outputs(x), local.outputs(x))

    def corner(b: torch.Tensor) -> torch.Tensor:
        out = b.clone()
        out[..., :8, :8] = 0.0
        return out

    assert np.array_equal(ray_engine.map_over_perturbations(x, corner), local.map_over_perturbations(x, corner))
    targets = np.arange(11) % 3
    for name in ("gradcam", "smoothgrad"):  # smoothgrad samples: seeded per call, so per batch
        ex = build_explainer(name, None, ExplainContext(seed=0))
        assert np.array_equal(ray_engine.explain(ex, x, targets), local.explain(ex, x, targets)), name
    # a model variant (the randomisation test's copies) travels once as a state dict, with its memory format
    variant = ray_engine.model.__class__(num_classes=3, in_channels=1, width=4).eval()  # contiguous
    assert ray_engine.worker_compute.channels_last  # the audited model is channels-last on the workers
    ex = build_explainer("saliency", None, ExplainContext(seed=0))
    assert np.array_equal(ray_engine.explain(ex, x, targets, model=variant), local.explain(ex, x, targets, variant))
    assert np.array_equal(ray_engine.outputs(x, variant), local.outputs(x, variant))
    assert not np.array_equal(ray_engine.outputs(x, variant), ray_engine.outputs(x))
    assert ray_engine.outputs(x[:0]).shape == (0, 3)


def test_scoring_matches_the_local_pass_and_an_unreadable_image_reads_as_locally(engines):
    ray_engine, local, inputs = engines
    opts = ScoringOptions(batch_size=4, skip_bad=True, progress=False)
    got = ray_engine.score(inputs.heldout, inputs.preprocess, opts)
    ref = local.score(inputs.heldout, inputs.preprocess, opts)
    assert np.array_equal(got.predictions.probs, ref.predictions.probs)
    assert np.array_equal(np.asarray(got.predictions.features), ref.predictions.features)
    assert list(got.predictions.ids) == list(ref.predictions.ids)
    assert np.array_equal(got.kept_rows, ref.kept_rows)
    assert got.skipped == ref.skipped
    assert got.input_sum is not None and torch.equal(got.input_sum, ref.input_sum)
    strict = ScoringOptions(batch_size=4, skip_bad=False, progress=False)
    with pytest.raises(DataError) as ray_err:
        ray_engine.score(inputs.heldout, inputs.preprocess, strict)
    with pytest.raises(DataError) as local_err:
        local.score(inputs.heldout, inputs.preprocess, strict)
    assert str(ray_err.value) == str(local_err.value)
    assert "broken.png" in str(ray_err.value)
