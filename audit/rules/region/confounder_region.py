"""confounder_region: does the model rely on something in a suspect image region (a corner tag, a frame, the
background, the colour cast or the sharpness of the whole image) rather than on the object?

Every test is a counterfactual with a control that carries the same distribution shift without the suspected
cue, judged per group (``task.groups()``: classes, or labels) and failed on the worst (region, group) cell.
For the samples the model assigns to group g (``task.members(..., "predicted")``; ``scope`` correct by default):

- donor edits take the region from another held-out image: ``swap`` its pixels, ``colour`` its colour statistics
  (per-channel mean and spread: a tint, a brightness or contrast shift), ``spectrum`` its radial power above
  ``cutoff`` × Nyquist (own phase and orientation kept: sharpness, noise, compression, not shape). The
  test donor is an image that does not belong to g, the control donor one that does: a cue that rides along
  with g survives the control and goes with the test (removal: the drop of g's score). The other direction
  (insertion) gives images the model assigns to other groups the region of a g image (test) or of an image
  of a third group where there is one (control: it takes the image's own content away as the test does) and
  measures the rise of g's score. Each direction's figure is the *difference* of test and control, so an edit
  that is merely unusual for the model (out of distribution) cancels. A cue the model uses moves its score both
  ways (taken away it lowers g, given to others it raises g), while an edit that is out of distribution for one
  kind of image only shows one way (a blurred image given a sharp image's spectrum is noise, not sharpness; a
  bar-free image given a letterboxed image's contrast is darkened, not letterboxed): the *smaller* of the two
  excesses is judged, and both intervals must lie above 0 (one direction alone where only one can be measured,
  e.g. when no image of another group is in scope). Donors are
  drawn among the ``match_k`` that look most like the sample in what the edit does not move (``_match``: the
  pixels around a swapped region, so a pasted region continues what surrounds it; coarse layout and sharpness
  for a colour edit; layout and colour for a spectrum edit), so only the suspected cue travels; a colour or
  spectrum donor must also be as close as the pool's images are to their nearest same-group neighbour
  (``match_quantile``), else the sample is left out and counted (no other group holds a letterboxed image like
  it: colour cannot be told from the bars), and a rule left with no judged cell that way is not applicable;
- occlusions (``mean``, ``blur``, ``noise``, ``greyscale``) replace the region from the image itself; their
  control is the same edit on the samples of the other groups (the effect on g minus the mean effect on the
  others). A global occlusion such as greyscale can hit one class harder for no shortcut reason: prefer
  ``colour`` for colour casts.

Regions: corners, the border frame, the top+bottom (letterbox) and left+right (pillarbox) pairs, single bands,
boxes, the whole image (``full``) and ``outside_roi`` (everything off the sample's ROI grown by ``margin``, and off
the donor's: the object stays, its background comes from the donor; samples without a ROI are left out). A
``sweep`` tests every corner and the frame and both band pairs: artefacts are swapped whole, since half a
letterbox is an image no training set holds. Samples whose ROI covers more than ``max_roi_overlap`` of a fixed
region are left out for it (replacing it would remove the object itself).

Per cell and sample: the drop of the target score (``task.target_scores``, target g) and whether the decision
for g flips (``task.decide``). The criterion (``criterion``) is the excess probability drop (default) or the excess
flip rate over the control; a cell fails when it is above its limit and the lower end of its 95 % bootstrap
interval is above 0 (cells with fewer than ``min_samples`` samples are reported, not judged). Where the rule
computes attributions (``attribution``), the share of positive attribution in the region is reported as
information; it is not judged (attention is not use).
"""

from __future__ import annotations

import numpy as np
import torch

from ...products import Finding
from .._shortcuts import (
    MAX_EVIDENCE_IDS,
    explainer_title,
    grown,
    map_problem,
    positive_part,
    require_probe,
    rnd,
    scope_words,
)
from ..base import Rule
from ..evidence import Evidence
from ..shortcut_classes import ACQUISITION, BACKGROUND, COLOUR, FIXED_POSITION
from .effects import (
    bootstrap_mean,
    brief,
    donor_direction,
    eligible,
    judged_direction,
    own_targets,
    sample_mask,
)
from .message import message
from .params import CLASSES_OF_EDIT, CRITERIA, EDIT_WORDS, MATCHED_ON, BoxRegion, ConfounderRegionParams
from .regions import Region, build_regions
from .swap import DonorPool, Edit, ImageSource, edited_scores


class ConfounderRegion(Rule[ConfounderRegionParams]):
    kind = "confounder_region"
    title = "Reliance on a suspect image region"
    criterion = CRITERIA["prob_drop"]  # or "flip_rate", as configured (each finding states its own)
    needs = frozenset({"maps"})
    shortcuts = (FIXED_POSITION, BACKGROUND, COLOUR, ACQUISITION)
    examples = ({"regions": ["top_left", "border"], "n": 20, "bootstrap": 200},
                {"regions": ["outside_roi"], "attribution": False, "n": 20, "bootstrap": 200},
                {"regions": ["full"], "replace": "colour", "attribution": False, "n": 20, "bootstrap": 200},
                {"regions": ["full"], "replace": "spectrum", "attribution": False, "n": 20, "bootstrap": 200})

    def shortcut_classes(self) -> tuple[str, ...]:
        p = self.params
        if p.replace in CLASSES_OF_EDIT:
            return CLASSES_OF_EDIT[p.replace]
        out: list[str] = []
        names = [r for r in p.regions if isinstance(r, str)]
        if p.sweep or any(isinstance(r, BoxRegion) for r in p.regions) or any(r not in ("outside_roi", "full")
                                                                             for r in names):
            out.append(FIXED_POSITION.key)
        if "outside_roi" in names:
            out.append(BACKGROUND.key)
        return tuple(out)

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        probe = require_probe(evidence)
        task = probe.task
        H, W = probe.input_size
        regions = build_regions(p, H, W)
        crit = CRITERIA[p.criterion]
        limit = p.max_prob_drop if p.criterion == "prob_drop" else p.max_flip_rate
        if p.replace in ("greyscale", "colour") and probe.preprocess.channels != 3:
            if probe.preprocess.channels == 1 and p.replace == "greyscale":
                return [self.not_applicable("the model takes single-channel input: it sees no colour, so it cannot "
                                            "rely on a colour cast")]
            if p.replace == "greyscale":
                return [self.error(f"replace = 'greyscale' needs RGB model inputs; the model takes "
                                   f"{probe.preprocess.channels} channels")]
        margin_px = round(p.margin * min(H, W))
        if any(r.per_sample for r in regions) and not probe.has_roi():
            regions = [r for r in regions if not r.per_sample]
            if not regions:
                return [self.not_applicable("the held-out set has no ROI, so the background (outside_roi) cannot "
                                            "be told from the object; add ROI boxes or masks to the manifest")]
        norm = (probe.preprocess.mean, probe.preprocess.std)
        edit = Edit(p.replace, norm, p.blur_sigma * min(H, W), p.cutoff, margin_px)
        pr = evidence.predictions
        groups = task.groups()
        in_scope = np.isin(pr.ids, np.array(evidence.sample_ids(p.scope), dtype=object))
        # the samples each group is judged on: assigned to it by the model, in scope, at most n (seeded)
        members: dict[int, list[str]] = {}
        for g in range(len(groups)):
            r = np.flatnonzero(task.members(pr, g, "predicted") & in_scope)
            if p.n is not None and len(r) > p.n:
                r = np.sort(evidence.rng(f"{p.id}:{g}").choice(r, size=p.n, replace=False))
            members[g] = [str(s) for s in pr.ids[r]]
        ids = sorted({s for v in members.values() for s in v}, key=lambda s: int(pr.index_of([s])[0]))
        if not ids:
            return [self.not_applicable(f"no {scope_words(p.scope)} samples to test")]
        pos_of = {s: i for i, s in enumerate(ids)}
        src = ImageSource(probe, ids)
        rois = [probe.roi(s) for s in ids]
        rois_grown = [grown(r, margin_px) for r in rois]
        orig = pr.probs[pr.index_of(ids)]
        share_maps = None
        if p.attribution and any(not r.mask.all() for r in regions):
            aset = probe.attributions(p.explainer, ids, "predicted")
            share_maps = (positive_part(aset.maps), np.array([map_problem(m) is not None for m in aset.maps]))
        donors = DonorPool.build(evidence, probe, p.donors_per_class, p.id, margin_px) if edit.uses_donor else None
        gen = torch.Generator(device="cpu").manual_seed(int(evidence.rng(f"{p.id}:noise").integers(2**31 - 1)))
        boot_rng = evidence.rng(f"{p.id}:bootstrap")

        ring_px = max(2, round(0.05 * min(H, W)))
        donor_ctx = ({r.key: donors.matched(r, edit, ring_px, p.match_quantile)
                                  for r in regions} if donors is not None
                     and p.match_context else {})
        region_tables: dict[str, dict] = {}
        n_unmatched = 0  # samples left out of a direction: no donor close enough in what the edit does not move
        cells: list[dict] = []
        # occlusions: one edit per sample, judged against the other groups; donor edits: per group
        occl_scores: dict[str, np.ndarray] = {}
        # insertion: samples the model assigns to other groups (at most n each, seeded), for each group g
        others_of: dict[int, list[int]] = {}
        for g in range(len(groups)):
            own = set(members[g])
            cand = [pos_of[s_] for h in range(len(groups)) if h != g for s_ in members[h] if s_ not in own]
            cand = sorted(set(cand))
            if p.n is not None and len(cand) > p.n:
                cand = sorted(evidence.rng(f"{p.id}:{g}:insert").choice(cand, size=p.n, replace=False).tolist())
            others_of[g] = cand
        for reg in regions:
            ok_rows = eligible(reg, rois, p.max_roi_overlap)
            if not edit.uses_donor:
                rows_e = np.flatnonzero(ok_rows)
                occl_scores[reg.key] = np.full((len(ids), orig.shape[1]), np.nan)
                if len(rows_e):
                    occl_scores[reg.key][rows_e] = edited_scores(probe, src, rows_e, reg, edit, rois_grown,
                                                                 generator=gen)
            per_group: dict[str, dict] = {}
            for g, gname in enumerate(groups):
                rows_all = np.array([pos_of[s] for s in members[g]], dtype=np.int64)
                rows = rows_all[ok_rows[rows_all]] if len(rows_all) else rows_all
                entry: dict = {"n": len(rows), "n_left_out": int(len(rows_all) - len(rows))}
                per_group[gname] = entry
                if len(rows) == 0:
                    continue
                tgt = np.full(len(rows), g)
                s0 = task.target_scores(orig[rows], tgt)
                d0 = task.decide(orig[rows], tgt)
                if edit.uses_donor:
                    assert donors is not None
                    rm = donor_direction(p, evidence, probe, task, src, ids, reg, edit, rois_grown, donors,
                                               donor_ctx.get(reg.key), rows, g, orig, "removal", boot_rng)
                    ins_rows = np.array(sorted(others_of.get(g, [])), dtype=np.int64)
                    ins_rows = ins_rows[ok_rows[ins_rows]] if len(ins_rows) else ins_rows
                    ins = (donor_direction(p, evidence, probe, task, src, ids, reg, edit, rois_grown, donors,
                                                 donor_ctx.get(reg.key), ins_rows, g, orig, "insertion", boot_rng)
                           if len(ins_rows) else None)
                    unmatched = {d["direction"]: d["n_unmatched"] for d in (rm, ins) if d and d["n_unmatched"]}
                    if unmatched:
                        entry["n_unmatched"] = unmatched
                        n_unmatched += sum(unmatched.values())
                    rm, ins = (d if d is not None and d["n"] else None for d in (rm, ins))
                    if rm is None and ins is None:
                        continue
                    entry["n"] = rm["n"] if rm else 0
                    entry["n_insertion"] = ins["n"] if ins else 0
                    dirs = [d for d in (rm, ins) if d is not None]
                    weak, floor = judged_direction(dirs)
                    est, lo, hi = weak["est"], weak["lo"], weak["hi"]
                    shown = rm if rm is not None else ins  # evidence: the group's own images where measured
                    rows = shown["rows"]
                    drop_t, flip_t, per_sample = shown["effect"], shown["flip"], shown["per_sample"]
                    control = {"prob_drop": shown["control"], "flip_rate": shown["control_flip"],
                               "direction": weak["direction"], "dirs": {d["direction"]: d for d in dirs}}
                    entry["removal"] = brief(rm)
                    entry["insertion"] = brief(ins)
                else:
                    sc = occl_scores[reg.key]
                    others = np.flatnonzero(ok_rows & ~np.isin(np.arange(len(ids)), rows_all))
                    drop_t = s0 - task.target_scores(sc[rows], tgt)
                    flip_t = (d0 & ~task.decide(sc[rows], tgt)).astype(float)
                    o_tgt = own_targets(task, pr, ids, others, members)
                    keep = o_tgt >= 0
                    others, o_tgt = others[keep], o_tgt[keep]
                    if len(others) == 0:
                        entry["note"] = "no samples of other groups to compare with"
                        continue
                    so = task.target_scores(orig[others], o_tgt)
                    drop_o = so - task.target_scores(sc[others], o_tgt)
                    flip_o = (task.decide(orig[others], o_tgt) & ~task.decide(sc[others], o_tgt)).astype(float)
                    a, b = (drop_t, drop_o) if p.criterion == "prob_drop" else (flip_t, flip_o)
                    est, lo, hi = bootstrap_mean(a, b, p.bootstrap, boot_rng)
                    floor = lo
                    per_sample = a - float(b.mean())
                    control = {"prob_drop": float(drop_o.mean()), "flip_rate": float(flip_o.mean()),
                               "n": len(others)}
                share = None
                n_share_over = None
                if share_maps is not None and not reg.mask.all():
                    pos, bad = share_maps
                    masks = np.stack([sample_mask(reg, rois_grown[i]) for i in rows])
                    tot = pos[rows].reshape(len(rows), -1).sum(1)
                    ins = (pos[rows] * masks).reshape(len(rows), -1).sum(1)
                    sh = np.where(bad[rows] | (tot <= 0), 0.0, ins / np.where(tot > 0, tot, 1.0))
                    share, n_share_over = float(sh.mean()), int((sh > p.max_share).sum())
                entry.update(
                    excess=rnd(est), ci95=[rnd(lo), rnd(hi)],
                    prob_drop=rnd(drop_t.mean()), flip_rate=rnd(flip_t.mean()), n_flipped=int(flip_t.sum()),
                    control_prob_drop=rnd(control["prob_drop"]), control_flip_rate=rnd(control["flip_rate"]),
                    share=rnd(share), n_share_over=n_share_over,
                )
                cell = {"region": reg, "group": g, "rows": rows, "n": len(rows), "value": est, "lo": lo, "hi": hi,
                        "drop": float(drop_t.mean()), "flip": float(flip_t.mean()), "n_flipped": int(flip_t.sum()),
                        "control": control, "share": share, "per_sample": per_sample,
                        "direction": control.get("direction", "removal")}
                judged = len(rows) >= p.min_samples
                entry["judged"] = judged
                if judged:
                    cell["failed"] = bool(crit.exceeds(est, limit) and floor > 0)
                    entry["failed"] = cell["failed"]
                    cells.append(cell)
            region_tables[reg.key] = {"label": reg.label, "area_fraction": rnd(float(reg.mask.mean()))
                                      if not reg.per_sample else None, "per_group": per_group}
        details: dict = {"explainer": p.explainer if share_maps is not None else None, "explainer_judged": False,
                         "scope": p.scope,
                         "replace": p.replace, "control": "same-group donors" if edit.uses_donor
                         else "the same edit on the other groups", "n_evaluated": len(ids), "limit": limit,
                         "regions": region_tables}
        if not cells and n_unmatched:
            return [self.not_applicable(
                f"{EDIT_WORDS.get(p.replace, p.replace)} cannot be tested apart from the image's other cues: "
                f"for {n_unmatched} sample/direction pair(s) no donor of the other kind resembles the sample in "
                f"what the edit must leave alone ({MATCHED_ON.get(p.replace, 'its surroundings')}), e.g. one "
                "group's images alone are letterboxed or blurred; the rules for that cue test it", details)]
        if not cells:
            return [self.not_applicable(f"no group has {p.min_samples} or more {scope_words(p.scope)} samples clear of the "
                               "tested regions (with donors of another and of the same group)")]
        worst = max(cells, key=lambda c: (c["failed"], c["value"]))
        if worst["failed"]:
            # name the most specific culprit: among this group's failing regions at least half as strong, the
            # smallest (a corner box rather than the whole frame)
            strong = [c for c in cells if c["group"] == worst["group"] and c["failed"]
                      and c["value"] >= 0.5 * worst["value"]]
            worst = min(strong, key=lambda c: (c["region"].mask.sum() if not c["region"].per_sample else 1e12,
                                               -c["value"], c["region"].key))
        failing = [c for c in cells if c["failed"]]
        reg: Region = worst["region"]
        gname = groups[worst["group"]]
        details.update(worst_region=reg.key, worst_group=gname, worst_class=gname,
                       failing_cells=[f"{c['region'].key}/{groups[c['group']]}" for c in failing])
        r = worst["rows"]
        order = np.argsort(-worst["per_sample"], kind="stable")
        ev_ids = [ids[i] for i in r[order][:MAX_EVIDENCE_IDS]]
        msg = message(p, crit, limit, worst, reg, gname, failing, groups, explainer_title(probe, p.explainer)
                            if share_maps is not None else "", regions, cells)
        return [self.finding(bool(failing), msg, worst["value"], limit, ev_ids if failing else ev_ids[:4], details,
                             criterion=crit)]

    # ---- helpers ---------------------------------------------------------------------------------------------
