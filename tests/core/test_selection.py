"""Sample picks on a hand-made probability table."""

import numpy as np
import pandas as pd

from audit.products import Predictions
from audit.selection.classification import select_samples

PROBS = np.array([
    [0.90, 0.05, 0.05],  # s0 true 0 correct, conf .90
    [0.60, 0.35, 0.05],  # s1 true 0 correct, margin .25
    [0.20, 0.70, 0.10],  # s2 true 0 wrong (pred 1) conf .70
    [0.10, 0.85, 0.05],  # s3 true 1 correct conf .85
    [0.45, 0.44, 0.11],  # s4 true 1 wrong (pred 0) conf .45 margin .01
    [0.05, 0.15, 0.80],  # s5 true 2 correct conf .80
    [0.05, 0.95, 0.00],  # s6 true 2 wrong (pred 1) conf .95
])
LABELS = np.array([0, 0, 0, 1, 1, 2, 2])


def _p():
    return Predictions(np.array([f"s{i}" for i in range(7)], dtype=object), LABELS, PROBS,
                       pd.DataFrame(index=range(7)))


def test_overall_picks():
    picks = select_samples(_p(), ("a", "b", "c"), k=2, per_class=1)
    assert [p.sample_id for p in picks.overall["correct"]] == ["s0", "s3"]
    assert [p.sample_id for p in picks.overall["incorrect"]] == ["s6", "s2"]
    assert [p.sample_id for p in picks.overall["borderline"]] == ["s4", "s1"]
    assert "0.950" in picks.overall["incorrect"][0].reason and "'b'" in picks.overall["incorrect"][0].reason


def test_per_class_picks_and_determinism():
    a = select_samples(_p(), ("a", "b", "c"), k=2, per_class=1)
    b = select_samples(_p(), ("a", "b", "c"), k=2, per_class=1)
    assert a == b
    assert [p.sample_id for p in a.per_class[0]["incorrect"]] == ["s2"]
    assert [p.sample_id for p in a.per_class[1]["correct"]] == ["s3"]
    assert [p.sample_id for p in a.per_class[2]["borderline"]] == ["s5"]  # margin .65 < .95
    assert a.per_class[1]["correct"][0].scope == "class:b"


def test_ties_broken_by_data_order():
    probs = np.array([[0.8, 0.2]] * 4)
    p = Predictions(np.array(["d", "c", "b", "a"], dtype=object), np.zeros(4, int), probs, pd.DataFrame(index=range(4)))
    picks = select_samples(p, ("x", "y"), k=3, per_class=0)
    assert [x.sample_id for x in picks.overall["correct"]] == ["d", "c", "b"]
