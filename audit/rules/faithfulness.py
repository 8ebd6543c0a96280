"""faithfulness: deletion and insertion curves (Petsiuk et al. 2018, RISE) against random orders.

For each evaluated sample the pixels are ranked by attribution (highest first; ties, values within a few float32
rounding units, broken at random, seeded).
Deletion: in ``steps`` equal steps the top-ranked pixels are replaced by the baseline; insertion: starting from the
baseline, the top-ranked pixels are put back. The baseline must remove information on the audited data: ``auto``
(the default) tries a blur, the data set's mean image, the all-zero input and noise with each image's colour
statistics, and keeps the one whose full replacement lowers the target score by ``min_baseline_drop`` of its value on
the most samples (a blur keeps a 64 px photograph's colours and with them the prediction); the choice and every
candidate's count are stated. When no baseline lowers it on ``min_informative`` of the samples, faithfulness cannot
be measured on this data: ``not_applicable`` with the counts (a property of the data, not an error). The target (predicted) class's probability is recorded at each step and the area
under the curve (fraction of pixels on the x axis, trapezoidal) is computed. The same is done for
``random_repeats`` random orders per sample. A faithful explainer deletes evidence faster than random
(lower deletion AUC) and restores it faster (higher insertion AUC):

    deletion gain  = AUC_del(random) − AUC_del(explainer)
    insertion gain = AUC_ins(explainer) − AUC_ins(random)

The explainer fails when a gain in ``mode`` is below its margin (default ``mean``: the mean of the deletion
and insertion gains below the mean of the two margins, so that one curve that cannot move, e.g. insertion
onto a blur the model already rejects, does not decide alone; ``both`` asks each gain to reach its margin). Samples whose target probability barely
drops when the whole image is replaced by the chosen baseline are left out and counted: their curves are flat for every order and would only dilute the gains. A constant map ranks pixels at random, so
it earns no gain (it is counted in the details, never a silent pass). Every perturbed image goes through
``probe.map_over_perturbations`` in chunks (steps × samples images per call, bounded in memory).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import AuditError
from ..products import Finding
from ._shortcuts import MAX_EVIDENCE_IDS, explainer_title, require_probe, rnd, scope_words
from ._trust import BASELINE_WORDS, _ranks, auc, choose_baseline, perturbation_curves, random_orders
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence

__all__ = ["Faithfulness", "FaithfulnessParams", "_ranks", "auc", "perturbation_curves"]  # helpers used by bench/


class FaithfulnessParams(RuleParams):
    explainers: list[str] = Field(default_factory=list,
                                  description="default: the explainers configured for the report, else gradcam")
    scope: Literal["correct", "picks", "all"] = "correct"
    n: int = Field(default=32, ge=2)
    steps: int = Field(default=20, ge=2, le=200)
    baseline: Literal["auto", "blur", "mean", "zero", "noise"] = Field(
        default="auto", description="auto: the candidate that lowers the target probability on the most samples")
    blur_sigma: float = Field(default=0.1, gt=0.0, description="blur baseline: fraction of the shorter image side")
    random_repeats: int = Field(default=3, ge=1, le=20)
    mode: Literal["mean", "both", "deletion", "insertion"] = Field(
        default="mean", description="mean: the mean of the two gains must reach the mean of the margins; both: each "
        "gain its margin; deletion / insertion: that gain only")
    min_deletion_gain: float = Field(default=0.05, description="random deletion AUC minus the explainer's")
    min_insertion_gain: float = Field(default=0.05, description="the explainer's insertion AUC minus random")
    min_baseline_drop: float = Field(default=0.1, ge=0.0, le=1.0,
                                     description="samples whose target score drops by less than this fraction of its "
                                     "value from the image to the baseline are left out (their curves cannot "
                                     "discriminate)")
    min_informative: float = Field(default=0.25, ge=0.0, le=1.0,
                                   description="not_applicable when the baseline lowers the target probability on "
                                   "fewer than this share of the samples")


class Faithfulness(Rule[FaithfulnessParams]):
    kind = "faithfulness"
    title = "Faithfulness of explanations (deletion / insertion)"
    needs = frozenset({"maps"})
    examples = ({"n": 8, "steps": 8, "random_repeats": 2},)
    criterion = Criterion("gain over random pixel orders (deletion / insertion AUC)", "probability × pixel fraction",
                          "below")

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        probe = require_probe(evidence)
        names = list(p.explainers) or list(evidence.explainers) or ["gradcam"]
        ids = evidence.sample_ids(p.scope, p.n, salt=p.id)
        if len(ids) < 2:
            return [self.error(f"fewer than 2 {scope_words(p.scope)} samples to test")]
        x = probe.images(ids)
        targets = probe.targets_for(ids, "predicted")
        choice = choose_baseline(probe, x, targets, p.baseline, p.blur_sigma, p.min_baseline_drop,
                                 int(evidence.rng(f"{p.id}:baseline").integers(2**31 - 1)))
        base, informative = choice.base, choice.informative
        n_left_out = int((~informative).sum())
        chosen = (f"'{choice.name}' baseline ({BASELINE_WORDS[choice.name]}"
                  + (f"; chosen by information removed: target score lowered by {100 * p.min_baseline_drop:.0f} % "
                     f"of its value or more on {choice.words()}" if p.baseline == "auto" else "") + ")")
        if informative.sum() < max(2, math.ceil(p.min_informative * len(ids))):
            tried = "no baseline tried" if p.baseline == "auto" else f"the '{p.baseline}' baseline"
            return [self.not_applicable(
                f"faithfulness cannot be measured on this data: {tried} lowers the target score by "
                f"{100 * p.min_baseline_drop:.0f} % of its value or more on at least {100 * p.min_informative:.0f} % of the {len(ids)} "
                f"{scope_words(p.scope)} samples ({choice.words()}), so deletion and insertion curves cannot tell a "
                "good pixel order from a random one" + ("" if p.baseline == "auto" else "; try baseline = \"auto\""),
                {"baseline": choice.name, "baseline_candidates": choice.candidates, "n_samples": len(ids)})]
        rng = evidence.rng(f"{p.id}:orders")
        ro = random_orders(probe, x, base, targets, p.steps, p.random_repeats, rng)
        r_del, r_ins, rand_curves = ro.deletion, ro.insertion, ro.curves
        labels = evidence.predictions.labels[evidence.predictions.index_of(ids)]
        # the class a sample's curves are reported under: its true class, or for a multi-label sample the label its
        # map explains
        groups = labels if labels.ndim == 1 else np.asarray(targets, dtype=np.int64)
        per: dict[str, dict] = {}
        errors: list[str] = []
        verdicts: list[tuple[bool, float, str, str, float, float]] = []
        sample_gain: dict[str, np.ndarray] = {}
        for name in names:
            try:
                maps = probe.attributions(name, ids, "predicted").maps
            except (AuditError, RuntimeError, ValueError) as e:
                errors.append(f"{name}: {e}")
                continue
            const = int(sum(1 for m in maps[informative] if not np.isfinite(m).all() or np.ptp(m) == 0))
            d, i = perturbation_curves(probe, x, base, _ranks(maps, rng), targets, p.steps)
            d, i = d[informative], i[informative]
            e_del, e_ins = auc(d), auc(i)
            g_del = r_del[informative] - e_del
            g_ins = e_ins - r_ins[informative]
            sample_gain[name] = g_del + g_ins
            per_class = {}
            for ci, cname in enumerate(evidence.classes):
                rows = groups[informative] == ci
                if rows.any():
                    per_class[cname] = {"n": int(rows.sum()), "deletion_gain": rnd(g_del[rows].mean()),
                                        "insertion_gain": rnd(g_ins[rows].mean())}
            entry = {
                "title": explainer_title(probe, name), "n": int(informative.sum()), "n_constant_maps": const,
                "deletion_auc": rnd(e_del.mean()), "deletion_auc_random": rnd(r_del[informative].mean()),
                "insertion_auc": rnd(e_ins.mean()), "insertion_auc_random": rnd(r_ins[informative].mean()),
                "deletion_gain": rnd(g_del.mean()), "insertion_gain": rnd(g_ins.mean()),
                "deletion_curve": [rnd(v) for v in d.mean(0)], "insertion_curve": [rnd(v) for v in i.mean(0)],
                "per_class": per_class,
            }
            per[name] = entry
            checks = []
            if p.mode == "mean":
                gm = float((g_del.mean() + g_ins.mean()) / 2)
                lim = (p.min_deletion_gain + p.min_insertion_gain) / 2
                checks.append((gm < lim, lim - gm, name, "mean_gain", gm, lim))
            if p.mode in ("both", "deletion"):
                gd = float(g_del.mean())
                checks.append((gd < p.min_deletion_gain, p.min_deletion_gain - gd, name, "deletion_gain", gd,
                               p.min_deletion_gain))
            if p.mode in ("both", "insertion"):
                gi = float(g_ins.mean())
                checks.append((gi < p.min_insertion_gain, p.min_insertion_gain - gi, name, "insertion_gain", gi,
                               p.min_insertion_gain))
            entry["failed"] = [c[3] for c in checks if c[0]]
            verdicts.append(max(checks, key=lambda c: (c[0], c[1])))
        details = {"explainers": per, "steps": p.steps, "baseline": choice.name, "baseline_setting": p.baseline,
                   "baseline_candidates": choice.candidates, "random_repeats": p.random_repeats,
                   "mode": p.mode, "n_samples": len(ids), "n_left_out_baseline_keeps_prediction": n_left_out, "errors": errors,
                   "random_deletion_curve": [rnd(v) for v in np.mean([c[0][informative].mean(0) for c in rand_curves], 0)],
                   "random_insertion_curve": [rnd(v) for v in np.mean([c[1][informative].mean(0) for c in rand_curves], 0)],
                   "unfaithful": [n for n in per if per[n]["failed"]]}
        if not verdicts:
            return [self.error("no explainer could be tested: " + "; ".join(errors))]
        if errors and p.explainers:
            return [self.error("explainer(s) could not be tested: " + "; ".join(errors))]
        verdicts.sort(key=lambda c: (not c[0], -c[1]))
        failed, _, name, _, value, lim = verdicts[0]
        details.update(explainer=name)
        inf_ids = [s for s, k in zip(ids, informative, strict=True) if k]
        order = np.argsort(sample_gain[name], kind="stable")
        ev_ids = [inf_ids[i] for i in order[:MAX_EVIDENCE_IDS]] if failed else []
        summary = "; ".join(
            f"{e['title']}: deletion AUC {e['deletion_auc']:.3f} vs random {e['deletion_auc_random']:.3f} "
            f"(gain {e['deletion_gain']:+.3f}), insertion AUC {e['insertion_auc']:.3f} vs random "
            f"{e['insertion_auc_random']:.3f} (gain {e['insertion_gain']:+.3f})" for e in per.values())
        bad = details["unfaithful"]
        rule_words = {
            "mean": f"mean of the two gains at least {(p.min_deletion_gain + p.min_insertion_gain) / 2:.3f}",
            "both": f"gains at least {p.min_deletion_gain:.3f} (deletion) and {p.min_insertion_gain:.3f} (insertion)",
            "deletion": f"deletion gain at least {p.min_deletion_gain:.3f}",
            "insertion": f"insertion gain at least {p.min_insertion_gain:.3f}",
        }[p.mode]
        if failed:
            msg = (f"{', '.join(per[n]['title'] for n in bad)} not more faithful than a random pixel order on "
                   f"{len(ids) - n_left_out} {scope_words(p.scope)} samples ({rule_words}; {chosen}). {summary}.")
        else:
            msg = (f"every tested explainer beats a random pixel order on {len(ids) - n_left_out} "
                   f"{scope_words(p.scope)} samples ({rule_words}; {chosen}). {summary}.")
        if n_left_out:
            msg += (f" {n_left_out} of {len(ids)} samples left out: the baseline barely lowers their target "
                    f"score (by less than {100 * p.min_baseline_drop:.0f} % of its value).")
        if errors:
            msg += " Not tested: " + "; ".join(errors) + "."
        return [self.finding(failed, msg, value, lim, ev_ids, details)]
