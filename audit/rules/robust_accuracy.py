"""robust_accuracy_min: accuracy under a gradient attack (PGD or APGD-CE) at a stated eps reaches a floor. Reported
only when the gradient-masking checks pass: a model that fails them is "robustness not measurable", an error
(blocking at severity error, and missing evidence in every pack), never a pass."""

from __future__ import annotations

from pydantic import Field

from ..products import Finding
from ..robustness.result import AdversarialRun
from ._robustness import Missing, fmt_ci, part
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence


class RobustAccuracyParams(RuleParams):
    threshold: float = Field(ge=0.0, le=1.0)
    eps: float | None = Field(default=None, gt=0, description="one of robustness.adversarial.eps; default: the "
                              "largest measured")


class RobustAccuracyMin(Rule[RobustAccuracyParams]):
    kind = "robust_accuracy_min"
    title = "Robust accuracy floor"
    needs = frozenset({"single_label"})
    criterion = Criterion("accuracy under attack", "accuracy (0–1)", "below")
    examples = ({"threshold": 0.0}, {"threshold": 0.9})

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        try:
            run: AdversarialRun = part(evidence, "adversarial")
        except Missing as e:
            return [self.error(str(e))]
        if run.status == "not_applicable":
            return [self.not_applicable(run.reason)]
        eps = p.eps if p.eps is not None else max(r.eps for r in run.results)
        r = run.at(eps)
        if r is None:
            return [self.error(f"eps {eps:.6g} was not attacked; robustness.adversarial.eps lists "
                               f"{', '.join(f'{x.eps:.6g}' for x in run.results)}")]
        where = f"{run.attack.upper()} {run.norm} eps {eps:.4g}, {run.steps} steps, {run.restarts} restart(s)"
        details = {"eps": eps, "attack": run.attack, "norm": run.norm, "n": r.n, "attacked_accuracy": r.attacked_accuracy,
                   "masking_checks": run.masking.status if run.masking else None}
        if r.status != "measured" or r.accuracy is None:
            return [self.error(f"robustness not measurable under {where}: {r.reason} (attacked accuracy "
                               f"{r.attacked_accuracy:.3f} is only an upper bound)")]
        msg = (f"accuracy {r.accuracy:.4f}{fmt_ci(r.interval)} under {where} on {r.n} samples; floor "
               f"{p.threshold:.4f}")
        return [self.finding(r.accuracy < p.threshold, msg, r.accuracy, p.threshold, details=details)]
