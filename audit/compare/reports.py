"""Compare a candidate audit with a baseline (the released model) from their results.json files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .labelsets import compare_label_sets

PAIRED_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
REPORTED_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "ece", "nll", "brier")
RESAMPLES = 1000
MAX_LISTED_FLIPS = 50


def load_results(path: str | Path) -> dict[str, Any]:
    """A results.json, or a report folder holding one."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise DataError(f"{p}: baseline results.json not found")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise DataError(f"{p}: not a model-audit results.json (top level is {type(doc).__name__}, not an object)")
    for key in ("schema_version", "metrics", "predictions", "rules", "classes"):
        if key not in doc:
            raise DataError(f"{p}: not a model-audit results.json (missing {key!r})")
    if str(doc["schema_version"]).split(".")[0] not in ("1", "2"):  # 2.0 only added fields compare does not read
        raise DataError(f"{p}: schema_version {doc['schema_version']} is not supported (expected 1.x or 2.x)")
    return doc


def _resampled_metrics(y: np.ndarray, p: np.ndarray, weights: np.ndarray, C: int) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and macro F1 (scikit-learn's definitions) for every bootstrap resample at once.

    ``weights`` (R, n) holds how often each sample appears in each resample."""
    Y = np.eye(C)[y]
    P = np.eye(C)[p]
    tp = weights @ (Y * P)
    support = weights @ Y
    predicted = weights @ P
    n = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), np.nan)
    return {
        "accuracy": tp.sum(axis=1) / n,
        "balanced_accuracy": np.nanmean(recall, axis=1),  # classes present in y_true
        "macro_f1": np.nanmean(f1, axis=1),  # classes present in y_true or y_pred
    }


def _paired_cis(y: np.ndarray, pb: np.ndarray, pc: np.ndarray, C: int, rng: np.random.Generator
                ) -> dict[str, tuple[float, float]]:
    """95 % percentile intervals of candidate − baseline over paired bootstrap resamples of the samples."""
    n = len(y)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=RESAMPLES).astype(float)
    mb = _resampled_metrics(y, pb, weights, C)
    mc = _resampled_metrics(y, pc, weights, C)
    out = {}
    for name in PAIRED_METRICS:
        lo, hi = np.quantile(mc[name] - mb[name], [0.025, 0.975])
        out[name] = (float(lo), float(hi))
    return out


def compare_results(baseline: Mapping[str, Any], candidate: Mapping[str, Any], unpaired: bool = False,
                    seed: int = 0) -> dict[str, Any]:
    """Deltas, per-class regressions, rule changes and prediction flips (JSON-safe dict)."""
    if list(baseline["classes"]) != list(candidate["classes"]):
        raise DataError(
            f"baseline classes {baseline['classes']} differ from candidate classes {candidate['classes']}: "
            "the audits are not comparable"
        )
    classes = list(candidate["classes"])
    bp, cp = baseline["predictions"], candidate["predictions"]
    b_ids, c_ids = list(map(str, bp["ids"])), list(map(str, cp["ids"]))
    paired = set(b_ids) == set(c_ids) and len(b_ids) == len(c_ids)
    # what a task keeps per sample (Task.predictions_json): the truth ("labels", or a segmentation's
    # "classes_present"), the answer ("predicted", absent for per-pixel tasks) and a per-sample score shown with flips
    truth = "labels" if "labels" in cp else "classes_present"
    answers = "predicted" in bp and "predicted" in cp
    score = next((k for k in ("confidence", "score") if k in bp and k in cp), None)
    if paired:
        b_row = {sid: i for i, sid in enumerate(b_ids)}
        order = np.array([b_row[s] for s in c_ids])
        yb = np.asarray(bp[truth])[order]
        yc = np.asarray(cp[truth])
        if yb.shape != yc.shape or not np.array_equal(yb, yc):
            bad = c_ids[int(np.flatnonzero((yb != yc).reshape(len(yc), -1).any(axis=1))[0])] \
                if yb.shape == yc.shape else c_ids[0]
            raise DataError(f"sample {bad!r} has different labels in baseline and candidate: not the same held-out set")
        if answers:
            pb = np.asarray(bp["predicted"])[order]
            pc = np.asarray(cp["predicted"])
        if yc.ndim == 1 and score is not None:
            conf_b = np.asarray(bp[score], dtype=float)[order]
            conf_c = np.asarray(cp[score], dtype=float)
    hb = (baseline.get("provenance") or {}).get("data", {}).get("images_sha256")
    hc = (candidate.get("provenance") or {}).get("data", {}).get("images_sha256")
    if paired and hb and hc and hb != hc:
        if not unpaired:
            raise DataError(
                "baseline and candidate list the same sample ids and labels but the image files differ "
                f"(images_sha256 {str(hb)[:12]} vs {str(hc)[:12]}): not the same held-out set; use --unpaired to "
                "compare headline metrics anyway"
            )
        paired = False
    if not paired and not unpaired:
        only_b = len(set(b_ids) - set(c_ids))
        only_c = len(set(c_ids) - set(b_ids))
        raise DataError(
            f"baseline and candidate were audited on different held-out sets ({only_b} sample ids only in the "
            f"baseline, {only_c} only in the candidate); use --unpaired to compare headline metrics anyway"
        )
    rng = np.random.default_rng(seed)
    bm, cm = baseline["metrics"], candidate["metrics"]
    if "per_label" in cm:  # multi-label audits: label by label
        sets = compare_label_sets(
            bm, cm, classes, c_ids, yc if paired else np.zeros((0, len(classes))),
            np.asarray(bp["scores"])[order] if paired and "scores" in bp else None,
            np.asarray(cp["scores"]) if paired and "scores" in cp else None,
            pb if paired else np.zeros((0, len(classes))), pc if paired else np.zeros((0, len(classes))), seed)
        if not paired:
            sets.pop("flips")
        return {"paired": paired, **_header(baseline), **sets, "rules": _rule_changes(baseline, candidate)}
    metrics: dict[str, Any] = {}
    single = paired and answers and yc.ndim == 1  # one class per sample with the model's answer: paired intervals
    cis = _paired_cis(yc, pb, pc, len(classes), rng) if single else {}
    # the classification metrics first, then every other headline figure both audits state (AUROC, mean IoU, …)
    names = [*REPORTED_METRICS, *(n for n, v in cm.items() if isinstance(v, float) and n not in REPORTED_METRICS)]
    for name in names:
        b, c = bm.get(name), cm.get(name)
        if not isinstance(b, (int, float)) or not isinstance(c, (int, float)):
            continue
        entry: dict[str, Any] = {"baseline": b, "candidate": c, "delta": c - b}
        if name in cis:
            entry["delta_ci95"] = list(cis[name])
        metrics[name] = entry
    b_cls = {r["class"]: r for r in bm.get("per_class", []) if "recall" in r}
    per_class = []
    for r in cm.get("per_class", []):
        b = b_cls.get(r["class"])
        if b is None or "recall" not in r:
            continue
        per_class.append({
            "class": r["class"], "recall_baseline": b["recall"], "recall_candidate": r["recall"],
            "recall_delta": r["recall"] - b["recall"], "f1_delta": r["f1"] - b["f1"],
        })
    out: dict[str, Any] = {"paired": paired, **_header(baseline), "metrics": metrics, "per_class": per_class,
                           "rules": _rule_changes(baseline, candidate)}
    if single:
        if score is None:
            conf_b = conf_c = np.full(len(yc), np.nan)
        to_wrong = np.flatnonzero((pb == yc) & (pc != yc))
        to_right = np.flatnonzero((pb != yc) & (pc == yc))
        to_wrong = to_wrong[np.argsort(-conf_c[to_wrong], kind="stable")]
        to_right = to_right[np.argsort(-conf_c[to_right], kind="stable")]

        def _flip(i: int) -> dict[str, Any]:
            return {"id": c_ids[i], "label": classes[yc[i]], "baseline": classes[pb[i]], "candidate": classes[pc[i]],
                    "confidence_baseline": float(conf_b[i]), "confidence_candidate": float(conf_c[i])}

        out["flips"] = {
            "to_wrong": len(to_wrong), "to_right": len(to_right),
            "to_wrong_examples": [_flip(int(i)) for i in to_wrong[:MAX_LISTED_FLIPS]],
            "to_right_examples": [_flip(int(i)) for i in to_right[:MAX_LISTED_FLIPS]],
        }
    return out


def _header(baseline: Mapping[str, Any]) -> dict[str, Any]:
    return {"baseline": {"name": baseline.get("name"), "verdict": baseline.get("verdict"),
                         "model_sha256": baseline.get("provenance", {}).get("model", {}).get("sha256")}}


def _rule_changes(baseline: Mapping[str, Any], candidate: Mapping[str, Any]) -> dict[str, Any]:
    b_rules = {r["id"]: r["status"] for r in baseline["rules"]}
    c_rules = {r["id"]: r["status"] for r in candidate["rules"]}
    bad = ("fail", "error")
    return {"newly_failing": sorted(i for i, s in c_rules.items() if s in bad and b_rules.get(i) not in bad),
            "newly_passing": sorted(i for i, s in c_rules.items() if s == "pass" and b_rules.get(i) in bad),
            "baseline": b_rules, "candidate": c_rules}


def candidate_view(predictions: Mapping[str, Any], metrics: Mapping[str, Any], classes: list[str],
                   rules: list[dict[str, Any]], images_sha256: str | None = None) -> dict[str, Any]:
    """The subset of a results.json that compare_results reads, built from an audit in progress (``predictions``:
    the task's ``predictions_json``)."""
    return {
        "schema_version": "1.0", "classes": classes, "metrics": dict(metrics), "rules": rules,
        "provenance": {"data": {"images_sha256": images_sha256}},
        "predictions": {k: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for k, v in predictions.items()},
    }
