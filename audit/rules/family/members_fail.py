"""family_members_fail_max: at most k members of the family may fail rule R of the pack. A recipe whose seeds or
folds rely on a shortcut half the time fails here even when the released checkpoint passes R: another training run
of the same recipe would likely not."""

from __future__ import annotations

from pydantic import Field

from ...family.result import FamilyRun
from ...products import Finding
from ..base import Criterion, RuleParams
from ..evidence import Evidence
from .base import FamilyRule


class MembersFailParams(RuleParams):
    rule: str = Field(description="the id of a main-phase rule of the pack, evaluated on every member")
    max_failing: int = Field(default=0, ge=0, description="k: members allowed to fail it")


class FamilyMembersFailMax(FamilyRule[MembersFailParams]):
    kind = "family_members_fail_max"
    title = "Members failing a rule"
    criterion = Criterion("members failing the rule", "count", "above")
    examples = ({"rule": "metric_min-0", "max_failing": 0},)

    def judge(self, family: FamilyRun, evidence: Evidence) -> list[Finding]:
        p = self.params
        outcome = family.outcome(p.rule)
        if outcome is None:
            return [self.error(f"rule {p.rule!r} was not evaluated on the members")]
        trained = family.trained
        failing, errors = outcome.failing(trained), outcome.errors(trained)
        released = family.released_name
        said = outcome.status(released)
        crit = Criterion(f"members failing rule '{p.rule}'", "count", "above")
        named = f" ({', '.join(failing)})" if failing else ""
        msg = (f"{len(failing)} of {len(trained)} members fail rule '{p.rule}'{named}, at most {p.max_failing} "
               f"allowed; the released member '{released}': {said}")
        ensemble = next((m for m in family.members if not m.trained), None)
        if ensemble is not None:
            msg += f"; the mean ensemble: {outcome.status(ensemble.name)}"
        details = {"rule": p.rule, "failing": list(failing), "errors": list(errors), "of": len(trained),
                   "members": {o.member: o.status for o in outcome.members}}
        if len(failing) <= p.max_failing < len(failing) + len(errors):
            return [self.error(f"{msg}; {len(errors)} member(s) could not be judged ({', '.join(errors)}), so the "
                               "count may exceed the limit")]
        return [self.finding(len(failing) > p.max_failing, msg, len(failing), p.max_failing, details=details,
                             criterion=crit)]
