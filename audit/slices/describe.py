"""Naming a slice: which metadata columns and image properties set it apart, and which members are most typical.

A column separates the slice when it predicts membership: the data checks' property-alone model
(``datachecks.predictive``: a smoothed lookup table over quantile bins or categories, scored out of fold) gives a
one-vs-rest ROC AUC of "in the slice" against "in the rest", with a DeLong 95 % interval. AUC 0.5 = the column
says nothing about membership; columns are ranked by the interval's lower bound. Image properties are the data
checks' pixel properties (brightness, contrast, sharpness, noise, colour casts, ...), measured here on in-memory
images; a caller that has the data checks' table passes its columns instead.

The most typical members are those with the highest responsibility given everything the mixture was fitted on
(embedding, label, prediction or error), as Domino ranks a slice's members: a reviewer sees its characteristic
failures first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..datachecks.predictive import property_aucs
from ..datachecks.properties import pixel_properties
from .discover import Discovery, Slice
from .inputs import SliceInputError


@dataclass(frozen=True)
class ColumnSeparation:
    column: str
    auc: float
    ci95: tuple[float, float]
    categorical: bool


@dataclass(frozen=True)
class SliceDescription:
    rank: int
    columns: tuple[ColumnSeparation, ...]  # best separating first
    typical: np.ndarray  # sample indices, most typical first
    not_scored: tuple[str, ...]  # columns with too few members or non-members to score


def _codes(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Numeric columns as floats (NaN = missing); anything else as category codes (-1 = missing)."""
    v = np.asarray(values)
    if v.dtype.kind in "biuf":
        return v.astype(np.float64), False
    text = np.array(["" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x) for x in v])
    cats, codes = np.unique(text, return_inverse=True)
    codes = codes.astype(np.float64)
    if "" in cats:
        codes[text == ""] = -1.0
        codes[codes > np.flatnonzero(cats == "")[0]] -= 1.0
    return codes, True


def separating_columns(member: np.ndarray, columns: Mapping[str, np.ndarray], seed: int = 0, folds: int = 5,
                       min_count: int = 5) -> tuple[tuple[ColumnSeparation, ...], tuple[str, ...]]:
    """AUC of each column alone at telling ``member`` (N,) bool from the rest, best lower bound first."""
    member = np.asarray(member, dtype=bool)
    targets = np.stack([member, ~member], axis=1).astype(np.float64)
    rows, skipped = [], []
    for name, col in columns.items():
        if len(col) != len(member):
            raise SliceInputError(f"column {name!r}: {len(col)} values, expected {len(member)}")
        values, categorical = _codes(col)
        res = property_aucs(values, targets, categorical, folds=folds, seed=seed, min_positive=min_count)[0]
        if res["auc"] is None:
            skipped.append(name)
            continue
        rows.append(ColumnSeparation(name, float(res["auc"]), (float(res["ci95"][0]), float(res["ci95"][1])),
                                     categorical))
    rows.sort(key=lambda r: (-r.ci95[0], -r.auc, r.column))
    return tuple(rows), tuple(skipped)


def typical_members(discovery: Discovery, slc: Slice, k: int = 10) -> np.ndarray:
    """The ``k`` members most typical of the slice (``Discovery.typicality``: the responsibility given everything
    the mixture was fitted on, as log-odds), most typical first."""
    r = discovery.typicality(slc.component)[slc.members]
    order = np.lexsort((slc.members, -r))
    return slc.members[order[:k]]


def describe_slice(discovery: Discovery, slc: Slice, columns: Mapping[str, np.ndarray], seed: int = 0,
                   k: int = 10) -> SliceDescription:
    """Columns that separate ``slc`` from the rest (over all samples), and its ``k`` most typical members."""
    member = np.zeros(len(discovery.assignment), dtype=bool)
    member[slc.members] = True
    cols, skipped = separating_columns(member, columns, seed)
    return SliceDescription(slc.rank, cols, typical_members(discovery, slc, k), skipped)


def image_property_columns(images: np.ndarray) -> dict[str, np.ndarray]:
    """The data checks' pixel properties of in-memory images (N, H, W[, C]) in [0, 1] or uint8, as columns."""
    a = np.asarray(images)
    scale = 255.0 if a.dtype == np.uint8 else 1.0
    if a.ndim == 3:
        a = a[..., None]
    rows = [pixel_properties(img.astype(np.float64) / scale) for img in a]
    return {name: np.array([r[name] for r in rows]) for name in rows[0]} if rows else {}
