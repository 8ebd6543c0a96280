"""The Ray engine: the scoring pass on Ray Data, the rules' model passes on a pool of Ray actors.

Scoring. The held-out listing becomes a Ray dataset with one row per scoring batch (its number, first row,
image paths and manifest rows), cut at the same boundaries as the local engine's batches. Decoding and
preprocessing run in parallel Ray tasks (``map_batches`` over a task pool, with the loaders of
``audit/loading``); the model runs in ``map_batches`` over an actor pool of ``compute.concurrency`` actors that
load the model once each (on a GPU when ``compute.num_gpus`` > 0). Each actor writes the scores and penultimate
features of its batch to a Parquet file of the run's folder (``ray_store.py``) and passes on only a one-line
summary, so the driver never holds more than the summaries in flight while scoring. The run's folder is named
by the prediction cache key: a run that stops (a worker lost and restarted by Ray, or the driver itself killed)
keeps every batch written, and the next run with the same key scores only the missing ones. The driver then
reads the files back in batch order: the prediction table in memory, the features in a file it maps.

Rule work. ``outputs``, ``map_over_perturbations``, ``map_batches`` and ``explain`` cut their inputs at the local
engine's batch boundaries and send each batch to a pool of model actors (``ray.util.ActorPool``, results in
order); a perturbation closure or batch function travels once per call through the object store (cloudpickle), a model variant (the
randomisation test's copies) once as a state dict, the task whenever the runner replaces it.

Same answer. Every batch is computed by the same code on the same inputs as in the local engine (the scoring
actor calls ``forward.score_batch`` as the local engine does, the model actors a LocalEngine on single batches), explainers seed themselves per
call, and the dataset mean is summed in batch order: results.json is the same as with ``engine = "local"`` on the
same hardware, apart from timing and the engine fields of the provenance (tested).
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..explainers import Explainer
from .base import BatchFn, Engine, gather
from .compute import Compute
from .ray_cluster import (
    INSTALL_HINT,
    audit_error_in,
    check_imports,
    check_resources,
    code_to_ship,
    connect,
    import_ray,
    release_actors,
)
from .ray_scoring import RayScoring
from .ray_workers import ModelSpec, ModelWorker, worker_compute

if TYPE_CHECKING:
    from ..config import AuditConfig, ComputeConfig
    from ..loading.model import LoadedModel
    from ..tasks.base import Task

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RayCompute(Compute):
    """The driver's compute settings (the device its own model copy lives on) plus what the workers use; describes
    the workers, which run every model pass of the engine."""

    worker: Compute | None = None
    settings: dict[str, object] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        return {**Compute.describe(self.worker if self.worker is not None else self), "engine": "ray",
                **self.settings}


class RayEngine(RayScoring, Engine):
    name = "ray"
    title = "scoring on Ray Data, rule work on Ray actors (model-audit[ray])"
    own_progress = True
    counts_passes = False  # the model runs in Ray's workers, which the driver's meter does not see

    def __init__(self, model: nn.Module, task: Any, compute: Compute, batch_size: int = 64,
                 explain_batch_size: int = 16, *, settings: ComputeConfig | None = None,
                 spec: ModelSpec | None = None, storage: str = "", started_ray: bool = False) -> None:
        super().__init__(model, task, compute, batch_size, explain_batch_size)
        from ..config import ComputeConfig

        self.settings = settings if settings is not None else ComputeConfig(engine="ray")
        self.spec = spec
        self.storage = storage or os.path.join(tempfile.gettempdir(), "model-audit-ray")
        self.started_ray = started_ray
        self._holder: dict[str, list] = {"actors": []}
        self._finalizer = weakref.finalize(self, release_actors, self._holder)
        self._variants: weakref.WeakKeyDictionary[nn.Module, tuple[str, list]] = weakref.WeakKeyDictionary()
        self._task_entry: tuple[Any, Any] | None = None

    # ---- start -------------------------------------------------------------------------------------------
    @classmethod
    def check_available(cls) -> None:
        if importlib.util.find_spec("ray") is None:
            raise ConfigError(f"compute.engine: the Ray engine needs the 'ray' package: {INSTALL_HINT}")

    @classmethod
    def from_config(cls, cfg: AuditConfig, loaded: LoadedModel, task: Task) -> RayEngine:
        """Join (or start) the Ray cluster, keep the driver's copy of the model (views, explainer checks and model
        variants use it) and describe the model for the workers."""
        from ..loading.model import resolve_device
        from .cache import model_digest
        from .compute import resolve_compute

        ray = import_ray()
        s = cfg.compute
        if s.num_gpus > 0 and cfg.device == "cpu":
            raise ConfigError("compute.num_gpus > 0 gives the Ray workers a GPU but device = \"cpu\"; set device = "
                              "\"auto\" or \"cuda\", or compute.num_gpus = 0")
        if s.num_gpus == 0 and cfg.device.startswith("cuda"):
            raise ConfigError(f"device = {cfg.device!r} but compute.num_gpus = 0: the Ray workers get no GPU; set "
                              "compute.num_gpus (e.g. 1 per worker)")
        if s.autocast == "fp16" and s.num_gpus == 0:
            raise ConfigError("compute.autocast: 'fp16' autocast is not supported on the CPU; use 'bf16' or 'off'")
        modules, paths = code_to_ship(cfg, loaded.module)
        started = connect(s, {"py_modules": paths} if paths else None)  # the job's workers get the user's code
        shipped = paths if started else []
        check_resources(s)
        check_imports(ray, modules, cfg.base_dir.resolve(), shipped, paths)
        # the driver's own passes (views, explainer checks) run where the driver can; the workers run on CUDA
        # exactly when they are given GPUs
        device = resolve_device("auto" if cfg.device.startswith("cuda") else cfg.device)
        model = loaded.module.to(device)
        shape = (cfg.data.channels, *cfg.data.image_size) if cfg.data.image_size else None
        driver = resolve_compute(device, "off", s.channels_last, model, shape)  # decides channels-last once
        worker = worker_compute("cuda" if s.num_gpus > 0 else "cpu", s.autocast, driver.channels_last)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        spec = ModelSpec(
            cfg=cfg.model_copy(update={"base_dir": cfg.base_dir.resolve()}), num_classes=len(task.classes),
            digest=model_digest(model), state=[ray.put(state)],
            module=[ray.put(copy.deepcopy(model).cpu())] if cfg.model.python else None,
            autocast=s.autocast, channels_last=driver.channels_last, use_gpu=s.num_gpus > 0)
        settings = {"workers": s.concurrency, "num_cpus": s.num_cpus, "num_gpus": s.num_gpus,
                    "decode_cpus": s.decode_cpus, "shipped_code": shipped}
        compute = RayCompute(device=driver.device, autocast=None, channels_last=driver.channels_last, worker=worker,
                             settings=settings)
        storage = s.storage or (str(cfg.resolve(cfg.cache.dir).resolve() / "ray") if cfg.cache.enabled else "")
        return cls(model, task, compute, batch_size=cfg.data.batch_size,
                   explain_batch_size=cfg.explainers.batch_size, settings=s, spec=spec, storage=storage,
                   started_ray=started)

    @property
    def worker_compute(self) -> Compute:
        c = self.compute
        return c.worker if isinstance(c, RayCompute) and c.worker is not None else c

    def cache_identity(self) -> tuple[dict[str, object], torch.device]:
        """The workers' compute settings and device type: CPU workers share cache entries with the local engine
        (their results are the same)."""
        w = self.worker_compute
        return Compute.describe(w), w.device

    def close(self) -> None:
        release_actors(self._holder)
        self._variants = weakref.WeakKeyDictionary()
        self._task_entry = None
        if self.started_ray:
            import ray

            ray.shutdown()
            self.started_ray = False

    # ---- the scoring pass -------------------------------------------------------------------------------
    def _ensure_pool(self) -> list:
        if not self._holder["actors"]:
            import ray

            if self.spec is None:
                raise RuntimeError("RayEngine needs a model spec (build it with RayEngine.from_config)")
            s = self.settings
            cls = ray.remote(ModelWorker).options(num_cpus=s.num_cpus, num_gpus=s.num_gpus, max_restarts=-1,
                                                  max_task_retries=-1)
            self._holder["actors"] = [cls.remote(self.spec, self.batch_size, self.explain_batch_size)
                                      for _ in range(s.concurrency)]
        return self._holder["actors"]

    def _stop_pool(self) -> None:
        release_actors(self._holder)

    def _task_ref(self) -> Any:
        import ray

        if self._task_entry is None or self._task_entry[0] is not self.task:
            self._task_entry = (self.task, ray.put(self.task))
        return self._task_entry[1]

    def _variant(self, model: nn.Module | None) -> tuple[str, list] | None:
        """None for the audited model; else a handle on the variant in the object store (put once per model)."""
        if model is None or model is self.model:
            return None
        entry = self._variants.get(model)
        if entry is None:
            import ray

            sd, base = model.state_dict(), self.model.state_dict()
            same = sd.keys() == base.keys() and all(sd[k].shape == base[k].shape and sd[k].dtype == base[k].dtype
                                                    for k in sd)
            # the memory format travels too: convolutions in channels-last and contiguous layouts round differently
            cl = any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                     for p in model.parameters())
            payload = ("state", {k: v.detach().cpu() for k, v in sd.items()}, cl) if same else \
                ("module", copy.deepcopy(model).cpu(), None)
            entry = (uuid.uuid4().hex, [ray.put(payload)])
            self._variants[model] = entry
        return entry

    def _run(self, call: Callable[[Any, Any], Any], values: Iterable[Any]) -> Iterator[Any]:
        """``call(actor, value)`` for every value on the pool; results in order as they arrive; an error raised in
        a worker is re-raised as the error itself (the local engine's message)."""
        import ray
        from ray.util import ActorPool

        pool = ActorPool(self._ensure_pool())
        try:
            yield from pool.map(call, list(values))
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
        except ray.exceptions.ActorDiedError as e:  # e.g. the model could not be built on a worker
            found = audit_error_in(e)
            if found is not None:
                raise found from None
            raise

    @staticmethod
    def _cut(x: torch.Tensor, size: int) -> list[torch.Tensor]:
        # a copy per batch: a slice would carry its whole parent storage into the object store
        return [x[s:s + size].detach().cpu().clone() for s in range(0, x.shape[0], size)]

    def outputs(self, x: torch.Tensor, model: nn.Module | None = None) -> np.ndarray:
        if x.shape[0] == 0:
            return np.zeros((0, len(self.task.classes)))
        task, variant = self._task_ref(), self._variant(model)
        parts = self._run(lambda a, b: a.outputs.remote(task, variant, b), self._cut(x, self.batch_size))
        return np.concatenate(list(parts))

    def map_over_perturbations(self, x: torch.Tensor, perturb: Callable[[torch.Tensor], torch.Tensor],
                               model: nn.Module | None = None) -> np.ndarray:
        if x.shape[0] == 0:
            return np.zeros((0, len(self.task.classes)))
        import ray

        task, variant, fn = self._task_ref(), self._variant(model), ray.put(perturb)
        parts = self._run(lambda a, b: a.perturbed.remote(task, variant, fn, b), self._cut(x, self.batch_size))
        return np.concatenate(list(parts))

    def map_batches(self, fn: BatchFn, x: torch.Tensor, side: torch.Tensor | None = None,
                    model: nn.Module | None = None) -> dict[str, np.ndarray]:
        if x.shape[0] == 0:
            return {}
        import ray

        task, variant, ref = self._task_ref(), self._variant(model), ray.put(fn)
        size = self.batch_size
        sides = self._cut(side, size) if side is not None else [None] * len(range(0, x.shape[0], size))
        values = list(zip(self._cut(x, size), sides, strict=True))
        return gather(self._run(lambda a, v: a.batch_fn.remote(task, variant, ref, v[0], v[1]), values))

    def explain(self, explainer: Explainer, x: torch.Tensor, targets: np.ndarray,
                model: nn.Module | None = None) -> np.ndarray:
        t = np.asarray(targets)
        size = self.explain_batch_size
        parts = list(self.explain_stream(
            explainer, ((xb, t[s:s + size]) for s, xb in zip(range(0, x.shape[0], size), self._cut(x, size),
                                                              strict=True)), model))
        if not parts:
            return np.zeros((0, *x.shape[-2:]), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32)

    def explain_stream(self, explainer: Explainer, batches: Iterable[tuple[torch.Tensor, np.ndarray]],
                       model: nn.Module | None = None) -> Iterator[np.ndarray]:
        import ray

        task, variant, ex = self._task_ref(), self._variant(model), ray.put(explainer)
        values = [(xb.detach().cpu().clone() if xb.is_cuda else xb, np.asarray(t)) for xb, t in batches]
        yield from self._run(lambda a, v: a.explain.remote(task, variant, ex, v[0], v[1]), values)


