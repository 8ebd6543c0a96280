"""A discovered slice as a manifest column, so that a later audit re-checks it as a named subgroup
(``data.subgroups = ["<column>"]``; the audit scores every value of a metadata column as a group).

Values are strings, as manifest metadata are: for all reported slices, ``slice-<rank>`` for a member of the slice
with that rank and ``rest`` for everyone else; for one slice, ``yes`` / ``no``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .discover import Discovery, Slice
from .inputs import SliceInputError

REST = "rest"


def slice_id(rank: int) -> str:
    return f"slice-{rank}"


def slice_column(discovery: Discovery, slices: tuple[Slice, ...] | None = None) -> np.ndarray:
    """(N,) str: ``slice-<rank>`` for members of ``slices`` (default: the reported ones), ``rest`` otherwise."""
    out = np.full(len(discovery.assignment), REST, dtype=object)
    for s in discovery.reported if slices is None else slices:
        out[s.members] = slice_id(s.rank)
    return out


def membership_column(discovery: Discovery, slc: Slice) -> np.ndarray:
    """(N,) str: ``yes`` for the members of ``slc``, ``no`` otherwise."""
    out = np.full(len(discovery.assignment), "no", dtype=object)
    out[slc.members] = "yes"
    return out


def with_slice_column(frame: pd.DataFrame, discovery: Discovery, name: str = "slice",
                      slices: tuple[Slice, ...] | None = None) -> pd.DataFrame:
    """A copy of the manifest ``frame`` (one row per sample, in the order the arrays were given) with the slice
    column added; refuses a frame of another length or an existing column of that name."""
    if len(frame) != len(discovery.assignment):
        raise SliceInputError(f"manifest has {len(frame)} rows, the slices were found on {len(discovery.assignment)}")
    if name in frame.columns:
        raise SliceInputError(f"manifest already has a column {name!r}")
    out = frame.copy()
    out[name] = slice_column(discovery, slices)
    return out


def column_from_results(slices: Mapping[str, Any], ids: Sequence[str], significant_only: bool = True) -> np.ndarray:
    """(len(ids),) str: the slice column of a results.json ``slices`` record for the samples ``ids`` (a manifest's
    ids, in its order): ``slice-<rank>`` for members of each slice (by default the reported, significant ones),
    ``rest`` otherwise. Put it in the manifest and list it in ``data.subgroups``: a later audit scores each slice
    as a named subgroup."""
    if slices.get("status") != "measured":
        raise SliceInputError(f"the results hold no measured slices ({slices.get('reason') or slices.get('status')})")
    out = np.full(len(ids), REST, dtype=object)
    where = {str(i): k for k, i in enumerate(ids)}
    for s in slices.get("slices") or ():
        if significant_only and not s.get("significant"):
            continue
        missing = [m for m in s["members"] if m not in where]
        if missing:
            raise SliceInputError(f"{s['name']}: sample {missing[0]!r} is not in the manifest given")
        out[[where[m] for m in s["members"]]] = s["name"]
    return out
