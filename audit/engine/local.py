"""The local engine: every model pass in this process, on the configured device, in batches."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import DataError, ExplainerError, ModelError
from ..explainers import Explainer
from ..loading.dataset import ImageDataset, collate
from ..loading.preprocess import Preprocess
from ..loading.records import HeldOutSet, label_array
from ..products import Predictions, SkippedSample
from .base import BatchContext, BatchFn, Engine, PredictOutput, ScoringOptions, ScoringProgress, gather
from .forward import NonFinite, first_line, score_batch


class LocalEngine(Engine):
    name = "local"
    title = "every model pass in this process"

    # ---- the scoring pass ------------------------------------------------------------------------------
    def score(self, heldout: HeldOutSet, preprocess: Preprocess, options: ScoringOptions,
              resume: ScoringProgress | None = None) -> PredictOutput:
        """Run the model once over every sample under inference_mode (and autocast when the compute settings
        ask for it); validate its outputs through the task.

        With ``options.checkpoint``, the progress is handed over at a batch boundary at most every
        ``checkpoint_seconds``; ``resume`` continues from such a progress with the same batches an uninterrupted
        run would have used."""
        model, compute, task = self.model, self.compute, self.task
        batch_size = options.batch_size
        # bad images come back as (index, None, reason) even without skip_bad, so that the error is raised here in
        # the main process (a worker process would wrap it in its traceback)
        ds = ImageDataset(heldout.records, preprocess, skip_bad=True)
        start = resume.next_row if resume is not None else 0
        source = ds if start == 0 else torch.utils.data.Subset(ds, range(start, len(ds)))
        loader = torch.utils.data.DataLoader(
            source, batch_size=batch_size, shuffle=False, num_workers=options.num_workers, collate_fn=collate,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
        )
        has_rows = resume is not None and len(resume.rows) > 0
        probs_parts: list[np.ndarray] = [resume.probs] if resume is not None and has_rows else []
        feat_parts: list[np.ndarray] = [resume.features] if resume is not None and resume.features is not None \
            and has_rows else []
        rows_parts: list[np.ndarray] = [resume.rows] if resume is not None and has_rows else []
        dense_parts: list[np.ndarray] = [resume.dense] if resume is not None and resume.dense is not None \
            and has_rows else []
        skipped: list[SkippedSample] = list(resume.skipped) if resume is not None else []
        input_sum: torch.Tensor | None = resume.input_sum if resume is not None else None
        last_checkpoint = time.monotonic()

        def progress_at(next_row: int) -> ScoringProgress:
            rows = np.concatenate(rows_parts) if rows_parts else np.zeros(0, dtype=np.int64)
            feats = np.concatenate(feat_parts) if feat_parts and sum(len(f) for f in feat_parts) == len(rows) \
                else None
            probs = np.concatenate(probs_parts) if probs_parts else np.zeros((0, len(task.classes)))
            dense = np.concatenate(dense_parts) if dense_parts else None
            return ScoringProgress(next_row, probs, feats, rows, tuple(skipped), input_sum, dense)

        show = sys.stderr.isatty() if options.progress is None else options.progress
        try:
            for b_no, (idx, x, bad) in enumerate(tqdm(loader, desc="scoring", unit="batch", disable=not show,
                                                      leave=False)):
                for i, err in bad:
                    if not options.skip_bad:
                        raise DataError(err)
                    skipped.append(SkippedSample(path=str(heldout.records[i].path), reason=err))
                next_row = min(len(ds), start + (b_no + 1) * batch_size)
                if x is None:
                    continue
                try:
                    with self.meter.model_call(model, x.shape[0]):
                        b = score_batch(model, task, compute, x, preprocess.size or tuple(x.shape[-2:]),
                                        options.gather_features)
                except NonFinite as e:
                    bad_ids = [heldout.records[int(idx[r])].id for r in e.rows[:3]]
                    raise ModelError(f"the model returned NaN or infinite outputs (e.g. for {', '.join(bad_ids)})"
                                     ) from None
                input_sum = b.input_sum if input_sum is None else input_sum + b.input_sum
                probs_parts.append(b.probs)
                if b.dense is not None:
                    dense_parts.append(b.dense)
                rows_parts.append(idx.numpy())
                if b.features is not None:
                    feat_parts.append(b.features)
                if options.checkpoint is not None and next_row < len(ds) and \
                        time.monotonic() - last_checkpoint >= options.checkpoint_seconds:
                    options.checkpoint(progress_at(next_row))
                    last_checkpoint = time.monotonic()
        except RuntimeError as e:  # e.g. a data-loader worker that died
            msg = first_line(e) or type(e).__name__
            raise ModelError(f"the model failed on the held-out images (check image_size/channels): {msg}") from None
        if not rows_parts:
            where = heldout.manifest or heldout.root
            raise DataError(f"{where}: no readable image in the held-out set"
                            + (f" ({len(skipped)} skipped, e.g. {skipped[0].reason})" if skipped else ""))
        rows = np.concatenate(rows_parts)
        probs = np.concatenate(probs_parts)
        features = np.concatenate(feat_parts) if feat_parts and sum(len(f) for f in feat_parts) == len(rows) \
            else None
        recs = [heldout.records[i] for i in rows]
        meta = heldout.metadata_frame().iloc[rows].reset_index(drop=True)
        preds = Predictions(
            ids=np.array([r.id for r in recs], dtype=object),
            labels=label_array(recs, len(heldout.classes), heldout.multilabel),
            probs=probs,
            metadata=meta if len(meta.columns) else pd.DataFrame(index=range(len(recs))),
            features=features,
            dense=np.concatenate(dense_parts) if dense_parts else None,
        )
        return PredictOutput(preds, tuple(skipped), rows, input_sum)

    # ---- batched passes over tensors -------------------------------------------------------------------
    def _batches(self, x: torch.Tensor, size: int):
        for s in range(0, x.shape[0], size):
            yield x[s:s + size]

    def outputs(self, x: torch.Tensor, model: nn.Module | None = None) -> np.ndarray:
        m = model if model is not None else self.model
        out = []
        comp = self.compute
        with torch.inference_mode(), comp.inference():
            for b in self._batches(x, self.batch_size):
                with self.meter.model_call(m, b.shape[0]):
                    raw = m(comp.to_device(b))
                out.append(self.task.to_scores(raw.float()).cpu().numpy().astype(np.float64))
        if not out:
            return np.zeros((0, len(self.task.classes)))
        return np.concatenate(out)

    def map_over_perturbations(self, x: torch.Tensor, perturb: Callable[[torch.Tensor], torch.Tensor],
                               model: nn.Module | None = None) -> np.ndarray:
        m = model if model is not None else self.model
        out = []
        comp = self.compute
        with torch.inference_mode():
            for b in self._batches(x, self.batch_size):
                pb = perturb(comp.to_device(b))
                with comp.inference(), self.meter.model_call(m, pb.shape[0]):
                    raw = m(pb)
                out.append(self.task.to_scores(raw.float()).cpu().numpy().astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0, len(self.task.classes)))

    def map_batches(self, fn: BatchFn, x: torch.Tensor, side: torch.Tensor | None = None,
                    model: nn.Module | None = None) -> dict[str, np.ndarray]:
        ctx = BatchContext(model if model is not None else self.model, self.task, self.compute)
        size = self.batch_size

        def parts():
            for s in range(0, x.shape[0], size):
                sb = side[s:s + size].to(self.device) if side is not None else None
                xb = self.compute.to_device(x[s:s + size])
                with self.meter.model_call(ctx.model, xb.shape[0]):
                    part = fn(ctx, xb, sb)
                yield part

        return gather(parts())

    def explain(self, explainer: Explainer, x: torch.Tensor, targets: np.ndarray,
                model: nn.Module | None = None) -> np.ndarray:
        t = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        out = []
        base = model if model is not None else self.model
        for s in range(0, x.shape[0], self.explain_batch_size):
            xb = x[s:s + self.explain_batch_size].to(self.device)
            tb = t[s:s + self.explain_batch_size].to(self.device)
            # counted on ``base``: the task's explanation module may run it more than once (a segmentation's regions)
            with self.meter.model_call(base, xb.shape[0], explainer.name), self.task.explaining(base, xb) as m:
                maps = explainer.explain(m, xb, tb)
            if maps.dim() != 3 or maps.shape[0] != xb.shape[0]:
                raise ExplainerError(
                    f"explainer {explainer.name!r} returned shape {tuple(maps.shape)}, expected (B, H, W)")
            out.append(maps.detach().float().cpu().numpy())
        if not out:
            return np.zeros((0, *x.shape[-2:]), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)
