"""confounder_metadata mechanics: the within-class permutation test, the probe beyond the label, the gap."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from audit.rules.confounder_metadata import ConfounderMetadata, accuracy_gaps, permutation_chi2, within_class_auc


def rule(**kw) -> ConfounderMetadata:
    return ConfounderMetadata(ConfounderMetadata.Params.model_validate({"id": "m", "kind": "confounder_metadata",
                                                                        **kw}))


def test_permutation_chi2_conditions_on_the_true_class() -> None:
    rng = np.random.default_rng(0)
    n = 600
    labels = rng.integers(0, 3, n)
    # attribute strongly tied to the label, predictions = labels: no dependence *within* a class
    attr = np.where(rng.random(n) < np.where(labels == 0, 0.9, 0.1), 1, 0)
    _, p_indep, _ = permutation_chi2(attr, labels.copy(), labels, 499, np.random.default_rng(1))
    assert p_indep > 0.2
    # predictions follow the attribute within class 1: dependence
    preds = labels.copy()
    preds[(labels == 1) & (attr == 1)] = 0
    _, p_dep, per_class = permutation_chi2(attr, preds, labels, 499, np.random.default_rng(1))
    assert p_dep <= 0.002 and per_class[1] > 0 and per_class[2] == 0.0
    # seeded: the same generator gives the same p-value
    assert permutation_chi2(attr, preds, labels, 499, np.random.default_rng(1))[1] == p_dep


def test_probe_measures_information_beyond_the_label() -> None:
    rng = np.random.default_rng(0)
    n = 450
    labels = np.repeat(np.arange(3), n // 3)
    attr = (rng.random(n) < np.where(labels == 0, 0.85, 0.15)).astype(np.int64)
    label_only = np.eye(3)[labels] * 3 + rng.normal(0, 1, (n, 3))
    res = within_class_auc(label_only, attr, labels, folds=5, min_n=5, seed=0)
    assert res["label_only_pooled_auc"] > 0.75  # the label predicts the attribute...
    assert abs(res["auc"] - 0.5) < 0.12  # ...but these features add nothing within a class
    leaky = np.hstack([label_only, attr[:, None] + rng.normal(0, 0.5, (n, 1))])
    assert within_class_auc(leaky, attr, labels, folds=5, min_n=5, seed=0)["auc"] > 0.85


def test_accuracy_gap_is_adjusted_for_the_class_mix() -> None:
    labels = np.repeat([0, 1], 100)
    attr = np.r_[np.ones(80, int), np.zeros(20, int), np.ones(20, int), np.zeros(80, int)]
    # class 0 always right, class 1 right half the time in both attribute groups
    correct = np.r_[np.ones(100, bool), np.arange(100) % 2 == 0]
    gaps = accuracy_gaps(attr, correct, labels, min_n=5)
    assert gaps[1]["accuracy"] == 0.9 and gaps[0]["accuracy"] == 0.6  # raw gap 0.3: the class mix...
    assert gaps[1]["gap"] == 0.0 and gaps[0]["gap"] == 0.0  # ...and no gap within the classes
    correct[100:120] = False  # now value 1 is worse within class 1
    gaps = accuracy_gaps(attr, correct, labels, min_n=5)
    assert gaps[1]["gap"] > 0.05 and gaps[1]["z"] > 0


def test_missing_features_or_column_is_an_error(zoo_evidence) -> None:
    ev = zoo_evidence("none")
    no_feat = replace(ev, predictions=replace(ev.predictions, features=None))
    f = rule().check(no_feat)[0]
    assert f.status == "error" and "features were not gathered" in f.message
    assert rule(probe=False).check(no_feat)[0].status == "pass"
    f = rule(columns=["scanner"]).check(ev)[0]
    assert f.status == "error" and "scanner" in f.message
    empty = replace(ev, predictions=replace(ev.predictions, metadata=pd.DataFrame(index=range(ev.predictions.n))))
    f = rule().check(empty)[0]
    assert f.status == "pass" and f.details.get("not_applicable")


def test_site_model_is_flagged_with_every_figure(zoo_evidence) -> None:
    f = rule().check(zoo_evidence("site"))[0]
    assert f.status == "fail" and f.details["worst_column"] == "site"
    col = f.details["columns"]["site"]
    assert set(col["chi2_per_class"]) == {"disc", "square", "cross"}
    assert set(col["accuracy"]) == {"north", "south"}
    assert "'site'" in f.message and "within-class AUC" in f.message
    json.dumps(f.details)
