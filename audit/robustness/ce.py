"""Corruption error summaries of Hendrycks & Dietterich (2019), Section 4, against a baseline model (ImageNet-C
normalises by AlexNet; an audit normalises by the baseline report's model).

With E[c][s] the error rate (1 - accuracy) under corruption c at severity s and E_clean the clean error:
- CE_c = sum_s E[c][s] / sum_s E_base[c][s]
- mCE = mean over corruptions of CE_c
- relative CE_c = sum_s (E[c][s] - E_clean) / sum_s (E_base[c][s] - E_base_clean); relative mCE its mean
A baseline sum of zero leaves that corruption's ratio undefined (NaN): it is named in ``undefined`` and left out
of the means, which cover the corruptions both models were measured on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Errors = Mapping[str, Sequence[float]]  # corruption -> error rate at severities 1..5


@dataclass(frozen=True)
class CorruptionErrors:
    ce: dict[str, float]
    relative_ce: dict[str, float]
    mce: float
    relative_mce: float
    undefined: tuple[str, ...]


def _ratio(num: float, den: float) -> float:
    return num / den if den != 0 else math.nan


def _mean(values: list[float]) -> float:
    ok = [v for v in values if not math.isnan(v)]
    return sum(ok) / len(ok) if ok else math.nan


def corruption_errors(errors: Errors, clean_error: float, baseline: Errors, baseline_clean_error: float
                      ) -> CorruptionErrors:
    """CE, relative CE and their means over the corruptions both models were measured on."""
    names = [c for c in errors if c in baseline]
    ce, rel = {}, {}
    for c in names:
        if len(errors[c]) != len(baseline[c]):
            raise ValueError(f"corruption {c}: {len(errors[c])} severities against the baseline's {len(baseline[c])}")
        ce[c] = _ratio(sum(errors[c]), sum(baseline[c]))
        rel[c] = _ratio(sum(e - clean_error for e in errors[c]),
                        sum(e - baseline_clean_error for e in baseline[c]))
    undefined = tuple(c for c in names if math.isnan(ce[c]) or math.isnan(rel[c]))
    return CorruptionErrors(ce, rel, _mean(list(ce.values())), _mean(list(rel.values())), undefined)
