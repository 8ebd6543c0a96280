"""Joining a Ray cluster from the audit: importing Ray (exit 2 naming the extra when it is missing), connecting to
the configured address, refusing a worker layout the cluster can never schedule, and killing an engine's actors."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import ComputeConfig

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "model-audit[ray]"'


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # the Data library (and pyarrow) come with the extra
    except ImportError as e:
        raise ConfigError(f"compute.engine = \"ray\" needs the 'ray' package with Ray Data: {INSTALL_HINT} "
                          f"({e})") from None
    return ray


def release_actors(holder: dict[str, list]) -> None:
    """Kill the engine's model actors (called by close() or when the engine is garbage collected)."""
    actors, holder["actors"] = holder["actors"], []
    if not actors:
        return
    try:
        import ray

        if ray.is_initialized():
            for a in actors:
                with contextlib.suppress(Exception):
                    ray.kill(a)
    except ImportError:  # pragma: no cover
        pass


def connect(s: ComputeConfig) -> bool:
    """Join the configured cluster (or the one this process already joined); True when this call started Ray."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        ray.init(address=s.address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = s.address or os.environ.get("RAY_ADDRESS") or "a local Ray instance"
        raise ConfigError(f"compute.address: cannot connect to {where}: {str(e).splitlines()[0]}") from None
    return True


def check_resources(s: ComputeConfig) -> None:
    """Refuse a worker layout the cluster can never schedule (a local cluster does not grow); with an address,
    an autoscaler may add nodes, so only warn."""
    import ray

    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    need_cpu, need_gpu = s.concurrency * s.num_cpus + s.decode_cpus, s.concurrency * s.num_gpus
    problems = []
    if need_cpu > cpus:
        problems.append(f"{s.concurrency} worker(s) x {s.num_cpus:g} CPU + {s.decode_cpus:g} CPU for decoding = "
                        f"{need_cpu:g} CPUs, the cluster has {cpus:g}")
    if need_gpu > gpus:
        problems.append(f"{s.concurrency} worker(s) x {s.num_gpus:g} GPU = {need_gpu:g} GPUs, the cluster has "
                        f"{gpus:g}")
    if problems:
        msg = "compute: the Ray workers need " + "; ".join(problems) + " (lower compute.concurrency / num_cpus / " \
            "num_gpus / decode_cpus)"
        if s.address is None and not os.environ.get("RAY_ADDRESS"):
            raise ConfigError(msg)
        log.warning(msg)
