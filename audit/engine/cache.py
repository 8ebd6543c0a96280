"""The prediction cache: scoring results reused only for exactly the inputs that produced them.

Predictions are keyed by the model's state_dict, the data fingerprint (every image's SHA-256 and label), the data
section of the config, the device type and the torch version. Scoring progress is checkpointed so that an
interrupted run resumes. Files are written atomically; a corrupt entry is ignored and recomputed; a cache that
cannot be written only costs time. Attribution maps have their own store (``attribution_store.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..types import Predictions, SkippedSample
from .base import PredictOutput, ScoringProgress

CACHE_VERSION = "1"


def model_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.dtype != torch.bfloat16
                 else t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def prediction_key(model: nn.Module | str, data_fingerprint: str, data_config: dict[str, Any],
                   device: torch.device) -> str:
    """``model`` is the module or its model_digest."""
    payload = json.dumps({
        "v": CACHE_VERSION, "model": model if isinstance(model, str) else model_digest(model),
        "data": data_fingerprint,
        "cfg": {k: v for k, v in data_config.items() if k not in ("num_workers", "subgroups")},
        "device": device.type, "torch": torch.__version__,
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
            "metadata_columns": list(p.metadata.columns),
            "metadata": p.metadata.astype(str).to_numpy().tolist() if len(p.metadata.columns) else [],
            "skipped": [{"path": s.path, "reason": s.reason} for s in out.skipped],
        }
        fd, tmp = tempfile.mkstemp(prefix=".predictions-", suffix=".npz", dir=folder)
        os.close(fd)
        np.savez(tmp, ids=p.ids.astype(str), labels=p.labels, probs=p.probs,
                 features=p.features if p.features is not None else np.zeros(0),
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
        meta = {"next_row": p.next_row, "has_features": p.features is not None,
                "has_input_sum": p.input_sum is not None,
                "skipped": [{"path": s.path, "reason": s.reason} for s in p.skipped]}
        fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".npz", dir=folder)
        os.close(fd)
        np.savez(tmp, probs=p.probs, rows=p.rows, features=p.features if p.features is not None else np.zeros(0),
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
                skipped=tuple(SkippedSample(**s) for s in meta["skipped"]),
                input_sum=torch.from_numpy(z["input_sum"]) if meta["has_input_sum"] else None)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None


def clear_progress(folder: Path, key: str) -> None:
    try:
        _progress_path(folder, key).unlink(missing_ok=True)
    except OSError:
        pass
