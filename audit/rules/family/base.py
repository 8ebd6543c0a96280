"""The base of the family rule kinds, and what the family stage needs to know of the pack before it runs: the
metrics and explainers the family rules name, and which rules are evaluated per member."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from ...config import AuditConfig, FamilyAuditConfig
from ...errors import ConfigError
from ...family.result import FamilyRun
from ...products import Finding
from ..base import P, Rule
from ..evidence import Evidence, NotApplicable

NO_FAMILY = "the config has no [[family]] entries (the checkpoints of the recipe to compare)"


class FamilyRule(Rule[P]):
    """Runs after the main and comparison rules, once the pack's rules have been evaluated on every member."""

    phase = "family"

    def check(self, evidence: Evidence) -> list[Finding]:
        if evidence.family is None:
            raise NotApplicable(NO_FAMILY)
        return self.judge(evidence.family, evidence)

    @abstractmethod
    def judge(self, family: FamilyRun, evidence: Evidence) -> list[Finding]:
        """Findings about the family."""


def per_member(rules: Sequence[Rule], settings: FamilyAuditConfig | None) -> list[Rule]:
    """The pack's rules evaluated on every member: ``family_audit.rules``, else every main-phase rule."""
    main = [r for r in rules if r.phase == "main"]
    if settings is None or settings.rules is None:
        return main
    return [r for r in main if r.params.id in settings.rules]


def family_needs(rules: Sequence[Rule], key_metric: str, methods: Sequence[str]) -> tuple[list[str], list[str]]:
    """The metrics compared across members (the key metric, then every metric a rule of the pack names) and the
    explainers whose maps are compared (the configured ones, then those a family rule names)."""
    metrics = [key_metric, *(m for r in rules if isinstance(m := getattr(r.params, "metric", None), str) and m)]
    named = [e for r in rules if isinstance(r, FamilyRule)
             and isinstance(e := getattr(r.params, "explainer", None), str) and e]
    return list(dict.fromkeys(metrics)), list(dict.fromkeys([*methods, *named]))


def check_family_rules(cfg: AuditConfig, rules: Sequence[Rule]) -> None:
    """Before the model runs: ``family_audit.rules`` names main-phase rules of the pack, and every rule a
    ``family_members_fail_max`` rule counts is evaluated per member (ConfigError naming the field)."""
    if not cfg.family:
        return
    main = {r.params.id for r in rules if r.phase == "main"}
    listed = cfg.family_audit.rules if cfg.family_audit is not None else None
    unknown = [i for i in listed or () if i not in main]
    if unknown:
        raise ConfigError(f"family_audit.rules: {', '.join(repr(i) for i in unknown)} is not a main-phase rule of the "
                          f"pack (its rules: {', '.join(sorted(main)) or 'none'})")
    evaluated = {r.params.id for r in per_member(rules, cfg.family_audit)}
    for r in rules:
        counted = getattr(r.params, "rule", None) if isinstance(r, FamilyRule) else None
        if isinstance(counted, str) and counted not in evaluated:
            raise ConfigError(f"rule {r.params.id!r}: rule {counted!r} is not evaluated on the members (name a "
                              "main-phase rule of the pack" + (" listed in family_audit.rules)" if listed else ")"))
