"""concept_reliance on hand-made concept runs: forbidden use fails naming class, layer, score and p; required
concepts pass only when used; what cannot be judged (no [concepts], a layer that cannot separate the concept, a NaN
measurement, nothing marked forbidden or required) is an error, never a pass; labels work like classes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from audit.concepts.result import ConceptInfo, ConceptRun, ConceptTest, LayerCAVs
from audit.products import Picks, Predictions
from audit.rules.concept_reliance import ConceptReliance, ConceptRelianceParams
from audit.rules.evidence import Evidence

GROUPS = ("cat", "dog", "ruler-free")  # classes, or labels of a multi-label task: the rule reads names only


def info(name: str, forbidden: bool = False, required: bool = False, groups=GROUPS) -> ConceptInfo:
    return ConceptInfo(name, f"/c/{name}", 50, 50, forbidden, required, tuple(groups))


def make_test(concept: str, group: str, layer: str, score: float, p: float, m: int = 6, acc: float = 0.95,
          sd: float = 0.05) -> ConceptTest:
    n = 10
    scores = np.clip(np.full(n, score) + sd * np.linspace(-1, 1, n), 0, 1)
    return ConceptTest(concept=concept, group=group, group_index=GROUPS.index(group), layer=layer, n_inputs=40,
                       scores=scores, random_scores=np.full(n, 0.5), t=3.0, p=p, p_corrected=min(1.0, p * m),
                       cav_accuracy=acc, separable=acc >= 0.7, top_ids=(f"{group}-1", f"{group}-2"),
                       top_derivatives=(0.3, 0.2))


def run(concepts, tests, **kw) -> ConceptRun:
    layers = tuple(dict.fromkeys(t.layer for t in tests)) or ("l1",)
    cavs = tuple(LayerCAVs(c.name, lay, 100, np.full(10, 0.9), 0) for c in concepts for lay in layers)
    return ConceptRun(concepts=tuple(concepts), layers=layers, runs=10, set_size=50, pooling="flatten",
                      classifier="sgd", random_source="held-out set", random_disjoint=True, min_cav_accuracy=0.7,
                      tests=tuple(tests), cavs=cavs, **kw)


def evidence(concepts: ConceptRun | None) -> Evidence:
    preds = Predictions(ids=np.array(["a", "b"], dtype=object), labels=np.array([0, 1]),
                        probs=np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]]), metadata=pd.DataFrame(index=range(2)))
    return Evidence(classes=GROUPS, predictions=preds, metrics=None, picks=Picks({}, {}), probe=None,  # type: ignore[arg-type]
                    concepts=concepts)


def check(concept_run: ConceptRun | None, **params):
    rule = ConceptReliance(ConceptRelianceParams(id="concepts", kind="concept_reliance", **params))
    (finding,) = rule.check(evidence(concept_run))
    return finding


def test_forbidden_concept_used_by_one_class_fails_naming_it():
    tests = [make_test("ruler", g, lay, s, p) for g, lay, s, p in [
        ("cat", "l1", 0.55, 0.4), ("cat", "l2", 0.6, 0.2), ("dog", "l1", 0.93, 1e-6), ("dog", "l2", 0.88, 1e-3),
        ("ruler-free", "l1", 0.5, 0.9), ("ruler-free", "l2", 0.45, 0.5)]]
    f = check(run([info("ruler", forbidden=True)], tests))
    assert f.status == "fail" and f.blocking
    assert "'ruler'" in f.message and "'dog'" in f.message and "l1" in f.message and "also at l2" in f.message
    assert f.value == pytest.approx(tests[2].mean) and f.threshold == 0.7
    assert f.sample_ids == ("dog-1", "dog-2")  # the class inputs whose logit rises most along the CAV
    assert f.details["concepts"]["ruler"]["classes"]["dog"]["status"] == "used"
    assert f.details["concepts"]["ruler"]["classes"]["cat"]["status"] == "not used"
    assert f.details["criterion"]["direction"] == "above" and "Bonferroni" in f.details["criterion"]["condition"]


def test_significant_but_below_the_score_or_not_significant_passes():
    tests = [make_test("ruler", "cat", "l1", 0.65, 1e-8), make_test("ruler", "dog", "l1", 0.95, 0.03),  # p x 6 = 0.18
             make_test("ruler", "ruler-free", "l1", 0.2, 1e-8)]  # lowers the logit: not use under "increase"
    f = check(run([info("ruler", forbidden=True)], tests))
    assert f.status == "pass", f.message
    assert f.value == pytest.approx(tests[0].mean)  # the highest significant score, below the threshold
    assert check(run([info("ruler", forbidden=True)], tests), direction="either").status == "fail"  # 0.2 <= 0.3
    assert check(run([info("ruler", forbidden=True)], tests), alpha=0.5).status == "fail"  # dog: 0.18 < 0.5


def test_required_concept():
    used = [make_test("border", "cat", "l1", 0.9, 1e-5), make_test("border", "cat", "l2", 0.5, 0.9)]
    assert check(run([info("border", required=True, groups=["cat"])], used)).status == "pass"
    unused = [make_test("border", "cat", "l1", 0.6, 0.3), make_test("border", "cat", "l2", 0.5, 0.9)]
    f = check(run([info("border", required=True, groups=["cat"])], unused))
    assert f.status == "fail" and "required concept 'border' is not used for 'cat'" in f.message
    assert f.details["criterion"]["direction"] == "below"


def test_a_layer_that_cannot_separate_the_concept_says_nothing():
    tests = [make_test("ruler", "cat", "l1", 0.5, 0.9, acc=0.55), make_test("ruler", "cat", "l2", 0.99, 1e-9, acc=0.6)]
    f = check(run([info("ruler", forbidden=True, groups=["cat"])], tests))
    assert f.status == "error" and f.blocking  # not "unused": the layers cannot represent it
    assert "no tested layer separates the concept" in f.message and "0.60 < 0.70" in f.message


def test_nan_is_an_error_never_a_pass():
    bad = make_test("ruler", "cat", "l1", 0.5, math.nan)
    f = check(run([info("ruler", forbidden=True, groups=["cat"])], [bad]))
    assert f.status == "error"
    tests = [make_test("ruler", "cat", "l1", 0.9, 1e-9)]  # NaN measured elsewhere does not hide a violation
    assert check(run([info("ruler", forbidden=True, groups=["cat", "dog"])],
                     [*tests, make_test("ruler", "dog", "l1", 0.5, math.nan)])).status == "fail"


def test_what_cannot_run_is_an_error():
    assert check(None).status == "error"  # no [concepts] in the config
    assert "[concepts]" in check(None).message
    failed = run([info("ruler", forbidden=True)], [], error="TCAV could not run: RuntimeError: boom")
    assert check(failed).status == "error" and "boom" in check(failed).message
    neutral = run([info("stripes")], [make_test("stripes", "cat", "l1", 0.9, 1e-9)])
    assert "nothing to judge" in check(neutral).message and check(neutral).status == "error"
    assert check(neutral, concepts=["nope"]).status == "error"
    skipped = run([info("ruler", forbidden=True, groups=["cat"])], [], skipped={"ruler / cat": "3 inputs"})
    assert check(skipped).status == "error"  # no class could be tested


def test_warning_severity_warns():
    tests = [make_test("ruler", "dog", "l1", 0.93, 1e-6)]
    f = check(run([info("ruler", forbidden=True, groups=["dog"])], tests), severity="warning")
    assert f.status == "warn" and not f.blocking
