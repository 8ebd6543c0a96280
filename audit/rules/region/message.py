"""The message of a confounder_region finding: the headline criterion, the test and control effects in words,
their difference with its interval, and which region/group cells are over the limit."""

from __future__ import annotations

from collections.abc import Sequence

from .._shortcuts import pct, scope_words
from ..base import Criterion
from .params import ConfounderRegionParams
from .regions import Region


def message(p: ConfounderRegionParams, crit: Criterion, limit: float, w: dict, reg: Region, gname: str,
             failing: list[dict], groups: tuple[str, ...], title: str, regions: list[Region],
             cells: Sequence[dict] = ()) -> str:
    where = f"for '{gname}', {reg.label}"
    head = crit.lead(w["value"], limit, where)
    c = w["control"]
    unit = "score change" if p.criterion == "prob_drop" else "flip rate"
    test_v = w["drop"] if p.criterion == "prob_drop" else w["flip"]
    ctrl_v = c["prob_drop"] if p.criterion == "prob_drop" else c["flip_rate"]
    what = {"swap": "the {r}", "colour": "the colour statistics of the {r}",
            "spectrum": "the high-frequency spectrum (sharpness, noise, compression) of the {r}"}
    if p.replace in what:
        thing = what[p.replace].format(r=reg.label)
        dirs = c["dirs"]

        def moves(d: dict) -> str:
            rm = d["direction"] == "removal"
            flips = (f"{'flips' if rm else 'turns'} {pct(float(d['flip'].mean()))} of the decisions "
                     f"{'away from' if rm else 'to'} '{gname}'")
            if p.criterion == "prob_drop":
                return (f"{'lowers' if rm else 'raises'} the '{gname}' score by {float(d['effect'].mean()):.2f} and "
                        f"{flips} (control: {d['control']:.2f}, {pct(d['control_flip'])}")
            return f"{flips} (control: {pct(d['control_flip'])}"

        def left(d: dict) -> str:
            k = d.get("n_unmatched", 0)
            return f" ({k} more without a close enough donor, left out)" if k else ""

        parts = []
        for d in (dirs.get("removal"), dirs.get("insertion")):
            if d is None:
                continue
            if d["direction"] == "removal":
                parts.append(f"among {d['n']} {scope_words(p.scope)} images assigned to '{gname}'{left(d)}, "
                             f"taking {thing} from images of other groups {moves(d)}, from other '{gname}' images; excess "
                             f"{d['est']:.2f}, 95 % interval {d['lo']:.2f} to {d['hi']:.2f})")
            else:
                parts.append(f"among {d['n']} images assigned to other groups{left(d)}, taking {thing} from "
                             f"'{gname}' images {moves(d)}, from images of other groups; excess {d['est']:.2f}, 95 % interval "
                             f"{d['lo']:.2f} to {d['hi']:.2f})")
        body = ": " + "; ".join(parts) + "."
        if len(parts) == 2:
            body += (f" A cue in use moves the {'score' if p.criterion == 'prob_drop' else 'decisions'} both ways: "
                     f"the smaller excess, {w['value']:.2f}, is judged, and both intervals must lie above 0.")
        else:
            body += " Only this direction could be measured; it is judged alone."
    else:
        words = {"mean": "replacing the {r} with the image's mean colour", "blur": "blurring the {r}",
                 "noise": "replacing the {r} with noise", "greyscale": "removing the colour of the {r}"}
        body = (f": among {w['n']} {scope_words(p.scope)} images assigned to '{gname}', "
                f"{words[p.replace].format(r=reg.label)} lowers the '{gname}' score by {w['drop']:.2f} on average "
                f"and flips {pct(w['flip'])} of the decisions ({w['n_flipped']} of {w['n']}); on the "
                f"{c.get('n', 0)} images of the other groups (control): drop {c['prob_drop']:.2f}, flips "
                f"{pct(c['flip_rate'])}; {unit} {test_v:.2f} − {ctrl_v:.2f} = {w['value']:.2f} (95 % interval "
                f"{w['lo']:.2f} to {w['hi']:.2f}).")
    if w["share"] is not None and title:
        body += f" {title} puts {pct(w['share'])} of its positive mass there (information, not judged)."
    if failing:
        same = sorted({c_["region"].label for c_ in failing if c_["group"] == w["group"]})
        others = sorted({groups[c_["group"]] for c_ in failing if c_["group"] != w["group"]})
        body += f" {len(failing)} region/group cell(s) over the limit; for '{gname}': {'; '.join(same)}."
        if others:  # a cue of one group pasted into another group's images shows in that group's cells too
            body += (f" Cells of {', '.join(repr(o) for o in others)} are over it too (the largest effect names "
                     "the group; see details).")
    else:
        body += f" No tested region ({', '.join(r_.key for r_ in regions)}) is over the limit; this is the closest."
    return head + body + _one_way(cells, w, gname, limit)


def _one_way(cells: Sequence[dict], w: dict, gname: str, limit: float) -> str:
    """Information, not judged: the smallest region of the group that is over the limit in one direction only (a
    corner marker whose removal lowers the score while, pasted alone into other images, it adds little)."""
    cand = []
    for c in cells:
        dirs = list(c["control"].get("dirs", {}).values())
        if c["group"] == w["group"] and not c.get("failed") and len(dirs) == 2 and max(d["est"] for d in dirs) > limit:
            cand.append(c)
    if not cand:
        return ""
    c = min(cand, key=lambda c_: (c_["region"].mask.sum() if not c_["region"].per_sample else 1e12, -c_["value"]))
    parts = "; ".join(f"{d['direction']} excess {d['est']:.2f}" for d in c["control"]["dirs"].values())
    return f" Over the limit one way only (information, not judged): {c['region'].label}, {parts}."
