"""explanation_sanity: the model-parameter randomisation test (Adebayo et al. 2018).

Layers are re-initialised in cascade from the logits downward (``probe.parameter_layers()`` reversed,
``probe.randomized_copy``); after each step the explainer's maps for the same inputs and targets are compared
with the trained model's maps by the Spearman rank correlation of absolute values and by SSIM (scikit-image,
maps scaled to [0, 1] by their maximum absolute value). An explainer whose maps barely change when the
weights are destroyed does not explain the model: it fails when the summary of its curve (``statistic``:
mean over the cascade steps by default, i.e. the normalised area under the curve) stays above ``max_spearman``
or ``max_ssim``.

A randomised map that is constant (e.g. Grad-CAM after the ReLU on a random network) counts as "changed
completely" (similarity 0); a sample whose *trained* map is constant cannot be compared and is left out and
counted. No NaN reaches a comparison: an explainer with no comparable sample is reported as an error.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import AuditError
from ..maps.stats import spearman_abs, ssim_abs
from ..types import Finding
from ._shortcuts import explainer_title, require_probe, rnd, scope_words
from .base import Rule, RuleParams
from .evidence import Evidence


class ExplanationSanityParams(RuleParams):
    explainers: list[str] = Field(default_factory=list,
                                  description="default: the explainers configured for the report, else gradcam")
    scope: Literal["correct", "picks", "all"] = "correct"
    n: int = Field(default=16, ge=2)
    layers: int | Literal["all"] = Field(default="all", description="how many layers to randomise, from the top")
    max_spearman: float = Field(default=0.7, ge=-1.0, le=1.0)
    max_ssim: float = Field(default=0.7, ge=-1.0, le=1.0)
    statistic: Literal["mean", "final", "min"] = "mean"


def summarise(curve: list[float], how: str) -> float:
    if how == "final":
        return curve[-1]
    if how == "min":
        return min(curve)
    return float(np.mean(curve))


class ExplanationSanity(Rule):
    kind = "explanation_sanity"
    title = "Explanations depend on the model (parameter randomisation)"
    Params = ExplanationSanityParams

    def check(self, evidence: Evidence) -> list[Finding]:
        p: ExplanationSanityParams = self.params  # type: ignore[assignment]
        probe = require_probe(evidence)
        names = list(p.explainers) or list(evidence.explainers) or ["gradcam"]
        ids = evidence.sample_ids(p.scope, p.n, salt=p.id)
        if len(ids) < 2:
            return [self.error(f"fewer than 2 {scope_words(p.scope)} samples to test")]
        layers = list(reversed(probe.parameter_layers()))
        if not layers:
            return [self.error("the model has no layer with parameters to randomise")]
        steps = layers if p.layers == "all" else layers[: max(1, min(int(p.layers), len(layers)))]
        x = probe.images(ids)
        targets = probe.targets_for(ids, "predicted")
        seed = int(evidence.rng(f"{p.id}:randomise").integers(2**31 - 1))
        errors: list[str] = []
        trained: dict[str, np.ndarray] = {}
        for name in names:
            try:
                trained[name] = probe.explain_tensor(name, x, targets)
            except (AuditError, RuntimeError, ValueError) as e:
                errors.append(f"{name}: {e}")
        comparable = {n: [i for i in range(len(ids)) if spearman_abs(t[i], t[i]) is not None]
                      for n, t in trained.items()}
        sp_curves: dict[str, list[float]] = {n: [] for n in trained}
        ss_curves: dict[str, list[float]] = {n: [] for n in trained}
        n_const_rand = dict.fromkeys(trained, 0)
        for k in range(len(steps)):
            # one seed for every step: a prefix of the same draws, so randomised layers keep their weights (cascade)
            model = probe.randomized_copy(steps[: k + 1], seed)
            for name in list(sp_curves):
                try:
                    rand = probe.explain_tensor(name, x, targets, model=model)
                except (AuditError, RuntimeError, ValueError) as e:
                    errors.append(f"{name} (after randomising {k + 1} layer(s)): {e}")
                    del sp_curves[name], ss_curves[name]
                    continue
                sps, sss = [], []
                for i in comparable[name]:
                    if np.ptp(np.abs(rand[i])) == 0 or not np.isfinite(rand[i]).all():
                        n_const_rand[name] += 1
                    s = spearman_abs(trained[name][i], rand[i])
                    q = ssim_abs(trained[name][i], rand[i])
                    sps.append(0.0 if s is None else s)
                    if q is not None:
                        sss.append(q)
                sp_curves[name].append(float(np.mean(sps)) if sps else float("nan"))
                ss_curves[name].append(float(np.mean(sss)) if sss else float("nan"))
            del model
        per: dict[str, dict] = {}
        insensitive: list[str] = []
        worst: tuple[float, str] | None = None
        for name, sp_curve in sp_curves.items():
            ss_curve = ss_curves[name]
            entry = {
                "title": explainer_title(probe, name), "n_compared": len(comparable[name]),
                "n_constant_trained_maps": len(ids) - len(comparable[name]),
                "n_constant_randomised_maps": n_const_rand[name], "layers": steps,
                "spearman_curve": [rnd(v) for v in sp_curve], "ssim_curve": [rnd(v) for v in ss_curve],
            }
            per[name] = entry
            if not comparable[name]:
                errors.append(f"{name}: every trained map is constant (nothing to compare)")
                continue
            sp = summarise(sp_curve, p.statistic)
            ss_vals = [v for v in ss_curve if np.isfinite(v)]
            ss = summarise(ss_vals, p.statistic) if ss_vals else 0.0
            entry.update(spearman=rnd(sp), ssim=rnd(ss))
            bad = sp > p.max_spearman or ss > p.max_ssim
            entry["model_sensitive"] = not bad
            if bad:
                insensitive.append(name)
            score = max(sp - p.max_spearman, ss - p.max_ssim)
            if worst is None or score > worst[0]:
                worst = (score, name)
        details = {"explainers": per, "statistic": p.statistic, "n_samples": len(ids),
                   "not_model_sensitive": insensitive, "errors": errors}
        if worst is None:
            return [self.error("no explainer could be tested: " + "; ".join(errors))]
        wname = worst[1]
        w = per[wname]
        details["explainer"] = wname
        what = {"mean": "mean over the cascade", "final": "after the full cascade", "min": "lowest along the cascade"}
        stat = what[p.statistic]
        curves = "; ".join(f"{per[n]['title']}: Spearman {', '.join(f'{v:.2f}' for v in per[n]['spearman_curve'] if v is not None)}"
                           for n in per if per[n].get("spearman") is not None)
        if insensitive:
            msg = (f"{', '.join(per[n]['title'] for n in insensitive)} barely change(s) when the model's weights are "
                   f"randomised ({len(steps)} layers, top down; {stat}: Spearman {w['spearman']:.2f} > "
                   f"{p.max_spearman:.2f} or SSIM {w['ssim']:.2f} > {p.max_ssim:.2f}); these maps do not explain the "
                   f"model. Curves: {curves}.")
        else:
            msg = (f"every tested explainer changes when the weights are randomised ({len(steps)} layers, top down; "
                   f"{stat}, limits Spearman {p.max_spearman:.2f}, SSIM {p.max_ssim:.2f}). Curves: {curves}.")
        if errors:
            msg += " Not tested: " + "; ".join(errors) + "."
            if p.explainers and not insensitive:  # an explicitly listed explainer that cannot run is no pass
                return [self.error("explainer(s) could not be tested: " + "; ".join(errors))]
        value = w["spearman"] if (w["spearman"] - p.max_spearman) >= (w["ssim"] - p.max_ssim) else w["ssim"]
        thr = p.max_spearman if value == w["spearman"] else p.max_ssim
        return [self.finding(bool(insensitive), msg, value, thr, ids[:8] if insensitive else (), details)]
