"""Where the Ray engine's scoring run keeps what its workers computed: one folder per run, on any filesystem
pyarrow opens (a local or shared folder, s3://, gs://, hdfs://), so that workers on other machines write and the
driver reads the same files.

    <storage>/scoring-<prediction key>/
        run.json                   what the run scores (rows, batch size, batches): a folder that disagrees is wiped
        batch-000000012.parquet    rows, task scores (float64) and penultimate features (float32) of batch 12; the
                                   unreadable images of the batch in the file's metadata
        sum-000000012.npy          the float64 sum of batch 12's model inputs (C, H, W), until folded
        fold.npz                   the running sum of batches 0 … next-1, added in batch order (as one process would)

Every file is sealed (``sealed.py``: size, SHA-256, format version and its name in the run in a trailer), written
under a temporary name and renamed when complete; a batch file is written after its sum file. Re-running the same
key scores only the missing batches: ``open_run`` first checks every file the run holds, and discards a batch whose
file fails its check, whose rows disagree with the plan, or whose input sum is neither folded nor readable (a
damaged fold checkpoint is discarded, so the batches it had folded are scored again); each discarded file is noted
(``notes``). Nothing here imports Ray; pyarrow comes with it.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass

import numpy as np

from .sealed import UNREADABLE, CacheLog, CacheNote, Damaged, seal, unseal

RUN_FILE = "run.json"
FOLD_FILE = "fold.npz"
STORE = "Ray scoring run"
RUN, BATCH, SUM, FOLD = "ray run plan", "ray batch", "ray batch input sum", "ray input-sum fold"
RESCORED = "discarded; the batch was scored again"


def batch_name(b: int) -> str:
    return f"batch-{b:09d}.parquet"


def sum_name(b: int) -> str:
    return f"sum-{b:09d}.npy"


@dataclass
class ScoredBatch:
    """One batch as a worker wrote it."""

    rows: np.ndarray  # (k,) int64 positions in the held-out listing of the scored images
    probs: np.ndarray  # (k, K) float64
    features: np.ndarray | None  # (k, D) float32
    errors: list[tuple[int, str]]  # (row, reason) of the images that could not be read


class RunStore:
    """The files of one scoring run under ``uri`` (a folder or a pyarrow filesystem URI)."""

    def __init__(self, uri: str) -> None:
        import pyarrow.fs as pafs

        self.uri = uri
        if "://" in uri:
            self.fs, self.root = pafs.FileSystem.from_uri(uri)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), uri
        self.root = self.root.rstrip("/")
        self.run = self.root.rsplit("/", 1)[-1]  # scoring-<key>: part of every file's sealed name
        self.log = CacheLog()  # files of an earlier, interrupted run found damaged (driver side)

    @property
    def notes(self) -> tuple[CacheNote, ...]:
        return tuple(self.log.notes)

    def __getstate__(self) -> dict:
        return {"uri": self.uri}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["uri"])  # type: ignore[misc]

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    # ---- plumbing -----------------------------------------------------------------------------------
    def _write_atomic(self, name: str, kind: str, data: bytes) -> None:
        tmp = self.path(f".{name}.{uuid.uuid4().hex}.tmp")
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(seal(data, kind, f"{self.run}/{name}"))
        self.fs.move(tmp, self.path(name))

    def _read(self, name: str, kind: str) -> bytes:
        """The checked payload of ``name``; Damaged when it fails its check, OSError when it cannot be read."""
        with self.fs.open_input_file(self.path(name)) as fh:
            data = fh.read()
        try:
            return unseal(data, kind, f"{self.run}/{name}")
        except Damaged as e:
            raise Damaged(e.reason, name) from None

    def _discard(self, names: list[str], problem: str, action: str = RESCORED, entry: str = "") -> None:
        """Delete ``names`` and note why (``entry``: the file that failed, default the first)."""
        for n in names:
            self.delete(n)
        self.log.add(CacheNote(STORE, f"{self.run}/{entry or names[0]}", problem, action))

    def discard_damaged(self, e: Damaged) -> None:
        """Discard the batch (batch and sum file) of a file that failed its check while the run read it."""
        name = e.entry
        b = int(name[6:15]) if name.startswith("batch-") else int(name[4:13]) if name.startswith("sum-") else -1
        self._discard([name] if b < 0 else [batch_name(b), sum_name(b)], e.reason, entry=name)

    def names(self) -> set[str]:
        import pyarrow.fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        return {i.base_name for i in infos if i.type == pafs.FileType.File}

    def create(self) -> None:
        self.fs.create_dir(self.root, recursive=True)

    def delete(self, name: str) -> None:
        try:
            self.fs.delete_file(self.path(name))
        except (FileNotFoundError, OSError):
            pass

    def remove(self) -> None:
        try:
            self.fs.delete_dir(self.root)
        except (FileNotFoundError, OSError):
            pass

    # ---- the run -------------------------------------------------------------------------------------
    def open_run(self, plan: dict) -> set[int]:
        """Start or continue the run described by ``plan``: the batches already written and checked (a folder
        written for another plan is emptied first; see the module docstring for what is discarded)."""
        self.create()
        names = self.names()
        if RUN_FILE in names:
            try:
                same = json.loads(self._read(RUN_FILE, RUN)) == plan
            except Damaged as e:
                self._discard([RUN_FILE], e.reason, "discarded with the run's folder; every batch was scored again")
                same = False
            except (OSError, ValueError):
                same = False
            if not same:
                self.remove()
                self.create()
                names = set()
        if RUN_FILE not in names:
            self._write_atomic(RUN_FILE, RUN, json.dumps(plan, sort_keys=True).encode())
        return self._checked_batches(names, plan)

    def _checked_batches(self, names: set[str], plan: dict) -> set[int]:
        """The written batches that pass their checks (the others are discarded and noted)."""
        folded, _ = self.load_fold()
        done = set()
        bs, n = int(plan["batch_size"]), int(plan["rows"])
        for b in sorted(int(x[6:15]) for x in names if x.startswith("batch-") and x.endswith(".parquet")):
            try:
                sb = self.read_batch(b)
                rows = np.concatenate([sb.rows, np.asarray([r for r, _ in sb.errors], dtype=np.int64)])
                if b >= plan["batches"] or (len(rows) and (rows.min() < b * bs or rows.max() >= min(n, b * bs + bs))):
                    raise Damaged(f"inconsistent: rows outside batch {b} of the run's plan", batch_name(b))
                if b >= folded:  # its input sum is not in the fold checkpoint yet: it must be readable
                    if sum_name(b) not in names:
                        raise Damaged("its input sum is neither folded nor on file", batch_name(b))
                    self.read_sum(b)
            except Damaged as e:
                self._discard([batch_name(b), sum_name(b)], e.reason, entry=e.entry)
                continue
            except OSError as e:
                self._discard([batch_name(b), sum_name(b)], f"cannot be read ({e})")
                continue
            done.add(b)
        return done

    # ---- batches (written by workers) -----------------------------------------------------------------
    def write_batch(self, b: int, rows: np.ndarray, probs: np.ndarray | None, features: np.ndarray | None,
                    errors: list[tuple[int, str]], input_sum: np.ndarray | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        np.save(buf, input_sum if input_sum is not None else np.zeros(0), allow_pickle=False)
        self._write_atomic(sum_name(b), SUM, buf.getvalue())
        cols: dict[str, pa.Array] = {"row": pa.array(np.asarray(rows, dtype=np.int64))}
        if probs is not None and len(rows):
            cols["probs"] = pa.FixedSizeListArray.from_arrays(pa.array(probs.astype(np.float64).ravel()),
                                                              probs.shape[1])
        if features is not None and len(rows):
            cols["features"] = pa.FixedSizeListArray.from_arrays(pa.array(features.astype(np.float32).ravel()),
                                                                 features.shape[1])
        table = pa.table(cols).replace_schema_metadata({"errors": json.dumps(errors)})
        out = pa.BufferOutputStream()
        pq.write_table(table, out, compression="zstd")
        self._write_atomic(batch_name(b), BATCH, out.getvalue().to_pybytes())

    def read_batch(self, b: int) -> ScoredBatch:
        """Batch ``b`` as its worker wrote it; Damaged when the file fails its check or does not parse."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = self._read(batch_name(b), BATCH)
        try:
            table = pq.read_table(pa.BufferReader(data))
            errors = [(int(r), str(m)) for r, m in json.loads((table.schema.metadata or {}).get(b"errors", b"[]"))]
            rows = table.column("row").to_numpy().astype(np.int64)

            def matrix(name: str, dtype: type) -> np.ndarray | None:
                if name not in table.column_names:
                    return None
                col = table.column(name).combine_chunks()
                return col.flatten().to_numpy().astype(dtype).reshape(len(rows), col.type.list_size)

            probs = matrix("probs", np.float64)
            features = matrix("features", np.float32)
        except (*UNREADABLE, pa.ArrowException) as e:
            raise Damaged(f"unreadable payload ({type(e).__name__}: {e})", batch_name(b)) from None
        return ScoredBatch(rows=rows, probs=probs if probs is not None else np.zeros((0, 0)), features=features,
                           errors=errors)

    def read_sum(self, b: int) -> np.ndarray | None:
        """The batch's input sum; None when no image of the batch was readable. Damaged when the file fails its
        check."""
        data = self._read(sum_name(b), SUM)
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except UNREADABLE as e:
            raise Damaged(f"unreadable payload ({type(e).__name__}: {e})", sum_name(b)) from None
        return arr if arr.size else None

    # ---- the in-order fold of input sums (driver) -------------------------------------------------------
    def load_fold(self) -> tuple[int, np.ndarray | None]:
        """(next batch to add, running sum of batches before it); (0, None) when there is no checkpoint or it fails
        its check (then it is discarded and noted)."""
        try:
            data = self._read(FOLD_FILE, FOLD)
        except FileNotFoundError:
            return 0, None
        except Damaged as e:
            problem = e.reason
        except OSError as e:
            problem = f"cannot be read ({e})"
        else:
            try:
                with np.load(io.BytesIO(data), allow_pickle=False) as z:
                    total = z["sum"]
                    return int(z["next"]), total if total.size else None
            except UNREADABLE as e:
                problem = f"unreadable payload ({type(e).__name__}: {e})"
        self._discard([FOLD_FILE], problem, "discarded; the batches it had summed were scored again")
        return 0, None

    def save_fold(self, next_batch: int, total: np.ndarray | None) -> None:
        buf = io.BytesIO()
        np.savez(buf, next=np.array(next_batch), sum=total if total is not None else np.zeros(0))
        self._write_atomic(FOLD_FILE, FOLD, buf.getvalue())
