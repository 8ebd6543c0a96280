"""The Ray engine's scoring pass: the held-out listing as a Ray dataset of whole batches, decoded in Ray tasks,
scored by an actor pool that writes each batch to the run's folder, then read back in batch order (see
``ray_engine`` for the whole design)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import AuditError, ConfigError, DataError
from ..loading.preprocess import Preprocess
from ..loading.records import HeldOutSet
from ..products import SkippedSample
from .base import PredictOutput, ScoringOptions, ScoringProgress
from .compute import Compute
from .local import LocalEngine
from .ray_cluster import audit_error_in
from .ray_gather import DECODE_WORKER_BYTES, MAX_BATCHES_PER_BLOCK, Fold, manifest_blocks, quiet_ray_data, read_in_order
from .ray_store import RunStore
from .ray_workers import Scorer, decode_batches, error_from_summary
from .sealed import Damaged

if TYPE_CHECKING:
    from ..config import ComputeConfig

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _audit_errors() -> Iterator[None]:
    """An AuditError raised inside the pipeline (a worker that cannot build the model) surfaces as itself."""
    try:
        yield
    except AuditError:
        raise
    except Exception as e:
        found = audit_error_in(e)
        if found is not None:
            raise found from None
        raise


class RayScoring:
    """The scoring half of ``RayEngine`` (a mixin: it uses the engine's model, task, settings and run folders)."""

    settings: ComputeConfig
    storage: str
    model: nn.Module
    task: Any
    compute: Compute
    batch_size: int
    explain_batch_size: int
    spec: Any

    def _store(self, key: str) -> RunStore:
        base = self.storage.rstrip("/")
        return RunStore(f"{base}/scoring-{key}" if key else f"{base}/scoring-tmp-{uuid.uuid4().hex}")

    def discard_progress(self, key: str) -> None:
        if key:
            self._store(key).remove()

    def score(self, heldout: HeldOutSet, preprocess: Preprocess, options: ScoringOptions,
              resume: ScoringProgress | None = None) -> PredictOutput:
        """Score every sample on the cluster (see the module docstring); ``resume`` is not used: the run resumes
        from its own folder (``options.key``), whose files ``open_run`` checks first. A file that fails its check
        later, while this run reads it, is discarded and the run continued once (its batch is scored again); the
        discarded files are noted in the result."""
        if self.spec is None:
            raise RuntimeError("RayEngine.score needs a model spec (build the engine with RayEngine.from_config)")
        store = self._store(options.key)
        try:
            out = self._score_run(store, heldout, preprocess, options)
        except Damaged as e:
            store.discard_damaged(e)
            try:
                out = self._score_run(store, heldout, preprocess, options)
            except Damaged as again:
                raise ConfigError(f"compute.storage: files of the Ray scoring run under {store.uri} fail their "
                                  f"checks as they are read ({again}); the storage loses or changes data") from None
        return replace(out, cache_notes=store.notes)

    def _score_run(self, store: RunStore, heldout: HeldOutSet, preprocess: Preprocess,
                   options: ScoringOptions) -> PredictOutput:
        import ray
        from ray.data import ActorPoolStrategy, DataContext

        self._stop_pool()  # the pipeline's actors need the resources
        records = heldout.records
        n, bs = len(records), options.batch_size
        n_batches = math.ceil(n / bs)
        plan = {"rows": n, "batch_size": bs, "batches": n_batches, "features": options.gather_features,
                "skip_bad": options.skip_bad}
        done = store.open_run(plan)
        resumed_rows = sum(min(n, (b + 1) * bs) - b * bs for b in done)
        todo = [b for b in range(n_batches) if b not in done]
        fold = Fold(store, n_batches, options.checkpoint_seconds)
        fold.advance(done)
        show = (os.isatty(2) if options.progress is None else options.progress)
        bar = tqdm(total=n_batches, initial=len(done), desc="scoring (ray)", unit="batch", disable=not show,
                   leave=False)
        stop: BaseException | None = None
        try:
            if todo:
                s = self.settings
                per_block = max(1, min(MAX_BATCHES_PER_BLOCK, len(todo) // 64))
                ds = ray.data.from_arrow(manifest_blocks(records, todo, bs, per_block))
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
                with quiet_ray_data(DataContext.get_current()), _audit_errors():
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
                for sb in read_in_order(store, n_batches):
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
