"""Picks as the task names them (issue: a segmentation's five picks, all with IoU 1.000, were drawn as "predicted
wrong", results.json filed two Dice-1.000 images under samples.incorrect and one image was both "#1 best" and "#1
worst"): a segmentation ranks best and worst by Dice, worst strictly below the best score and never an image
already picked as best; every image scoring the same leaves no worst."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.products import Predictions
from audit.tasks.segmentation import SegmentationTask


def _preds(dice_cut: list[int]) -> Predictions:
    """Images of 8 × 8 px, truth: the left half is 'obj'; prediction: 'obj' over the first ``cut`` columns."""
    n = len(dice_cut)
    truth = np.zeros((n, 8, 8), dtype=np.int64)
    truth[:, :, :4] = 1
    pred = np.zeros_like(truth)
    for i, cut in enumerate(dice_cut):
        pred[i, :, :cut] = 1
    probs = np.tile([0.5, 0.5, 0.9], (n, 1))  # two classes' soft areas, then the mean pixel margin
    probs[:, -1] = np.linspace(0.9, 0.4, n)
    return Predictions(ids=np.array([f"img{i}" for i in range(n)]), labels=np.zeros((n, 8, 8), dtype=np.int64)[:, 0, 0],
                       probs=probs, metadata=pd.DataFrame(index=range(n)), dense=pred, dense_truth=truth)


def _dice_obj(cut: int) -> float:  # 'obj' Dice by hand: 2 TP / (2 TP + FP + FN) with 8 rows of pixels
    tp, fp, fn = 8 * min(cut, 4), 8 * max(cut - 4, 0), 8 * max(4 - cut, 0)
    return 2 * tp / (2 * tp + fp + fn)


def test_best_and_worst_by_dice_never_the_same_image():
    cuts = [4, 4, 3, 2, 4, 6]
    task = SegmentationTask(("background", "obj"))
    picks = task.select(_preds(cuts), k=3, per_class=2)
    obj = {f"img{i}": _dice_obj(c) for i, c in enumerate(cuts)}
    best = [p.sample_id for p in picks.overall["correct"]]
    worst = [p.sample_id for p in picks.overall["incorrect"]]
    assert best == ["img0", "img1", "img4"]  # the perfect ones, in data order at a tie
    assert not set(best) & set(worst)
    per_obj = picks.per_class[1]
    assert [p.sample_id for p in per_obj["incorrect"]] == sorted(
        [s for s in obj if obj[s] < 1.0], key=lambda s: obj[s])[:2]  # lowest 'obj' Dice first
    assert all("best" in p.reason and "Dice 1.000" in p.reason for p in picks.overall["correct"])
    assert all("worst" in p.reason for p in picks.overall["incorrect"])
    assert task.outcome(_preds(cuts)) is None  # no right or wrong per image: the report colours none
    assert task.pick_kinds["incorrect"] == ("worst", "worst by Dice")


def test_every_image_scoring_the_same_leaves_no_worst():
    picks = SegmentationTask(("background", "obj")).select(_preds([4, 4, 4]), k=2, per_class=2)
    assert len(picks.overall["correct"]) == 2 and picks.overall["incorrect"] == ()
