"""Which cell a confounder_region finding names, and which judged cells are inconclusive near the limit.

The verdict follows the estimate: a cell fails when its judged excess is above the limit and its interval's lower
end is above 0 (both directions for a donor edit), as before sequential sampling. A judged interval that still
contains the limit when its samples are spent is *inconclusive near the limit*; it is named in the message and in
``details["inconclusive"]`` and does not change the verdict by itself. Why not block on it: a clean model whose
effect sits at the limit would fail about half the time on the luck of the draw, and why not pass a failing
estimate: a reliant model whose effect is over the limit would pass on the same luck. The estimate is the best
single decision; the flag tells the reader that the margin is within the noise of this held-out set (more samples,
or a larger ``n``, settle it).
"""

from __future__ import annotations

from collections.abc import Sequence


def carries(cell: dict, of: dict) -> bool:
    """Whether a smaller fixed region still carries the effect of the failing cell ``of``: measured in the same
    directions, each excess at least half of ``of``'s in that direction with its interval above 0 (swapping it
    alone moves the score as the larger region does, in both directions)."""
    mine = cell.get("control", {}).get("dirs", {})
    ref = of.get("control", {}).get("dirs", {})
    if (cell["region"].per_sample or cell["test"].info or cell["group"] != of["group"] or not ref
            or set(mine) != set(ref) or cell["region"].area >= of["region"].area):
        return False
    return all(mine[k]["est"] >= 0.5 * ref[k]["est"] and mine[k]["lo"] > 0 for k in ref)


def name_cell(judged: Sequence[dict], extra: Sequence[dict] = ()) -> tuple[dict, list[dict], dict, str]:
    """The judged cell (its value decides), the failing cells, the cell the finding names and a note on why.

    The judged cell: among the failing cells of the strongest group at least half as strong as its strongest,
    the smallest region (a corner box rather than the whole frame); with nothing failing, the closest cell. The
    named cell: the smallest region that still carries the judged cell's effect (``carries``: a tested region or
    an overlap tested alone, ``refine``), else the judged cell itself."""
    failing = [c for c in judged if c["failed"]]
    worst = max(judged, key=lambda c: (c["failed"], c["value"]))
    if not worst["failed"]:
        return worst, failing, worst, ""
    strong = [c for c in failing if c["group"] == worst["group"] and c["value"] >= 0.5 * worst["value"]]
    worst = min(strong, key=lambda c: (c["region"].area, -c["value"], c["test"].key))
    carriers = [c for c in (*judged, *extra) if "value" in c and carries(c, worst)]
    named = min(carriers, key=lambda c: (c["region"].area, -c["value"], c["test"].key)) if carriers else worst
    bigger = sorted({c["test"].label for c in strong if c is not worst and not c["region"].per_sample
                     and c["region"].area > worst["region"].area
                     and bool((c["region"].mask >= worst["region"].mask).all())})
    note = ""
    if named is not worst:
        parts = "; ".join(f"{k} excess {d['est']:.2f} (the {worst['test'].label}: {worst['control']['dirs'][k]['est']:.2f})"
                          for k, d in named["control"]["dirs"].items())
        how = " (swapped alone as a check)" if named.get("refinement") else ""
        note = (f" The effect is carried by a smaller region, the {named['test'].label}{how}: {parts}, each at "
                "least half the larger region's with its interval above 0; the finding names it.")
    elif bigger and not worst["region"].per_sample:
        note = (f" It is the smallest region that carries the effect: {'; '.join(bigger)} contain"
                f"{'s' if len(bigger) == 1 else ''} it and {'is' if len(bigger) == 1 else 'are'} over the limit "
                "too.")
    return worst, failing, named, note


def inconclusive_cells(judged: Sequence[dict], named: dict) -> list[dict]:
    """The judged cells whose interval contains the limit after all their samples and which could change the
    verdict: for a failing finding the named cell, when it is one and no other failing cell is conclusive; for a
    passing one, every such cell."""
    near = [c for c in judged if c["inconclusive"]]
    if named["failed"]:
        sure = [c for c in judged if c["failed"] and not c["inconclusive"]]
        return [named] if named["inconclusive"] and not sure else []
    return sorted(near, key=lambda c: -c["value"])
