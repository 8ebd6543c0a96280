"""Agreement between members: their answers on the rows neither was trained on (Cohen's kappa, flips), and their
explanation maps of the same output on shared picks (rank correlation and top-k overlap, per explainer)."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence

import numpy as np

from .result import MapPair, MemberRun, Pair
from .rows import Folds
from .stats import cohen_kappa, flips, rank_correlation, top_overlap

log = logging.getLogger(__name__)


def prediction_pairs(members: Sequence[MemberRun], folds: Folds) -> tuple[Pair, ...]:
    """Every pair of members (in member order) on the rows neither was trained on; the ensemble is compared with
    each member on the rows no member was trained on."""
    out = []
    for a, b in itertools.combinations(members, 2):
        rows = folds.untrained if not (a.trained and b.trained) else folds.common(a.name, b.name)
        ra = a.right[rows] if a.right is not None else None
        rb = b.right[rows] if b.right is not None else None
        kappa = cohen_kappa(a.answers[rows], b.answers[rows]) if len(rows) else math.nan
        out.append(Pair(a.name, b.name, len(rows), kappa, flips(a.answers[rows], b.answers[rows], ra, rb)))
    return tuple(out)


def member_maps(m: MemberRun, name: str, ids: list[str], targets: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The member's maps of explainer ``name`` for ``ids`` explaining ``targets``, or why there are none."""
    assert m.probe is not None
    try:
        maps = m.probe.attributions(name, ids, targets).maps
    except Exception as e:  # noqa: BLE001 - attribution code on a user's model fails in arbitrary ways (as in the
        # explain stage); the explainer is then reported unavailable for this member with the reason
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("family member %s: explainer %s unavailable: %s", m.name, name, reason)
        return None, f"{m.name}: {reason}"
    if not np.isfinite(maps).all():
        return None, f"{m.name}: the maps contain NaN or infinite values"
    return maps, ""


def map_pairs(members: Sequence[MemberRun], explainers: Sequence[str], ids: list[str], targets: np.ndarray,
              fraction: float) -> tuple[tuple[MapPair, ...], dict[str, str]]:
    """Per explainer, every pair of trained members: the mean over the shared picks of the rank correlation and the
    top-k overlap of their maps (a pick where either map is constant, e.g. all zero, is left out: ``n`` counts the
    rest); and per explainer "" or why its maps could not be compared."""
    trained = [m for m in members if m.trained]
    out: list[MapPair] = []
    status: dict[str, str] = {}
    for name in explainers:
        if not ids:
            status[name] = "no shared picks: no sample is outside every member's training data"
            continue
        got = [member_maps(m, name, ids, targets) for m in trained]
        missing = [why for maps, why in got if maps is None]
        if missing:
            status[name] = "; ".join(missing)
            continue
        status[name] = ""
        for (a, (ma, _)), (b, (mb, _)) in itertools.combinations(zip(trained, got, strict=True), 2):
            assert ma is not None and mb is not None
            rc = np.array([rank_correlation(x, y) for x, y in zip(ma, mb, strict=True)])
            ov = np.array([top_overlap(x, y, fraction) for x, y in zip(ma, mb, strict=True)])
            ok = np.isfinite(rc)
            out.append(MapPair(name, a.name, b.name, int(ok.sum()),
                               float(rc[ok].mean()) if ok.any() else math.nan,
                               float(ov[ok].mean()) if ok.any() else math.nan))
    return tuple(out), status
