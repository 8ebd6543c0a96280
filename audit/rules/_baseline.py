"""Shared access to the baseline comparison for the comparison-phase rule kinds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..evidence import Evidence


class NoBaseline(Exception):
    pass


def comparison(evidence: Evidence) -> Mapping[str, Any]:
    comp = evidence.extras.get("comparison")
    if not isinstance(comp, Mapping):
        raise NoBaseline("this rule compares with a released model: run with --baseline RESULTS")
    return comp
