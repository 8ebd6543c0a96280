"""evidence_complete: was everything the config and the pack ask for produced? Runs in every audit, last.

What is asked for, and when it counts as missing:

- each explainer listed in ``[explainers] methods``: its maps were not produced ("unavailable", with the reason);
- each rule of the pack, whatever its severity (so also the maps a rule reads): it could not be evaluated
  (status ``error``). A warning-severity rule that cannot run would otherwise leave a pass with a hole in it;
- each concept marked forbidden or required in ``[concepts]``: the concept stage could not run, or a class the
  concept is tested for was not tested (too few inputs, …);
- each data check a rule of the pack reads (``data_confounder``, ``data_duplicates``): the data checks did not
  run, an image the model scored could not be read by them, or (train overlap) a training image could not be read;
- inputs read in a way the data contradicts and audited anyway on request (``data.swapped_size = "finding"``: most
  images have image_size's aspect ratio the other way round).

Anything missing makes one ``error`` finding (``details.incomplete = true``) naming each item and why; with the
default severity ``error`` it blocks the verdict, so an audit never passes on incomplete evidence. The status is
``error`` rather than a status of its own because every consumer (verdict, summary counts, JUnit ``<error>``,
MLflow, the report) already reads ``error`` as "not evaluated: blocks when error-severity"; a new status would
read as a pass wherever a consumer does not know it. A pack downgrades the check explicitly by listing it::

    [[rule]]
    id = "evidence-complete"
    kind = "evidence_complete"
    severity = "warning"

and the report's cover then says that missing evidence does not block this verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..products import Finding
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence

CRITERION = Criterion("items asked for but not produced (explainers, rule results, concept tests, data checks)",
                      "count", "above")
DATA_KINDS = ("data_confounder", "data_duplicates")


@dataclass(frozen=True)
class Missing:
    what: str  # "explainer" | "rule" | "concept" | "data_check"
    name: str
    reason: str

    def text(self) -> str:
        return f"{self.what.replace('_', ' ')} '{self.name}': {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"what": self.what, "name": self.name, "reason": self.reason}


def maps_read(rule: Rule, evidence: Evidence) -> tuple[str, ...]:
    """The explainers whose maps ``rule`` reads, as its parameters name them (an empty ``explainers`` list means
    the configured ones)."""
    p = rule.params
    if getattr(p, "attribution", True) is False:  # a region rule told not to read maps
        return ()
    one = getattr(p, "explainer", None)
    if isinstance(one, str):
        return (one,)
    many = getattr(p, "explainers", None)
    if isinstance(many, list):
        return tuple(many) or evidence.explainers
    return ()


def _explainers(evidence: Evidence) -> list[Missing]:
    return [Missing("explainer", name, f"unavailable ({reason})" if reason else "unavailable")
            for name, reason in evidence.unavailable.items()]


def _rules(evidence: Evidence) -> list[Missing]:
    out = []
    for rule, findings in evidence.earlier:
        for f in findings:
            if f.status != "error":
                continue
            reads = maps_read(rule, evidence)
            maps = f" (reads {', '.join(reads)} maps)" if reads else ""
            out.append(Missing("rule", f.rule, f"{rule.kind}, severity {f.severity}{maps}, could not be evaluated: "
                               f"{f.message}"))
    return out


def _concepts(evidence: Evidence) -> list[Missing]:
    run = evidence.concepts
    if run is None:
        return []
    marked = [c for c in run.concepts if c.forbidden or c.required]
    if run.error:
        return [Missing("concept", c.name, f"the concept tests could not run: {run.error}") for c in marked]
    out = []
    for c in marked:
        for group in c.groups:
            if not run.tests_of(c.name, group):
                why = run.skipped.get(f"{c.name} / {group}", "no test ran")
                out.append(Missing("concept", c.name, f"marked {'forbidden' if c.forbidden else 'required'}, not "
                                   f"tested for '{group}': {why}"))
    return out


def _inputs(evidence: Evidence) -> list[Missing]:
    """Inputs the listing flagged and the config audited anyway (data.swapped_size = "finding"): every result was
    computed on images fitted as the data says they should not be."""
    return [Missing("input", "data.image_size", problem) for problem in evidence.input_problems]


def _data_checks(evidence: Evidence) -> list[Missing]:
    asked = [r for r, _ in evidence.earlier if r.kind in DATA_KINDS]
    if not asked:
        return []
    dc = evidence.data
    names = ", ".join(r.params.id for r in asked)
    if dc is None:
        return [Missing("data_check", names, "the data checks did not run")]
    out = []
    scored = {str(s) for s in evidence.predictions.ids}
    unread = [s for s in dc.unreadable if s in scored]
    if unread:
        out.append(Missing("data_check", names, f"{len(unread)} image(s) the model scored could not be read by the "
                           f"data checks (first: {unread[0]})"))
    train_rules = [r.params.id for r in asked if getattr(r.params, "check", "") == "train_overlap"]
    n_bad = int((dc.train or {}).get("n_train_unreadable") or 0)
    if train_rules and n_bad:
        out.append(Missing("data_check", ", ".join(train_rules), f"{n_bad} of {dc.train['n_train']} training image(s) "
                           "(data.train_manifest) could not be read, so the overlap was not checked for them"))
    return out


class EvidenceComplete(Rule[RuleParams]):
    kind = "evidence_complete"
    title = "Evidence complete (everything asked for was produced)"
    phase = "final"  # after the main and comparison rules: it reads their outcomes
    criterion = CRITERION

    def check(self, evidence: Evidence) -> list[Finding]:
        missing = [*_explainers(evidence), *_rules(evidence), *_concepts(evidence), *_data_checks(evidence),
                   *_inputs(evidence)]
        n_rules = sum(len(f) for _, f in evidence.earlier)
        marked = [c.name for c in evidence.concepts.concepts if c.forbidden or c.required] \
            if evidence.concepts is not None else []
        details: dict[str, Any] = {
            "incomplete": bool(missing), "missing": [m.as_dict() for m in missing],
            "checked": {"explainers": list(evidence.explainers), "rule_results": n_rules, "marked_concepts": marked,
                        "data_rules": [r.params.id for r, _ in evidence.earlier if r.kind in DATA_KINDS]},
            "criterion": CRITERION.as_dict(),
        }
        if missing:
            message = (f"incomplete evidence: {len(missing)} item(s) asked for were not produced: "
                       + "; ".join(m.text() for m in missing))
            return [Finding(rule=self.params.id, kind=self.kind, severity=self.params.severity, status="error",
                            message=message, value=float(len(missing)), threshold=0.0, details=details)]
        parts = [f"{len(evidence.explainers)} listed explainer(s) produced maps",
                 f"{n_rules} rule result(s) evaluated"]
        if marked:
            parts.append(f"{len(marked)} marked concept(s) tested for every class")
        if details["checked"]["data_rules"]:
            parts.append("the data checks read every scored image")
        return [self.finding(False, "complete: " + ", ".join(parts) + ".", 0.0, 0.0, details=details)]
