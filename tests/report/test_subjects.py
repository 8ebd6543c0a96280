"""Every finding names what it judged: the metric rule names the label of ``min_<metric>`` with its counts (counted
by hand here), results.json states the subject and the headline once, and summary.md, JUnit, MLflow, the model card
and Annex IV show that headline (issue: "min_sensitivity = 0.0000, below the floor 0.6000" named no label)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt
from report_helpers import results, rule

from audit.config import ModelCardConfig
from audit.products import Picks, Predictions
from audit.report.criteria import headline, subject, verdict_sentence
from audit.report.mlflow_log import run_contents
from audit.report.writers.annex_iv import build_annex_iv
from audit.report.writers.junit import build_junit
from audit.report.writers.model_card import build_model_card
from audit.report.writers.summary import build_summary
from audit.rules.evidence import Evidence
from audit.rules.metric import MetricMin, MetricParams
from audit.scoring.multilabel import multilabel_metrics

LABELS = ("effusion", "nodule", "mass")


def _multilabel_evidence() -> Evidence:
    """'nodule' is never found (its scores all below the threshold): sensitivity 0 with tp 0, fn 40."""
    rng = np.random.default_rng(0)
    n = 120
    y = (rng.random((n, 3)) < [0.5, 1 / 3, 0.4]).astype(int)
    y[:40, 1], y[40:, 1] = 1, 0
    s = np.clip(y * 0.7 + rng.normal(0.15, 0.1, (n, 3)), 0, 1)
    s[:, 1] = 0.2  # below 0.5 for every image
    decisions = (s >= 0.5).astype(int)
    preds = Predictions(ids=np.array([f"s{i}" for i in range(n)]), labels=y, probs=s, metadata=pd.DataFrame(index=range(n)),
                        decisions=decisions)
    metrics = multilabel_metrics(LABELS, y, s, [0.5] * 3, ["default 0.5"] * 3, seed=0)
    return Evidence(classes=LABELS, predictions=preds, metrics=metrics, picks=Picks({}, {}), probe=None)


def test_min_metric_names_the_worst_label_with_its_counts():
    ev = _multilabel_evidence()
    rule_ = MetricMin(MetricParams(id="label-floor", kind="metric_min", metric="min_sensitivity", threshold=0.6))
    (f,) = rule_.check(ev)
    y, d = ev.predictions.labels[:, 1], ev.predictions.decisions[:, 1]
    tp, fn = int(((y == 1) & (d == 1)).sum()), int(((y == 1) & (d == 0)).sum())
    assert (tp, fn) == (0, 40)
    assert f.status == "fail" and f.details["subject"] == {"kind": "label", "name": "nodule",
                                                           "counts": {"tp": tp, "fn": fn}}
    assert "lowest: label 'nodule' (tp 0, fn 40)" in f.message
    per_label = {lab: ev.metrics.scalar(f"sensitivity:{lab}") for lab in LABELS}
    assert min(per_label, key=per_label.get) == "nodule"
    # a metric of one named label names it too; a metric of the whole set names nothing
    (g,) = MetricMin(MetricParams(id="m", kind="metric_min", metric="specificity:mass", threshold=0.1)).check(ev)
    assert g.details["subject"]["name"] == "mass" and set(g.details["subject"]["counts"]) == {"tn", "fp"}
    (h,) = MetricMin(MetricParams(id="m", kind="metric_min", metric="auroc", threshold=0.1)).check(ev)
    assert "subject" not in h.details


BLOCKING = rule("label-floor", "fail", "min_sensitivity = 0.0000, below the floor 0.6000", value=0.0, threshold=0.6,
                details={"subject": {"kind": "label", "name": "nodule", "counts": {"tp": 0, "fn": 137}}})
BLOCKING["criterion"] = {"name": "min_sensitivity", "unit": "metric value", "direction": "min", "source": "rule"}
BLOCKING["subject"] = subject(BLOCKING["details"])
BLOCKING["headline"] = headline(BLOCKING)
REGION = rule("region-sweep", "fail", "…", value=0.31, threshold=0.2,
              details={"worst_class": "seven", "worst_region": "top_left",
                       "regions": {"top_left": {"label": "top-left corner 16 × 16 px"}}})
REGION["criterion"] = {"name": "excess probability drop", "unit": "probability", "direction": "max", "source": "rule"}


def _doc() -> dict:
    res = results([BLOCKING, rule("ok", "pass")])
    res["summary"]["reason"] = verdict_sentence(res)
    return res


def test_a_region_finding_names_the_smaller_region_that_carries_the_effect():
    details = {"worst_class": "seven", "worst_region": "border_12",
               "regions": {"border_12": {"label": "border frame 12 px"}},
               "named_region": {"key": "border_12&top_left_16", "boxes": [],
                                "label": "box x 0–12, y 0–12 px, where the border frame 12 px and the top-left "
                                         "corner box 16 × 16 px overlap"}}
    assert subject(details) == {"text": "for 'seven', border frame 12 px, carried by box x 0–12, y 0–12 px",
                                "names": ["seven", "border frame 12 px", "box x 0–12, y 0–12 px"]}
    same = {**details, "named_region": {"key": "border_12", "label": "border frame 12 px"}}  # the judged one itself
    assert subject(same)["text"] == "for 'seven', border frame 12 px"


def test_results_headline_names_label_counts_direction_and_limit():
    assert BLOCKING["subject"] == {"text": "label 'nodule' (tp 0, fn 137)", "names": ["nodule"]}
    assert BLOCKING["headline"] == "min_sensitivity 0.000 < 0.600 (label 'nodule' (tp 0, fn 137))"
    assert subject(REGION["details"]) == {"text": "for 'seven', top-left corner 16 × 16 px",
                                          "names": ["seven", "top-left corner 16 × 16 px"]}
    assert headline(REGION) == "excess probability drop 0.310 > 0.200 (for 'seven', top-left corner 16 × 16 px)"
    assert subject({}) == {}
    assert "label 'nodule'" in verdict_sentence(_doc())


def test_every_output_shows_the_headline():
    doc = _doc()
    md = MarkdownIt("gfm-like").render(build_summary(doc, "Macro AUROC 0.81; lowest label 'effusion'."))
    assert "label-floor</code>: min_sensitivity 0.000 &lt; 0.600 (label 'nodule' (tp 0, fn 137))" in md
    assert "What blocks the release" in md
    junit = build_junit(doc)
    assert "message=\"min_sensitivity 0.000 &lt; 0.600 (label 'nodule' (tp 0, fn 137))\"" in junit
    _, _, tags = run_contents(doc, "doc", "audit-report")
    assert tags["rule.label-floor.criterion"] == BLOCKING["headline"]
    assert tags["rule.label-floor.subject"] == "label 'nodule' (tp 0, fn 137)"
    card_md, card_json = build_model_card(doc, ModelCardConfig(), "0" * 64)
    annex_md, _ = build_annex_iv(doc, ModelCardConfig(), "0" * 64)
    for text in (card_md, card_json, annex_md):
        assert "nodule" in text and "tp 0, fn 137" in text


@pytest.mark.parametrize("status", ["warn", "fail"])
def test_a_headline_written_before_subjects_existed_is_made_again(status):
    old = dict(BLOCKING, status=status)
    del old["headline"]
    assert "label 'nodule'" in build_junit(results([old]))


def test_concept_and_regression_results_name_what_they_judged():
    concept = {"concepts": {"marker": {"role": "forbidden", "classes": {
        "seven": {"status": "used"}, "one": {"status": "not used"}}},
        "stroke": {"role": "required", "classes": {"seven": {"status": "used"}, "two": {"status": "not used"}}}}}
    assert subject(concept) == {"text": "concept 'marker' for 'seven', concept 'stroke' for 'two'",
                                "names": ["marker", "seven", "stroke", "two"]}
    clean = {"concepts": {"marker": {"role": "forbidden", "classes": {"seven": {"status": "not used"}}}}}
    assert subject(clean) == {}  # nothing held against the model: nothing named
    gate = {"newly_failing": ["concept-marker", "region-sweep"], "newly_passing": []}
    assert subject(gate)["names"] == ["concept-marker", "region-sweep"]
    assert subject({"newly_failing": []}) == {}
