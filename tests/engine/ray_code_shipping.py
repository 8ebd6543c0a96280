"""Run by test_ray_code_shipping.py in a process of its own: a two-node local Ray cluster whose workers cannot import
the model's factory module (it lives in a folder that only this driver's sys.path holds, neither its working
directory nor the config's folder). Prints one JSON line: what the engine shipped, whether a model actor gave the
local engine's outputs, the error when Ray was joined before the audit (nothing shipped), and the seconds taken."""

from __future__ import annotations

import json
import sys
import time

T0 = time.perf_counter()
from pathlib import Path

import numpy as np
import ray
import torch
from ray.cluster_utils import Cluster

from audit.config import load_config
from audit.engine import LocalEngine
from audit.engine.ray_engine import RayEngine
from audit.errors import AuditError
from audit.inputs import prepare_inputs, with_model_defaults
from audit.loading.model import load_model


def engine(config: Path, address: str) -> tuple[RayEngine, object]:
    cfg, notes = with_model_defaults(load_config(config, ['compute.engine="ray"', f'compute.address="{address}"',
                                                          "compute.concurrency=1", "cache.enabled=false"]))
    inputs = prepare_inputs(cfg, None, notes)
    return RayEngine.from_config(cfg, load_model(cfg, len(inputs.classes)), inputs.task), inputs


def main(config: Path, code: Path) -> None:
    sys.path.insert(0, str(code))  # the driver alone can import the factory
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    out: dict[str, object] = {"t_cluster": round(time.perf_counter() - T0, 1)}
    try:
        eng, inputs = engine(config, cluster.address)  # the audit connects: it ships the factory's module
        x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
        got = eng.outputs(x)  # on a model actor, which rebuilds the model from the factory
        out["t_scored"] = round(time.perf_counter() - T0, 1)
        out["shipped"] = eng.compute.describe()["shipped_code"]
        out["same_outputs"] = bool(np.array_equal(got, LocalEngine(eng.model, inputs.task, eng.worker_compute)
                                                  .outputs(x)))
        eng.close()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)  # joined before the audit
        try:
            engine(config, cluster.address)
            out["joined_error"] = None
        except AuditError as e:
            out["joined_error"], out["joined_type"] = str(e), type(e).__name__
        out["t_joined"] = round(time.perf_counter() - T0, 1)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
