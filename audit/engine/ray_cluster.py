"""Joining a Ray cluster from the audit: importing Ray (exit 2 naming the extra when it is missing), connecting to
the configured address, refusing a worker layout the cluster can never schedule, shipping the user's model code to
the workers and checking that every node imports it, and killing an engine's actors.

The user's code: the module of ``model.factory`` and the modules that define the model's classes (an in-memory or
pickled model is rebuilt from them), when they are not installed (site-packages, the standard library) and not
model-audit's own. Each top-level package (its folder) or single-file module travels to the workers in the job's
``runtime_env`` (``py_modules``) when the audit connects to Ray itself, so a worker imports the driver's code
whatever its own ``sys.path``, working directory or machine (Ray uploads local code only for a job it starts: a
process that joined Ray before the audit gives its own runtime_env). Before any actor starts, one task per alive
node imports those modules; a node that cannot is exit 2 naming the node, the module and the fix, not an actor
that dies while Ray retries it."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import re
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .. import errors as errmod
from ..errors import AuditError, ConfigError

if TYPE_CHECKING:
    from ..config import AuditConfig, ComputeConfig

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


def connect(s: ComputeConfig, runtime_env: dict[str, Any] | None = None) -> bool:
    """Join the configured cluster (or the one this process already joined); True when this call started Ray (and
    gave the job ``runtime_env``: Ray ships local code only for a job it starts)."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
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


# ---- the user's code on the workers -------------------------------------------------------------------------

INSTALLED = tuple(Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib"))
OWN = {"audit", "__main__", "builtins"}  # model-audit is installed on every worker; __main__ travels by value


@contextlib.contextmanager
def _base_on_path(base_dir: Path) -> Iterator[None]:
    """``base_dir`` first on sys.path while inside, as the model loader puts it for a factory."""
    added = str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        yield
    finally:
        if added:
            sys.path.remove(str(base_dir))


def user_modules(cfg: AuditConfig, model: nn.Module) -> list[str]:
    """The modules the workers must import to rebuild ``model``: the factory's and those of the model's classes."""
    names = {type(m).__module__ for m in model.modules()}
    if cfg.model.factory:
        names.add(cfg.model.factory.partition(":")[0])
    return sorted(n for n in names if n.split(".")[0] not in OWN)


def _source(top: str) -> Path | None:
    """The folder of a top-level package, or the file of a single-file module, when it is the user's (not
    installed); None for installed, built-in and namespace modules."""
    spec = importlib.util.find_spec(top)
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    where = Path(locations[0]) if len(locations) == 1 else Path(spec.origin) if spec.origin and \
        spec.origin.endswith(".py") and not locations else None
    if where is None:
        return None
    where = where.resolve()
    return None if any(where.is_relative_to(p) for p in INSTALLED) else where


def code_to_ship(cfg: AuditConfig, model: nn.Module) -> tuple[list[str], list[str]]:
    """(modules the workers must import, local paths that ship them)."""
    modules = user_modules(cfg, model)
    with _base_on_path(cfg.base_dir):
        paths = {_source(top) for top in {m.split(".")[0] for m in modules}}
    return modules, sorted(str(p) for p in paths if p is not None)


def _import_all(modules: list[str], base_dir: str) -> str:
    """Runs on a worker: '' when every module imports, else the first failure."""
    with _base_on_path(Path(base_dir)):
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as e:  # noqa: BLE001 - reported to the driver, which names the node and the fix
                return f"{name!r}: {type(e).__name__}: {e}"
    return ""


def check_imports(ray: Any, modules: list[str], base_dir: Path, shipped: list[str], local: list[str]) -> None:
    """One task per alive node imports ``modules`` in the job's environment; ConfigError naming the node, the module
    and the fix when one cannot (``shipped``: the code the job carries; ``local``: the code it would need)."""
    if not modules:
        return
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(_import_all)
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    calls = {n["NodeManagerAddress"] + " (" + n["NodeID"][:8] + ")": probe.options(
        num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
    ).remote(modules, str(base_dir)) for n in nodes}
    failed = {where: msg for where, msg in zip(calls, ray.get(list(calls.values())), strict=True) if msg}
    if not failed:
        return
    where, msg = next(iter(failed.items()))
    if local and not shipped:
        fix = (f"Ray was started before the audit, which ships local code only to a job it starts: leave connecting "
               f"to the audit (compute.address or RAY_ADDRESS), or call ray.init(runtime_env={{\"py_modules\": "
               f"{local}}}) yourself")
    else:
        fix = ("install it on every node, or keep it (and what it imports) in a package or module importable on the "
               "driver outside site-packages, which the audit ships")
    raise ConfigError(f"compute.engine = \"ray\": the workers on {len(failed)} of {len(nodes)} node(s) (e.g. {where}) "
                      f"cannot import the model's code: {msg}; {fix}")


def audit_error_in(e: BaseException) -> AuditError | None:
    """The AuditError a Ray error carries (an actor that died in its constructor, a Ray Data task), found through
    the causes Ray keeps or, failing those, in its text; None when there is none."""
    seen: set[int] = set()
    stack: list[BaseException] = [e]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, AuditError):
            return x
        stack += [c for c in (getattr(x, "cause", None), x.__cause__, x.__context__) if isinstance(c, BaseException)]
    found = re.findall(r"audit\.errors\.(\w+): ([^\n]+)", str(e))
    if found:
        name, message = found[-1]
        cls = getattr(errmod, name, None)
        if isinstance(cls, type) and issubclass(cls, AuditError):
            return cls(message)
    return None
