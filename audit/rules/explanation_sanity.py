"""explanation_sanity: the model-parameter randomisation test (Adebayo et al. 2018).

Layers are re-initialised in cascade from the logits downward (``probe.parameter_layers()`` reversed,
``probe.randomized_copy``); after each step the explainer's maps for the same inputs and targets are compared
with the trained model's maps by the Spearman rank correlation of absolute values (judged) and by SSIM
(scikit-image, maps scaled to [0, 1] by their maximum absolute value; reported). The whole curve is kept per
explainer (the report draws it).

The verdict reads the top of the curve: after the top ``top_layers`` layers are randomised (``statistic =
"top"``), a map that explains the model must already have changed. Averaging over the whole cascade hides an
insensitive method: guided backprop stays at 0.70–0.75 for the first four steps on the demo while its mean over
nine steps is 0.64. An explainer fails when its Spearman similarity at that step is above ``max_spearman``.
(``statistic = "mean" | "final" | "min"``: the mean over the cascade, the last step, the lowest step.)

Tested explainers: every explainer the report draws (``evidence.explainers``) plus those listed in ``explainers``.
A randomised map that is constant (e.g. Grad-CAM after the ReLU of a random network) counts as "changed
completely" (similarity 0) and is counted in the message; a sample whose *trained* map is constant cannot be
compared and is left out and counted. An explainer with no comparable sample (every trained map constant: what
the model and data give it) is named as not testable: the rule is ``not_applicable`` when no explainer can be
tested, and otherwise judges the others and says which was not testable. An explainer that cannot run makes the
result an error (never a silent pass) unless another one fails.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import AuditError
from ..maps.stats import spearman_abs, ssim_abs  # noqa: F401 - re-exported for tests
from ..products import Finding
from ._shortcuts import explainer_title, require_probe, rnd, scope_words
from ._trust import comparable as comparable_rows
from ._trust import layer_groups, similarity
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence


class ExplanationSanityParams(RuleParams):
    explainers: list[str] = Field(default_factory=list,
                                  description="tested besides the explainers the report draws (default: those only; "
                                  "gradcam when the report draws none)")
    scope: Literal["correct", "picks", "all"] = "correct"
    n: int = Field(default=16, ge=2)
    layers: int | Literal["all"] = Field(default="all", description="how many layers to randomise, from the top")
    max_spearman: float = Field(default=0.7, ge=-1.0, le=1.0)
    max_ssim: float = Field(default=0.7, ge=-1.0, le=1.0, description="(reported, not judged)")
    statistic: Literal["top", "mean", "final", "min"] = "top"
    top_layers: int = Field(default=3, ge=1, description="statistic 'top': the step judged, in layers from the top")


def summarise(curve: list[float], how: str, top: int = 3) -> float:
    if how == "top":
        return curve[min(top, len(curve)) - 1]
    if how == "final":
        return curve[-1]
    if how == "min":
        return min(curve)
    return float(np.mean(curve))


CRITERION = Criterion("Spearman similarity of maps after randomising the top layers", "rank correlation of |map| "
                      "(−1–1)", "above")


class ExplanationSanity(Rule[ExplanationSanityParams]):
    kind = "explanation_sanity"
    title = "Explanations depend on the model (parameter randomisation)"
    criterion = CRITERION
    needs = frozenset({"maps"})
    examples = ({"n": 6},)

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        probe = require_probe(evidence)
        names = list(dict.fromkeys([*evidence.explainers, *p.explainers])) or ["gradcam"]
        ids = evidence.sample_ids(p.scope, p.n, salt=p.id)
        if len(ids) < 2:
            return [self.error(f"fewer than 2 {scope_words(p.scope)} samples to test")]
        layers = list(reversed(layer_groups(probe)))
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
        comparable = {n: comparable_rows(t) for n, t in trained.items()}
        sp_curves: dict[str, list[float]] = {n: [] for n in trained}
        ss_curves: dict[str, list[float]] = {n: [] for n in trained}
        n_const_rand = dict.fromkeys(trained, 0)
        for k in range(len(steps)):
            # one seed for every step: a prefix of the same draws, so randomised layers keep their weights (cascade)
            model = probe.randomized_copy([n for group in steps[: k + 1] for n in group], seed)
            for name in list(sp_curves):
                try:
                    rand = probe.explain_tensor(name, x, targets, model=model)
                except (AuditError, RuntimeError, ValueError) as e:
                    errors.append(f"{name} (after randomising {k + 1} layer(s)): {e}")
                    del sp_curves[name], ss_curves[name]
                    continue
                sp, ss, n_const = similarity(trained[name], rand, comparable[name])
                n_const_rand[name] += n_const
                sp_curves[name].append(sp)
                ss_curves[name].append(ss)
            del model
        per: dict[str, dict] = {}
        insensitive: list[str] = []
        untestable: list[str] = []
        worst: tuple[float, str] | None = None
        judged_step = min(p.top_layers, len(steps)) if p.statistic == "top" else None
        for name, sp_curve in sp_curves.items():
            ss_curve = ss_curves[name]
            entry = {
                "title": explainer_title(probe, name), "n_compared": len(comparable[name]),
                "n_constant_trained_maps": len(ids) - len(comparable[name]),
                "n_constant_randomised_maps": n_const_rand[name], "layers": [" + ".join(g) for g in steps],
                "spearman_curve": [rnd(v) for v in sp_curve], "ssim_curve": [rnd(v) for v in ss_curve],
                "judged_step": judged_step,
            }
            per[name] = entry
            if not comparable[name]:  # what the model and data give this explainer, not a failure to run it
                untestable.append(f"{entry['title']}: every map of the trained model is constant on these samples "
                                  "(nothing to compare)")
                continue
            sp = summarise(sp_curve, p.statistic, p.top_layers)
            ss_vals = [v for v in ss_curve if np.isfinite(v)]
            ss = summarise(ss_vals, p.statistic, p.top_layers) if ss_vals else 0.0
            entry.update(spearman=rnd(sp), ssim=rnd(ss))
            bad = sp > p.max_spearman
            entry["model_sensitive"] = not bad
            if bad:
                insensitive.append(name)
            if worst is None or sp > worst[0]:
                worst = (sp, name)
        details = {"explainers": per, "statistic": p.statistic, "top_layers": p.top_layers, "n_samples": len(ids),
                   "limit": p.max_spearman, "not_model_sensitive": insensitive, "errors": errors,
                   "untestable": untestable}
        if worst is None and not errors:
            return [self.not_applicable("no explainer can be tested on this model and data: " + "; ".join(untestable),
                                        details)]
        if worst is None:
            return [self.error("no explainer could be tested: " + "; ".join(errors + untestable))]
        wname = worst[1]
        w = per[wname]
        details["explainer"] = wname
        at = {"top": f"after randomising the top {judged_step} of {len(steps)} layers",
              "mean": f"mean over the {len(steps)}-step cascade", "final": f"after all {len(steps)} layers",
              "min": f"lowest along the {len(steps)}-step cascade"}[p.statistic]
        curves = "; ".join(
            f"{per[n]['title']}: " + ", ".join(f"{v:.2f}" for v in per[n]["spearman_curve"] if v is not None)
            + (f" ({per[n]['n_constant_randomised_maps']} randomised map(s) constant, counted as changed)"
               if per[n]["n_constant_randomised_maps"] else "")
            for n in per if per[n].get("spearman") is not None)
        head = CRITERION.lead(w["spearman"], p.max_spearman, f"for {w['title']}, {at}")
        if insensitive:
            msg = (f"{head}: {', '.join(per[n]['title'] for n in insensitive)} barely change(s) when the model's "
                   f"weights are randomised; these maps do not explain the model. Curves (Spearman, top layer "
                   f"first): {curves}.")
        else:
            msg = (f"{head}: every tested explainer has changed by then ({len(per)} tested). Curves (Spearman, top "
                   f"layer first): {curves}.")
        if untestable:
            msg += " Not testable: " + "; ".join(untestable) + "."
        if errors:
            msg += " Not tested: " + "; ".join(errors) + "."
            if not insensitive:  # an explainer the report draws that cannot be tested is no pass
                return [self.error(f"{head}; but explainer(s) could not be tested: " + "; ".join(errors))]
        return [self.finding(bool(insensitive), msg, w["spearman"], p.max_spearman, ids[:8] if insensitive else (),
                             details, criterion=CRITERION)]
