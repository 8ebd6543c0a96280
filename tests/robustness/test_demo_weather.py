"""`audit demo --task robustness` behaves as the README states (issue 26's demo): the model trained in clear weather
fails the robustness pack's fog / low-contrast floors, its weather-augmented twin passes them, and with the twin as
the baseline the gate pack's relative-mCE ceiling fails the plain model too. The shipped settings, not a smaller
copy: two trainings of the 32 px demo CNN and two audits (about 30 s of CPU on one thread)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.compare.stage import Baseline
from audit.config import load_config
from audit.demo.weather import prepare_weather_demo
from audit.report.output import write_outputs
from audit.result import AuditResult
from audit.runner import run_audit

FLOORS = ("corruption-mean", "corruption-moderate")


def _audit(workdir: Path, clean: bool, baseline: dict | None = None) -> AuditResult:
    cfg = prepare_weather_demo(workdir, clean=clean, gate=baseline is not None)
    return run_audit(load_config(cfg, ["cache.enabled=false"]),
                     baseline=Baseline(baseline) if baseline is not None else None)


@pytest.fixture(scope="module")
def twins(tmp_path_factory, module_one_thread) -> tuple[AuditResult, AuditResult]:
    root = tmp_path_factory.mktemp("weather")
    clean = _audit(root / "clean-inputs", clean=True)
    write_outputs(clean, root / "clean", ["json"])
    released = json.loads((root / "clean" / "results.json").read_text())
    return _audit(root / "plain-inputs", clean=False, baseline=released), clean


def test_the_clear_weather_model_fails_the_floors_its_augmented_twin_passes(twins) -> None:
    plain, clean = twins
    found = {f.rule: f for f in plain.findings}
    assert plain.verdict == "fail" and all(found[r].status == "fail" for r in FLOORS)
    assert clean.verdict == "pass"
    assert all(f.status in ("pass", "warn") for f in clean.findings)
    assert {f.rule: f.status for f in clean.findings if f.rule in FLOORS} == dict.fromkeys(FLOORS, "pass")
    # both are accurate in clear weather: the difference is fog and contrast
    assert plain.metrics.scalar("accuracy") > 0.95 and clean.metrics.scalar("accuracy") > 0.95
    p, c = plain.robustness.corruptions, clean.robustness.corruptions
    assert p.cell("fog", 3).overall.value < c.cell("fog", 3).overall.value - 0.2


def test_the_gate_against_the_augmented_twin_fails_on_relative_mce(twins) -> None:
    plain, _ = twins
    f = next(f for f in plain.findings if f.rule == "relative-mce")
    v = plain.robustness.corruptions.versus_baseline
    assert v is not None and f.status == "fail" and f.value == pytest.approx(v.relative_mce) and v.relative_mce > 1.1
