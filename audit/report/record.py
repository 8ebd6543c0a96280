"""The JSON form every document shares: plain JSON values (``jsonable``), one rule result as results.json and the
report list it (``finding_dict``, with its criterion), and each pack rule's parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..products import Finding
from ..result import AuditResult
from .criteria import criterion_of, headline, subject


def jsonable(x: Any) -> Any:
    """Plain JSON types only; NaN/inf become null; floats rounded to 6 significant digits for stable diffs."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        if not math.isfinite(f):
            return None
        return float(f"{f:.6g}")
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, Path):
        return str(x)
    return str(x)


def rule_params(r: AuditResult) -> dict[str, dict[str, Any]]:
    """Each pack rule's parameters by rule id (metric names, limits, descriptions)."""
    return {rule.params.id: rule.params.model_dump(mode="json") for rule in r.pack.rules}


def finding_dict(f: Finding, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One entry of ``rules``; ``params`` (the rule's pack entry) name the metric a metric rule reads. ``subject``
    (what was judged) and ``headline`` (the comparison with it, the line every document shows) are stated here
    once, so results.json is the one source of them."""
    params = params or {}
    entry = {
        "id": f.rule, "kind": f.kind, "severity": f.severity, "status": f.status, "value": f.value,
        "threshold": f.threshold,
        "criterion": criterion_of(f.details),
        "subject": subject(jsonable(dict(f.details))),
        "description": str(params.get("description") or ""),
        "message": f.message, "sample_ids": list(f.sample_ids),
        "details": dict(f.details),
    }
    entry["headline"] = headline(jsonable(entry))
    return entry
