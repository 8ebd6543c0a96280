"""Describing and exporting a slice: a metadata column that marks the planted slice separates it (AUC near 1,
the data checks' interval), a random column does not; a blurred subset is named by the data checks' sharpness;
typical members are the most responsible ones given every fitted term; the exported manifest column, scored by
the audit's own subgroup metrics, gives the slice's accuracy back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter
from slices_synthetic import planted

from audit.products import Predictions
from audit.scoring.classification import score
from audit.slices import (
    SliceInputError,
    describe_slice,
    discover_slices,
    image_property_columns,
    membership_column,
    slice_column,
    typical_members,
    with_slice_column,
)
from audit.slices.describe import separating_columns
from audit.slices.discover import mixture_terms, reduce_embeddings
from audit.slices.mixture import responsibilities


@pytest.fixture(scope="module")
def found():
    inputs, member = planted(1)
    d = discover_slices(inputs, np.random.default_rng(1))
    assert d.reported
    return inputs, member, d


def test_marking_column_separates_and_noise_does_not(found) -> None:
    inputs, member, d = found
    top = d.reported[0]
    rng = np.random.default_rng(0)
    camera = np.where(member, "cam-B", np.where(rng.random(inputs.n) < 0.5, "cam-A", "cam-C"))
    columns = {"camera": camera, "noise": rng.normal(size=inputs.n), "site": rng.choice(["x", "y"], inputs.n)}
    desc = describe_slice(d, top, columns, seed=0, k=5)
    assert desc.columns[0].column == "camera" and desc.columns[0].categorical
    assert desc.columns[0].auc > 0.9 and desc.columns[0].ci95[0] > 0.8
    others = {c.column: c for c in desc.columns[1:]}
    for name in ("noise", "site"):
        assert others[name].ci95[0] < 0.5 + 0.15 and others[name].auc < 0.7
    assert len(desc.typical) == 5 and set(desc.typical) <= set(top.members.tolist())


def test_typical_members_are_the_most_responsible(found) -> None:
    inputs, member, d = found
    top = d.reported[0]
    typ = typical_members(d, top, k=len(top.members))
    assert sorted(typ.tolist()) == sorted(top.members.tolist())
    fit_terms, _ = mixture_terms(inputs, d.settings)
    r = responsibilities(d.mixture, reduce_embeddings(inputs, d.settings.n_pca), fit_terms)[typ, top.component]
    assert np.all(np.diff(r) <= 1e-12)  # the responsibility given every fitted term never rises down the list
    assert np.all(np.diff(d.typicality(top.component)[typ]) <= 0)
    assert member[typ[:10]].all()  # the ten most typical are planted ones


def test_blurred_subset_is_named_by_sharpness() -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (120, 32, 32, 3))
    blurred = np.zeros(120, dtype=bool)
    blurred[:20] = True
    images[blurred] = gaussian_filter(images[blurred], sigma=(0, 1.5, 1.5, 0))
    cols = image_property_columns((images * 255).astype(np.uint8))
    assert {"brightness", "sharpness", "noise", "colour_red_blue"} <= set(cols)
    rows, _ = separating_columns(blurred, cols)
    assert rows[0].column in ("sharpness", "contrast", "noise") and rows[0].auc > 0.95
    assert {r.column for r in rows[:3]} >= {"sharpness"}


def test_exported_column_rechecks_as_a_subgroup(found) -> None:
    inputs, _, d = found
    top = d.reported[0]
    frame = pd.DataFrame({"path": [f"img{i}.png" for i in range(inputs.n)]})
    out = with_slice_column(frame, d, "found_slice")
    assert list(frame.columns) == ["path"]  # the caller's frame is left alone
    assert set(out["found_slice"]) == {"rest"} | {f"slice-{s.rank}" for s in d.reported}
    labels = inputs.labels.argmax(1)
    preds = Predictions(ids=out["path"].to_numpy(), labels=labels, probs=inputs.probs,
                        metadata=out[["found_slice"]].reset_index(drop=True))
    metrics = score(preds, ("a", "b", "c"), np.random.default_rng(0), ("found_slice",))
    group = next(g for g in metrics.subgroups if g.value == f"slice-{top.rank}")
    assert group.n == top.size
    assert group.accuracy == pytest.approx(inputs.metric[top.members].mean())
    yes_no = membership_column(d, top)
    assert (yes_no == "yes").sum() == top.size and set(yes_no) == {"yes", "no"}
    assert (slice_column(d, ()) == "rest").all()
    with pytest.raises(SliceInputError, match="manifest has 3 rows"):
        with_slice_column(frame.head(3), d)
    with pytest.raises(SliceInputError, match="already has a column 'path'"):
        with_slice_column(frame, d, "path")
