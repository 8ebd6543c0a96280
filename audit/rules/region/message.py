"""The message of a confounder_region finding: the headline criterion, the test and control effects in words,
their difference with its interval, which region/group cells are over the limit, what is inconclusive near the
limit, the object's own figures (information) and the model passes used."""

from __future__ import annotations

from collections.abc import Sequence

from .._shortcuts import pct, scope_words
from ..base import Criterion
from .params import EDIT_PHRASES, ConfounderRegionParams


def _moves(d: dict, gname: str, criterion: str) -> str:
    rm = d["direction"] == "removal"
    flips = (f"{'flips' if rm else 'turns'} {pct(float(d['flip'].mean()))} of the decisions "
             f"{'away from' if rm else 'to'} '{gname}'")
    if criterion == "prob_drop":
        return (f"{'lowers' if rm else 'raises'} the '{gname}' score by {float(d['effect'].mean()):.2f} and "
                f"{flips} (control: {d['control']:.2f}, {pct(d['control_flip'])}")
    return f"{flips} (control: {pct(d['control_flip'])}"


def _count(d: dict) -> str:
    k = d.get("n_unmatched", 0)
    left = f" ({k} more without a close enough donor, left out)" if k else ""
    of = f" (of {d['n_available']}, sampling stopped: the interval cleared the limit)" \
        if d["n"] < d["n_available"] else ""
    return f"{d['n']}{of}", left


def _donor_body(p: ConfounderRegionParams, w: dict, gname: str, thing: str) -> str:
    c = w["control"]
    parts = []
    for d in (c["dirs"].get("removal"), c["dirs"].get("insertion")):
        if d is None:
            continue
        n, left = _count(d)
        interval = f"excess {d['est']:.2f}, 95 % interval {d['lo']:.2f} to {d['hi']:.2f})"
        if d["direction"] == "removal":
            parts.append(f"among {n} {scope_words(p.scope)} images assigned to '{gname}'{left}, taking {thing} from "
                         f"images of other groups {_moves(d, gname, p.criterion)}, from other '{gname}' images; "
                         f"{interval}")
        else:
            parts.append(f"among {n} images assigned to other groups{left}, giving them {thing} of '{gname}' "
                         f"images {_moves(d, gname, p.criterion)}, from images of other groups; {interval}")
    body = ": " + "; ".join(parts) + "."
    if len(parts) == 2:
        body += (f" A cue in use moves the {'score' if p.criterion == 'prob_drop' else 'decisions'} both ways: the "
                 f"smaller excess, {w['value']:.2f}, is judged, and both intervals must lie above 0.")
    elif c.get("one_way"):
        body += " A degradation can be given but not taken away: this one direction is judged."
    elif c.get("skipped"):
        body += " The other direction was not needed: this one is clearly below the limit."
    else:
        body += " Only this direction could be measured; it is judged alone."
    return body


def message(p: ConfounderRegionParams, crit: Criterion, limit: float, w: dict, named: dict, gname: str,
            failing: list[dict], groups: tuple[str, ...], title: str, tests: Sequence, cells: Sequence[dict],
            near: Sequence[dict], named_note: str, info: Sequence[dict], passes: int, budget: int) -> str:
    t = w["test"]
    label = t.label
    where = f"for '{gname}', {label}" + (f" ({t.edit.name})" if p.replace == "acquisition" else "")
    if named is not w:
        where += f", carried by the {named['test'].label}"
    head = crit.lead(w["value"], limit, where)
    c = w["control"]
    if t.edit.uses_donor or t.edit.how == "level":
        body = _donor_body(p, w, gname, EDIT_PHRASES[t.edit.name].format(r=label))
    else:
        unit = "score change" if p.criterion == "prob_drop" else "flip rate"
        test_v = w["drop"] if p.criterion == "prob_drop" else w["flip"]
        ctrl_v = c["prob_drop"] if p.criterion == "prob_drop" else c["flip_rate"]
        words = {"mean": "replacing the {r} with the image's mean colour", "blur": "blurring the {r}",
                 "noise": "replacing the {r} with noise", "greyscale": "removing the colour of the {r}"}
        body = (f": among {w['n']} {scope_words(p.scope)} images assigned to '{gname}', "
                f"{words[p.replace].format(r=label)} lowers the '{gname}' score by {w['drop']:.2f} on average "
                f"and flips {pct(w['flip'])} of the decisions ({w['n_flipped']} of {w['n']}); on the "
                f"{c.get('n', 0)} images of the other groups (control): drop {c['prob_drop']:.2f}, flips "
                f"{pct(c['flip_rate'])}; {unit} {test_v:.2f} − {ctrl_v:.2f} = {w['value']:.2f} (95 % interval "
                f"{w['lo']:.2f} to {w['hi']:.2f}).")
    if w.get("share") is not None and title:
        body += f" {title} puts {pct(w['share'])} of its positive mass there (information, not judged)."
    if failing:
        same = sorted({c_["test"].label for c_ in failing if c_["group"] == w["group"]})
        others = sorted({groups[c_["group"]] for c_ in failing if c_["group"] != w["group"]})
        body += f" {len(failing)} region/group cell(s) over the limit; for '{gname}': {'; '.join(same)}."
        body += named_note
        if others:  # a cue of one group pasted into another group's images shows in that group's cells too
            body += (f" Cells of {', '.join(repr(o) for o in others)} are over it too (the largest effect names "
                     "the group; see details).")
    else:
        body += f" No tested region ({', '.join(t_.key for t_ in tests)}) is over the limit; this is the closest."
    if near:
        cells_ = "; ".join(f"{c_['test'].key} for '{groups[c_['group']]}' ({c_['lo']:.2f} to {c_['hi']:.2f})"
                           for c_ in near[:3])
        body += (f" Inconclusive near the limit: after all their samples the interval of {cells_} still contains "
                 f"the limit {limit:.2f}; the estimate decides, and more held-out samples would settle it.")
    obj = [c_ for c_ in info if c_["group"] == w["group"] and "value" in c_]
    if obj:
        o = obj[0]
        body += (f" On the object alone (information, not judged: its own colour and texture may differ between "
                 f"classes): excess {o['value']:.2f} (95 % interval {o['lo']:.2f} to {o['hi']:.2f}).")
    if budget:
        body += f" Model passes: {passes:,} (editing every sample would take {budget:,})."
    return head + body + _one_way(cells, w, named, limit)


def _one_way(cells: Sequence[dict], w: dict, named: dict, limit: float) -> str:
    """Information, not judged: the smallest region of the group that is over the limit in one direction only (a
    corner marker whose removal lowers the score while, pasted alone into other images, it adds little); not the
    region the finding already names as the carrier of the effect."""
    cand = []
    for c in cells:
        dirs = list(c.get("control", {}).get("dirs", {}).values())
        if (c["group"] == w["group"] and not c.get("failed") and not c["test"].info and len(dirs) == 2
                and c["test"].key != named["test"].key
                and max(d["est"] for d in dirs) > limit and not c.get("refinement")):
            cand.append(c)
    if not cand:
        return ""
    c = min(cand, key=lambda c_: (c_["region"].area, -c_["value"]))
    parts = "; ".join(f"{d['direction']} excess {d['est']:.2f}" for d in c["control"]["dirs"].values())
    return f" Over the limit one way only (information, not judged): {c['test'].label}, {parts}."
