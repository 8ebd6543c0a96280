"""concept_reliance: does a class use a concept a reviewer named, by TCAV (Kim et al. 2018)?

Reads the concept stage's tests (``evidence.concepts``; ``[concepts]`` in the config). A class *uses* a concept at a
layer when that layer separates the concept from random images (CAV accuracy at least ``concepts.min_cav_accuracy``),
its TCAV score reaches ``min_score`` (with ``direction = "either"``: or falls to 1 - ``min_score``) and the t-test
against random CAVs gives p < ``alpha`` after Bonferroni over every test of the audit. A concept marked
``forbidden`` fails the rule when any tested class uses it at any layer; one marked ``required`` fails it when a
tested class uses it at no layer. A concept no tested layer separates cannot show either: the rule reports an
error (never a pass). What TCAV shows is the sign of a directional derivative in a layer's activation space: a
local sensitivity, not proof that the model relies on the concept in its data.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from ..concepts.result import ConceptRun, ConceptTest
from ..products import Finding
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence

MAX_EVIDENCE_IDS = 6


class ConceptRelianceParams(RuleParams):
    concepts: list[str] | None = Field(default=None, description="concepts judged; default: every concept marked "
                                       "forbidden or required in [concepts]")
    min_score: float = Field(default=0.7, gt=0.5, le=1.0, description="TCAV score at which a class uses a concept")
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="significance level after Bonferroni")
    direction: Literal["increase", "either"] = Field(
        default="increase", description="'either': a score of 1 - min_score or less (the concept lowers the class "
        "logit) also counts as use")


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


class ConceptReliance(Rule[ConceptRelianceParams]):
    kind = "concept_reliance"
    title = "Concept reliance (TCAV)"
    # the forbidden-concept reading; a finding on a required concept states its own
    criterion = Criterion("TCAV score of a forbidden concept", "share of class inputs, 0–1", "above")
    needs = frozenset({"maps", "whole_image"})  # TCAV reads one target per image

    def _score(self, t: ConceptTest) -> float:
        """The score compared with min_score: TCAV, or with direction 'either' its distance above or below 0.5."""
        p = self.params
        return max(t.mean, 1.0 - t.mean) if p.direction == "either" else t.mean

    def _uses(self, t: ConceptTest) -> bool:
        p = self.params
        return t.separable and t.significant(p.alpha) and self._score(t) >= p.min_score

    def _describe(self, t: ConceptTest, run: ConceptRun) -> str:
        return (f"TCAV {t.mean:.2f} ± {t.sd:.2f} at {t.layer} against {t.random_mean:.2f} ± {t.random_sd:.2f} for "
                f"random CAVs (p = {_fmt_p(t.p_corrected)} after Bonferroni over {run.m} tests; CAV accuracy "
                f"{t.cav_accuracy:.2f}; {t.n_inputs} inputs)")

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        run = evidence.concepts
        if run is None:
            return [self.error("no concept tests ran: the config has no [concepts] section (name the concept folders "
                               "under [concepts.sets.<name>])")]
        if run.error:
            return [self.error(run.error)]
        known = [c.name for c in run.concepts]
        if p.concepts is not None:
            unknown = [n for n in p.concepts if n not in known]
            if unknown:
                return [self.error(f"concept(s) {', '.join(repr(u) for u in unknown)} not in [concepts.sets] "
                                   f"({', '.join(known)})")]
            infos = [run.concept(n) for n in p.concepts]
        else:
            infos = [c for c in run.concepts if c.forbidden or c.required]
        neither = [c.name for c in infos if not (c.forbidden or c.required)]
        if neither:
            return [self.error(f"concept(s) {', '.join(repr(n) for n in neither)} marked neither forbidden nor "
                               "required: nothing to judge (set forbidden = true or required = true)")]
        if not infos:
            return [self.error("no concept in [concepts.sets] is marked forbidden or required: nothing to judge")]

        violations: list[tuple[str, ConceptTest]] = []  # (why, the test that shows it)
        undecided: list[str] = []
        table: dict[str, dict[str, Any]] = {}
        strongest: ConceptTest | None = None  # the highest significant score of a forbidden concept
        loudest: ConceptTest | None = None  # the highest score of a forbidden concept, significant or not
        for info in infos:
            role = "forbidden" if info.forbidden else "required"
            rows: dict[str, Any] = {}
            for group in info.groups:
                tests = run.tests_of(info.name, group)
                key = f"{info.name} / {group}"
                if not tests:
                    rows[group] = {"status": "not tested", "reason": run.skipped.get(key, "no test ran")}
                    continue
                broken = [t for t in tests if t.separable and not (math.isfinite(t.mean) and math.isfinite(t.p))]
                if broken:  # a NaN measurement is never a pass
                    undecided.append(f"'{info.name}' for '{group}' (no finite TCAV score or p-value at "
                                     f"{', '.join(t.layer for t in broken)}: {broken[0].note or 'NaN'})")
                    rows[group] = {"status": "no finite measurement", "layers": [t.layer for t in broken]}
                    continue
                sep = [t for t in tests if t.separable]
                used = [t for t in sep if self._uses(t)]
                best = max(used or sep or tests, key=lambda t: (abs(t.mean - 0.5), -t.p_corrected))
                rows[group] = {
                    "status": "used" if used else ("not separable" if not sep else "not used"),
                    "layers_used": [t.layer for t in used],
                    "layers_not_separable": [t.layer for t in tests if not t.separable],
                    "best_layer": best.layer, "tcav": best.mean, "tcav_sd": best.sd, "random": best.random_mean,
                    "p_bonferroni": best.p_corrected, "cav_accuracy": best.cav_accuracy,
                }
                if info.forbidden:
                    for t in sep:
                        if t.significant(p.alpha) and (strongest is None or self._score(t) > self._score(strongest)):
                            strongest = t
                        if loudest is None or self._score(t) > self._score(loudest):
                            loudest = t
                if not sep:
                    undecided.append(f"'{info.name}' for '{group}' (no tested layer separates the concept from "
                                     f"random images: best CAV accuracy {max(t.cav_accuracy for t in tests):.2f} < "
                                     f"{run.min_cav_accuracy:.2f})")
                elif info.forbidden and used:
                    top = min(used, key=lambda t: (t.p_corrected, -abs(t.mean - 0.5)))  # the clearest evidence
                    also = [t for t in used if t is not top]
                    why = (f"forbidden concept '{info.name}' is used for '{group}': {self._describe(top, run)}"
                           + (f"; also at {', '.join(f'{t.layer} ({t.mean:.2f})' for t in also)}" if also else ""))
                    violations.append((why, top))
                elif info.required and not used:
                    why = (f"required concept '{info.name}' is not used for '{group}' at any separable layer: best "
                           f"{self._describe(best, run)}")
                    violations.append((why, best))
            table[info.name] = {"role": role, "classes": rows}
        condition = (f"counted where p × {run.m} < {p.alpha:g} (Bonferroni) and the layer separates the concept "
                     f"(CAV accuracy ≥ {run.min_cav_accuracy:g})")
        score_name = "TCAV score" if p.direction == "increase" else "TCAV score's distance from 0.5, as max(s, 1 − s)"
        crit = Criterion(f"{score_name} of a forbidden concept", "share of class inputs, 0–1", "above", condition)
        details = {"alpha": p.alpha, "min_score": p.min_score, "direction": p.direction, "n_tests": run.m,
                   "layers": list(run.layers), "runs": run.runs, "concepts": table}
        roles = ", ".join(f"'{c.name}' ({'forbidden' if c.forbidden else 'required'})" for c in infos)
        if violations:
            forbidden = [t for _, t in violations if run.concept(t.concept).forbidden]
            worst = min(forbidden, key=lambda t: t.p_corrected) if forbidden else violations[0][1]
            if not forbidden:  # a required concept unused: its best score is below the threshold
                crit = Criterion(f"best {score_name} of a required concept", "share of class inputs, 0–1", "below",
                                 condition)
            msg = "; ".join(w for w, _ in violations)
            if undecided:
                msg += ". Could not judge: " + "; ".join(undecided)
            return [self.finding(True, msg + ".", self._score(worst), p.min_score, worst.top_ids[:MAX_EVIDENCE_IDS],
                                 details, criterion=crit)]
        if undecided:
            return [Finding(rule=p.id, kind=self.kind, severity=p.severity, status="error",
                            message="could not evaluate: " + "; ".join(undecided) + ". A concept the layers cannot "
                            "separate is not shown to be unused; name other layers or add concept images.",
                            details={**details, "criterion": crit.as_dict()})]
        judged = sum(1 for t in table.values() for r in t["classes"].values() if r["status"] != "not tested")
        if judged == 0:
            return [Finding(rule=p.id, kind=self.kind, severity=p.severity, status="error",
                            message="could not evaluate: no class of " + roles + " had enough inputs to test "
                            "(concepts.min_inputs)", details={**details, "criterion": crit.as_dict()})]
        untested = [f"'{g}'" for t in table.values() for g, r in t["classes"].items() if r["status"] == "not tested"]
        msg = f"{roles}: no forbidden concept significantly used and every required one used, over {judged} " \
              f"class test(s) at {len(run.layers)} layer(s)"
        if strongest is not None:
            lowers = " (the concept lowers the logit)" if strongest.mean < 0.5 else ""
            msg += (f"; the highest significant score of a forbidden concept, below {p.min_score:.2f}: "
                    f"'{strongest.concept}' for '{strongest.group}'{lowers}, {self._describe(strongest, run)}")
        elif loudest is not None:
            msg += (f"; no forbidden concept's score differs significantly from random CAVs' (highest: "
                    f"'{loudest.concept}' for '{loudest.group}', {self._describe(loudest, run)})")
        if untested:
            msg += f". Not tested (too few inputs): {', '.join(untested)}"
        shown = strongest or loudest
        value = self._score(strongest) if strongest is not None else None
        ids = shown.top_ids[:4] if shown is not None else ()
        return [self.finding(False, msg + ".", value, p.min_score, ids, details, criterion=crit)]
