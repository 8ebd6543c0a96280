"""The prediction cache: scoring results reused only for exactly the inputs that produced them.

Predictions are keyed by everything that can change them (``prediction_key``); a reused entry is spot-checked
against a few recomputed rows by the scoring stage. Scoring progress is checkpointed so that an
interrupted run resumes. Files are written atomically; a corrupt entry is ignored and recomputed; a cache that
cannot be written only costs time. Attribution maps have their own store (``attribution_store.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..loading.model import sha256_file
from ..loading.records import HeldOutSet
from ..products import Predictions, SkippedSample
from .base import PredictOutput, ScoringProgress

CACHE_VERSION = "2"


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
        "cfg": {k: v for k, v in data_config.items() if k not in ("num_workers", "subgroups")},
        "compute": compute, "device": device.type, "versions": _versions(),
    }, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def load(folder: Path, key: str) -> PredictOutput | None:
    path = folder / f"predictions-{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            feats = z["features"] if meta["has_features"] else None
            preds = Predictions(
                ids=z["ids"].astype(object), labels=z["labels"], probs=z["probs"],
                metadata=pd.DataFrame(meta["metadata"], columns=meta["metadata_columns"])
                if meta["metadata_columns"] else pd.DataFrame(index=range(len(z["ids"]))),
                features=feats,
                dense=z["dense"] if meta.get("has_dense") else None,
            )
            input_sum = torch.from_numpy(z["input_sum"]) if meta["has_input_sum"] else None
            skipped = tuple(SkippedSample(**s) for s in meta["skipped"])
            return PredictOutput(preds, skipped, z["kept_rows"], input_sum)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


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
        fd, tmp = tempfile.mkstemp(prefix=".predictions-", suffix=".npz", dir=folder)
        os.close(fd)
        np.savez(tmp, ids=p.ids.astype(str), labels=p.labels, probs=p.probs,
                 features=p.features if p.features is not None else np.zeros(0),
                 dense=p.dense if p.dense is not None else np.zeros(0),
                 input_sum=out.input_sum.numpy() if out.input_sum is not None else np.zeros(0),
                 kept_rows=out.kept_rows, meta=np.array(json.dumps(meta)))
        os.replace(tmp, folder / f"predictions-{key}.npz")
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
        fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".npz", dir=folder)
        os.close(fd)
        np.savez(tmp, probs=p.probs, rows=p.rows, features=p.features if p.features is not None else np.zeros(0),
                 dense=p.dense if p.dense is not None else np.zeros(0),
                 input_sum=p.input_sum.numpy() if p.input_sum is not None else np.zeros(0),
                 meta=np.array(json.dumps(meta)))
        os.replace(tmp, _progress_path(folder, key))
    except OSError:
        pass


def load_progress(folder: Path, key: str) -> ScoringProgress | None:
    path = _progress_path(folder, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return ScoringProgress(
                next_row=int(meta["next_row"]), probs=z["probs"], rows=z["rows"],
                features=z["features"] if meta["has_features"] else None,
                dense=z["dense"] if meta.get("has_dense") else None,
                skipped=tuple(SkippedSample(**s) for s in meta["skipped"]),
                input_sum=torch.from_numpy(z["input_sum"]) if meta["has_input_sum"] else None)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None


def clear_progress(folder: Path, key: str) -> None:
    try:
        _progress_path(folder, key).unlink(missing_ok=True)
    except OSError:
        pass
