"""compute.engine without a Ray cluster: local is the default and never imports Ray; a missing Ray extra is exit 2
naming it; the Ray settings are validated; engines come from the registry."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.config import ComputeConfig, load_config
from audit.engine import LocalEngine, engine_class
from audit.engine.ray_engine import RayEngine, import_ray
from audit.errors import ConfigError
from audit.inputs import prepare_inputs

HINT = 'pip install "model-audit[ray]"'


def test_local_is_the_default_and_a_local_audit_never_imports_ray():
    code = ("import sys, audit, audit.runner, audit.engine, audit.api\n"
            "from audit.config import ComputeConfig\n"
            "assert ComputeConfig().engine == 'local'\n"
            "assert 'ray' not in sys.modules, 'ray imported'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


def test_engines_come_from_the_registry():
    assert engine_class("local") is LocalEngine
    assert engine_class("ray") is RayEngine
    with pytest.raises(ConfigError, match="unknown engine 'spark'"):
        engine_class("spark")


@pytest.fixture()
def no_ray(monkeypatch):
    """As if the 'ray' extra were not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None if name == "ray" else real(name, *a, **k))
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError


def test_a_missing_ray_extra_is_exit_2_naming_it(tiny, no_ray):
    cfg = load_config(tiny.config, ['compute.engine="ray"'])  # the name is the registry's to judge, not the config's
    with pytest.raises(ConfigError, match=r'compute\.engine: .*pip install "model-audit\[ray\]"'):
        prepare_inputs(cfg)
    res = CliRunner().invoke(app, ["run", str(tiny.config), "--out", str(tiny.root.parent / "out"),
                                   "--set", 'compute.engine="ray"'])
    assert res.exit_code == 2, res.output
    assert HINT in res.output and "compute.engine" in res.output
    assert "Traceback" not in res.output
    with pytest.raises(ConfigError, match=r"model-audit\[ray\]"):
        import_ray()


def test_ray_settings_are_checked():
    cfg = ComputeConfig(engine="ray", address="auto", num_cpus=2, num_gpus=1, concurrency=8, decode_cpus=0.5,
                        storage="s3://bucket/audit")
    assert (cfg.num_gpus, cfg.concurrency, cfg.storage) == (1, 8, "s3://bucket/audit")
    for bad in ({"concurrency": 0}, {"num_gpus": -1}, {"num_cpus": 0}, {"decode_cpus": 0}, {"engine": "no spaces"},
                {"workers": 2}):
        with pytest.raises(ValueError):
            ComputeConfig(**bad)


def test_an_unknown_engine_is_exit_2_before_the_model_runs(tiny):
    res = CliRunner().invoke(app, ["run", str(tiny.config), "--out", str(tiny.root.parent / "out"),
                                   "--set", 'compute.engine="spark"'])
    assert res.exit_code == 2, res.output
    assert "compute.engine: unknown engine 'spark'; known: local, ray" in res.output
