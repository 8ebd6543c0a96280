"""The region that carries the effect: when overlapping fixed regions fail for a group, test the overlaps alone.

A sweep swaps whole artefacts (every corner, the frame, both band pairs at two widths), so a corner marker is
also inside the top band pair and the frame, and all of them may fail. The named region should be the smallest
that still carries the effect. For the failing group, the candidates are the overlaps of the strongest failing
region with every tested region that showed the effect in at least one direction, and the separate parts of a
region made of several (the top and the bottom band of a letterbox pair); each is swapped alone, in both
directions, with its own ring-matched donors. The candidates that fail join the cells, so that
``verdict.name_cell`` picks the smallest failing region at least half as strong as the strongest; a second round
refines the smallest failing candidate once more.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import label as connected

from ..base import Criterion
from .assemble import cell_entry
from .cells import run
from .plan import Setup, Test, directions, donors_ok
from .regions import Region
from .swap import region_ok
from .verdict import carries

MAX_CANDIDATES = 6


def _box_words(mask: np.ndarray) -> str:
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return f"x {xs[0]}–{xs[-1] + 1}, y {ys[0]}–{ys[-1] + 1} px"


def _overlap_words(mask: np.ndarray, a: str, b: str) -> str:
    """A box where the overlap is one, else the overlap's size in pixels."""
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    whole = mask[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1].all()
    shape = f"box {_box_words(mask)}" if whole else f"{int(mask.sum())} px (within {_box_words(mask)})"
    return f"{shape}, where the {a} and the {b} overlap"


def _candidates(base: Test, others: list[tuple[Test, dict | None]], seen: set[bytes]) -> list[Test]:
    R = base.region.mask
    out: list[Test] = []

    def add(mask: np.ndarray, key: str, label: str) -> None:
        b = np.packbits(mask).tobytes()
        if mask.any() and mask.sum() < R.sum() and b not in seen:
            seen.add(b)
            out.append(Test(key, label, base.edit, Region(key, label, mask)))

    for t, cell in others:
        if t.region.per_sample or t is base or cell is None:
            continue
        dirs = cell.get("control", {}).get("dirs", {})
        if not any(d["est"] > cell.get("limit", 0.0) for d in dirs.values()) and not cell.get("failed"):
            continue
        inter = R & t.region.mask
        if not inter.any():  # regions that do not touch have no overlap to test
            continue
        add(inter, f"{base.key}&{t.key}", _overlap_words(inter, base.label, t.label))
    parts, n = connected(R)
    if n > 1:
        for k in range(1, n + 1):
            m = parts == k
            add(m, f"{base.key}#{k}", f"box {_box_words(m)}, one part of the {base.label}")
    return out[:MAX_CANDIDATES]


def refine(setup: Setup, tests: list[Test], cells: list[dict], orig: np.ndarray, limit: float, crit: Criterion,
           gen: torch.Generator) -> tuple[list[dict], list[dict], int]:
    """Extra cells (the failing group's overlaps and parts), their summaries for the details, and the passes."""
    p = setup.p
    failing = [c for c in cells if c.get("failed") and not c["region"].per_sample]
    if not failing:
        return [], [], 0
    top = max(failing, key=lambda c: c["value"])
    g = top["group"]
    strong = [c for c in failing if c["group"] == g and c["value"] >= 0.5 * top["value"]]
    base = min(strong, key=lambda c: (c["region"].area, -c["value"], c["test"].key))
    for c in cells:
        c.setdefault("limit", limit)
    same_group = [(c["test"], c) for c in cells if c["group"] == g]
    seen = {np.packbits(t.region.mask).tobytes() for t in tests}
    extra: list[dict] = []
    passes = 0
    current = base
    for _ in range(2):
        cands = _candidates(current["test"], same_group, seen)
        if not cands:
            break
        new: list[dict] = []
        for t in cands:
            ok_rows = region_ok(t.region, setup.masks.samples, setup.has_roi, p.max_roi_overlap)
            dirs = directions(setup, t, g, ok_rows, donors_ok(setup, t.region))
            passes += run(dirs, setup.probe, setup.src, setup.pool, setup.masks, orig, limit, p.criterion, gen)
            rows_all = np.array(setup.members[g], dtype=np.int64)
            cell = cell_entry(t, g, rows_all, None, dirs, p.min_samples, limit, crit, p.criterion,
                              int(ok_rows[rows_all].sum()))
            cell["limit"] = limit
            cell["refinement"] = True
            new.append(cell)
        extra += new
        same_group += [(c["test"], c) for c in new]
        won = [c for c in new if "value" in c and carries(c, base)]
        if not won:
            break
        current = min(won, key=lambda c: (c["region"].area, -c["value"]))
    summary = [{"key": c["test"].key, "label": c["test"].label, "area_px": int(c["region"].area),
                "excess": float(c["value"]) if "value" in c else None, "failed": bool(c["failed"]),
                "carries_the_effect": "value" in c and carries(c, base)} for c in extra]
    return extra, summary, passes
