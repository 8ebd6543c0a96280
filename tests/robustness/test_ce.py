"""Corruption error (CE), mCE and relative mCE against a hand computation (Hendrycks & Dietterich 2019, Sec. 4)."""

from __future__ import annotations

import math

import pytest

from audit.robustness import corruption_errors


def test_ce_mce_and_relative_mce_by_hand() -> None:
    ours = {"fog": [0.2, 0.3, 0.4, 0.5, 0.6], "snow": [0.1] * 5, "only_ours": [0.9] * 5}
    base = {"fog": [0.4] * 5, "snow": [0.2] * 5}
    r = corruption_errors(ours, 0.1, base, 0.2)
    assert r.ce == pytest.approx({"fog": 2.0 / 2.0, "snow": 0.5 / 1.0})
    assert r.mce == pytest.approx(0.75)
    assert r.relative_ce["fog"] == pytest.approx((2.0 - 0.5) / (2.0 - 1.0))
    assert math.isnan(r.relative_ce["snow"])  # the baseline lost nothing to snow: 0 / 0
    assert r.undefined == ("snow",) and r.relative_mce == pytest.approx(1.5)


def test_severity_counts_must_agree() -> None:
    with pytest.raises(ValueError, match="severities"):
        corruption_errors({"fog": [0.1, 0.2]}, 0.0, {"fog": [0.1] * 5}, 0.0)
