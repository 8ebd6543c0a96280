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

Rule work. ``outputs``, ``map_over_perturbations`` and ``explain`` cut their inputs at the local engine's batch
boundaries and send each batch to a pool of model actors (``ray.util.ActorPool``, results in order); a
perturbation closure travels once per call through the object store (cloudpickle), a model variant (the
randomisation test's copies) once as a state dict, the task whenever the runner replaces it.

Same answer. Every batch is computed by the same code on the same inputs as in the local engine (the scoring
actor calls ``score_batch``, the model actors a LocalEngine on single batches), explainers seed themselves per
call, and the dataset mean is summed in batch order: results.json is the same as with ``engine = "local"`` on the
same hardware, apart from timing and the engine fields of the provenance (tested).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import tempfile
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError
from ..explainers import Explainer
from ..loading.listing import HeldOutSet
from ..loading.preprocess import Preprocess
from ..types import SkippedSample
from .base import Engine, PredictOutput, ScoringOptions, ScoringProgress
from .compute import Compute
from .local import LocalEngine
from .ray_store import RunStore
from .ray_workers import ModelSpec, ModelWorker, Scorer, decode_batches, error_from_summary, worker_compute

if TYPE_CHECKING:
    from ..config import AuditConfig, ComputeConfig
    from ..loading.inputs import Inputs
    from ..loading.model import LoadedModel

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "model-audit[ray]"'
MAX_BATCHES_PER_BLOCK = 8  # scoring batches per block of the manifest dataset (decoding tasks take whole blocks)
READ_AHEAD = 16  # batch files read concurrently by the driver when it gathers the results
DECODE_WORKER_BYTES = 600 << 20  # resident size of a decoding worker (Python, torch, Pillow), measured ~450 MB


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # the Data library (and pyarrow) come with the extra
    except ImportError as e:
        raise ConfigError(f"compute.engine = \"ray\" needs the 'ray' package with Ray Data: {INSTALL_HINT} "
                          f"({e})") from None
    return ray


@dataclass(frozen=True)
class RayCompute(Compute):
    """The driver's compute settings (the device its own model copy lives on) plus what the workers use; describes
    the workers, which run every model pass of the engine."""

    worker: Compute | None = None
    settings: dict[str, object] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        return {**Compute.describe(self.worker if self.worker is not None else self), "engine": "ray",
                **self.settings}


def _release(holder: dict[str, list]) -> None:
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


class RayEngine(Engine):
    name = "ray"
    own_progress = True

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
        self._finalizer = weakref.finalize(self, _release, self._holder)
        self._variants: weakref.WeakKeyDictionary[nn.Module, tuple[str, list]] = weakref.WeakKeyDictionary()
        self._task_entry: tuple[Any, Any] | None = None

    # ---- start -------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: AuditConfig, loaded: LoadedModel, inputs: Inputs) -> RayEngine:
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
        started = connect(s)
        check_resources(s)
        # the driver's own passes (views, explainer checks) run where the driver can; the workers run on CUDA
        # exactly when they are given GPUs
        device = resolve_device("auto" if cfg.device.startswith("cuda") else cfg.device)
        model = loaded.module.to(device)
        shape = (cfg.data.channels, *cfg.data.image_size) if cfg.data.image_size else None
        driver = resolve_compute(device, "off", s.channels_last, model, shape)  # decides channels-last once
        worker = worker_compute("cuda" if s.num_gpus > 0 else "cpu", s.autocast, driver.channels_last)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        spec = ModelSpec(
            cfg=cfg.model_copy(update={"base_dir": cfg.base_dir.resolve()}), num_classes=len(inputs.classes),
            digest=model_digest(model), state=[ray.put(state)],
            module=[ray.put(copy.deepcopy(model).cpu())] if cfg.model.python else None,
            autocast=s.autocast, channels_last=driver.channels_last, use_gpu=s.num_gpus > 0)
        settings = {"workers": s.concurrency, "num_cpus": s.num_cpus, "num_gpus": s.num_gpus,
                    "decode_cpus": s.decode_cpus}
        compute = RayCompute(device=driver.device, autocast=None, channels_last=driver.channels_last, worker=worker,
                             settings=settings)
        storage = s.storage or (str(cfg.resolve(cfg.cache.dir).resolve() / "ray") if cfg.cache.enabled else "")
        return cls(model, inputs.task, compute, batch_size=cfg.data.batch_size,
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
        _release(self._holder)
        self._variants = weakref.WeakKeyDictionary()
        self._task_entry = None
        if self.started_ray:
            import ray

            ray.shutdown()
            self.started_ray = False

    # ---- the scoring pass -------------------------------------------------------------------------------
    def _store(self, key: str) -> RunStore:
        base = self.storage.rstrip("/")
        return RunStore(f"{base}/scoring-{key}" if key else f"{base}/scoring-tmp-{uuid.uuid4().hex}")

    def discard_progress(self, key: str) -> None:
        if key:
            self._store(key).remove()

    def score(self, heldout: HeldOutSet, preprocess: Preprocess, options: ScoringOptions,
              resume: ScoringProgress | None = None) -> PredictOutput:
        """Score every sample on the cluster (see the module docstring); ``resume`` is not used: the run resumes
        from its own folder (``options.key``)."""
        import ray
        from ray.data import ActorPoolStrategy, DataContext

        if self.spec is None:
            raise RuntimeError("RayEngine.score needs a model spec (build the engine with RayEngine.from_config)")
        self._stop_pool()  # the pipeline's actors need the resources
        records = heldout.records
        n, bs = len(records), options.batch_size
        n_batches = math.ceil(n / bs)
        store = self._store(options.key)
        plan = {"rows": n, "batch_size": bs, "batches": n_batches, "features": options.gather_features,
                "skip_bad": options.skip_bad}
        done = store.open_run(plan)
        resumed_rows = sum(min(n, (b + 1) * bs) - b * bs for b in done)
        todo = [b for b in range(n_batches) if b not in done]
        fold = _Fold(store, n_batches, options.checkpoint_seconds)
        fold.advance(done)
        show = (os.isatty(2) if options.progress is None else options.progress)
        bar = tqdm(total=n_batches, initial=len(done), desc="scoring (ray)", unit="batch", disable=not show,
                   leave=False)
        stop: BaseException | None = None
        try:
            if todo:
                s = self.settings
                per_block = max(1, min(MAX_BATCHES_PER_BLOCK, len(todo) // 64))
                ds = ray.data.from_arrow(_manifest_blocks(records, todo, bs, per_block))
                c, (h, w) = preprocess.channels, (preprocess.size or (1, 1))
                block_bytes = per_block * bs * c * h * w * 4
                # decoding: a task pool. Its memory request (a worker process with torch, ~0.5 GB, plus two copies
                # of a decoded block) also keeps Ray Data from fusing it into the model actors, so that decoding
                # never waits on the model.
                ds = ds.map_batches(decode_batches, batch_size=1, batch_format="numpy",
                                    fn_kwargs={"preprocess": preprocess}, num_cpus=s.decode_cpus,
                                    memory=int(min(DECODE_WORKER_BYTES + 2 * block_bytes, 4 << 30)))
                ds = ds.map_batches(
                    Scorer, batch_size=1, batch_format="numpy", compute=ActorPoolStrategy(size=s.concurrency),
                    num_cpus=s.num_cpus, num_gpus=s.num_gpus or None,
                    fn_constructor_kwargs={"spec": self.spec, "task": self.task, "store_uri": store.uri,
                                           "gather_features": options.gather_features})
                with _quiet_ray_data(DataContext.get_current()):
                    it = ds.iter_rows()
                    try:
                        for row in it:
                            stop = self._summary(row, options, records)
                            if stop is not None:
                                break
                            b = int(row["batch"])
                            done.add(b)
                            bar.update(1)
                            fold.advance(done)
                    finally:
                        with contextlib.suppress(Exception):
                            it.close()  # type: ignore[attr-defined]
                        del it
            if stop is not None:
                raise stop
            fold.advance(done, final=True)
            missing = sorted(set(range(n_batches)) - done)
            if missing:
                raise RuntimeError(f"the Ray scoring run ended without batches {missing[:5]}")
            out = self._gather(store, heldout, preprocess, options, n_batches, fold.total)
        finally:
            bar.close()
            if not options.key:
                store.remove()
        return replace(out, resumed_rows=resumed_rows)

    def _summary(self, row: dict, options: ScoringOptions, records: Any) -> BaseException | None:
        """The error a worker's summary reports, if any (an unreadable image counts unless skip_bad)."""
        if row["error_type"]:
            return error_from_summary(str(row["error_type"]), str(row["error"]),
                                      lambda rows: [records[r].id for r in rows])
        if int(row["bad_row"]) >= 0 and not options.skip_bad:
            return DataError(str(row["bad"]))
        return None

    def _gather(self, store: RunStore, heldout: HeldOutSet, preprocess: Preprocess, options: ScoringOptions,
                n_batches: int, input_sum: np.ndarray | None) -> PredictOutput:
        """The batch files in batch order -> the prediction table (in memory) and the features (a mapped file)."""
        rows_parts: list[np.ndarray] = []
        probs_parts: list[np.ndarray] = []
        skipped: list[SkippedSample] = []
        n_feat, dim, all_features = 0, 0, True
        fd, feat_path = tempfile.mkstemp(prefix="model-audit-features-", suffix=".f32")
        try:
            with os.fdopen(fd, "wb") as feat_file:
                for sb in _read_in_order(store, n_batches):
                    for r, msg in sorted(sb.errors):
                        if not options.skip_bad:
                            raise DataError(msg)
                        skipped.append(SkippedSample(path=str(heldout.records[r].path), reason=msg))
                    if not len(sb.rows):
                        continue
                    rows_parts.append(sb.rows)
                    probs_parts.append(sb.probs)
                    if sb.features is None or (dim and sb.features.shape[1] != dim):
                        all_features = False  # a batch without features: none at all, as in the local engine
                    elif all_features:
                        dim = sb.features.shape[1]
                        feat_file.write(np.ascontiguousarray(sb.features, dtype=np.float32).tobytes())
                        n_feat += len(sb.rows)
            rows = np.concatenate(rows_parts) if rows_parts else np.zeros(0, dtype=np.int64)
            k = len(self.task.classes)
            probs = np.concatenate(probs_parts) if probs_parts else np.zeros((0, k))
            # the local engine's own assembly (ids, labels, metadata, "no readable image"), from a finished
            # progress: its loop has nothing left to score
            progress = ScoringProgress(next_row=len(heldout.records), probs=probs, features=None, rows=rows,
                                       skipped=tuple(skipped),
                                       input_sum=torch.from_numpy(input_sum) if input_sum is not None else None)
            local = LocalEngine(self.model, self.task, self.compute, self.batch_size, self.explain_batch_size)
            out = local.score(heldout, preprocess, replace(options, num_workers=0, progress=False, checkpoint=None),
                              resume=progress)
            features = None
            if all_features and dim > 0 and n_feat == len(rows) and len(rows):
                features = np.memmap(feat_path, dtype=np.float32, mode="r", shape=(len(rows), dim))
            return replace(out, predictions=replace(out.predictions, features=features))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(feat_path)  # a mapped file stays readable until the mapping goes away

    # ---- the rules' passes ---------------------------------------------------------------------------------
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
        _release(self._holder)

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


# ----------------------------------------------------------------------------------------------------------
# helpers


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


def _manifest_blocks(records: Any, todo: list[int], bs: int, per_block: int) -> list:
    """The manifest dataset of the batches to score: one row per batch, ``per_block`` batches per block."""
    import pyarrow as pa

    n = len(records)
    blocks = []
    for s in range(0, len(todo), per_block):
        part = todo[s:s + per_block]
        starts = [b * bs for b in part]
        blocks.append(pa.table({
            "batch": pa.array(part, pa.int64()),
            "start": pa.array(starts, pa.int64()),
            "paths": pa.array([[str(r.path) for r in records[a:min(n, a + bs)]] for a in starts],
                              pa.list_(pa.string())),
            "sources": pa.array([[r.source for r in records[a:min(n, a + bs)]] for a in starts],
                                pa.list_(pa.string())),
        }))
    return blocks


def _read_in_order(store: RunStore, n_batches: int) -> Iterator[Any]:
    """The run's batch files in order, a few read ahead on threads (pyarrow releases the GIL)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending: deque = deque()
        nxt = 0
        while nxt < n_batches or pending:
            while nxt < n_batches and len(pending) < READ_AHEAD:
                pending.append(pool.submit(store.read_batch, nxt))
                nxt += 1
            try:
                yield pending.popleft().result()
            except FileNotFoundError:
                raise ConfigError(
                    f"compute.storage: the workers reported batches that this process cannot read under {store.uri}; "
                    "on a cluster of several machines set compute.storage to a folder they all share or to a URI "
                    "such as s3://bucket/prefix") from None


class _Fold:
    """The dataset's input sum, added batch by batch in batch order (as one process adds it), checkpointed in the
    run's folder; each batch's sum file is deleted once the checkpoint holds it."""

    def __init__(self, store: RunStore, n_batches: int, every_s: float) -> None:
        self.store, self.n_batches, self.every_s = store, n_batches, every_s
        self.next, self.total = store.load_fold()
        self.folded: list[int] = []
        self.last = time.monotonic()

    def advance(self, done: set[int], final: bool = False) -> None:
        while self.next < self.n_batches and self.next in done:
            s = self.store.read_sum(self.next)
            if s is not None:
                self.total = s if self.total is None else self.total + s
            self.folded.append(self.next)
            self.next += 1
        if self.folded and (final or time.monotonic() - self.last >= self.every_s):
            self.store.save_fold(self.next, self.total)
            for b in self.folded:
                self.store.delete(f"sum-{b:09d}.npy")
            self.folded = []
            self.last = time.monotonic()


@contextlib.contextmanager
def _quiet_ray_data(ctx: Any) -> Iterator[None]:
    """Ray Data logs every execution at INFO level and draws its own progress bars; the audit reports its own
    progress. (The settings are restored afterwards: they are the caller's too.)"""
    logger = logging.getLogger("ray.data")
    level, bars = logger.level, ctx.enable_progress_bars
    logger.setLevel(logging.WARNING)
    ctx.enable_progress_bars = False
    try:
        yield
    finally:
        logger.setLevel(level)
        ctx.enable_progress_bars = bars
