"""The prediction cache: scoring results reused only for exactly the inputs that produced them.

Predictions are keyed by everything that can change them (``prediction_key``); a reused entry is spot-checked
against a few recomputed rows by the scoring stage. Scoring progress is checkpointed so that an
interrupted run resumes. Every file is written atomically and sealed (``sealed.py``: its size, SHA-256, format
version and key in a trailer); one that fails the check on reading, or whose arrays disagree with each other, is
deleted, noted in the audit's ``CacheLog`` and computed again. A cache that cannot be written only costs time.
Attribution maps have their own store (``attribution_store.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..loading.model import sha256_file
from ..loading.records import HeldOutSet
from ..products import Predictions, SkippedSample
from .base import PredictOutput, ScoringProgress
from .sealed import UNREADABLE, CacheLog, CacheNote, Damaged, discard, open_sealed, relative, write_sealed

T = TypeVar("T")
CACHE_VERSION = "3"  # 3: sealed entries (sealed.py)
PREDICTIONS, PROGRESS = "predictions", "scoring checkpoint"  # the kinds of sealed entry (sealed.py)
STORE = "prediction cache"  # how the notes name this store


def model_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.dtype != torch.bfloat16
                 else t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


KEYED_PACKAGES = ("model-audit", "torch", "torchvision", "numpy", "pillow", "pydicom")


def _versions() -> dict[str, str]:
    out = {}
    for name in KEYED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def listing_digest(heldout: HeldOutSet) -> str:
    """SHA-256 over every listed field that reaches the predictions or the report: classes, metadata columns, and
    per record its id, path (relative to the data root), label, ROI box, ROI mask (its file's hash) and metadata.
    (The images' contents are keyed by the data fingerprint.)"""
    h = hashlib.sha256(json.dumps({"classes": list(heldout.classes),
                                   "metadata_columns": list(heldout.metadata_columns)}).encode())
    root = heldout.root.resolve()
    for r in heldout.records:
        d = asdict(r)
        d.pop("source", None)  # where the row was read (for messages), not what it says
        for k, v in d.items():
            if isinstance(v, Path):
                try:
                    d[k] = v.resolve().relative_to(root).as_posix()
                except ValueError:
                    d[k] = v.resolve().as_posix()
        if r.roi_mask is not None:
            d["roi_mask_sha256"] = sha256_file(r.roi_mask)
        if r.mask is not None:  # a segmentation / defect mask: what the outputs are scored against
            d["mask_sha256"] = sha256_file(r.mask)
        h.update(json.dumps(d, sort_keys=True, default=str).encode() + b"\n")
    return h.hexdigest()


def prediction_key(model_digest: str, model_identity: dict[str, Any], data_fingerprint: str, listing: str,
                   data_config: dict[str, Any], compute: dict[str, Any], device: torch.device) -> str:
    """Everything that can change a cached prediction: weights, how the model was built and its code, the images,
    the listing (ids, labels, metadata, ROI), preprocessing, compute settings, device type and library versions."""
    payload = json.dumps({
        "v": CACHE_VERSION, "model": model_digest, "model_identity": model_identity, "data": data_fingerprint,
        "listing": listing,
        "cfg": {k: v for k, v in data_config.items() if k not in ("num_workers", "subgroups", "checks")},
        "compute": compute, "device": device.type, "versions": _versions(),
    }, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _entry(folder: Path, key: str) -> Path:
    return folder / f"predictions-{key}.npz"


def _rows(n: int, what: str, arr: np.ndarray | None) -> None:
    """Damaged unless ``arr`` (when present) has ``n`` rows: the entry's arrays must agree with each other."""
    if arr is not None and (arr.ndim == 0 or arr.shape[0] != n):
        rows = arr.shape[0] if arr.ndim else "no"
        raise Damaged(f"inconsistent: {what} has {rows} rows, the entry {n} samples")


def _read_predictions(fh: IO[bytes]) -> PredictOutput:
    with np.load(fh, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        ids, labels, probs, kept = z["ids"], z["labels"], z["probs"], z["kept_rows"]
        feats = z["features"] if meta["has_features"] else None
        dense = z["dense"] if meta["has_dense"] else None
        n = len(ids)
        for what, arr in (("labels", labels), ("probs", probs), ("kept_rows", kept), ("features", feats),
                          ("dense", dense)):
            _rows(n, what, arr)
        columns = meta["metadata_columns"]
        if columns and len(meta["metadata"]) != n:
            raise Damaged(f"inconsistent: {len(meta['metadata'])} metadata rows, the entry {n} samples")
        preds = Predictions(
            ids=ids.astype(object), labels=labels, probs=probs,
            metadata=pd.DataFrame(meta["metadata"], columns=columns) if columns else pd.DataFrame(index=range(n)),
            features=feats, dense=dense)
        input_sum = torch.from_numpy(z["input_sum"]) if meta["has_input_sum"] else None
        if input_sum is not None and input_sum.ndim != 3:
            raise Damaged(f"inconsistent: the input sum has shape {tuple(input_sum.shape)}, not (C, H, W)")
        skipped = tuple(SkippedSample(**s) for s in meta["skipped"])
        return PredictOutput(preds, skipped, kept, input_sum)




def _checked(folder: Path, path: Path, kind: str, key: str, read: Callable[[IO[bytes]], T], log: CacheLog | None,
             action: str) -> T | None:
    """``read`` of the sealed entry at ``path``; None when there is none, or when it fails its check or does not
    parse (then it is deleted and noted in ``log`` with ``action``)."""
    if not path.is_file():
        return None
    try:
        with open_sealed(path, kind, key) as fh:
            try:
                return read(fh)
            except UNREADABLE as e:
                raise Damaged(f"unreadable payload ({type(e).__name__}: {e})") from None
    except Damaged as e:
        problem = e.reason
    except OSError as e:
        problem = f"cannot be read ({e.strerror or e})"
    discard(path)
    if log is not None:
        log.add(CacheNote(STORE, relative(path, folder), problem, action))
    return None


def load(folder: Path, key: str, log: CacheLog | None = None) -> PredictOutput | None:
    """The cached scoring result of ``key``; None when there is none, or when the entry fails its check (then it
    is deleted and the reason noted in ``log``: the caller scores again)."""
    return _checked(folder, _entry(folder, key), PREDICTIONS, key, _read_predictions, log,
                    "discarded; the held-out set was scored again")


def save(folder: Path, key: str, out: PredictOutput) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        p = out.predictions
        meta = {
            "has_features": p.features is not None, "has_input_sum": out.input_sum is not None,
            "has_dense": p.dense is not None,
            "metadata_columns": list(p.metadata.columns),
            "metadata": p.metadata.astype(str).to_numpy().tolist() if len(p.metadata.columns) else [],
            "skipped": [{"path": s.path, "reason": s.reason} for s in out.skipped],
        }
        write_sealed(_entry(folder, key), PREDICTIONS, key, lambda fh: np.savez(
            fh, ids=p.ids.astype(str), labels=p.labels, probs=p.probs,
            features=p.features if p.features is not None else np.zeros(0),
            dense=p.dense if p.dense is not None else np.zeros(0),
            input_sum=out.input_sum.numpy() if out.input_sum is not None else np.zeros(0),
            kept_rows=out.kept_rows, meta=np.array(json.dumps(meta))))
    except OSError:
        pass  # a cache that cannot be written only costs time


def _progress_path(folder: Path, key: str) -> Path:
    return folder / f"predictions-{key}.partial.npz"


def save_progress(folder: Path, key: str, p: ScoringProgress) -> None:
    """Scoring progress of an unfinished run (replaced at every checkpoint, removed when scoring completes)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"next_row": p.next_row, "has_features": p.features is not None, "has_dense": p.dense is not None,
                "has_input_sum": p.input_sum is not None,
                "skipped": [{"path": s.path, "reason": s.reason} for s in p.skipped]}
        write_sealed(_progress_path(folder, key), PROGRESS, key, lambda fh: np.savez(
            fh, probs=p.probs, rows=p.rows, features=p.features if p.features is not None else np.zeros(0),
            dense=p.dense if p.dense is not None else np.zeros(0),
            input_sum=p.input_sum.numpy() if p.input_sum is not None else np.zeros(0),
            meta=np.array(json.dumps(meta))))
    except OSError:
        pass


def _read_progress(fh: IO[bytes]) -> ScoringProgress:
    with np.load(fh, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        probs, rows = z["probs"], z["rows"]
        feats = z["features"] if meta["has_features"] else None
        dense = z["dense"] if meta["has_dense"] else None
        for what, arr in (("probs", probs), ("features", feats), ("dense", dense)):
            _rows(len(rows), what, arr)
        return ScoringProgress(
            next_row=int(meta["next_row"]), probs=probs, rows=rows, features=feats, dense=dense,
            skipped=tuple(SkippedSample(**s) for s in meta["skipped"]),
            input_sum=torch.from_numpy(z["input_sum"]) if meta["has_input_sum"] else None)


def load_progress(folder: Path, key: str, log: CacheLog | None = None) -> ScoringProgress | None:
    """The checkpoint of an interrupted scoring run of ``key``; None when there is none or it fails its check
    (deleted and noted in ``log``: scoring starts from the first sample)."""
    return _checked(folder, _progress_path(folder, key), PROGRESS, key, _read_progress, log,
                    "discarded; scoring started again from the first sample")


def clear_progress(folder: Path, key: str) -> None:
    try:
        _progress_path(folder, key).unlink(missing_ok=True)
    except OSError:
        pass
