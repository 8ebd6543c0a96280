"""Batched inference over the held-out set: probabilities, penultimate features, skipped images."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .compute import Compute
from .errors import DataError, ModelError
from .loading.data import HeldOutSet, ImageDataset, Preprocess, collate
from .types import Predictions, SkippedSample


@dataclass(frozen=True)
class ScoringProgress:
    """Scoring done so far: every record before ``next_row`` (a batch boundary) has been scored or skipped."""

    next_row: int
    probs: np.ndarray  # (k, C)
    features: np.ndarray | None  # (k, D)
    rows: np.ndarray  # (k,) positions in the held-out listing
    skipped: tuple[SkippedSample, ...]
    input_sum: torch.Tensor | None


@dataclass(frozen=True)
class PredictOutput:
    predictions: Predictions
    skipped: tuple[SkippedSample, ...]
    kept_rows: np.ndarray  # positions in the held-out listing of the scored samples
    input_sum: torch.Tensor | None  # sum of model inputs (C,H,W), for a dataset-mean baseline


def _feature_module(model: nn.Module) -> nn.Module | None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def predict(
    model: nn.Module,
    heldout: HeldOutSet,
    preprocess: Preprocess,
    device: torch.device,
    batch_size: int = 64,
    num_workers: int = 0,
    skip_bad: bool = False,
    gather_features: bool = True,
    progress: bool | None = None,
    compute: Compute | None = None,
    resume: ScoringProgress | None = None,
    checkpoint: Callable[[ScoringProgress], None] | None = None,
    checkpoint_seconds: float = 30.0,
) -> PredictOutput:
    """Run the model once over every sample under inference_mode (and autocast when ``compute`` asks for it);
    validate its outputs.

    With ``checkpoint``, the progress is handed over at a batch boundary at most every ``checkpoint_seconds``;
    ``resume`` continues from such a progress with the same batches an uninterrupted run would have used."""
    compute = compute or Compute(device)
    # bad images come back as (index, None, reason) even without skip_bad, so that the error is raised here in the
    # main process (a worker process would wrap it in its traceback)
    ds = ImageDataset(heldout.records, preprocess, skip_bad=True)
    start = resume.next_row if resume is not None else 0
    source = ds if start == 0 else torch.utils.data.Subset(ds, range(start, len(ds)))
    loader = torch.utils.data.DataLoader(
        source, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate,
        pin_memory=device.type == "cuda", persistent_workers=False,
    )
    C = len(heldout.classes)
    probs_parts: list[np.ndarray] = [resume.probs] if resume is not None and len(resume.rows) else []
    feat_parts: list[np.ndarray] = [resume.features] if resume is not None and resume.features is not None \
        and len(resume.rows) else []
    rows_parts: list[np.ndarray] = [resume.rows] if resume is not None and len(resume.rows) else []
    skipped: list[SkippedSample] = list(resume.skipped) if resume is not None else []
    captured: list[torch.Tensor] = []
    input_sum: torch.Tensor | None = resume.input_sum if resume is not None else None
    last_checkpoint = time.monotonic()

    def progress_at(next_row: int) -> ScoringProgress:
        rows = np.concatenate(rows_parts) if rows_parts else np.zeros(0, dtype=np.int64)
        feats = np.concatenate(feat_parts) if feat_parts and sum(len(f) for f in feat_parts) == len(rows) else None
        probs = np.concatenate(probs_parts) if probs_parts else np.zeros((0, C))
        return ScoringProgress(next_row, probs, feats, rows, tuple(skipped), input_sum)

    hook = None
    head = _feature_module(model) if gather_features else None
    if head is not None:
        hook = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
    show = sys.stderr.isatty() if progress is None else progress
    try:
        with torch.inference_mode():
            for b_no, (idx, x, bad) in enumerate(tqdm(loader, desc="scoring", unit="batch", disable=not show,
                                                      leave=False)):
                for i, err in bad:
                    if not skip_bad:
                        raise DataError(err)
                    skipped.append(SkippedSample(path=str(heldout.records[i].path), reason=err))
                next_row = min(len(ds), start + (b_no + 1) * batch_size)
                if x is None:
                    continue
                captured.clear()
                try:
                    with compute.inference():
                        logits = model(compute.to_device(x))
                except RuntimeError:
                    raise
                except Exception as e:  # noqa: BLE001 - whatever the user's forward raises is a model problem
                    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
                    raise ModelError(f"the model failed on the held-out images: {type(e).__name__}: {msg}") from None
                if not isinstance(logits, torch.Tensor):
                    raise ModelError(f"the model returned {type(logits).__name__}, expected a tensor of logits")
                if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
                    raise ModelError(
                        f"the model output has shape {tuple(logits.shape)}; expected (batch, classes) = ({x.shape[0]}, {C})"
                    )
                if logits.shape[1] != C:
                    raise ModelError(
                        f"the model has {logits.shape[1]} outputs but data.classes lists {C} classes"
                    )
                logits = logits.float()
                if not torch.isfinite(logits).all():
                    bad_ids = [heldout.records[int(i)].id for i in idx[~torch.isfinite(logits).all(1).cpu()][:3]]
                    raise ModelError(f"the model returned NaN or infinite outputs (e.g. for {', '.join(bad_ids)})")
                bsum = x.double().sum(dim=0)
                input_sum = bsum if input_sum is None else input_sum + bsum
                probs_parts.append(torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64))
                rows_parts.append(idx.numpy())
                if captured:
                    f = captured[-1]
                    # a copy: a NumPy view would keep the tensor allocated mid-forward alive, which pins the
                    # allocator's heap between the freed activations (peak RSS grew ~20 KB per image)
                    feat_parts.append(f.reshape(f.shape[0], -1).float().cpu().numpy().copy())
                if checkpoint is not None and next_row < len(ds) and \
                        time.monotonic() - last_checkpoint >= checkpoint_seconds:
                    checkpoint(progress_at(next_row))
                    last_checkpoint = time.monotonic()
    except RuntimeError as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"the model failed on the held-out images (check image_size/channels): {msg}") from None
    finally:
        if hook is not None:
            hook.remove()
    if not rows_parts:
        where = heldout.manifest or heldout.root
        raise DataError(f"{where}: no readable image in the held-out set"
                        + (f" ({len(skipped)} skipped, e.g. {skipped[0].reason})" if skipped else ""))
    rows = np.concatenate(rows_parts)
    probs = np.concatenate(probs_parts)
    features = np.concatenate(feat_parts) if feat_parts and sum(len(f) for f in feat_parts) == len(rows) else None
    recs = [heldout.records[i] for i in rows]
    meta = heldout.metadata_frame().iloc[rows].reset_index(drop=True)
    preds = Predictions(
        ids=np.array([r.id for r in recs], dtype=object),
        labels=np.array([r.label for r in recs], dtype=np.int64),
        probs=probs,
        metadata=meta if len(meta.columns) else pd.DataFrame(index=range(len(recs))),
        features=features,
    )
    return PredictOutput(preds, tuple(skipped), rows, input_sum)


def check_classes_present(preds: Predictions, classes: Sequence[str], source: str) -> None:
    """Every class needs held-out samples, or per-class figures are meaningless."""
    counts = np.bincount(preds.labels, minlength=len(classes))
    empty = [classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"{source}: class(es) with no held-out samples: {', '.join(empty)}")
