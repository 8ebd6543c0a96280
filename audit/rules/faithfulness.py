"""faithfulness: deletion and insertion curves (Petsiuk et al. 2018, RISE) against random orders.

For each evaluated sample the pixels are ranked by attribution (highest first; ties, values within a few float32
rounding units, broken at random, seeded).
Deletion: in ``steps`` equal steps the top-ranked pixels are replaced by the baseline (a blurred copy of the
image by default, or zero, or the dataset mean); insertion: starting from the baseline, the top-ranked
pixels are put back. The target (predicted) class's probability is recorded at each step and the area
under the curve (fraction of pixels on the x axis, trapezoidal) is computed. The same is done for
``random_repeats`` random orders per sample. A faithful explainer deletes evidence faster than random
(lower deletion AUC) and restores it faster (higher insertion AUC):

    deletion gain  = AUC_del(random) − AUC_del(explainer)
    insertion gain = AUC_ins(explainer) − AUC_ins(random)

The explainer fails when a gain in ``mode`` is below its margin (default ``mean``: the mean of the deletion
and insertion gains below the mean of the two margins, so that one curve that cannot move, e.g. insertion
onto a blur the model already rejects, does not decide alone; ``both`` asks each gain to reach its margin). Samples whose target probability barely
drops when the whole image is replaced by the baseline (e.g. a colour cast that survives a blur) are left
out and counted: their curves are flat for every order and would only dilute the gains. A constant map ranks pixels at random, so
it earns no gain (it is counted in the details, never a silent pass). Every perturbed image goes through
``probe.map_over_perturbations`` in chunks (steps × samples images per call, bounded in memory).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from ..engine.probe import ModelProbe
from ..errors import AuditError
from ..maps.stats import tie_groups
from ..products import Finding
from ._shortcuts import MAX_EVIDENCE_IDS, chunk_rows, explainer_title, gaussian_blur, require_probe, rnd, scope_words
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence


class FaithfulnessParams(RuleParams):
    explainers: list[str] = Field(default_factory=list,
                                  description="default: the explainers configured for the report, else gradcam")
    scope: Literal["correct", "picks", "all"] = "correct"
    n: int = Field(default=32, ge=2)
    steps: int = Field(default=20, ge=2, le=200)
    baseline: Literal["blur", "zero", "mean"] = "blur"
    blur_sigma: float = Field(default=0.1, gt=0.0, description="fraction of the shorter image side")
    random_repeats: int = Field(default=3, ge=1, le=20)
    mode: Literal["mean", "both", "deletion", "insertion"] = Field(
        default="mean", description="mean: the mean of the two gains must reach the mean of the margins; both: each "
        "gain its margin; deletion / insertion: that gain only")
    min_deletion_gain: float = Field(default=0.05, description="random deletion AUC minus the explainer's")
    min_insertion_gain: float = Field(default=0.05, description="the explainer's insertion AUC minus random")
    min_baseline_drop: float = Field(default=0.1, ge=0.0, le=1.0,
                                     description="samples whose target probability drops less than this from the "
                                     "image to the baseline are left out (their curves cannot discriminate)")


def _ranks(maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, H*W) rank of each pixel (0 = most attributed); ties (``tie_groups``) and non-finite values broken at
    random."""
    n = len(maps)
    flat = maps.reshape(n, -1)
    out = np.empty(flat.shape, dtype=np.int64)
    for i in range(n):
        order = np.lexsort((rng.random(flat.shape[1]), tie_groups(flat[i])))
        out[i, order] = np.arange(flat.shape[1])
    return out


def perturbation_curves(probe: ModelProbe, x: torch.Tensor, base: torch.Tensor, ranks: np.ndarray,
                        targets: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Target-class probability after each deletion / insertion step: two arrays (n, steps + 1)."""
    n, C, H, W = x.shape
    HW = H * W
    ks = np.round(np.linspace(0, 1, steps + 1) * HW).astype(np.int64)
    per_sample = 2 * (steps + 1) * (2 * C + 1) * HW
    m = chunk_rows(n, per_sample)
    dele = np.zeros((n, steps + 1))
    ins = np.zeros((n, steps + 1))

    def perturb(b: torch.Tensor) -> torch.Tensor:
        keep = b[:, 2 * C:]
        return b[:, :C] * keep + b[:, C:2 * C] * (1.0 - keep)

    for s in range(0, n, m):
        e = min(n, s + m)
        r = torch.from_numpy(ranks[s:e]).view(e - s, 1, H, W)
        k = torch.from_numpy(ks).view(1, steps + 1, 1, 1)
        keep_del = (r >= k).float()  # (m, S+1, H, W): pixels not yet deleted
        keep_ins = (r < k).float()  # pixels already inserted
        keep = torch.stack([keep_del, keep_ins], dim=1).reshape(-1, 1, H, W)  # (m*2*(S+1), 1, H, W)
        reps = 2 * (steps + 1)
        xs = x[s:e].repeat_interleave(reps, dim=0)
        bs = base[s:e].repeat_interleave(reps, dim=0)
        packed = torch.cat([xs, bs, keep], dim=1)
        probs = probe.map_over_perturbations(packed, perturb)
        t = np.repeat(targets[s:e], reps)
        pt = probe.task.target_scores(probs, t).reshape(e - s, 2, steps + 1)
        dele[s:e], ins[s:e] = pt[:, 0], pt[:, 1]
    return dele, ins


def auc(curve: np.ndarray) -> np.ndarray:
    steps = curve.shape[-1] - 1
    return (curve[..., 1:] + curve[..., :-1]).sum(-1) / (2.0 * steps)


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
        H, W = probe.input_size
        if p.baseline == "blur":
            base = gaussian_blur(x, p.blur_sigma * min(H, W))
        elif p.baseline == "zero":
            base = torch.zeros_like(x)
        else:
            mean = probe.dataset_mean if probe.dataset_mean is not None else x.mean(0)
            base = mean.to(x.dtype).expand_as(x).clone()
        targets = probe.targets_for(ids, "predicted")
        rng = evidence.rng(f"{p.id}:orders")
        rand_del, rand_ins, rand_curves = [], [], []
        for _ in range(p.random_repeats):
            rr = np.stack([rng.permutation(H * W) for _ in ids])
            d, i = perturbation_curves(probe, x, base, rr, targets, p.steps)
            rand_del.append(auc(d))
            rand_ins.append(auc(i))
            rand_curves.append((d, i))
        r_del = np.mean(rand_del, axis=0)
        r_ins = np.mean(rand_ins, axis=0)
        drop = d[:, 0] - d[:, -1]  # image -> full baseline (the same for every order)
        informative = drop >= p.min_baseline_drop
        n_left_out = int((~informative).sum())
        if informative.sum() < 2:
            return [self.error(
                f"the '{p.baseline}' baseline keeps the prediction: on {n_left_out} of {len(ids)} samples the "
                f"target probability drops by less than {p.min_baseline_drop:.2f} when every pixel is replaced, so "
                "deletion and insertion curves cannot tell a good order from a random one (try another baseline)")]
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
        details = {"explainers": per, "steps": p.steps, "baseline": p.baseline, "random_repeats": p.random_repeats,
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
                   f"{len(ids) - n_left_out} {scope_words(p.scope)} samples ({rule_words}). {summary}.")
        else:
            msg = (f"every tested explainer beats a random pixel order on {len(ids) - n_left_out} "
                   f"{scope_words(p.scope)} samples ({rule_words}). {summary}.")
        if n_left_out:
            msg += (f" {n_left_out} of {len(ids)} samples left out: the baseline barely lowers their target "
                    f"probability (< {p.min_baseline_drop:.2f}).")
        if errors:
            msg += " Not tested: " + "; ".join(errors) + "."
        return [self.finding(failed, msg, value, lim, ev_ids, details)]
