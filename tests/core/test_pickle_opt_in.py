"""Arbitrary unpickling happens only behind model.allow_pickle, and the report then says so."""

import argparse

import pytest
import torch
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import ModelError
from audit.loading.weights import unsafe_torch_load

runner = CliRunner()


class Marker:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_unsafe_load_refused_without_opt_in_and_runs_nothing(tmp_path):
    ckpt = tmp_path / "evil.pt"
    torch.save({"x": Marker(tmp_path / "ran")}, ckpt)
    with pytest.raises(ModelError, match="allow_pickle"):
        unsafe_torch_load(ckpt, allow_pickle=False, what="checkpoint")
    assert not (tmp_path / "ran").exists()
    unsafe_torch_load(ckpt, allow_pickle=True, what="checkpoint")
    assert (tmp_path / "ran").exists()  # the opt-in really unpickles


def test_checkpoint_with_python_objects_needs_and_honours_opt_in(tiny, tiny_model, tmp_path):
    ckpt = tiny.root / "weights.pt"
    torch.save({"state_dict": tiny_model.state_dict(), "args": argparse.Namespace(epochs=3)}, ckpt)
    text = tiny.config.read_text().replace("weights.safetensors", "weights.pt")
    tiny.config.write_text(text)
    refused = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "a")])
    assert refused.exit_code == 2 and "refused to unpickle" in refused.output
    tiny.config.write_text(text.replace("[model]\n", "[model]\nallow_pickle = true\n"))
    ok = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "b")])
    assert ok.exit_code == 0, ok.output
    html = (tmp_path / "b" / "report.html").read_text()
    assert "unpickled with allow_pickle" in html and "could run arbitrary code" in html


def test_pickled_module_loads_only_with_opt_in(tiny, tiny_model, tmp_path):
    torch.save(tiny_model, tiny.root / "model.pkl")
    text = tiny.config.read_text()
    start, end = text.index("[model]"), text.index("[data]")
    model_section = '[model]\npickle = "model.pkl"\nallow_pickle = true\n\n'
    tiny.config.write_text(text[:start] + model_section + text[end:])
    ok = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert "pickled module model.pkl" in (tmp_path / "o" / "report.html").read_text()
    tiny.config.write_text(text[:start] + model_section.replace("true", "false") + text[end:])
    refused = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "p")])
    assert refused.exit_code == 2 and "allow_pickle" in refused.output
