"""The family rule kinds' modes on the underspecified family (seeds 1 and 3 read the marker), each value checked
against a computation from the members' own records: the range statistic, κ averaged over pairs against
scikit-learn, the explanation statistics, a k that allows the failing members; and the mean ensemble's scores as
the mean of the members' probabilities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from audit.rules import registry as rule_registry
from audit.rules.evaluate import evaluate_each
from audit.rules.evidence import Evidence
from audit.rules.family.agreement import AgreementParams, FamilyAgreementMin
from audit.rules.family.explanation_agreement import ExplanationAgreementParams, FamilyExplanationAgreementMin
from audit.rules.family.members_fail import FamilyMembersFailMax, MembersFailParams
from audit.rules.family.spread import FamilySpreadMax, SpreadParams


def family_evidence(result):
    """The evidence the family rules read: the audit's, with its family."""
    return Evidence(classes=result.classes, predictions=result.predictions, metrics=result.metrics, picks=result.picks,
                    probe=None, seed=0, explainers=("saliency",), family=result.family)


def judge(cls, params_cls, family, **fields):
    (f,) = cls(params_cls(id="r", kind=cls.kind, **fields)).judge(family, None)
    return f


def test_spread_range_mode(underspecified):
    fam = underspecified.family
    assert judge(FamilySpreadMax, SpreadParams, fam, statistic="range", threshold=0.2).status == "fail"
    f = judge(FamilySpreadMax, SpreadParams, fam, statistic="range", threshold=0.3)
    assert f.status == "pass" and f.value == pytest.approx(0.25, abs=1e-12)  # 1.0 (clean) - 0.75 (cue)


def test_kappa_mean_over_pairs_equals_sklearn(underspecified):
    fam = underspecified.family
    trained = [m for m in fam.members if m.trained]
    kappas = [cohen_kappa_score(a.answers, b.answers) for a, b in itertools.combinations(trained, 2)]
    f = judge(FamilyAgreementMin, AgreementParams, fam, min_kappa=0.5, over="mean")
    assert f.value == pytest.approx(np.mean(kappas), abs=1e-12) and f.status == "pass"
    weakest = judge(FamilyAgreementMin, AgreementParams, fam, min_kappa=0.5)
    assert weakest.value == pytest.approx(min(kappas), abs=1e-12) and weakest.status == "pass"  # 0.5 is the floor


def test_explanation_statistics_modes(underspecified):
    fam = underspecified.family
    pairs = [p for p in fam.maps if p.explainer == "saliency"]
    assert len(pairs) == 6 and all(p.n == len(fam.map_ids) for p in pairs)
    clean = next(p for p in pairs if (p.a, p.b) == ("seed-0", "seed-2"))
    assert clean.top_overlap == 1.0  # two clean seeds: the same 64 spot pixels on top
    f = judge(FamilyExplanationAgreementMin, ExplanationAgreementParams, fam, explainer="saliency", threshold=0.0,
              over="mean")
    assert f.value == pytest.approx(np.mean([p.rank_correlation for p in pairs]), abs=1e-12)
    missing = judge(FamilyExplanationAgreementMin, ExplanationAgreementParams, fam, explainer="gradcam",
                    threshold=0.1)
    assert missing.status == "error" and "not compared" in missing.message


def test_members_fail_allows_k(underspecified):
    fam = underspecified.family
    assert judge(FamilyMembersFailMax, MembersFailParams, fam, rule="marker-use", max_failing=2).status == "pass"
    f = judge(FamilyMembersFailMax, MembersFailParams, fam, rule="marker-use", max_failing=1)
    assert f.status == "fail" and f.value == 2 and f.details["failing"] == ["seed-1", "seed-3"]
    assert judge(FamilyMembersFailMax, MembersFailParams, fam, rule="nope").status == "error"


def test_ensemble_scores_are_the_members_mean_probability(underspecified):
    fam = underspecified.family
    members = [m for m in fam.members if m.trained]
    ensemble = fam.member("ensemble")
    assert all(len(m.rows) == 64 for m in fam.members)  # seeds without folds: every row for everyone
    mean = np.mean([m.predictions.probs for m in members], axis=0)
    assert np.allclose(ensemble.predictions.probs, mean, atol=1e-6)  # float32 softmax per member


@pytest.mark.parametrize("kind", [k for k, c in rule_registry().items() if c.phase == "family"])
def test_every_family_kind_example_gives_a_result_on_a_family(kind, underspecified):
    """The common check of tests/plugins audits each example without a family (not_applicable); here with one."""
    cls = rule_registry()[kind]
    for i, example in enumerate(cls.examples):
        fields = {k: (v.format(metric="accuracy") if isinstance(v, str) else v) for k, v in example.items()}
        (f,) = evaluate_each([cls(cls.Params(id=f"{kind}-{i}", kind=kind, **fields))],
                             family_evidence(underspecified))[0][1]
        assert f.status in ("pass", "warn", "fail", "error") and f.message.strip()
        assert not f.message.startswith("rule could not be evaluated"), f.message
        if f.status != "error":
            assert f.details["criterion"]["direction"] in ("above", "below")
