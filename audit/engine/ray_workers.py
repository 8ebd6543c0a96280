"""What runs inside Ray workers: decoding tasks, the scoring actor of the Ray Data pipeline and the model worker
that serves the rules' batched passes.

A worker rebuilds the model from the audit config (``loading.model.load_model``: the torchvision / timm / Hugging
Face architecture, the factory, the TorchScript file — the config's files must be reachable at the same paths),
then checks that its weights hash to the driver's (``cache.model_digest``); when they do not (a model built
without a weights file gets random initial weights) it loads the driver's state dict from the object store.
An in-memory model (``audit.run(model=...)``) has no recipe and is the only one shipped pickled.

Every batch a worker computes is computed exactly as ``LocalEngine`` computes that batch (the same batch
boundaries, the same code), so that results do not depend on which worker ran what. Nothing here imports Ray
at module level: the module is importable without the extra.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import AuditError, DataError, ModelError
from ..loading.dataset import ImageDataset
from ..loading.preprocess import Preprocess
from .compute import _DTYPES, Compute
from .forward import NonFinite, score_batch
from .local import LocalEngine
from .ray_store import RunStore

# ----------------------------------------------------------------------------------------------------------
# the model on a worker


@dataclass(frozen=True)
class ModelSpec:
    """How a worker gets the audited model. ObjectRefs travel inside lists so that Ray hands them over unresolved
    (the worker fetches them only when needed)."""

    cfg: Any  # AuditConfig, with model defaults applied and an absolute base_dir
    num_classes: int
    digest: str  # cache.model_digest of the driver's model
    state: list  # [ObjectRef] of the driver's state dict (CPU tensors)
    module: list | None  # [ObjectRef] of the pickled module, for an in-memory model only
    autocast: str  # the config's compute.autocast, resolved on the worker's device
    channels_last: bool  # as the driver decided (one test forward there)
    use_gpu: bool


def worker_compute(device_type: str, autocast: str, channels_last: bool) -> Compute:
    """The compute settings of a worker on ``device_type`` (autocast resolved there, as resolve_compute does)."""
    device = torch.device("cuda", 0) if device_type == "cuda" else torch.device("cpu")
    if autocast == "auto":
        dtype = torch.float16 if device.type == "cuda" else None
    else:
        dtype = _DTYPES.get(autocast)
    return Compute(device=device, autocast=dtype, channels_last=channels_last)


def build_worker_model(spec: ModelSpec) -> tuple[nn.Module, Compute]:
    import ray

    from ..loading.model import load_model
    from .cache import model_digest

    if spec.use_gpu and not torch.cuda.is_available():
        raise ModelError("compute.num_gpus > 0 but this Ray worker sees no CUDA device")
    compute = worker_compute("cuda" if spec.use_gpu else "cpu", spec.autocast, spec.channels_last)
    if spec.module is not None:
        module = ray.get(spec.module[0])
    else:
        module = load_model(spec.cfg, spec.num_classes).module
    if model_digest(module) != spec.digest:
        module.load_state_dict(ray.get(spec.state[0]))
        if model_digest(module) != spec.digest:
            raise ModelError("the model rebuilt on a Ray worker differs from the driver's (its state dict does not "
                             "match); check that the workers see the same model files and code")
    module = module.to(compute.device).eval()
    if compute.channels_last:
        module.to(memory_format=torch.channels_last)
    return module, compute


# ----------------------------------------------------------------------------------------------------------
# decoding tasks (Ray Data map_batches, task pool)


@dataclass(frozen=True)
class _Listed:
    """What ImageDataset reads of a SampleRecord (the path to decode and the manifest row for messages)."""

    path: Path
    source: str


def decode_batches(batch: dict[str, np.ndarray], preprocess: Preprocess) -> dict[str, np.ndarray]:
    """Rows of the manifest dataset, one scoring batch each (``batch``, ``start``, ``paths``, ``sources``) ->
    decoded, preprocessed float32 inputs (raw bytes + shape), the kept rows and the unreadable images."""
    out: dict[str, list] = {"batch": [], "x": [], "shape": [], "rows": [], "errors": []}
    for i in range(len(batch["batch"])):
        start = int(batch["start"][i])
        recs = [_Listed(Path(str(p)), str(s)) for p, s in zip(batch["paths"][i], batch["sources"][i], strict=True)]
        ds = ImageDataset(recs, preprocess, skip_bad=True)  # type: ignore[arg-type]
        xs, rows, errors = [], [], []
        for j in range(len(recs)):
            _, x, err = ds[j]
            if x is None:
                errors.append((start + j, err))
            else:
                xs.append(x)
                rows.append(start + j)
        x = torch.stack(xs).numpy() if xs else np.zeros((0,), dtype=np.float32)
        out["batch"].append(int(batch["batch"][i]))
        out["x"].append(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        out["shape"].append(json.dumps(list(x.shape)))
        out["rows"].append(np.asarray(rows, dtype=np.int64).tobytes())
        out["errors"].append(json.dumps(errors))
    return {"batch": np.asarray(out["batch"], dtype=np.int64), "x": np.asarray(out["x"], dtype=object),
            "shape": np.asarray(out["shape"], dtype=object), "rows": np.asarray(out["rows"], dtype=object),
            "errors": np.asarray(out["errors"], dtype=object)}


# ----------------------------------------------------------------------------------------------------------
# scoring (Ray Data map_batches, actor pool)


def score_rows(model: nn.Module, task: Any, compute: Compute, x: torch.Tensor, rows: np.ndarray,
               gather_features: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """One scoring batch exactly as ``LocalEngine.score`` computes it (``forward.score_batch``): (task scores
    float64, penultimate features float32 or None, float64 sum of the inputs); NonFinite names listing ``rows``."""
    try:
        b = score_batch(model, task, compute, x, tuple(x.shape[-2:]), gather_features)
    except NonFinite as e:
        raise NonFinite([int(rows[r]) for r in e.rows[:3]]) from None
    if b.dense is not None:  # per-pixel answers of per-pixel tasks: not carried here yet
        raise ModelError("the Ray engine does not score per-pixel tasks yet; use compute.engine = \"local\"")
    return b.probs, b.features, b.input_sum.numpy()


class Scorer:
    """The scoring actor: loads the model once, scores one batch per call, writes it to the run's store and returns
    a one-line summary (the driver never receives the scores through the pipeline)."""

    def __init__(self, spec: ModelSpec, task: Any, store_uri: str, gather_features: bool) -> None:
        self.model, self.compute = build_worker_model(spec)
        self.task = task
        self.store = RunStore(store_uri)
        self.gather_features = gather_features

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list] = {"batch": [], "n_scored": [], "bad_row": [], "bad": [], "error_type": [], "error": []}
        for i in range(len(batch["batch"])):
            b = int(batch["batch"][i])
            errors = [(int(r), str(m)) for r, m in json.loads(str(batch["errors"][i]))]
            rows = np.frombuffer(batch["rows"][i], dtype=np.int64).copy()
            etype, emsg = "", ""
            try:
                probs = feats = bsum = None
                if len(rows):
                    shape = json.loads(str(batch["shape"][i]))
                    x = torch.from_numpy(np.frombuffer(batch["x"][i], dtype=np.float32).reshape(shape).copy())
                    probs, feats, bsum = score_rows(self.model, self.task, self.compute, x, rows,
                                                    self.gather_features)
                self.store.write_batch(b, rows, probs, feats, errors, bsum)
            except NonFinite as e:
                etype, emsg = "NonFinite", json.dumps(e.rows)
            except AuditError as e:
                etype, emsg = type(e).__name__, str(e)
            first = min(errors) if errors else (-1, "")
            out["batch"].append(b)
            out["n_scored"].append(len(rows))
            out["bad_row"].append(first[0])
            out["bad"].append(first[1])
            out["error_type"].append(etype)
            out["error"].append(emsg)
        return {"batch": np.asarray(out["batch"], dtype=np.int64),
                "n_scored": np.asarray(out["n_scored"], dtype=np.int64),
                "bad_row": np.asarray(out["bad_row"], dtype=np.int64),
                "bad": np.asarray(out["bad"], dtype=object), "error_type": np.asarray(out["error_type"], dtype=object),
                "error": np.asarray(out["error"], dtype=object)}


def error_from_summary(error_type: str, message: str, ids: Callable[[list[int]], list[str]]) -> AuditError:
    """The AuditError a worker reported as data (``ids`` maps listing rows to sample ids)."""
    from .. import errors as errmod

    if error_type == "NonFinite":
        return ModelError(f"the model returned NaN or infinite outputs (e.g. for {', '.join(ids(json.loads(message)))})")
    cls = getattr(errmod, error_type, None)
    if isinstance(cls, type) and issubclass(cls, AuditError):
        return cls(message)
    return DataError(message)


# ----------------------------------------------------------------------------------------------------------
# the rules' batched passes (plain Ray actors)


class ModelWorker:
    """One model on one worker, serving single batches of the rules' passes (``outputs``, perturbations,
    explanations) through a LocalEngine, for the audited model or a variant of it (a randomised copy) that the
    driver put in the object store once."""

    MAX_VARIANTS = 2

    def __init__(self, spec: ModelSpec, batch_size: int, explain_batch_size: int) -> None:
        self.model, self.compute = build_worker_model(spec)
        self.batch_size, self.explain_batch_size = batch_size, explain_batch_size
        self.variants: OrderedDict[str, nn.Module] = OrderedDict()

    def _engine(self, task: Any) -> LocalEngine:
        return LocalEngine(self.model, task, self.compute, batch_size=self.batch_size,
                           explain_batch_size=self.explain_batch_size)

    def _variant(self, variant: tuple[str, list] | None) -> nn.Module | None:
        if variant is None:
            return None
        key, ref = variant
        if key not in self.variants:
            import copy

            import ray

            kind, payload, channels_last = ray.get(ref[0])
            if kind == "state":
                m = copy.deepcopy(self.model)
                m.load_state_dict(payload)
                m.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            else:
                m = payload.to(self.compute.device)
            self.variants[key] = m.eval()
            while len(self.variants) > self.MAX_VARIANTS:
                self.variants.popitem(last=False)
        self.variants.move_to_end(key)
        return self.variants[key]

    def where(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "device": str(self.compute.device)}

    def outputs(self, task: Any, variant: tuple[str, list] | None, x: torch.Tensor) -> np.ndarray:
        return self._engine(task).outputs(x, self._variant(variant))

    def perturbed(self, task: Any, variant: tuple[str, list] | None, perturb: Callable[[torch.Tensor], torch.Tensor],
                  x: torch.Tensor) -> np.ndarray:
        return self._engine(task).map_over_perturbations(x, perturb, self._variant(variant))

    def batch_fn(self, task: Any, variant: tuple[str, list] | None, fn: Callable[..., Any], x: torch.Tensor,
                 side: torch.Tensor | None) -> dict[str, np.ndarray]:
        return self._engine(task).map_batches(fn, x, side, self._variant(variant))

    def explain(self, task: Any, variant: tuple[str, list] | None, explainer: Any, x: torch.Tensor,
                targets: np.ndarray) -> np.ndarray:
        # a copy: arrays from the object store are read-only
        return self._engine(task).explain(explainer, x, np.array(targets), self._variant(variant))
