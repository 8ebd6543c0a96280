"""Where the Ray engine's scoring run keeps what its workers computed: one folder per run, on any filesystem
pyarrow opens (a local or shared folder, s3://, gs://, hdfs://), so that workers on other machines write and the
driver reads the same files.

    <storage>/scoring-<prediction key>/
        run.json                   what the run scores (rows, batch size, batches): a folder that disagrees is wiped
        batch-000000012.parquet    rows, task scores (float64) and penultimate features (float32) of batch 12; the
                                   unreadable images of the batch in the file's metadata
        sum-000000012.npy          the float64 sum of batch 12's model inputs (C, H, W), until folded
        fold.npz                   the running sum of batches 0 … next-1, added in batch order (as one process would)

A batch file is written under a temporary name and renamed when complete, after its sum file: a batch file that
exists is whole, and what is written stays written. Re-running the same key scores only the missing batches.
Nothing here imports Ray; pyarrow comes with it.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass

import numpy as np

RUN_FILE = "run.json"
FOLD_FILE = "fold.npz"


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

    def __getstate__(self) -> dict:
        return {"uri": self.uri}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["uri"])  # type: ignore[misc]

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    # ---- plumbing -----------------------------------------------------------------------------------
    def _write_atomic(self, name: str, data: bytes) -> None:
        tmp = self.path(f".{name}.{uuid.uuid4().hex}.tmp")
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(data)
        self.fs.move(tmp, self.path(name))

    def _read(self, name: str) -> bytes:
        with self.fs.open_input_file(self.path(name)) as fh:
            return fh.read()

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
        """Start or continue the run described by ``plan``: the batches already written (a folder written for
        another plan is emptied first)."""
        self.create()
        names = self.names()
        if RUN_FILE in names:
            try:
                same = json.loads(self._read(RUN_FILE)) == plan
            except (OSError, ValueError):
                same = False
            if not same:
                self.remove()
                self.create()
                names = set()
        if RUN_FILE not in names:
            self._write_atomic(RUN_FILE, json.dumps(plan, sort_keys=True).encode())
        return {int(n[6:15]) for n in names if n.startswith("batch-") and n.endswith(".parquet")}

    # ---- batches (written by workers) -----------------------------------------------------------------
    def write_batch(self, b: int, rows: np.ndarray, probs: np.ndarray | None, features: np.ndarray | None,
                    errors: list[tuple[int, str]], input_sum: np.ndarray | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        np.save(buf, input_sum if input_sum is not None else np.zeros(0), allow_pickle=False)
        self._write_atomic(sum_name(b), buf.getvalue())
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
        self._write_atomic(batch_name(b), out.getvalue().to_pybytes())

    def read_batch(self, b: int) -> ScoredBatch:
        import pyarrow.parquet as pq

        with self.fs.open_input_file(self.path(batch_name(b))) as fh:
            table = pq.read_table(fh)
        errors = [(int(r), str(m)) for r, m in json.loads((table.schema.metadata or {}).get(b"errors", b"[]"))]
        rows = table.column("row").to_numpy().astype(np.int64)

        def matrix(name: str, dtype: type) -> np.ndarray | None:
            if name not in table.column_names:
                return None
            col = table.column(name).combine_chunks()
            return col.flatten().to_numpy().astype(dtype).reshape(len(rows), col.type.list_size)

        probs = matrix("probs", np.float64)
        return ScoredBatch(rows=rows, probs=probs if probs is not None else np.zeros((0, 0)),
                           features=matrix("features", np.float32), errors=errors)

    def read_sum(self, b: int) -> np.ndarray | None:
        """The batch's input sum; None when no image of the batch was readable."""
        arr = np.load(io.BytesIO(self._read(sum_name(b))), allow_pickle=False)
        return arr if arr.size else None

    # ---- the in-order fold of input sums (driver) -------------------------------------------------------
    def load_fold(self) -> tuple[int, np.ndarray | None]:
        """(next batch to add, running sum of batches before it)."""
        try:
            with np.load(io.BytesIO(self._read(FOLD_FILE)), allow_pickle=False) as z:
                total = z["sum"]
                return int(z["next"]), total if total.size else None
        except (OSError, ValueError, KeyError):
            return 0, None

    def save_fold(self, next_batch: int, total: np.ndarray | None) -> None:
        buf = io.BytesIO()
        np.savez(buf, next=np.array(next_batch), sum=total if total is not None else np.zeros(0))
        self._write_atomic(FOLD_FILE, buf.getvalue())
