"""A rule that measures NaN or infinity evaluates to `error` — never `pass` — and an error-severity error fails the
verdict (audit/rules/base.py Rule.finding, audit/rules/evaluate.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audit.rules.base import Criterion, Rule, RuleParams
from audit.rules.evaluate import evaluate, verdict


class Measured(Rule[RuleParams]):
    """Reports a fixed measured value; ``failed`` is what the rule's own comparison said."""

    kind = "test_measured"
    title = "Test rule"
    criterion = Criterion("test value", "units", "above")

    def __init__(self, value, failed: bool = False, severity: str = "error", threshold=0.5) -> None:
        super().__init__(RuleParams(id="measured", kind=self.kind, severity=severity))
        self.value, self.failed, self.threshold = value, failed, threshold

    def check(self, evidence):
        return [self.finding(self.failed, "measured something", self.value, self.threshold, sample_ids=("a",))]


NON_FINITE = [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("nan"), torch.tensor(float("nan")).item(),
              np.float64("inf")]


@pytest.mark.parametrize("failed", [False, True], ids=["comparison-passed", "comparison-failed"])
@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf", "np.nan", "np.float32-nan", "torch-nan",
                                                   "np.inf"])
def test_non_finite_value_is_an_error_never_a_pass(value, failed):
    (f,) = Measured(value, failed).check(None)
    assert f.status == "error"
    assert f.value is None  # NaN is not carried on as if it were a measurement
    assert "could not evaluate" in f.message and "measured something" in f.message
    assert f.blocking
    assert verdict([f]) == "fail"


def test_nan_under_warning_severity_is_still_an_error_but_does_not_block():
    (f,) = Measured(math.nan, severity="warning").check(None)
    assert f.status == "error" and not f.blocking


def test_one_nan_rule_fails_an_otherwise_passing_audit():
    findings = evaluate([Measured(0.9), Measured(math.nan)], evidence=None)
    assert [f.status for f in findings] == ["pass", "error"]
    assert verdict(findings) == "fail"


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0, -3.0, None])
def test_finite_or_missing_values_follow_the_comparison(value):
    (f,) = Measured(value, failed=False).check(None)
    assert f.status == "pass"
    (f,) = Measured(value, failed=True).check(None)
    assert f.status == "fail"


def test_rule_that_raises_or_returns_nothing_is_an_error():
    class Raises(Measured):
        def check(self, evidence):
            raise FloatingPointError("overflow in the metric")

    class Silent(Measured):
        def check(self, evidence):
            return []

    findings = evaluate([Raises(0.0), Silent(0.0)], evidence=None)
    assert [f.status for f in findings] == ["error", "error"]
    assert "FloatingPointError" in findings[0].message
    assert verdict(findings) == "fail"


def test_nan_threshold_is_an_error_never_a_pass():
    # metric_min compares value < threshold, which is False for a NaN threshold: the rule says "not failed"
    (f,) = Measured(0.3, failed=False, threshold=math.nan).check(None)
    assert f.status == "error"


@pytest.mark.parametrize("pack_text", ["rule = [1, 2]\n", "pack = 3\n[[rule]]\nid='a'\nkind='metric_min'\n",
                                       "[[rule]]\nid = 'a'\nkind = ['x']\n"])
def test_malformed_pack_is_a_config_error(tmp_path, pack_text):
    from audit.errors import ConfigError
    from audit.rules.pack import load_pack

    p = tmp_path / "p.toml"
    p.write_text(pack_text)
    with pytest.raises(ConfigError, match="p.toml"):
        load_pack(p)


def test_baseline_that_is_not_an_object_is_refused(tmp_path):
    from audit.compare.reports import load_results
    from audit.errors import DataError

    p = tmp_path / "results.json"
    p.write_text("5")
    with pytest.raises(DataError, match="not an object"):
        load_results(p)
