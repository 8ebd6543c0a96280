"""The planted-slice benchmark's pieces without training a model: precision at 10 and the best-slice choice by
hand, every method on synthetic splits, and the data generator's planted fraction and mislabelled training set."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from slices_synthetic import planted

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench():
    path, modules = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(BENCH))
    import slices_data
    import slices_methods

    yield slices_data, slices_methods
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        file = getattr(sys.modules[name], "__file__", None)
        if file and Path(file).resolve().parent == BENCH:
            del sys.modules[name]


def test_precision_at_10_and_best_slice_by_hand(bench) -> None:
    _, m = bench
    truth = np.zeros(30, dtype=bool)
    truth[:8] = True
    scores = np.arange(30, 0, -1).astype(float)  # samples 0..9 on top: 8 of them planted
    assert m.precision_at(scores, truth) == pytest.approx(0.8)
    tied = np.zeros(30)  # ties go in sample order, as rankdata(method="ordinal") does
    assert m.precision_at(tied, truth) == pytest.approx(0.8)
    weak = m.Returned(-scores, np.arange(30) >= 20)  # bottom first: no planted sample in its top 10
    strong = m.Returned(scores, np.arange(30) < 4)
    res = m.evaluate([weak, strong], truth)
    assert res == {"precision_at_10": 0.8, "recall": 0.5, "n_returned": 2}
    assert m.evaluate([], truth)["precision_at_10"] == 0.0


def test_every_method_runs_on_synthetic_splits(bench) -> None:
    _, m = bench
    inputs, member = planted(0, n=1200)
    labels = inputs.labels.argmax(1)
    half = np.arange(inputs.n) % 2 == 0
    extra = inputs.embeddings + np.random.default_rng(1).normal(0, 1, inputs.embeddings.shape)  # a second view
    val, test = (m.Split(inputs.embeddings[s], inputs.probs[s], labels[s], member[s], extra[s]) for s in (half, ~half))
    for name, method in m.METHODS.items():
        returned = method(val, test, np.random.default_rng(0))
        assert all(r.scores.shape == (len(test.labels),) and r.members.dtype == bool for r in returned), name
        res = m.evaluate(returned, test.planted)
        assert 0.0 <= res["precision_at_10"] <= 1.0 and 0.0 <= res["recall"] <= 1.0
        if name in ("ours", "domino"):
            assert res["precision_at_10"] >= 0.8, (name, res)  # a well-separated slice: both recover it


def test_planted_sets(bench) -> None:
    d, _ = bench
    spec = d.SliceSpec("shapes", "blur", "mislabelled", 1, n_train_per_class=40, n_eval_per_class=40)
    val = d.make_set(spec, "val")
    assert val.images.shape == (160, 32, 32, 3) and val.planted.sum() == round(spec.fraction * 40)
    assert (val.labels[val.planted] == spec.target).all()
    train = d.make_set(spec, "train")
    assert (train.labels[train.planted] == (spec.target + 1) % 4).all()  # mislabelled as the next class
    absent = d.make_set(d.SliceSpec("shapes", "blur", "absent", 1, 40, 40), "train")
    assert not absent.planted.any() and len(absent.labels) == 160 - val.planted.sum()
    again = d.make_set(spec, "val")
    assert (again.images == val.images).all()  # same spec, same images
