"""What the [slices] stage slices on each task, on a stand-in probe (no model, no files): correctness at the task's
own answers (a binary threshold, not the argmax), one label of a multi-label audit, a segmentation's per-image Dice
with the images that have none left out; what cannot be sliced or embedded is not_applicable with the reason, a bad label a
ConfigError naming slices.label. Planted: a shifted cluster the task's metric fails on must be the worst slice."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from torch import nn

from audit.config import SlicesConfig
from audit.errors import ConfigError, DataError
from audit.slices.stage import run_slices

N = 400


def _probe(task: str, classes: tuple[str, ...], labels, probs, preds, features, provides=("single_label",)):
    p = SimpleNamespace(ids=np.array([f"s{i}" for i in range(N)], dtype=object), labels=labels, probs=probs,
                        preds=preds, features=features, metadata=pd.DataFrame(index=range(N)), n=N)
    t = SimpleNamespace(name=task, classes=classes, provides=frozenset(provides))
    return SimpleNamespace(task=t, predictions=p)


def _cfg(**kw) -> SimpleNamespace:
    return SimpleNamespace(slices=SlicesConfig(n_components=4, typical=1, **kw), seed=0, resolve=lambda p: p)


def _embedding(member: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, (N, 8))
    z[member] += 4.0
    return z


MEMBER = np.arange(N) < 60  # the planted cluster


def _worst(run) -> set[int]:
    top = run.reported[0]
    return {int(i[1:]) for i in top.member_ids}


def test_binary_correctness_is_read_at_the_threshold(monkeypatch) -> None:
    y = np.arange(N) % 2
    probs = np.stack([np.full(N, 0.6), np.full(N, 0.4)], axis=1)  # argmax says class 0 everywhere
    decisions = np.where(MEMBER, 1 - y, y)  # the threshold's answers: wrong exactly on the cluster
    probe = _probe("binary", ("neg", "pos"), y, probs, decisions, _embedding(MEMBER))
    monkeypatch.setattr("audit.slices.stage._images", lambda probe, ids: ())
    run = run_slices(_cfg(), probe, None)
    assert run.status == "measured" and run.metric == "accuracy" and run.n == N
    assert len(_worst(run) & set(np.flatnonzero(MEMBER))) >= 0.8 * len(_worst(run))


def test_one_label_of_a_multilabel_audit(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random((N, 3)) < 0.5).astype(int)
    decisions = truth.copy()
    decisions[MEMBER, 1] = 1 - truth[MEMBER, 1]  # label 'b' is wrong on the cluster
    probs = np.clip(decisions * 0.8 + 0.1, 0, 1)
    probe = _probe("multilabel", ("a", "b", "c"), truth, probs, decisions, _embedding(MEMBER), provides=())
    monkeypatch.setattr("audit.slices.stage._images", lambda probe, ids: ())
    none = run_slices(_cfg(), probe, None)
    assert none.status == "not_applicable" and "slices.label" in none.reason and "a, b, c" in none.reason
    run = run_slices(_cfg(label="b"), probe, None)
    assert run.status == "measured" and run.label == "b"
    assert len(_worst(run) & set(np.flatnonzero(MEMBER))) >= 0.8 * len(_worst(run))
    clean = run_slices(_cfg(label="a"), probe, None)  # label 'a' is right everywhere: nothing to report
    assert clean.reported == ()
    with pytest.raises(ConfigError, match="slices.label: unknown label 'd'"):
        run_slices(_cfg(label="d"), probe, None)


def test_a_segmentation_slices_the_per_image_dice(monkeypatch) -> None:
    rng = np.random.default_rng(2)
    dice = np.where(MEMBER, rng.beta(4, 4, N), rng.beta(18, 2, N))
    dice[-5:] = np.nan  # no class in truth or answer: no Dice
    present = np.ones((N, 2), dtype=np.int64)  # a segmentation's labels: the classes present (not sliced)
    probe = _probe("segmentation", ("bg", "fg"), present, np.ones((N, 2)) / 2, present, _embedding(MEMBER),
                   provides=("maps",))
    monkeypatch.setattr("audit.slices.stage._images", lambda probe, ids: ())
    run = run_slices(_cfg(), probe, SimpleNamespace(image_dice=dice))
    assert run.status == "measured" and run.metric == "Dice" and run.n == N - 5 and run.left_out == 5
    assert not any(f"s{i}" in s.member_ids for s in run.slices for i in range(N - 5, N))
    assert len(_worst(run) & set(np.flatnonzero(MEMBER))) >= 0.8 * len(_worst(run))
    # without a per-image Dice its 2-D labels are read as a multi-label set's: one label must be named
    assert run_slices(_cfg(), probe, SimpleNamespace()).status == "not_applicable"


def test_a_model_with_nothing_to_embed_by_is_not_applicable_with_the_reason() -> None:
    y = np.arange(N) % 2
    probe = _probe("multiclass", ("a", "b"), y, np.eye(2)[y], y, None)
    probe.engine = SimpleNamespace(model=nn.Sequential(nn.Flatten(), nn.Softmax(dim=1)))  # no Linear, no Conv2d
    run = run_slices(_cfg(), probe, None)
    assert run.status == "not_applicable" and "neither a final nn.Linear nor an nn.Conv2d" in run.reason
    assert run.as_dict() == {"status": "not_applicable", "reason": run.reason}


def test_an_image_property_names_the_slice_when_asked(monkeypatch) -> None:
    """The cluster's images are dark: with image_properties the slice is best told apart by its brightness."""
    y = np.arange(N) % 2
    preds = np.where(MEMBER, 1 - y, y)
    probe = _probe("multiclass", ("a", "b"), y, np.eye(2)[preds] * 0.8 + 0.1, preds, _embedding(MEMBER))
    rng = np.random.default_rng(3)
    level = {f"s{i}": (0.15 if MEMBER[i] else 0.6) + rng.uniform(-0.05, 0.05) for i in range(N)}
    monkeypatch.setattr("audit.slices.stage._images",
                        lambda probe, ids: tuple(np.full((8, 8, 3), level[i]) + rng.normal(0, 0.01, (8, 8, 3))
                                                 for i in ids))
    run = run_slices(_cfg(image_properties=True), probe, None)
    top = run.reported[0]
    assert top.columns[0].column == "image brightness" and top.columns[0].auc > 0.9
    plain = run_slices(_cfg(), probe, None).reported[0]
    assert not any(c.column.startswith("image ") for c in plain.columns)


def test_a_second_embedding_finds_what_the_models_features_do_not_show(monkeypatch, tmp_path) -> None:
    """The model's features carry no trace of the cluster; a user's second embedding (.npz, rows in another order)
    does, and with it the slice is found."""
    y = np.arange(N) % 2
    preds = np.where(MEMBER, 1 - y, y)
    flat = np.random.default_rng(4).normal(0, 1, (N, 8))
    probe = _probe("multiclass", ("a", "b"), y, np.eye(2)[preds] * 0.8 + 0.1, preds, flat)
    monkeypatch.setattr("audit.slices.stage._images", lambda probe, ids: ())
    order = np.random.default_rng(5).permutation(N)
    vectors = _embedding(MEMBER)
    np.savez(tmp_path / "second.npz", ids=probe.predictions.ids[order].astype(str), vectors=vectors[order])
    assert run_slices(_cfg(), probe, None).reported == ()
    run = run_slices(_cfg(second_embedding=tmp_path / "second.npz"), probe, None)
    assert len(_worst(run) & set(np.flatnonzero(MEMBER))) >= 0.8 * len(_worst(run))
    assert run.embedding.endswith("second.npz beside it")
    np.savez(tmp_path / "short.npz", ids=probe.predictions.ids[1:].astype(str), vectors=vectors[1:])
    with pytest.raises(DataError, match=r"slices.second_embedding: .*short.npz: no row for sample 's0'"):
        run_slices(_cfg(second_embedding=tmp_path / "short.npz"), probe, None)
