"""The prediction cache serves only results of exactly the same inputs: every change that can alter an output
misses the cache, and a reused entry is spot-checked against recomputed rows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.engine import cache as prediction_cache

runner = CliRunner()

FACTORY = '''
import torch
from torch import nn
from audit.demo.model import DemoCNN


class Scaled(nn.Module):
    def __init__(self, num_classes=3, scale=1.0, flip=False):
        super().__init__()
        self.net = DemoCNN(num_classes=num_classes, width=4)
        self.scale, self.flip = scale, flip

    def forward(self, x):
        out = self.net(x) * self.scale
        return -out if self.flip else out  # FLIP_MARKER


def build(num_classes=3, scale=1.0, flip=False):
    return Scaled(num_classes, scale, flip)
'''


def _run(cfg: Path, out: Path, *extra: str):
    res = runner.invoke(app, ["run", str(cfg), "--out", str(out), *extra], catch_exceptions=False)
    assert res.exit_code in (0, 1), res.output
    return res, json.loads((out / "results.json").read_text())


@pytest.fixture()
def factory_setup(tiny, tiny_model):
    """The tiny set-up with the model built by a factory module of the user's (weights renamed into it)."""
    from safetensors.torch import save_file

    (tiny.root / "userfactory.py").write_text(FACTORY)
    sd = {f"net.{k}": v.contiguous() for k, v in tiny_model.state_dict().items()}
    save_file(sd, str(tiny.weights))
    text = tiny.config.read_text().replace('factory = "audit.demo.model:build"', 'factory = "userfactory:build"')
    tiny.config.write_text(text.replace("factory_kwargs = { width = 4 }", "factory_kwargs = { scale = 1.0 }"))
    return tiny


def test_factory_kwargs_change_misses_the_cache(factory_setup, tmp_path):
    _, a = _run(factory_setup.config, tmp_path / "a")
    again, _ = _run(factory_setup.config, tmp_path / "b")
    assert "reused from the cache" in again.output
    cfg = factory_setup.config
    cfg.write_text(cfg.read_text().replace("scale = 1.0", "scale = 1.0, flip = true"))
    flipped, c = _run(cfg, tmp_path / "c")
    assert "reused from the cache" not in flipped.output
    assert c["metrics"]["accuracy"] < 0.5 < a["metrics"]["accuracy"]  # same weights, different behaviour


def test_factory_source_change_misses_the_cache(factory_setup, tmp_path):
    _run(factory_setup.config, tmp_path / "a")
    src = factory_setup.root / "userfactory.py"
    src.write_text(src.read_text().replace("return -out if self.flip else out", "return out * 0.5"))
    res, _ = _run(factory_setup.config, tmp_path / "b")
    assert "reused from the cache" not in res.output


def test_manifest_ids_and_metadata_edits_miss_the_cache(tiny, tmp_path):
    _run(tiny.config, tmp_path / "a")
    text = tiny.manifest.read_text()
    tiny.manifest.write_text(text.replace(",A\n", ",C\n"))  # metadata only
    res, doc = _run(tiny.config, tmp_path / "b")
    assert "reused from the cache" not in res.output
    assert {g["value"] for g in doc["metrics"]["subgroups"]} == {"B", "C"}
    lines = tiny.manifest.read_text().splitlines()
    lines[0] = "id," + lines[0]
    lines[1:] = [f"sample-{i}," + ln for i, ln in enumerate(lines[1:])]
    tiny.manifest.write_text("\n".join(lines) + "\n")  # ids only
    res, doc = _run(tiny.config, tmp_path / "c")
    assert "reused from the cache" not in res.output
    assert doc["predictions"]["ids"][0] == "sample-0"


def test_roi_edit_misses_the_cache(tiny, tmp_path):
    _run(tiny.config, tmp_path / "a")
    lines = tiny.manifest.read_text().splitlines()
    cells = lines[1].split(",")
    cells[2] = str(int(cells[2]) + 1)  # roi_x0 of the first row
    lines[1] = ",".join(cells)
    tiny.manifest.write_text("\n".join(lines) + "\n")
    res, _ = _run(tiny.config, tmp_path / "b")
    assert "reused from the cache" not in res.output


def test_a_cache_entry_that_does_not_reproduce_is_discarded(tiny, tmp_path):
    _, a = _run(tiny.config, tmp_path / "a")
    cache = tiny.root / ".audit-cache"
    (entry,) = cache.glob("predictions-*.npz")
    key = entry.stem.removeprefix("predictions-")
    out = prediction_cache.load(cache, key)
    stale = replace(out.predictions, probs=out.predictions.probs[:, ::-1].copy())
    prediction_cache.save(cache, key, replace(out, predictions=stale))  # a stale entry, whole, under the right key
    res, b = _run(tiny.config, tmp_path / "b")
    assert "4 recomputed rows differ" in res.output and "reused from the cache" not in res.output
    assert "4 recomputed rows differ" in b["provenance"]["cache_notes"][0]["problem"]
    assert b["metrics"]["accuracy"] == a["metrics"]["accuracy"]
