"""confounder_metadata mechanics: the within-class permutation test, the probe beyond the label, the gap."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from audit.rules._use import consistent_shift
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


def test_use_statistic_separates_shortcut_from_difficulty_and_noise() -> None:
    """A shortcut value raises one group's score in every true class; a harder subgroup lowers its own class's
    score; an ignored column moves nothing."""
    rng = np.random.default_rng(0)
    n = 900
    labels = np.arange(n) % 3
    attr = (rng.random(n) < np.where(labels == 0, 0.85, 0.15)).astype(np.int64)
    base = np.eye(3)[labels] * 0.9 + 0.05
    hard = base.copy()
    hard[attr == 1] = hard[attr == 1] * 0.6 + 0.4 / 3
    short = base.copy()
    short[attr == 0] = short[attr == 0] * 0.6 + np.array([0.0, 0.2, 0.2])  # without the cue, less 'class 0'
    short[attr == 1] = short[attr == 1] * 0.6 + np.array([0.4, 0.0, 0.0])  # with it, more
    res = {}
    for name, sc in (("ignored", base), ("hard", hard), ("shortcut", short)):
        sc = np.clip(sc + rng.normal(0, 0.03, sc.shape), 0, 1)
        res[name] = consistent_shift(attr, sc, [labels], 10, 499, np.random.default_rng(1))
    assert abs(res["ignored"].shift) < 0.03 and res["ignored"].p_value > 0.01
    assert res["hard"].shift < 0.05
    assert res["shortcut"].shift > 0.2 and res["shortcut"].p_value < 0.01
    assert res["shortcut"].value == 1 and res["shortcut"].group == 0 and res["shortcut"].n_strata == 3
    # seeded: the same generator gives the same p-value
    again = consistent_shift(attr, short, [labels], 10, 499, np.random.default_rng(1))
    assert again.p_value == consistent_shift(attr, short, [labels], 10, 499, np.random.default_rng(1)).p_value


def test_missing_features_or_column(zoo_evidence) -> None:
    ev = zoo_evidence("none")
    no_feat = replace(ev, predictions=replace(ev.predictions, features=None))
    f = rule().check(no_feat)[0]  # the probe is information: without features the use test still runs
    assert f.status == "pass" and "probe_auc_within_class" not in f.details["columns"]["site"]
    f = rule(columns=["scanner"]).check(ev)[0]
    assert f.status == "error" and "scanner" in f.message
    empty = replace(ev, predictions=replace(ev.predictions, metadata=pd.DataFrame(index=range(ev.predictions.n))))
    f = rule().check(empty)[0]
    assert f.status == "not_applicable" and not f.blocking and f.details.get("not_applicable")


def test_encoding_is_information_use_is_judged(zoo_evidence) -> None:
    """The clean twin's features encode nothing of 'site' within a class and its predictions ignore it; the
    site model's features encode it, and only the dependence of its predictions is judged."""
    clean = rule().check(zoo_evidence("none"))[0]
    site = rule().check(zoo_evidence("site"))[0]
    assert clean.status == "pass" and clean.details["columns"]["site"]["p_value"] > 0.01
    assert site.status == "fail" and site.sample_ids  # a planted site cue is use, whatever its smallest class shift
    col = site.details["columns"]["site"]
    assert col["probe_auc_within_class"] > 0.9 and col["p_value"] < 0.01
    assert site.details["criterion"]["name"] == "consistent within-class score shift"
    assert site.message.startswith("consistent within-class score shift ")
    assert "encoding, not use" in site.message and "'site'" in site.message
    assert set(col["shift_per_class"]) == {"disc", "square", "cross"}
    json.dumps(site.details)
