"""Completeness is part of the verdict: the evidence_complete rule on hand-built evidence (each kind of missing
item, each with a complete twin), the automatic rules every pack gets, and each task's default pack."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from audit.concepts.result import ConceptInfo, ConceptRun, ConceptTest
from audit.datachecks import DataChecks
from audit.errors import ConfigError
from audit.inputs import check_applies
from audit.products import Finding, Picks, Predictions
from audit.resources import rules_dir
from audit.rules import registry
from audit.rules.evaluate import evaluate, evaluate_each, verdict
from audit.rules.evidence import Evidence
from audit.rules.pack import find_pack, load_pack, with_automatic_rules
from audit.tasks import TaskOptions, build_task

IDS = np.array([f"s{i}" for i in range(6)], dtype=object)


def _rule(kind: str, **params):
    cls = registry()[kind]
    return cls(cls.Params.model_validate({"id": params.pop("id", kind.replace("_", "-")), "kind": kind, **params}))


def _evidence(**kw) -> Evidence:
    preds = Predictions(ids=IDS, labels=np.arange(6) % 2, probs=np.tile([[0.8, 0.2], [0.1, 0.9]], (3, 1)),
                        metadata=pd.DataFrame(index=range(6)))
    return Evidence(classes=("a", "b"), predictions=preds, metrics=None, picks=Picks({}, {}), probe=None,  # type: ignore[arg-type]
                    explainers=("gradcam", "saliency"), n_listed=6, **kw)


def _complete(evidence: Evidence, severity: str = "error") -> Finding:
    (f,) = evaluate([_rule("evidence_complete", id="evidence-complete", severity=severity)], evidence)
    return f


def _found(rule, status: str, message: str = "") -> tuple:
    return rule, (Finding(rule.params.id, rule.kind, rule.params.severity, status, message),)  # type: ignore[arg-type]


def test_an_unavailable_explainer_blocks_and_is_named():
    gone = _complete(_evidence(unavailable={"gradcam": "File is not a zip file"}))
    assert gone.status == "error" and gone.blocking and gone.details["incomplete"] is True
    assert gone.details["missing"] == [{"what": "explainer", "name": "gradcam",
                                        "reason": "unavailable (File is not a zip file)"}]
    assert "explainer 'gradcam': unavailable (File is not a zip file)" in gone.message
    assert gone.value == 1 and gone.threshold == 0 and verdict([gone]) == "fail"
    ok = _complete(_evidence())  # the twin: every listed explainer produced maps
    assert ok.status == "pass" and not ok.blocking and ok.details["incomplete"] is False
    assert "2 listed explainer(s) produced maps" in ok.message


def test_a_warning_rule_that_could_not_run_is_missing_evidence_and_names_its_maps():
    roi = _rule("roi_attribution", severity="warning", explainer="gradcam")
    metric = _rule("metric_min", metric="accuracy", threshold=0.5)
    earlier = (_found(roi, "error", "rule could not be evaluated: BadZipFile: File is not a zip file"),
               _found(metric, "pass"))
    f = _complete(_evidence(earlier=earlier))
    assert f.status == "error" and f.blocking  # the warning rule alone would not have blocked
    (m,) = f.details["missing"]
    assert m["what"] == "rule" and m["name"] == "roi-attribution"
    assert "severity warning (reads gradcam maps)" in m["reason"] and "not a zip file" in m["reason"]
    # the twin: the same rules when they ran; a rule that does not apply is not missing evidence
    ran = (_found(roi, "warn"), _found(metric, "not_applicable"))
    assert _complete(_evidence(earlier=ran)).status == "pass"


def test_a_pack_may_downgrade_missing_evidence_to_a_warning():
    f = _complete(_evidence(unavailable={"lime": "no segmentation"}), severity="warning")
    assert f.status == "error" and f.severity == "warning" and not f.blocking


def _run(tests: tuple[ConceptTest, ...], skipped: dict[str, str] | None = None, error: str = "") -> ConceptRun:
    infos = (ConceptInfo("stripes", "c/stripes", 10, 10, True, False, ("a", "b")),
             ConceptInfo("plain", "c/plain", 10, 10, False, False, ("a", "b")))  # marked neither: not asked for
    return ConceptRun(infos, ("l1",), 4, 10, "flatten", "sgd", "held-out set", True, 0.7, tests, (),
                      skipped or {}, error=error)


def _test(group: str) -> ConceptTest:
    s = np.full(4, 0.5)
    return ConceptTest("stripes", group, 0, "l1", 12, s, s, 0.0, 1.0, 1.0, 0.9, True)


def test_a_marked_concept_not_tested_for_a_class_is_missing():
    part = _complete(_evidence(concepts=_run((_test("a"),), {"stripes / b": "3 inputs < min_inputs 10"})))
    assert part.blocking
    assert part.details["missing"] == [{"what": "concept", "name": "stripes",
                                        "reason": "marked forbidden, not tested for 'b': 3 inputs < min_inputs 10"}]
    failed = _complete(_evidence(concepts=_run((), error="no layer hooked")))
    assert [m["reason"] for m in failed.details["missing"]] == ["the concept tests could not run: no layer hooked"]
    whole = _complete(_evidence(concepts=_run((_test("a"), _test("b")))))
    assert whole.status == "pass" and "1 marked concept(s) tested for every class" in whole.message


def _checks(unreadable: tuple[str, ...] = (), train: dict | None = None) -> DataChecks:
    return DataChecks(6, ("a", "b"), (), (), 0, 0, train, unreadable)


def test_data_checks_a_rule_reads_must_cover_every_scored_image():
    dup = _rule("data_duplicates", severity="warning")
    leak = _rule("data_duplicates", id="train-overlap", check="train_overlap")
    earlier = (_found(dup, "pass"), _found(leak, "pass"))
    train = {"n_train": 20, "n_train_unreadable": 2, "fraction_heldout_overlapping": 0.0}
    f = _complete(_evidence(data=_checks(("s3", "gone"), train), earlier=earlier))
    reasons = [m["reason"] for m in f.details["missing"]]
    assert reasons == ["1 image(s) the model scored could not be read by the data checks (first: s3)",
                       ("2 of 20 training image(s) (data.train_manifest) could not be read, so the overlap was not "
                        "checked for them")]  # 'gone' was not scored: the skipped-images rule reports it
    assert _complete(_evidence(data=None, earlier=earlier)).details["missing"][0]["reason"] == \
        "the data checks did not run"
    assert _complete(_evidence(data=_checks(), earlier=earlier)).status == "pass"
    # no rule reads the data checks: they are information only, nothing is asked of them
    assert _complete(_evidence(data=_checks(("s3",)))).status == "pass"


def test_every_pack_gets_the_completeness_check_and_marked_concepts_their_rule():
    default = load_pack(find_pack("default", rules_dir()))
    pack = with_automatic_rules(default, {"stripes": "forbidden", "ruler": "required"})
    added = pack.rules[len(default.rules):]
    assert [(r.kind, r.params.id, r.params.severity) for r in added] == [
        ("concept_reliance", "concept-reliance", "error"), ("evidence_complete", "evidence-complete", "error")]
    assert added[0].params.concepts == ["stripes", "ruler"] and "'stripes' forbidden" in added[0].params.description
    assert pack.automatic == ("concept-reliance", "evidence-complete")
    # a pack rule judging every marked concept (no 'concepts' list) leaves nothing to add; one naming some does
    judged = replace(default, rules=(*default.rules, _rule("concept_reliance", severity="warning")))
    assert [r.kind for r in with_automatic_rules(judged, {"stripes": "forbidden"}).rules[len(judged.rules):]] == \
        ["evidence_complete"]
    some = replace(default, rules=(*default.rules, _rule("concept_reliance", id="concept-reliance",
                                                         concepts=["stripes"])))
    extra = with_automatic_rules(some, {"stripes": "forbidden", "ruler": "required"}).rules[len(some.rules)]
    assert extra.params.id == "concept-reliance-2" and extra.params.concepts == ["ruler"]
    # listing the check is how a pack downgrades it: kept as listed, nothing added
    lenient = replace(default, rules=(*default.rules, _rule("evidence_complete", severity="warning")))
    assert with_automatic_rules(lenient, {}) is lenient and lenient.evidence_rule().params.severity == "warning"


def _predictions(task: str, rng: np.random.Generator) -> Predictions:
    n, meta = 40, pd.DataFrame(index=range(40))
    ids = np.array([f"s{i}" for i in range(n)], dtype=object)
    if task in ("multiclass", "binary", "anomaly"):
        k = 3 if task == "multiclass" else 2
        y = np.arange(n) % k
        logits = rng.normal(0, 1, (n, k)) + 3 * np.eye(k)[y]
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        return Predictions(ids=ids, labels=y, probs=p, metadata=meta)
    if task == "multilabel":
        y = (rng.random((n, 3)) < 0.5).astype(np.int64)
        return Predictions(ids=ids, labels=y, probs=np.clip(0.8 * y + 0.2 * rng.random((n, 3)), 0, 1), metadata=meta)
    truth = rng.integers(0, 3, (n, 8, 8)).astype(np.int16)
    dense = np.where(rng.random(truth.shape) < 0.9, truth, 0).astype(np.int16)
    return Predictions(ids=ids, labels=np.zeros(n, np.int64), probs=np.full((n, 4), 0.25), metadata=meta,
                       dense=dense, dense_truth=truth)


@pytest.mark.parametrize(("task", "classes", "pack"), [
    ("multiclass", ("a", "b", "c"), "default"), ("binary", ("neg", "pos"), "default"),
    ("multilabel", ("a", "b", "c"), "default-multilabel"), ("segmentation", ("bg", "a", "b"), "default-segmentation"),
    ("anomaly", ("normal", "anomalous"), "default-anomaly")])
def test_the_default_pack_is_the_tasks_own_and_every_rule_of_it_runs(task, classes, pack):
    path = find_pack("default", rules_dir(), task)
    assert path.name == f"{pack}.toml"
    t = build_task(task, classes, None, TaskOptions())
    rules = with_automatic_rules(load_pack(path), {}).rules
    for r in rules:
        check_applies(r, t)  # refused kinds raise ConfigError
    preds = _predictions(task, np.random.default_rng(0))
    if task != "segmentation":  # a segmentation's fit reads the masks from disk: the truth is given here
        t, preds = t.fit(preds)
    evidence = replace(_evidence(), classes=classes, predictions=preds, n_listed=preds.n, explainers=(),
                       metrics=t.metrics(preds, np.random.default_rng(0)))
    done = evaluate_each([r for r in rules if r.phase == "main"], evidence)
    statuses = {f.rule: f.status for _, fs in done for f in fs}
    assert set(statuses.values()) <= {"pass", "fail", "warn"}, statuses  # measured, never an error
    (last,) = evaluate([rules[-1]], replace(evidence, earlier=done))
    assert last.status == "pass"


def test_a_pack_path_or_another_bundled_name_is_not_swapped_for_the_task():
    assert find_pack("ci-gate", rules_dir(), "multilabel").name == "ci-gate.toml"
    assert find_pack("default", rules_dir()).name == "default.toml"
    assert find_pack("default.toml", rules_dir(), "multilabel").name == "default.toml"  # a path is taken as given
    with pytest.raises(ConfigError, match="no bundled pack 'default-multilabel-x'"):
        find_pack("default-multilabel-x", rules_dir(), "multilabel")
