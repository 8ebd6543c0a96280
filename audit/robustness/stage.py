"""The robustness stage: [robustness]'s parts over the audited model, every model pass through the engine. Runs
after scoring (it reads the task's fitted operating point and the clean answers) and before the rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import AuditConfig
from ..engine.probe import ModelProbe
from .attacking import run_attacks
from .corrupting import run_corruptions
from .detecting import run_ood
from .plugins import resolve
from .result import RobustnessRun


def run_robustness(cfg: AuditConfig, probe: ModelProbe, baseline: Mapping[str, Any] | None = None
                   ) -> RobustnessRun | None:
    """What [robustness] asks for (None when it is not configured); ``baseline``: the baseline's results.json,
    whose corruption results give CE, mCE and relative mCE."""
    rc = cfg.robustness
    if rc is None:
        return None
    seed = rc.seed if rc.seed is not None else cfg.seed
    plugins = resolve(cfg)
    corruptions = adversarial = ood = None
    if rc.corruptions is not None:
        c = rc.corruptions
        corruptions = run_corruptions(probe, list(plugins.corruptions), plugins.corruptions, c.severities, c.subset,
                                      seed, c.examples, baseline)
    if rc.adversarial is not None:
        adversarial = run_attacks(probe, rc.adversarial, seed)
    if rc.ood is not None:
        ood = run_ood(cfg, probe, rc.ood, plugins.detectors, seed)
    return RobustnessRun(seed, corruptions, adversarial, ood, plugins.notes)
