"""The scoring pass's data plumbing on Ray: the manifest as dataset blocks of whole batches, the run's batch files
read back in order, the dataset's input sum folded in batch order, and Ray Data kept quiet."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import ConfigError
from .ray_store import RunStore

MAX_BATCHES_PER_BLOCK = 8  # scoring batches per block of the manifest dataset (decoding tasks take whole blocks)
READ_AHEAD = 16  # batch files read concurrently by the driver when it gathers the results
DECODE_WORKER_BYTES = 600 << 20  # resident size of a decoding worker (Python, torch, Pillow), measured ~450 MB


def manifest_blocks(records: Any, todo: list[int], bs: int, per_block: int) -> list:
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


def read_in_order(store: RunStore, n_batches: int) -> Iterator[Any]:
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


class Fold:
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
def quiet_ray_data(ctx: Any) -> Iterator[None]:
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
