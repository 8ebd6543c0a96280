"""confounder_metadata: does the model *use* a metadata attribute (site, scanner) within a class?

For each metadata column (values as strings; empty values left out), within the true classes:

1. Use (judged): a value v of the column is a shortcut for group g when it raises the model's score for g in
   *every* true class (``audit.rules._use``: the smallest within-class difference of g's mean score between
   samples with and without v, maximised over values and groups). A harder subgroup lowers its own class's
   score and fails this; a column the model ignores moves nothing. The p-value comes from shuffling the column
   within each true class (so a label that is merely correlated with the column gives no signal), with the
   maximum over values and groups taken in the null too. With several columns the level is Bonferroni-corrected
   (alpha / number of columns). The column fails when p < the level (the predictions depend on it) *and* the
   shift is above ``max_shift`` (an effect-size floor: a dependence too small to matter is reported, not failed).
   Measured on the shortcut zoo (bench/zoo.py, site kinds, CNN seeds 0-2 and ViT seeds 0 and 2): clean twins
   shift at most 0.006 with p >= 0.18; confounded models 0.026-0.62 with p <= 0.008 (p = 0.001 for every model
   that relies on its site cue). A chance dependence on a column no model can see (the zoo's 'scanner') reaches
   a shift of 0.035 at p = 0.03, so the level stays strict (alpha 0.01) and the floor is max_shift 0.02. The old
   limit of 0.1 missed a planted site cue whose smallest class shift was 0.09 (0.24 and 0.53 in the other
   classes, p = 0.001).
2. Encoding (information, never a failure): a linear probe from the penultimate features
   (``predictions.features``) to the attribute, beyond the label: features centred within each true class plus
   the class as one-hot covariates, out-of-fold scores ranked within each true class (class-size-weighted mean
   of within-class ROC AUCs; a label-only baseline scores 0.5). When the site is visible in the image (letterbox
   bars, a blurrier scanner), every model's features encode it; only a dependence of the predictions is use.
3. Accuracy per attribute value against its class mix (information).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ..products import Finding
from ._shortcuts import MAX_EVIDENCE_IDS, rnd
from ._use import consistent_shift
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence
from .shortcut_classes import METADATA


class ConfounderMetadataParams(RuleParams):
    columns: list[str] = Field(default_factory=list, description="metadata columns; empty = every column with "
                               "2..max_levels distinct values")
    max_levels: int = Field(default=10, ge=2)
    alpha: float = Field(default=0.01, gt=0.0, lt=1.0, description="level of the within-class permutation test "
                         "(Bonferroni over columns)")
    n_permutations: int = Field(default=999, ge=99)
    max_shift: float = Field(default=0.02, ge=0.0, le=1.0, description="effect-size floor: the consistent "
                             "within-class shift of a group's mean score between samples with and without an "
                             "attribute value must exceed this (besides p < alpha) to fail")
    probe: bool = Field(default=True, description="report the linear probe on the penultimate features (information)")
    max_auc: float | None = Field(default=None, ge=0.5, le=1.0, description="(information) probe AUCs above this are "
                                  "called out in the message as encoding; never a failure")
    folds: int = Field(default=5, ge=2)
    max_accuracy_gap: float | None = Field(default=None, ge=0.0, le=1.0, description="(information only)")
    min_group_size: int = Field(default=10, ge=2, description="smallest attribute group judged in a class")
    scope: Literal["all"] = "all"


def chi2_stat(table: np.ndarray) -> np.ndarray:
    """Pearson chi-square of tables (..., A, P), rows/columns with zero margins dropped implicitly."""
    n = table.sum(axis=(-2, -1), keepdims=True)
    e = table.sum(axis=-1, keepdims=True) * table.sum(axis=-2, keepdims=True) / np.where(n > 0, n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(e > 0, (table - e) ** 2 / np.where(e > 0, e, 1), 0.0)
    return t.sum(axis=(-2, -1))


def permutation_chi2(attr: np.ndarray, pred: np.ndarray, labels: np.ndarray, n_perm: int,
                     rng: np.random.Generator) -> tuple[float, float, dict[int, float]]:
    """Sum over true classes of chi2(attribute × prediction); p-value from within-class shuffles."""
    A = int(attr.max()) + 1
    P = int(pred.max()) + 1
    observed = 0.0
    null = np.zeros(n_perm)
    per_class: dict[int, float] = {}
    for c in np.unique(labels):
        r = np.flatnonzero(labels == c)
        a, q = attr[r], pred[r]
        if len(np.unique(a)) < 2 or len(np.unique(q)) < 2:
            per_class[int(c)] = 0.0
            continue
        obs = chi2_stat(np.bincount(a * P + q, minlength=A * P).reshape(A, P).astype(float))
        per_class[int(c)] = float(obs)
        observed += float(obs)
        perm = np.argsort(rng.random((n_perm, len(r))), axis=1)
        ap = a[perm]
        flat = (np.arange(n_perm)[:, None] * (A * P) + ap * P + q[None, :]).ravel()
        tables = np.bincount(flat, minlength=n_perm * A * P).reshape(n_perm, A, P).astype(float)
        null += chi2_stat(tables)
    p = (1.0 + float(np.sum(null >= observed - 1e-9))) / (1.0 + n_perm)
    return observed, p, per_class


def _auc(y: np.ndarray, scores: np.ndarray, levels: list[int], min_n: int) -> float | None:
    """Macro one-vs-rest AUC over the levels present with at least min_n samples (and min_n others)."""
    aucs = []
    for lv in levels:
        pos = y == lv
        if pos.sum() >= min_n and (~pos).sum() >= min_n:
            aucs.append(roc_auc_score(pos, scores[:, lv]))
    return float(np.mean(aucs)) if aucs else None


def within_class_auc(features: np.ndarray, attr: np.ndarray, labels: np.ndarray, folds: int, min_n: int,
                     seed: int) -> dict:
    """Linear probe beyond the label (see module doc): within-class AUC, pooled AUC, label-only baseline."""
    A = int(attr.max()) + 1
    C = int(labels.max()) + 1
    f = np.asarray(features, dtype=np.float64)
    f = (f - f.mean(0)) / (f.std(0) + 1e-8)
    for c in range(C):
        r = labels == c
        if r.any():
            f[r] -= f[r].mean(0)
    X = np.hstack([f, np.eye(C)[labels] * 3.0])
    strata = labels * A + attr
    counts = np.bincount(strata)
    k = int(min(folds, counts[counts > 0].min()))
    if k < 2:
        strata = attr
        k = int(min(folds, np.bincount(attr)[np.bincount(attr) > 0].min()))
    if k < 2:
        return {"auc": None, "reason": "an attribute value has fewer than 2 samples"}
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    clf = LogisticRegression(C=1.0, max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proba = cross_val_predict(clf, X, attr, cv=cv.split(X, strata), method="predict_proba")
    # label-only baseline: out-of-fold class-conditional frequencies of the attribute
    base = np.zeros((len(attr), A))
    for tr, te in cv.split(X, strata):
        for c in range(C):
            trc = tr[labels[tr] == c]
            freq = np.bincount(attr[trc], minlength=A) + 0.5
            base[te[labels[te] == c]] = freq / freq.sum()
    levels = sorted(set(attr.tolist()))
    per_class = {}
    num, den = 0.0, 0
    for c in range(C):
        r = labels == c
        a = _auc(attr[r], proba[r], levels, min_n)
        per_class[c] = a
        if a is not None:
            num += a * int(r.sum())
            den += int(r.sum())
    return {
        "auc": num / den if den else None,
        "per_class": per_class,
        "pooled_auc": _auc(attr, proba, levels, min_n),
        "label_only_pooled_auc": _auc(attr, base, levels, min_n),
        "folds": k,
    }


def accuracy_gaps(attr: np.ndarray, correct: np.ndarray, labels: np.ndarray, min_n: int) -> dict[int, dict]:
    """Per attribute value v: its accuracy, the accuracy expected from its class mix (the other values'
    accuracy in the same true classes, weighted by v's class counts), the gap (expected − observed; positive =
    worse) and a z-score of the gap (binomial variances, smoothed)."""
    out: dict[int, dict] = {}
    for v in np.unique(attr):
        inv = attr == v
        entry: dict = {"n": int(inv.sum()), "accuracy": float(correct[inv].mean())}
        parts = []
        for c in np.unique(labels[inv]):
            a, b = (labels == c) & inv, (labels == c) & ~inv
            if b.sum() == 0:
                continue
            n1, n0 = int(a.sum()), int(b.sum())
            k1, k0 = int(correct[a].sum()), int(correct[b].sum())
            p1, p0 = k1 / n1, k0 / n0
            s1, s0 = (k1 + 0.5) / (n1 + 1), (k0 + 0.5) / (n0 + 1)
            parts.append((n1, p0 - p1, s1 * (1 - s1) / n1 + s0 * (1 - s0) / n0, p0))
        n_cmp = sum(q[0] for q in parts)
        entry["n_compared"] = n_cmp
        if n_cmp >= min_n:
            w = np.array([q[0] for q in parts], dtype=float) / n_cmp
            gap = float(np.sum(w * [q[1] for q in parts]))
            se = float(np.sqrt(np.sum(w**2 * [q[2] for q in parts])))
            entry["gap"] = gap
            entry["expected_accuracy"] = float(np.sum(w * [q[3] for q in parts]))
            entry["z"] = gap / se if se > 0 else 0.0
        out[int(v)] = entry
    return out


CRITERION = Criterion("consistent within-class score shift", "difference of mean scores (0–1)", "above",
                      "and permutation p < alpha / columns")


class ConfounderMetadata(Rule[ConfounderMetadataParams]):
    kind = "confounder_metadata"
    title = "Use of a metadata attribute"
    criterion = CRITERION
    needs = frozenset({"whole_image"})
    shortcuts = (METADATA,)

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        pr = evidence.predictions
        meta = pr.metadata
        if p.columns:
            missing = [c for c in p.columns if c not in meta.columns]
            if missing:
                return [self.error(f"metadata column(s) {', '.join(missing)} not in the manifest (columns: "
                                   f"{', '.join(map(str, meta.columns)) or 'none'})")]
            cols = list(p.columns)
        else:
            cols = [c for c in meta.columns
                    if 2 <= meta[c].astype(str).replace("", np.nan).dropna().nunique() <= p.max_levels]
            if not cols:  # nothing listed and nothing testable: say so plainly (list columns to require them)
                what = (f"no metadata column has 2..{p.max_levels} distinct values (columns: "
                        f"{', '.join(map(str, meta.columns))})" if len(meta.columns) else
                        "the held-out set has no metadata columns")
                return [self.not_applicable(f"{what}; list columns in the rule to require them",
                                            {"columns_seen": [str(c) for c in meta.columns]})]
        task = evidence.probe.task if evidence.probe is not None else None
        groups = task.groups() if task is not None else evidence.classes
        labels2d = pr.labels.ndim == 2
        alpha = p.alpha / len(cols)
        table: dict[str, dict] = {}
        verdicts: list[tuple[bool, float, str]] = []  # failed, shift, column
        for col in cols:
            raw = meta[col]
            vals = raw.astype(str).where(raw.notna(), "")
            ok = (vals != "") & (vals.str.lower() != "nan")
            rows = np.flatnonzero(ok.to_numpy())
            levels = sorted(set(vals.iloc[rows].tolist()))
            entry: dict = {"levels": levels, "n": len(rows), "n_missing": int(pr.n - len(rows))}
            table[col] = entry
            if len(levels) < 2:
                entry["note"] = "fewer than two values"
                continue
            attr = pd.Categorical(vals.iloc[rows], categories=levels).codes.astype(np.int64)
            labels = pr.labels[rows]
            strata = ([labels[:, g].astype(np.int64) for g in range(len(groups))] if labels2d
                      else [labels.astype(np.int64)])
            use = consistent_shift(attr, pr.probs[rows][:, :len(groups)], strata, p.min_group_size,
                                   p.n_permutations, evidence.rng(f"{p.id}:{col}:perm"))
            entry.update(shift=rnd(use.shift), p_value=rnd(use.p_value, 6), alpha_corrected=rnd(alpha, 6),
                         n_classes_judged=use.n_strata)
            if use.shift is None:
                entry["note"] = (f"no value has {p.min_group_size} or more samples on both sides in two or more "
                                 "true classes")
                continue
            entry.update(worst_value=levels[use.value], worst_group=groups[use.group],
                         shift_per_class={(evidence.classes[c] if not labels2d else ("with" if c else "without")
                                           + f" '{groups[use.group]}'"): rnd(v) for c, v in use.per_class.items()})
            if p.probe and pr.features is not None and not labels2d:
                seed = int(evidence.rng(f"{p.id}:{col}:cv").integers(2**31 - 1))
                res = within_class_auc(pr.features[rows], attr, labels, p.folds, max(2, p.min_group_size // 2), seed)
                entry.update(probe_auc_within_class=rnd(res.get("auc")), probe_pooled_auc=rnd(res.get("pooled_auc")),
                             label_only_pooled_auc=rnd(res.get("label_only_pooled_auc")),
                             probe_auc_per_class={evidence.classes[c]: rnd(v)
                                                  for c, v in res.get("per_class", {}).items()},
                             probe_folds=res.get("folds"))
            if not labels2d:
                gaps = accuracy_gaps(attr, pr.correct[rows], labels, p.min_group_size)
                entry["accuracy"] = {levels[v]: {k: (rnd(x) if isinstance(x, float) else x) for k, x in g.items()}
                                     for v, g in gaps.items()}
            failed = bool(use.shift > p.max_shift and use.p_value is not None and use.p_value < alpha)
            entry["failed"] = failed
            verdicts.append((failed, float(use.shift), col))
        details = {"columns": table, "alpha": p.alpha, "bonferroni_columns": len(cols),
                   "statistic": "min over true classes of the group's mean-score difference (value vs rest), max over "
                                "values and groups; within-class permutation p",
                   "probe_method": "features centred within true class + class one-hot; AUC ranked within class "
                                   "(information: encoding is not use)"}
        if not verdicts:
            return [self.not_applicable("no column has a value with enough samples on both sides in two or more "
                                        f"true classes (min_group_size {p.min_group_size})", details)]
        verdicts.sort(key=lambda t: (not t[0], -t[1]))
        failed, shift, col = verdicts[0]
        e = table[col]
        details.update(worst_column=col)
        head = CRITERION.lead(shift, p.max_shift, f"for '{col}' = '{e['worst_value']}' → '{e['worst_group']}'",
                              digits=3)
        significant = e["p_value"] is not None and e["p_value"] < alpha
        verdict = ("the model uses it" if failed else
                   "a dependence too small to count as use" if significant else "no dependence beyond chance")
        per = ", ".join(f"{k} {v:+.2f}" for k, v in e["shift_per_class"].items() if v is not None)
        words = [(f"{head} (permutation p = {e['p_value']:.4f}, level {alpha:.4g}): within the true classes, "
                 f"'{e['worst_value']}' samples get a mean '{e['worst_group']}' score higher by {per}; "
                 f"{verdict}")]
        if e.get("probe_auc_within_class") is not None:
            enc = e["probe_auc_within_class"]
            note = (" — encoding, not use: information only" if p.max_auc is None or enc > p.max_auc else "")
            words.append(f". The penultimate features encode '{col}' beyond the label with within-class AUC "
                         f"{enc:.2f} (pooled {e['probe_pooled_auc']:.2f} vs label-only "
                         f"{e['label_only_pooled_auc']:.2f}){note}")
        n_fail = sum(1 for v in verdicts if v[0])
        msg = "".join(words) + "."
        msg += (f" {n_fail} of {len(verdicts)} column(s) used." if n_fail else
                f" No column used ({', '.join(c for _, _, c in verdicts)}).")
        ids: list[str] = []
        if failed:
            raw = meta[col].astype(str)
            gi = groups.index(e["worst_group"])
            wrong = ~task.members(pr, gi, "true") if task is not None else pr.labels != gi
            rows_w = np.flatnonzero((raw == e["worst_value"]).to_numpy() & wrong)  # Python ==: keeps a NUL
            order = np.argsort(-pr.probs[rows_w, gi], kind="stable")
            ids = [str(s) for s in pr.ids[rows_w][order][:MAX_EVIDENCE_IDS]]
        return [self.finding(failed, msg, shift, p.max_shift, ids, details)]
