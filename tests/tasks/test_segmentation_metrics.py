"""Segmentation metrics against scikit-learn on flattened pixels and boundary F1 on hand-drawn masks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, jaccard_score

from audit.scoring.segmentation import boundary_f1, segmentation_metrics

CLASSES = ("background", "a", "b")


@pytest.fixture(scope="module")
def masks():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (12, 16, 16)).astype(np.int16)
    pred = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 3, truth.shape)).astype(np.int16)
    truth[:, :2, :] = -1  # an ignored band
    return truth, pred


def test_iou_dice_confusion_match_sklearn(masks):
    truth, pred = masks
    m = segmentation_metrics(CLASSES, truth, pred, seed=0)
    ok = truth >= 0
    t, p = truth[ok], pred[ok]
    np.testing.assert_array_equal(m.confusion, confusion_matrix(t, p, labels=[0, 1, 2]))
    np.testing.assert_allclose(m.iou, jaccard_score(t, p, labels=[0, 1, 2], average=None))
    np.testing.assert_allclose(m.dice, f1_score(t, p, labels=[0, 1, 2], average=None))  # Dice = pixel F1
    assert m.mean_iou == pytest.approx(jaccard_score(t, p, labels=[0, 1, 2], average="macro"))
    assert m.pixel_accuracy == pytest.approx((t == p).mean())
    for v, (lo, hi) in [(m.mean_iou, m.mean_iou_ci), (m.pixel_accuracy, m.pixel_accuracy_ci),
                        *zip(m.iou, m.iou_ci, strict=True)]:
        assert lo <= v <= hi and hi - lo > 0
    assert m.image_dice.shape == (12,) and np.all((m.image_dice > 0) & (m.image_dice < 1))


def test_a_class_in_neither_mask_is_nan_not_zero(masks):
    truth, pred = masks
    m = segmentation_metrics((*CLASSES, "never"), truth, pred, seed=0)
    assert np.isnan(m.iou[3]) and np.isnan(m.dice[3])
    assert m.mean_iou == pytest.approx(np.mean(m.iou[:3]))  # left out of the mean, not counted as 0


def test_same_seed_same_intervals(masks):
    a = segmentation_metrics(CLASSES, *masks, seed=3)
    b = segmentation_metrics(CLASSES, *masks, seed=3)
    assert a.mean_iou_ci == b.mean_iou_ci and a.iou_ci == b.iou_ci


def _square(y0: int, x0: int, side: int, size: int = 20) -> np.ndarray:
    m = np.zeros((1, size, size), np.int16)
    m[0, y0:y0 + side, x0:x0 + side] = 1
    return m


def test_boundary_f1_by_hand():
    truth = _square(4, 4, 8)
    shifted = _square(4, 6, 8)  # two pixels to the right
    # within 2 px every boundary pixel of one square lies near the other's: F1 = 1
    assert boundary_f1(truth, shifted, 2, tolerance=2)[1] == pytest.approx(1.0)
    # exact matching (0 px): the boundaries are 28-pixel rings; they share the top and bottom rows where the
    # squares overlap (columns 6..11: 6 px each) -> 12 of 28 pixels on each side match
    assert boundary_f1(truth, shifted, 2, tolerance=0)[1] == pytest.approx(12 / 28)
    assert boundary_f1(truth, truth, 2, tolerance=0)[1] == pytest.approx(1.0)
    assert boundary_f1(truth, np.zeros_like(truth), 2, tolerance=2)[1] == 0.0  # missed entirely
