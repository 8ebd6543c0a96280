"""confounder_region: does the model rely on a suspect image region (a corner tag, a frame, a ruler)?

For each declared region (named corners, border bands, boxes) or every region of a ``sweep``:
(a) the share of positive attribution mass inside the region, per predicted class;
(b) a counterfactual: the region is replaced and the prediction flip rate and the mean drop of the predicted
    class's probability are measured, per predicted class. ``swap`` (default) takes the region from a held-out
    image of another class (seeded donor; donors whose ROI covers the region are not used) and, as a control,
    from an image of the same class: the figures judged are the *excess* over that control, so a region that
    merely holds background (swapping it in from any image is in-distribution) scores about zero, and a
    fragile, low-margin prediction that flips under any edit does not count against the region. ``mean`` (the
    image's mean colour outside the region), ``blur`` and seeded ``noise`` are plain occlusions without a
    control: a large flat or blurred area is out of distribution for many models (a flat 6-px frame flips
    most predictions of a clean digits CNN), so prefer ``swap`` for bands and large boxes. ``greyscale``
    removes the region's colour.
Region "full" is the whole image: with ``replace = "greyscale"`` it tests a colour cast (a tint that rides
along with one class); no attribution share is measured for it.
Samples whose ROI covers more than ``max_roi_overlap`` of the region are left out for that region (replacing
it would remove the object itself). The rule fails on the worst (region, class) cell: flip rate above
``max_flip_rate``, mean probability drop above ``max_prob_drop`` or attribution share above ``max_share``.
All model calls go through ``probe.map_over_perturbations`` (batched on the probe's device).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from ..types import Finding
from ._regions import BoxRegion, RegionName, build_regions
from ._shortcuts import (
    MAX_EVIDENCE_IDS,
    explainer_title,
    fill_region,
    map_problem,
    pct,
    positive_part,
    require_probe,
    rnd,
    scope_words,
)
from ._swap import Donors, ImageSource, region_probs
from .base import Rule, RuleParams
from .evidence import Evidence


class ConfounderRegionParams(RuleParams):
    regions: list[RegionName | BoxRegion] = Field(default_factory=list)
    sweep: bool = Field(default=False, description="test every corner and every border band (plus the regions)")
    size: float = Field(default=0.25, gt=0.0, le=1.0, description="corner box side, fraction of the image side")
    size_px: int | None = Field(default=None, ge=1, description="corner box side in pixels (overrides size)")
    band: float = Field(default=0.1, gt=0.0, lt=0.5, description="border band width, fraction of the image side")
    band_px: int | None = Field(default=None, ge=1, description="border band width in pixels (overrides band)")
    explainer: str = "gradcam"
    attribution: bool = Field(default=True, description="also measure the attribution share inside each region")
    scope: Literal["correct", "picks", "all"] = "correct"
    n: int | None = Field(default=100, ge=1, description="at most n samples per predicted class (seeded)")
    replace: Literal["swap", "mean", "blur", "noise", "greyscale"] = "swap"
    donors_per_class: int = Field(default=50, ge=2, description="swap: donor images drawn per class (seeded)")
    blur_sigma: float = Field(default=0.1, gt=0.0, description="blur sigma, fraction of the shorter image side")
    max_flip_rate: float = Field(default=0.2, ge=0.0, le=1.0)
    max_prob_drop: float = Field(default=0.2, ge=0.0, le=1.0)
    max_share: float = Field(default=0.5, ge=0.0, le=1.0)
    max_roi_overlap: float = Field(default=0.25, ge=0.0, le=1.0,
                                   description="leave out samples whose ROI covers more of the region than this")
    min_samples: int = Field(default=5, ge=1, description="cells with fewer samples are reported, not judged")

    @model_validator(mode="after")
    def _something(self) -> ConfounderRegionParams:
        if not self.regions and not self.sweep:
            raise ValueError("give regions (e.g. ['top_left', 'border']) or sweep = true")
        if self.replace == "swap" and "full" in self.regions:
            raise ValueError("region 'full' cannot be swapped (that replaces the whole image); use replace = "
                             "'greyscale' for a colour cast")
        return self



REPLACE_WORDS = {"swap": "swapping in that region from images of other classes",
                 "mean": "replacing that region with the image's mean colour",
                 "blur": "blurring that region", "noise": "replacing that region with noise",
                 "greyscale": "removing the colour of that region (greyscale)"}


class ConfounderRegion(Rule):
    kind = "confounder_region"
    title = "Reliance on a suspect image region"
    Params = ConfounderRegionParams

    def check(self, evidence: Evidence) -> list[Finding]:
        p: ConfounderRegionParams = self.params  # type: ignore[assignment]
        probe = require_probe(evidence)
        H, W = probe.input_size
        regions = build_regions(p, H, W)
        if p.replace == "greyscale" and probe.preprocess.channels != 3:
            if probe.preprocess.channels == 1:  # nothing to remove: a single-channel model sees no colour
                return [self.finding(False, "not applicable: the model takes single-channel input, so it cannot "
                                     "rely on a colour cast", details={"not_applicable": True})]
            return [self.error(f"replace = 'greyscale' needs RGB model inputs; the model takes "
                               f"{probe.preprocess.channels} channels")]
        norm = (probe.preprocess.mean, probe.preprocess.std)
        pr = evidence.predictions
        ids_all = evidence.sample_ids(p.scope)
        preds_all = pr.preds[pr.index_of(ids_all)] if ids_all else np.zeros(0, dtype=np.int64)
        ids: list[str] = []
        for ci in range(len(evidence.classes)):
            members = [s for s, g in zip(ids_all, preds_all, strict=True) if g == ci]
            if p.n is not None and len(members) > p.n:
                pick = evidence.rng(f"{p.id}:{ci}").choice(len(members), size=p.n, replace=False)
                members = [members[i] for i in sorted(pick)]
            ids.extend(members)
        if not ids:
            return [self.error(f"no {scope_words(p.scope)} samples to test")]
        rows = pr.index_of(ids)
        pred = pr.preds[rows]
        p_orig = pr.probs[rows, pred]
        src = ImageSource(probe, ids)
        rois = [probe.roi(s) for s in ids]
        pos = bad = None
        title = explainer_title(probe, p.explainer) if p.attribution else ""
        if p.attribution and any(not r.mask.all() for r in regions):
            aset = probe.attributions(p.explainer, ids, "predicted")
            pos = positive_part(aset.maps)
            bad = np.array([map_problem(m) is not None for m in aset.maps])
        sigma = p.blur_sigma * min(H, W)
        donors = Donors.build(evidence, probe, p) if p.replace == "swap" else None

        region_tables: dict[str, dict] = {}
        cells: list[dict] = []
        for reg in regions:
            area = float(reg.mask.mean())
            whole = bool(reg.mask.all())  # the whole image: the object is part of it by design
            overlap = np.array([0.0 if (r is None or whole) else float((r & reg.mask).sum() / reg.mask.sum())
                                for r in rois])
            keep = np.flatnonzero(overlap <= p.max_roi_overlap)
            flipped = np.zeros(len(ids), dtype=bool)
            drop = np.full(len(ids), np.nan)
            ctrl_flipped = np.zeros(len(ids), dtype=bool)
            ctrl_drop = np.zeros(len(ids))
            if p.replace == "swap":
                other, same = donors.pick(reg, ids, pred, evidence.rng(f"{p.id}:{reg.key}:donors"))
                keep = keep[other[keep] >= 0]
                if len(keep):
                    new = region_probs(probe, src, keep, reg.mask, None, donors.images, other)
                    has_same = keep[same[keep] >= 0]
                    ctl = region_probs(probe, src, has_same, reg.mask, None, donors.images, same)
                    ctrl_flipped[has_same] = ctl.argmax(axis=1) != pred[has_same]
                    ctrl_drop[has_same] = p_orig[has_same] - ctl[np.arange(len(has_same)), pred[has_same]]
            elif len(keep):
                seed = int(evidence.rng(f"{p.id}:{reg.key}:noise").integers(2**31 - 1))
                gen = torch.Generator(device="cpu").manual_seed(seed)
                new = region_probs(probe, src, keep, reg.mask,
                                   lambda b, m, g=gen: fill_region(b, m, p.replace, sigma, g, norm))
            if len(keep):
                flipped[keep] = new.argmax(axis=1) != pred[keep]
                drop[keep] = p_orig[keep] - new[np.arange(len(keep)), pred[keep]]
            share = np.full(len(ids), np.nan)
            if pos is not None and bad is not None and not whole:
                tot = pos.reshape(len(ids), -1).sum(axis=1)
                ins = pos[:, reg.mask].sum(axis=1)
                share = np.where(bad, 0.0, ins / np.where(tot > 0, tot, 1.0))
            per_class: dict[str, dict] = {}
            for ci, cname in enumerate(evidence.classes):
                r_all = np.flatnonzero(pred == ci)
                r = r_all[np.isin(r_all, keep)]
                if len(r) == 0:
                    per_class[cname] = {"n": 0, "n_left_out_roi_overlap": len(r_all)}
                    continue
                cf, cd = float(ctrl_flipped[r].mean()), float(ctrl_drop[r].mean())
                cell = {
                    "region": reg.key, "class": ci, "rows": r, "n": len(r),
                    "n_left_out_roi_overlap": int(len(r_all) - len(r)),
                    "flip_rate": float(flipped[r].mean()) - cf, "n_flipped": int(flipped[r].sum()),
                    "prob_drop": float(np.mean(drop[r])) - cd,
                    "raw_flip_rate": float(flipped[r].mean()), "raw_prob_drop": float(np.mean(drop[r])),
                    "control_flip_rate": cf if p.replace == "swap" else None,
                    "control_prob_drop": cd if p.replace == "swap" else None,
                    "share": float(np.mean(share[r])) if (p.attribution and not whole) else None,
                    "n_share_over": int((share[r] > p.max_share).sum()) if (p.attribution and not whole) else None,
                    "n_unusable_maps": int(bad[r].sum()) if bad is not None else 0,
                    "_flipped": flipped, "_drop": drop, "_share": share,
                }
                per_class[cname] = {k: (rnd(v) if isinstance(v, float) else v) for k, v in cell.items()
                                    if k not in ("region", "class", "rows") and not k.startswith("_")}
                if len(r) >= p.min_samples:
                    cells.append(cell)
            k_all = keep  # samples tested for this region
            region_tables[reg.key] = {
                "label": reg.label, "area_fraction": rnd(area), "n": len(k_all),
                "n_left_out_roi_overlap": int(len(ids) - len(k_all)),
                "flip_rate": rnd(flipped[k_all].mean() - ctrl_flipped[k_all].mean()) if len(k_all) else None,
                "prob_drop": rnd(np.mean(drop[k_all]) - ctrl_drop[k_all].mean()) if len(k_all) else None,
                "raw_flip_rate": rnd(flipped[k_all].mean()) if len(k_all) else None,
                "control_flip_rate": rnd(ctrl_flipped[k_all].mean()) if (len(k_all) and p.replace == "swap") else None,
                "share": rnd(np.mean(share[k_all])) if (p.attribution and len(k_all) and not whole) else None,
                "per_class": per_class,
            }
        details: dict = {"explainer": p.explainer if p.attribution else None, "scope": p.scope,
                         "replace": p.replace, "n_evaluated": len(ids), "regions": region_tables}
        if not cells:
            return [self.error(f"no predicted class has {p.min_samples} or more {scope_words(p.scope)} samples "
                               "clear of the tested regions")]

        limits = {"flip_rate": p.max_flip_rate, "prob_drop": p.max_prob_drop, "share": p.max_share}

        def ratios(c: dict) -> dict[str, float]:
            out = {}
            for k, lim in limits.items():
                v = c[k]
                if v is None or not np.isfinite(v):
                    continue
                out[k] = v / lim if lim > 0 else (np.inf if v > 0 else 0.0)
            return out

        def failed(c: dict) -> bool:
            return any(c[k] is not None and np.isfinite(c[k]) and c[k] > lim for k, lim in limits.items())

        scored = sorted(cells, key=lambda c: (not failed(c), -max(ratios(c).values(), default=0.0),
                                              c["region"], c["class"]))
        worst = scored[0]
        if failed(worst):
            # name the most specific culprit: among this class's failing regions that are comparably strong
            # (at least half the worst excess), the smallest one (a corner box rather than the whole border)
            area = {r.key: float(r.mask.mean()) for r in regions}
            top = max(ratios(worst).values(), default=0.0)
            strong = [c for c in cells if c["class"] == worst["class"] and failed(c)
                      and max(ratios(c).values(), default=0.0) >= 0.5 * top]
            worst = min(strong, key=lambda c: (area[c["region"]], -max(ratios(c).values(), default=0.0),
                                               c["region"]))
        crit = max(ratios(worst).items(), key=lambda kv: kv[1])[0]
        n_failed = sum(failed(c) for c in cells)
        reg = next(r for r in regions if r.key == worst["region"])
        cname = evidence.classes[worst["class"]]
        details.update(worst_region=reg.key, worst_class=cname, criterion=crit,
                       failing_cells=[f"{c['region']}/{evidence.classes[c['class']]}" for c in cells if failed(c)])
        r = worst["rows"]
        fl, dr, sh = worst["_flipped"], worst["_drop"], worst["_share"]
        key = np.where(fl[r], 2.0, 0.0) + np.nan_to_num(dr[r]) + (np.nan_to_num(sh[r]) if p.attribution else 0.0)
        ev_ids = [ids[i] for i in r[np.argsort(-key, kind="stable")][:MAX_EVIDENCE_IDS]]

        outside = " outside the object" if any(x_ is not None for x_ in rois) else ""
        parts = [f"Among {worst['n']} {scope_words(p.scope)} images predicted '{cname}'"]
        if worst["share"] is not None:
            parts.append(f", {pct(worst['share'])} of {title} mass lies in the {reg.label}{outside} on average "
                         f"({worst['n_share_over']} image(s) with more than {pct(p.max_share)} there)")
            parts.append(f"; {REPLACE_WORDS[p.replace]} flips {pct(worst['raw_flip_rate'])} of the predictions "
                         f"({worst['n_flipped']} of {worst['n']})")
        else:
            parts.append(f", {REPLACE_WORDS[p.replace].replace('that region', 'the ' + reg.label)} flips "
                         f"{pct(worst['raw_flip_rate'])} of the predictions ({worst['n_flipped']} of {worst['n']})")
        parts.append(f" and lowers the '{cname}' probability by {worst['raw_prob_drop']:.2f} on average")
        if p.replace == "swap":
            parts.append(f" (swapping it in from other '{cname}' images: {pct(worst['control_flip_rate'])} flips, "
                         f"drop {worst['control_prob_drop']:.2f}; judged on the difference)")
        parts.append(".")
        msg = "".join(parts)
        lim_words = (f"limits: flip rate {pct(p.max_flip_rate)}, probability drop {p.max_prob_drop:.2f}"
                     + (f", share {pct(p.max_share)}" if p.attribution else ""))
        if n_failed:
            labels = {r_.key: r_.label for r_ in regions}
            same = [labels[c["region"]] for c in cells if c["class"] == worst["class"] and failed(c)]
            msg += (f" {n_failed} region/class cell(s) over the limits ({lim_words}); for '{cname}': "
                    f"{'; '.join(same)}.")
        else:
            msg = (f"no tested region ({', '.join(r_.key for r_ in regions)}) drives the predictions ({lim_words}). "
                   f"Closest: {msg}")
        return [self.finding(bool(n_failed), msg, worst[crit], limits[crit], ev_ids, details)]

