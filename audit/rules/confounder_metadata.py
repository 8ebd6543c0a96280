"""confounder_metadata: do predictions or learned features depend on a metadata attribute (site, scanner)?

For each metadata column (values as strings; empty values left out):

1. Prediction vs attribute within each true class: a chi-square statistic of the (attribute × predicted class)
   table of every true class, summed over classes, with a permutation p-value (attribute values shuffled
   within each true class, the same shuffle count for all classes, seeded). Conditioning on the true class
   means a label that is merely correlated with the attribute gives no signal; only predictions that differ
   between attribute values *for the same true class* do. With several columns the level is
   Bonferroni-corrected (alpha / number of columns).
2. A linear probe from the penultimate features (``predictions.features``) to the attribute. To measure
   information *beyond the label*, the features are centred within each true class and the class is added
   as one-hot covariates; out-of-fold scores (StratifiedKFold on class × attribute) are then ranked
   *within each true class* only: the reported AUC is the class-size-weighted mean of the within-class ROC
   AUCs (one-vs-rest macro for more than two values). A label-only baseline scores exactly 0.5 on this
   measure; its pooled AUC (what the label alone predicts about the attribute) is reported for reference.
3. The accuracy gap: per attribute value, the accuracy its samples would have given their class mix
   (accuracy of the other values in the same classes) minus the accuracy they have. Positive = worse.
   A gap counts only when it is also significant (one-sided z-test of the class-weighted difference at half
   the corrected level, the other half going to the chi-square test): small subgroups otherwise produce
   large gaps by chance.

Fails when p < alpha, or the within-class AUC > ``max_auc``, or a significant gap > ``max_accuracy_gap``.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ..types import Finding
from ._shortcuts import MAX_EVIDENCE_IDS, pct, rnd
from .base import Rule, RuleParams
from .evidence import Evidence


class ConfounderMetadataParams(RuleParams):
    columns: list[str] = Field(default_factory=list, description="metadata columns; empty = every column with "
                               "2..max_levels distinct values")
    max_levels: int = Field(default=10, ge=2)
    alpha: float = Field(default=0.01, gt=0.0, lt=1.0)
    n_permutations: int = Field(default=999, ge=99)
    probe: bool = Field(default=True, description="run the linear probe on the penultimate features")
    max_auc: float = Field(default=0.75, ge=0.5, le=1.0)
    folds: int = Field(default=5, ge=2)
    max_accuracy_gap: float = Field(default=0.1, ge=0.0, le=1.0)
    min_group_size: int = Field(default=10, ge=2, description="smallest attribute group judged for the gap / AUC")
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


class ConfounderMetadata(Rule):
    kind = "confounder_metadata"
    title = "Dependence on a metadata attribute"
    Params = ConfounderMetadataParams

    def check(self, evidence: Evidence) -> list[Finding]:
        p: ConfounderMetadataParams = self.params  # type: ignore[assignment]
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
                return [self.finding(False, f"not applicable: {what}; list columns in the rule to require them",
                                     details={"not_applicable": True, "columns_seen": [str(c) for c in meta.columns]})]
        if p.probe and pr.features is None:
            return [self.error("penultimate features were not gathered (predictions.features is None); the linear "
                               "probe cannot run (set probe = false to test predictions only)")]
        alpha = p.alpha / len(cols)
        table: dict[str, dict] = {}
        verdicts: list[tuple[bool, float, str, str, float, float]] = []  # failed, ratio, column, criterion, v, lim
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
            preds = pr.preds[rows]
            stat, pval, per_cls = permutation_chi2(attr, preds, labels, p.n_permutations,
                                                   evidence.rng(f"{p.id}:{col}:perm"))
            entry.update(chi2=rnd(stat), p_value=rnd(pval, 6), alpha_corrected=rnd(alpha, 6),
                         chi2_per_class={evidence.classes[c]: rnd(v) for c, v in per_cls.items()})
            cands = [(pval < alpha, (alpha / max(pval, 1e-12)), "p_value", pval, alpha)]
            if p.probe:
                assert pr.features is not None
                seed = int(evidence.rng(f"{p.id}:{col}:cv").integers(2**31 - 1))
                res = within_class_auc(pr.features[rows], attr, labels, p.folds, max(2, p.min_group_size // 2), seed)
                entry.update(probe_auc_within_class=rnd(res.get("auc")), probe_pooled_auc=rnd(res.get("pooled_auc")),
                             label_only_pooled_auc=rnd(res.get("label_only_pooled_auc")),
                             probe_auc_per_class={evidence.classes[c]: rnd(v)
                                                  for c, v in res.get("per_class", {}).items()},
                             probe_folds=res.get("folds"))
                if res.get("auc") is not None:
                    a = float(res["auc"])
                    cands.append((a > p.max_auc, (a - 0.5) / max(p.max_auc - 0.5, 1e-9), "probe_auc", a, p.max_auc))
                else:
                    entry["probe_note"] = res.get("reason", "too few samples per class and value for an AUC")
            gaps = accuracy_gaps(attr, pr.correct[rows], labels, p.min_group_size)
            entry["accuracy"] = {levels[v]: {k: (rnd(x) if isinstance(x, float) else x) for k, x in g.items()}
                                 for v, g in gaps.items()}
            judged = [(v, g) for v, g in gaps.items() if "gap" in g]
            if judged:
                v, g = max(judged, key=lambda t: t[1]["gap"])
                entry["worst_value"] = levels[v]
                z_crit = float(norm.isf(alpha / 2))  # the level is split between the two tests
                entry["gap_z_critical"] = rnd(z_crit)
                cands.append((g["gap"] > p.max_accuracy_gap and g["z"] > z_crit,
                              g["gap"] / max(p.max_accuracy_gap, 1e-9), "accuracy_gap", g["gap"],
                              p.max_accuracy_gap))
            failed_here = [c for c in cands if c[0]]
            entry["failed"] = [c[2] for c in failed_here]
            best = max(failed_here or cands, key=lambda c: c[1])
            verdicts.append((best[0], best[1], col, best[2], best[3], best[4]))
        details = {"columns": table, "alpha": p.alpha, "bonferroni_columns": len(cols),
                   "probe_method": "features centred within true class + class one-hot; AUC ranked within class"}
        if not verdicts:
            return [self.error("no tested column has two or more values")]
        verdicts.sort(key=lambda t: (not t[0], -t[1]))
        failed, _, col, crit, value, lim = verdicts[0]
        details.update(worst_column=col, criterion=crit)
        e = table[col]
        words = [f"'{col}': "]
        words.append(f"within true classes, predictions {'depend' if e['p_value'] < alpha else 'do not depend'} on "
                     f"it (permutation p = {e['p_value']:.4f}, level {alpha:.4g})")
        if p.probe and e.get("probe_auc_within_class") is not None:
            words.append(f"; the penultimate features predict it beyond the label with within-class AUC "
                         f"{e['probe_auc_within_class']:.2f} (limit {p.max_auc:.2f}; pooled "
                         f"{e['probe_pooled_auc']:.2f} vs label-only {e['label_only_pooled_auc']:.2f})")
        wv = e.get("worst_value")
        if wv is not None:
            g = e["accuracy"][wv]
            words.append(f"; '{wv}' samples are {pct(abs(g['gap']))} {'less' if g['gap'] >= 0 else 'more'} "
                         f"accurate than their class mix predicts ({pct(g['accuracy'])} of {g['n']}, z = "
                         f"{g['z']:.1f}; limit {pct(p.max_accuracy_gap)})")
        msg = "".join(words) + "."
        n_fail = sum(1 for v in verdicts if v[0])
        msg = (f"{n_fail} of {len(verdicts)} column(s) flagged. " if n_fail else
               f"no metadata column flagged ({', '.join(cols)}). ") + msg
        ids: list[str] = []
        if wv is not None:
            raw = meta[col].astype(str)
            rows_w = np.flatnonzero((raw == wv).to_numpy() & ~pr.correct)
            ids = [str(s) for s in pr.ids[rows_w][:MAX_EVIDENCE_IDS]]
        return [self.finding(failed, msg, value, lim, ids, details)]
