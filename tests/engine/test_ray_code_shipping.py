"""Ray runs the user's code: on a two-node local cluster whose workers cannot import the factory's module (a folder
on the driver's sys.path only), the audit ships the module to the workers (the job's runtime_env) and a model actor
built from it gives the local engine's outputs; when Ray was joined before the audit (nothing can be shipped), it is
exit 2 naming every node that cannot import the module and the fix, not an actor that dies inside Ray (exit 3, a
long traceback). An AuditError raised in a dying actor reads as itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.engine.ray_cluster import audit_error_in
from audit.errors import ModelError

HERE = Path(__file__).resolve().parent


def test_the_factory_module_travels_to_workers_that_cannot_import_it(tmp_path, make_setup, tiny_model):
    setup = make_setup(tmp_path / "cfg", tiny_model, n=12)
    code = tmp_path / "code"
    code.mkdir()
    (code / "shipped_factory.py").write_text(
        "from audit.demo.model import DemoCNN\n\n\ndef build(num_classes=3, width=4):\n"
        "    return DemoCNN(num_classes=num_classes, width=width)\n")
    setup.config.write_text(setup.config.read_text().replace('factory = "audit.demo.model:build"',
                                                             'factory = "shipped_factory:build"'))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    run = subprocess.run([sys.executable, str(HERE / "ray_code_shipping.py"), str(setup.config), str(code)],
                         check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["shipped"] == [str((code / "shipped_factory.py").resolve())]
    assert got["same_outputs"]
    assert got["joined_type"] == "ConfigError"
    assert got["joined_error"].startswith('compute.engine = "ray": the workers on 2 of 2 node(s)')
    assert "cannot import the model's code: 'shipped_factory': ModuleNotFoundError" in got["joined_error"]
    assert 'ray.init(runtime_env={"py_modules": [' in got["joined_error"]


class _Dead(Exception):
    """Stands in for Ray's ActorDiedError, which keeps the constructor's error as its cause or only as text."""


def test_an_audit_error_inside_a_ray_error_reads_as_itself():
    inner = ModelError("model.factory: cannot import module 'x': No module named 'x'")
    wrapped = _Dead("actor died")
    wrapped.cause = inner  # type: ignore[attr-defined]
    assert audit_error_in(wrapped) is inner
    text = _Dead("The actor died because of an error raised in its creation task, ray::Scorer.__init__() ...\n"
                 "audit.errors.ModelError: model.factory: cannot import module 'x': No module named 'x'\n")
    found = audit_error_in(text)
    assert isinstance(found, ModelError) and str(found) == str(inner)
    assert audit_error_in(_Dead("some other failure")) is None


@pytest.mark.parametrize("kind", ["constructor"])
def test_an_actor_that_dies_building_the_model_gives_the_model_error(ray_cluster, kind):
    @ray_cluster.remote(max_restarts=0)
    class Fails:
        def __init__(self) -> None:
            raise ModelError("model.factory: cannot import module 'x': No module named 'x'")

        def ping(self) -> int:
            return 1

    with pytest.raises(ray_cluster.exceptions.ActorDiedError) as e:
        ray_cluster.get(Fails.remote().ping.remote())
    found = audit_error_in(e.value)
    assert isinstance(found, ModelError) and "cannot import module 'x'" in str(found)
