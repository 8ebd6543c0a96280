"""Metrics against scikit-learn and hand computations."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, precision_recall_fscore_support

from audit.products import Predictions
from audit.scoring.classification import bootstrap_accuracy_ci, calibration, score


def _preds(seed=0, n=300, C=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, n)
    logits = rng.normal(size=(n, C))
    logits[np.arange(n), labels] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    meta = pd.DataFrame({"site": np.where(rng.random(n) < 0.5, "A", "B")})
    return Predictions(np.array([f"s{i}" for i in range(n)], dtype=object), labels, probs, meta)


def test_metrics_equal_sklearn():
    p = _preds()
    m = score(p, ("a", "b", "c", "d"), np.random.default_rng(0), ("site",))
    y, yh = p.labels, p.probs.argmax(1)
    assert m.accuracy == pytest.approx(accuracy_score(y, yh))
    assert m.balanced_accuracy == pytest.approx(balanced_accuracy_score(y, yh))
    assert m.macro_f1 == pytest.approx(f1_score(y, yh, average="macro"))
    prec, rec, f1, sup = precision_recall_fscore_support(y, yh, labels=range(4), zero_division=0)
    for i, c in enumerate(m.per_class):
        assert (c.precision, c.recall, c.f1, c.support) == pytest.approx((prec[i], rec[i], f1[i], sup[i]))
    top2 = np.mean([y[i] in np.argsort(p.probs[i])[-2:] for i in range(p.n)])
    assert m.top_k[2] == pytest.approx(top2)
    for g in m.subgroups:
        mask = p.metadata["site"].to_numpy() == g.value
        assert g.accuracy == pytest.approx(accuracy_score(y[mask], yh[mask]))
        assert g.n == mask.sum()


def test_confusion_matrix_by_hand():
    labels = np.array([0, 0, 1, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 2, 2])
    probs = np.eye(3)[preds] * 0.7 + 0.1
    p = Predictions(np.array(list("abcdef"), dtype=object), labels, probs, pd.DataFrame(index=range(6)))
    m = score(p, ("x", "y", "z"), np.random.default_rng(0))
    expected = np.array([[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    assert (m.confusion == expected).all()
    assert m.confusion_normalized[1].tolist() == pytest.approx([0, 2 / 3, 1 / 3])


def test_empty_class_row_normalises_to_zero():
    labels = np.array([0, 0, 1])
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    p = Predictions(np.array(list("abc"), dtype=object), labels, probs, pd.DataFrame(index=range(3)))
    m = score(p, ("x", "y", "z"), np.random.default_rng(0))
    assert m.confusion_normalized[2].tolist() == [0, 0, 0]


def test_ece_by_hand():
    # two bins used: confidences 0.95 (2 samples, 1 right) and 0.55 (2 samples, 2 right)
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 1, 0, 1])
    cal = calibration(probs, labels, bins=10)
    expected = 0.5 * abs(0.95 - 0.5) + 0.5 * abs(0.55 - 1.0)
    assert cal.ece == pytest.approx(expected)
    assert cal.mce == pytest.approx(0.45)
    assert sum(cal.bin_counts) == 4


def test_bootstrap_interval_brackets_accuracy_and_is_seeded():
    correct = np.r_[np.ones(80), np.zeros(20)].astype(bool)
    lo, hi = bootstrap_accuracy_ci(correct, np.random.default_rng(1))
    assert lo < 0.8 < hi and 0.05 < hi - lo < 0.25
    assert (lo, hi) == bootstrap_accuracy_ci(correct, np.random.default_rng(1))
