"""confounder_region: does the model rely on something in a suspect image region (a corner tag, a frame, the
background, the colour cast or the acquisition of the image) rather than on the object?

Every test is a counterfactual with a control that carries the same distribution shift without the suspected
cue, judged per group (``task.groups()``: classes, or labels) and failed on the worst (region, group) cell.
For the samples the model assigns to group g (``task.members(..., "predicted")``; ``scope`` correct by default):

- donor edits take the region from another held-out image: ``swap`` its pixels, ``colour`` its colour statistics
  (per-channel mean and spread: a tint, a brightness or contrast shift), ``spectrum`` its radial power above
  ``cutoff`` × Nyquist (own phase and orientation kept: sharpness, noise, compression, not shape). The test donor
  is an image that does not belong to g, the control donor one that does: a cue that rides along with g survives
  the control and goes with the test (removal: the drop of g's score). The other direction (insertion) gives
  images the model assigns to other groups the region of a g image (test) or of an image of a third group where
  there is one (control) and measures the rise of g's score. Each direction's figure is the *difference* of test
  and control, so an edit that is merely unusual for the model cancels. A cue the model uses moves its score both
  ways, while an edit that is out of distribution for one kind of image shows one way: the *smaller* of the two
  excesses is judged, and both intervals must lie above 0. Donors are drawn among the ``match_k`` that look most
  like the sample in what the edit does not move (``match``), and a colour or spectrum donor must be as close as
  the pool's images are to their nearest same-group neighbour (``match_quantile``), else the sample is left out
  and counted; a rule left with no judged cell that way is not applicable;
- ``acquisition``: each of ``acquisition`` is its own edit: the spectrum (a donor edit, as above), and the
  resolution, blur, JPEG blocking and noise *levels* (``levels``) of a g image given to other groups' images
  (test) against a third group's level (control): insertion only, since a degradation cannot be taken away;
- occlusions (``mean``, ``blur``, ``noise``, ``greyscale``) replace the region from the image itself; their control
  is the same edit on the samples of the other groups (fixed sample, bootstrap interval).

Edits that move only the cue: with ROIs, a colour, spectrum or acquisition edit of ``full`` acts on the
*background* (the image off the sample's grown ROI, statistics read off the donor's), which is judged, and
separately on the *object* (its ROI), which is reported as information (``object_apart``): the object's own colour
and texture may legitimately differ between classes. Without ROIs such an edit moves the object's statistics with
any cue; it is judged only where the statistic it moves tells no group apart (``max_statistic_auc``), and is
otherwise not applicable with the figures.

Sampling: each direction edits its samples in a seeded order and is looked at after 20, 40, … samples; it stops
once its repeated 95 % interval clears the limit (``sequential``: an O'Brien-Fleming-type group-sequential test,
so stopping early does not inflate the error rate), and a cell needs its insertion only while its removal is not
clearly below the limit. The finding states the model passes used and what editing every sample would cost. A
judged interval that still contains the limit when the samples are spent is *inconclusive near the limit*: the
message and details say so; the verdict still follows the estimate (see ``verdict``).

Regions: corners, the border frame, the top+bottom (letterbox) and left+right (pillarbox) pairs, single bands,
boxes, the whole image (``full``) and ``outside_roi`` (everything off the sample's ROI grown by ``margin``, and for
a swap off the donor's: the object stays, its background comes from the donor). A ``sweep`` tests every corner, the
frame and both band pairs. When several overlapping regions fail, their overlaps (and the parts of a band pair)
are tested for the failing group and the smallest region that still fails is named (``refine``). Samples whose ROI
covers more than ``max_roi_overlap`` of a fixed region are left out for it. Where the rule computes attributions
(``attribution``), the share of positive attribution in the region is reported as information.
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
from .assemble import assemble, cell_entry, not_applicable_without_roi, tests_for
from .cells import run
from .edits import Edit, Masks
from .message import message
from .occlusion import occluded_scores, occlusion_cell
from .params import CLASSES_OF_EDIT, CRITERIA, EDIT_WORDS, MATCHED_ON, BoxRegion, ConfounderRegionParams
from .plan import Setup, directions, donors_ok
from .refine import refine
from .regions import boxes_of, build_regions
from .swap import DonorPool, ImageSource, region_ok, roi_stack
from .verdict import inconclusive_cells, name_cell


class ConfounderRegion(Rule[ConfounderRegionParams]):
    kind = "confounder_region"
    title = "Reliance on a suspect image region"
    criterion = CRITERIA["prob_drop"]  # or "flip_rate", as configured (each finding states its own)
    needs = frozenset({"maps"})
    shortcuts = (FIXED_POSITION, BACKGROUND, COLOUR, ACQUISITION)
    examples = ({"regions": ["top_left", "border"], "n": 20, "bootstrap": 200},
                {"regions": ["outside_roi"], "attribution": False, "n": 20, "bootstrap": 200},
                {"regions": ["full"], "replace": "colour", "attribution": False, "n": 20, "bootstrap": 200},
                {"regions": ["full"], "replace": "acquisition", "attribution": False, "n": 20})

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
        crit = CRITERIA[p.criterion]
        limit = p.max_prob_drop if p.criterion == "prob_drop" else p.max_flip_rate
        if p.replace in ("greyscale", "colour") and probe.preprocess.channels != 3:
            if probe.preprocess.channels == 1 and p.replace == "greyscale":
                return [self.not_applicable("the model takes single-channel input: it sees no colour, so it cannot "
                                            "rely on a colour cast")]
            if p.replace == "greyscale":
                return [self.error(f"replace = 'greyscale' needs RGB model inputs; the model takes "
                                   f"{probe.preprocess.channels} channels")]
        regions = build_regions(p, H, W)
        has_roi = probe.has_roi()
        if any(r.per_sample for r in regions) and not has_roi:
            regions = [r for r in regions if not r.per_sample]
            if not regions:
                return [self.not_applicable("the held-out set has no ROI, so the background (outside_roi) cannot "
                                            "be told from the object; add ROI boxes or masks to the manifest")]
        margin_px = round(p.margin * min(H, W))
        norm = (probe.preprocess.mean, probe.preprocess.std)
        base = Edit(p.replace, norm, p.blur_sigma * min(H, W), p.cutoff, margin_px)
        tests = tests_for(p, regions, base, has_roi, H, W)
        pr = evidence.predictions
        groups = task.groups()
        in_scope = np.isin(pr.ids, np.array(evidence.sample_ids(p.scope), dtype=object))
        chosen: dict[int, list[str]] = {}  # the samples each group is judged on: assigned, in scope, at most n
        for g in range(len(groups)):
            r = np.flatnonzero(task.members(pr, g, "predicted") & in_scope)
            if p.n is not None and len(r) > p.n:
                r = np.sort(evidence.rng(f"{p.id}:{g}").choice(r, size=p.n, replace=False))
            chosen[g] = [str(s) for s in pr.ids[r]]
        ids = sorted({s for v in chosen.values() for s in v}, key=lambda s: int(pr.index_of([s])[0]))
        if not ids:
            return [self.not_applicable(f"no {scope_words(p.scope)} samples to test")]
        pos_of = {s: i for i, s in enumerate(ids)}
        members = {g: [pos_of[s] for s in v] for g, v in chosen.items()}
        own = np.full(len(ids), -1)
        for g in range(len(groups)):
            idx = np.array(members[g], dtype=np.int64)
            own[idx[own[idx] < 0]] = g
        others: dict[int, list[int]] = {}  # insertion: samples of other groups (at most n, seeded)
        for g in range(len(groups)):
            mine = set(members[g])
            cand = sorted({i for h in range(len(groups)) if h != g for i in members[h] if i not in mine})
            if p.n is not None and len(cand) > p.n:
                cand = sorted(evidence.rng(f"{p.id}:{g}:insert").choice(cand, size=p.n, replace=False).tolist())
            others[g] = cand
        s_rois, s_has = roi_stack([grown(probe.roi(s), margin_px) for s in ids], H, W)
        pool = (DonorPool.build(evidence, probe, p.donors_per_class, p.id, margin_px)
                if any(t.edit.uses_donor or t.edit.how == "level" for t in tests) else None)
        setup = Setup(p, evidence, probe, ids, members, others, ImageSource(probe, ids), pool,
                      Masks(s_rois, None if pool is None else pool.rois), s_has, own)
        orig = pr.probs[pr.index_of(ids)]
        gen = torch.Generator(device="cpu").manual_seed(int(evidence.rng(f"{p.id}:noise").integers(2**31 - 1)))
        unjudged = not_applicable_without_roi(setup, tests, has_roi)
        tests = [t for t in tests if t.key not in unjudged]
        if not tests:
            return [self.not_applicable("; ".join(unjudged.values()), {"not_judged": unjudged})]
        cells, passes, budget = self._measure(setup, tests, orig, limit, crit, gen)
        share_maps = None
        if p.attribution and any(not t.region.per_sample and not t.region.mask.all() for t in tests):
            aset = probe.attributions(p.explainer, ids, "predicted")
            share_maps = (positive_part(aset.maps), np.array([map_problem(m) is not None for m in aset.maps]))
        refined: list[dict] = []
        failing = [c for c in cells if c.get("failed")]
        if p.refine and failing and all(t.edit.how == "swap" for t in tests):
            extra, refined, more = refine(setup, tests, cells, orig, limit, crit, gen)
            cells, passes = cells + extra, passes + more
        tables = assemble(cells, tests, groups, share_maps, setup, p.max_share)
        details: dict = {"explainer": p.explainer if share_maps is not None else None, "explainer_judged": False,
                         "scope": p.scope, "replace": p.replace,
                         "control": "same-group donors" if base.uses_donor or p.replace == "acquisition"
                         else "the same edit on the other groups", "n_evaluated": len(ids), "limit": limit,
                         "regions": tables, "model_passes": passes, "model_passes_fixed": budget,
                         "sequential": p.sequential and p.replace not in ("mean", "blur", "noise", "greyscale")}
        if unjudged:
            details["not_judged"] = unjudged
        judged = [c for c in cells if c.get("judged") and not c["test"].info]
        n_unmatched = sum(c.get("n_unmatched", 0) for c in cells)
        if not judged and n_unmatched:
            return [self.not_applicable(
                f"{EDIT_WORDS.get(p.replace, p.replace)} cannot be tested apart from the image's other cues: "
                f"for {n_unmatched} sample/direction pair(s) no donor of the other kind resembles the sample in "
                f"what the edit must leave alone ({MATCHED_ON.get(p.replace, 'its surroundings')}), e.g. one "
                "group's images alone are letterboxed or blurred; the rules for that cue test it", details)]
        if not judged:
            return [self.not_applicable(f"no group has {p.min_samples} or more {scope_words(p.scope)} samples clear "
                                        "of the tested regions (with donors of another and of the same group)",
                                        details)]
        worst, failing, named, named_note = name_cell(judged, [c for c in cells if c.get("refinement")])
        gname = groups[worst["group"]]
        near = inconclusive_cells(judged, worst)
        details.update(worst_region=worst["test"].key, worst_group=gname, worst_class=gname,
                       failing_cells=[f"{c['test'].key}/{groups[c['group']]}" for c in failing],
                       judged_region=region_geometry(worst["test"].region, worst["test"].label),
                       named_region=region_geometry(named["test"].region, named["test"].label),
                       inconclusive=[{"cell": f"{c['test'].key}/{groups[c['group']]}", "ci95": [rnd(c['lo']),
                                      rnd(c['hi'])]} for c in judged if c["inconclusive"]],
                       decision="inconclusive near the limit" if near else "conclusive")
        if refined:
            details["refined"] = refined
        order = np.argsort(-worst["per_sample"], kind="stable")
        ev_ids = [ids[i] for i in worst["rows"][order][:MAX_EVIDENCE_IDS]]
        info = [c for c in cells if c["test"].info and c.get("judged")]
        msg = message(p, crit, limit, worst, named, gname, failing, groups,
                      explainer_title(probe, p.explainer) if share_maps is not None else "", tests, cells, near,
                      named_note, info, passes, budget)
        if unjudged:  # without ROIs: edits whose statistic tells a class apart were left out, and say so
            msg += (f" Not judged: {', '.join(unjudged)} (the statistic each moves tells a class apart and there is no "
                    "ROI to edit the background alone; see details.not_judged).")
        return [self.finding(bool(failing), msg, worst["value"], limit, ev_ids if failing else ev_ids[:4], details,
                             criterion=crit)]

    def _measure(self, setup: Setup, tests: list, orig: np.ndarray, limit: float, crit: object,
                 gen: torch.Generator) -> tuple[list[dict], int, int]:
        """Every cell of every test: donor and level edits sequentially, all cells of a look in one pass;
        occlusions once per sample. Returns the cells, the model passes and the passes of a fixed design."""
        p, evidence = self.params, setup.evidence
        groups = setup.probe.task.groups()
        cells: list[dict] = []
        passes = budget = 0
        boot_rng = evidence.rng(f"{p.id}:bootstrap")
        all_dirs: list = []
        per_cell: list[tuple] = []
        for test in tests:
            ok_rows = region_ok(test.region, setup.masks.samples, setup.has_roi, p.max_roi_overlap)
            if not (test.edit.uses_donor or test.edit.how == "level"):
                sc = occluded_scores(setup, test, ok_rows, gen)
                passes += int(ok_rows.sum())
                budget += int(ok_rows.sum())
                for g in range(len(groups)):
                    rows_all = np.array(setup.members[g], dtype=np.int64)
                    rows = rows_all[ok_rows[rows_all]] if len(rows_all) else rows_all
                    c = occlusion_cell(setup, g, rows, ok_rows, sc, orig, p.criterion, p.bootstrap, boot_rng) \
                        if len(rows) else None
                    cells.append(cell_entry(test, g, rows_all, rows, c, p.min_samples, limit, crit))
                continue
            ok_d = donors_ok(setup, test.region)
            for g in range(len(groups)):
                dirs = directions(setup, test, g, ok_rows, ok_d)
                all_dirs += dirs
                per_cell.append((test, g, dirs))
        if not p.sequential:
            for d in all_dirs:
                d.single_look = True
        budget += 2 * sum(len(d.rows) for d in all_dirs)
        passes += run(all_dirs, setup.probe, setup.src, setup.pool, setup.masks, orig, limit, p.criterion, gen)
        for test, g, dirs in per_cell:
            rows_all = np.array(setup.members[g], dtype=np.int64)
            ok_rows = region_ok(test.region, setup.masks.samples, setup.has_roi, p.max_roi_overlap)
            cells.append(cell_entry(test, g, rows_all, None, dirs, p.min_samples, limit, crit, p.criterion,
                                    int(ok_rows[rows_all].sum()) if len(rows_all) else 0))
        return cells, passes, budget


def region_geometry(reg: object, label: str) -> dict:
    """What the finding judged, drawable: boxes in model-input pixels, or the background / object of each ROI."""
    if getattr(reg, "per_sample", False):
        return {"key": reg.key, "label": label, "per_sample": "object" if reg.inside else "background"}  # type: ignore[attr-defined]
    return {"key": reg.key, "label": label, "boxes": boxes_of(reg.mask)}  # type: ignore[attr-defined]
