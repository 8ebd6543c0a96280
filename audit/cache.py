"""Prediction cache: scoring is skipped when the model weights, the images and the preprocessing are unchanged.

The key hashes the model's state_dict, the data fingerprint (every image's SHA-256 and label), the data
section of the config, the device type and the torch version, so a cached table is only reused for exactly
the inputs that produced it. Files are written atomically; a corrupt entry is ignored and recomputed.
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

from .predict import PredictOutput
from .types import Predictions, SkippedSample

CACHE_VERSION = "1"


def model_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.dtype != torch.bfloat16
                 else t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def prediction_key(model: nn.Module, data_fingerprint: str, data_config: dict[str, Any], device: torch.device) -> str:
    payload = json.dumps({
        "v": CACHE_VERSION, "model": model_digest(model), "data": data_fingerprint,
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
