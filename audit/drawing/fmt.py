"""Number formatting shared by every report context: one place decides how a missing value reads."""

from __future__ import annotations

import math


def fmt(v: float | None, digits: int = 3) -> str:
    """``v`` with ``digits`` decimals; "—" for a missing, NaN or infinite value."""
    if v is None or not math.isfinite(float(v)):
        return "—"
    return f"{float(v):.{digits}f}"
