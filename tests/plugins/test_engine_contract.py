"""The common check of every engine: on the tiny audit it writes the local engine's results.json and maps.npz (apart
from the engine's own fields and timing), and a model that fails under it fails with the local engine's error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from audit_sets import toys_registered
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from audit.cli import app
from audit.engine import registry as engine_registry

RAY = ("tests/engine/test_ray_engine.py holds the Ray engine to this contract on a local Ray cluster (results.json and "
       "maps.npz equal to the local engine's, errors read as locally)")
with toys_registered():  # the built-in engines and the test-only toy_thread
    ENGINES = [pytest.param(n, marks=pytest.mark.skip(reason=RAY)) if n == "ray" else n
               for n in engine_registry() if n != "local"]
COMMON = ["--set", 'explainers.methods=["gradcam", "saliency"]', "--set", 'report.formats=["json"]',
          "--set", "cache.enabled=false", "--set", 'rules.pack="demo"']


def audit(config: Path, out: Path, *sets: str) -> tuple[int, str]:
    args = ["run", str(config), "--out", str(out), *COMMON]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    return res.exit_code, res.output


def comparable(out: Path) -> dict[str, Any]:
    """results.json without timing and what names the engine (the echoed compute settings, provenance.compute)."""
    doc = json.loads((out / "results.json").read_text())
    prov = doc["provenance"]
    for k in ("started", "finished", "compute"):
        prov.pop(k)
    prov["config"].pop("compute")
    for r in doc["rules"]:
        r["details"].pop("seconds", None)
    doc.get("data_checks", {}).pop("seconds", None)
    return doc


@pytest.fixture(scope="module")
def reference(make_setup, tiny_model, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny set with the demo pack, and the local engine's report of it."""
    setup = make_setup(tmp_path_factory.mktemp("engines") / "tiny", tiny_model)
    out = setup.root.parent / "local"
    code, output = audit(setup.config, out)
    assert code in (0, 1), output
    return setup.config, out


@pytest.mark.parametrize("engine", ENGINES)
def test_an_engine_writes_the_local_results(engine, reference, toy_plugins, tmp_path):
    config, ref = reference
    out = tmp_path / "report"
    code, output = audit(config, out, f'compute.engine="{engine}"')
    assert code in (0, 1), output
    assert json.loads((out / "results.json").read_text())["provenance"]["config"]["compute"]["engine"] == engine
    assert comparable(out) == comparable(ref)
    with np.load(ref / "maps.npz", allow_pickle=False) as a, np.load(out / "maps.npz", allow_pickle=False) as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failing_model_fails_as_under_the_local_engine(engine, reference, toy_plugins, tmp_path):
    config, _ = reference
    weights = load_file(str(config.parent / "weights.safetensors"))
    last = [k for k in weights if k.endswith(".bias")][-1]
    weights[last] = torch.full_like(weights[last], float("nan"))  # every output NaN: the scoring pass refuses it
    save_file(weights, str(tmp_path / "nan.safetensors"))
    nan = f'model.weights="{tmp_path / "nan.safetensors"}"'
    local = audit(config, tmp_path / "a", nan)
    other = audit(config, tmp_path / "b", nan, f'compute.engine="{engine}"')
    assert local[0] == other[0] == 2
    assert "error: the model returned NaN or infinite outputs (e.g. for " in local[1]
    assert local[1] == other[1]
