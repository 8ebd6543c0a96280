"""roi_attribution: explanations should point at the object (the ROI), class by class, judged against what a map
that knows nothing puts there.

Per evaluated sample: the share of positive attribution mass inside the ROI (the energy-based pointing game:
Σ inside / Σ total of the map's positive part) and a pointing-game hit (the map's maximum lies within
``tolerance_px`` of the ROI); with ``margin_px`` the ROI is first grown by that many pixels (the evidence for an
object's shape lies on both sides of its edge). The reference is the ROI's share of the image: what a map spread
evenly puts inside (on the shortcut zoo the same explainer on a randomised model puts 0.9–1.5 times that there). A
sample fails when its share is below ``min_enrichment`` times that reference, or below the optional absolute floor
``min_share_inside``; a map without usable positive attribution (all zero, non-finite, constant, no positive value)
fails with that reason. A fixed absolute floor failed clean models whose object is small or whose explainer is
coarse (Grad-CAM on a vision transformer, 0–7 % inside a face box on real photographs). A ROI that covers more than
``max_area_share`` of the image (a segmentation's background, say) is not judged: an evenly spread map already puts
most of its mass there, so the share cannot tell where the evidence lies (such samples are counted).

Only a map that explains the model is judged: the explainer must change when the model's top layers are randomised
and beat random pixel orders in deletion / insertion on the audited model (``trust``, rules/_trust.py). ``explainer =
"auto"`` uses transformer LRP on a model with attention blocks and Grad-CAM otherwise (a list: the first candidate
that passes); when none passes, the rule is ``not_applicable`` with each candidate's reason.
Figures are aggregated per class (true or predicted): a shortcut usually belongs to one class, and a pooled
figure hides it. The rule fails on the worst class and reports every class.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.ndimage import distance_transform_edt

from ..products import Finding
from ._shortcuts import (
    MAX_EVIDENCE_IDS,
    class_groups,
    explainer_title,
    grown,
    map_problem,
    pct,
    positive_part,
    require_probe,
    rnd,
    scope_words,
)
from ._trust import TrustSettings, not_used_words, pick_explainer, trust_details, untrusted_words
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence
from .shortcut_classes import BACKGROUND, FIXED_POSITION


class ClassOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_share_inside: float | None = Field(default=None, ge=0.0, le=1.0)
    min_enrichment: float | None = Field(default=None, ge=0.0)
    max_fraction_failing: float | None = Field(default=None, ge=0.0, le=1.0)


class RoiAttributionParams(RuleParams):
    explainer: str | list[str] = Field(default="auto", description="an explainer, a list (the first that passes the "
                                       "trust checks is used) or auto: transformer_lrp, else gradcam")
    scope: Literal["correct", "picks", "all"] = "correct"
    n: int | None = Field(default=200, ge=1, description="at most n samples per class (seeded subset); none = all")
    min_enrichment: float = Field(default=1.0, ge=0.0, description="a sample fails when its share inside the ROI is "
                                  "below this multiple of the ROI's share of the image (an evenly spread map's share)")
    min_share_inside: float | None = Field(default=None, ge=0.0, le=1.0,
                                           description="optional absolute floor on the share inside the ROI")
    max_area_share: float = Field(default=0.5, gt=0.0, le=1.0, description="samples whose (grown) ROI covers more "
                                  "of the image are not judged (counted): an evenly spread map puts most mass there")
    max_fraction_failing: float = Field(default=0.5, ge=0.0, le=1.0,
                                        description="a class fails when more of its samples fail")
    min_hit_rate: float | None = Field(default=None, ge=0.0, le=1.0,
                                       description="optional floor on a class's pointing-game hit rate")
    tolerance_px: float = Field(default=15.0, ge=0.0, description="pointing-game tolerance in model-input pixels")
    margin_px: int = Field(default=0, ge=0, description="the share counts mass within this many model-input "
                           "pixels of the ROI as inside (an object's edge is evidence on both of its sides)")
    per_class: dict[str, ClassOverride] = Field(default_factory=dict)
    group_by: Literal["true", "predicted"] = "true"
    min_samples: int = Field(default=5, ge=1, description="classes with fewer evaluated samples are reported only")
    trust: TrustSettings = Field(default_factory=TrustSettings, description="the explainer's checks on this model")


class RoiAttribution(Rule[RoiAttributionParams]):
    kind = "roi_attribution"
    title = "Attribution inside the region of interest"
    needs = frozenset({"maps"})
    shortcuts = (FIXED_POSITION, BACKGROUND)
    criterion = Criterion("share of samples with too little attribution inside the ROI", "fraction of a class's "
                          "samples", "above")

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        probe = require_probe(evidence)
        for name in p.per_class:
            evidence.class_index(name)  # KeyError names an unknown class
        if not probe.has_roi():
            return [self.not_applicable("no held-out sample has a ROI (add roi_x0..roi_y1 or roi_mask columns to "
                                        "the manifest); attribution inside the ROI cannot be measured")]
        ids_all = evidence.sample_ids(p.scope)
        # evaluation units (sample, class, explained target): one class per sample, explained for its prediction;
        # where a sample holds several classes (segmentation, multi-label) one unit per class it holds, explained
        # for that class (a segmentation's ROI is then that class's true region)
        multi = evidence.predictions.labels.ndim > 1
        if multi:
            rows_all = evidence.predictions.index_of(list(ids_all))
            member = np.stack([probe.task.members(evidence.predictions, g, p.group_by)[rows_all]
                               for g in range(len(evidence.classes))], axis=1) if len(ids_all) else \
                np.zeros((0, len(evidence.classes)), bool)
        else:
            groups_all = class_groups(evidence, ids_all, p.group_by)
        units: list[tuple[str, int]] = []
        for ci in range(len(evidence.classes)):
            members = [s for k, s in enumerate(ids_all) if (member[k, ci] if multi else groups_all[k] == ci)]
            if p.n is not None and len(members) > p.n:
                pick = evidence.rng(f"{p.id}:{ci}").choice(len(members), size=p.n, replace=False)
                members = [members[i] for i in sorted(pick)]
            units.extend((s, ci) for s in members)
        ids = [s for s, _ in units]
        targets = np.array([g for _, g in units], dtype=np.int64) if multi else \
            (probe.targets_for(ids, "predicted") if ids else np.zeros(0, np.int64))
        rois = [grown(probe.roi(s, int(t)), p.margin_px) for s, t in zip(ids, targets, strict=True)]
        keep = [k for k, r in enumerate(rois) if r is not None and r.any()]  # an empty ROI counts as none
        n_no_roi = len(ids) - len(keep)
        if not keep:
            return [self.error(f"none of the {len(ids)} {scope_words(p.scope)} samples has a ROI; "
                               "attribution inside the ROI cannot be measured")]
        small = [k for k in keep if float(rois[k].mean()) <= p.max_area_share]  # type: ignore[union-attr]
        n_large = len(keep) - len(small)
        if not small:
            return [self.not_applicable(
                f"every ROI of the {len(keep)} {scope_words(p.scope)} samples with one covers more than "
                f"{pct(p.max_area_share)} of the image: an evenly spread map would put most of its mass inside, so "
                "the share cannot tell where the evidence lies", {"n_roi_too_large": n_large})]
        keep = small
        with_roi = [ids[k] for k in keep]
        name, tried = pick_explainer(probe, p.explainer, with_roi, targets[keep], p.trust,
                                     evidence.rng(f"{p.id}:trust"))
        if name is None:
            return [self.not_applicable(
                "no explainer that explains this model, so attribution inside the ROI is not judged: "
                + untrusted_words(tried), {"explainers_tried": trust_details(tried)})]
        aset = probe.attributions(name, with_roi, targets[keep])
        groups = np.array([units[k][1] for k in keep], dtype=np.int64)
        pos = positive_part(aset.maps)
        share = np.zeros(len(with_roi))
        area = np.zeros(len(with_roi))
        hit = np.zeros(len(with_roi), dtype=bool)
        problem: list[str | None] = []
        for i, k in enumerate(keep):
            roi = rois[k]
            assert roi is not None
            area[i] = float(roi.mean())
            why = map_problem(aset.maps[i])
            problem.append(why)
            if why is not None:
                continue
            total = pos[i].sum()
            share[i] = float(pos[i][roi].sum() / total)
            r, c = np.unravel_index(int(np.argmax(pos[i])), pos[i].shape)
            hit[i] = bool(roi[r, c]) or float(distance_transform_edt(~roi)[r, c]) <= p.tolerance_px
        bad = np.array([w is not None for w in problem])

        title = explainer_title(probe, name)
        table: dict[str, dict] = {}
        judged: list[tuple[bool, float, float, int]] = []  # (failed, excess failing, -mean share, class)
        failing_classes: list[str] = []
        for ci, cname in enumerate(evidence.classes):
            rows = np.flatnonzero(groups == ci)
            ov = p.per_class.get(cname, ClassOverride())
            floor = ov.min_share_inside if ov.min_share_inside is not None else p.min_share_inside
            ratio = ov.min_enrichment if ov.min_enrichment is not None else p.min_enrichment
            ceiling = ov.max_fraction_failing if ov.max_fraction_failing is not None else p.max_fraction_failing
            if len(rows) == 0:
                table[cname] = {"n": 0, "mean_share_inside": None, "fraction_failing": None, "hit_rate": None,
                                "min_enrichment": ratio, "min_share_inside": floor, "max_fraction_failing": ceiling,
                                "judged": False}
                continue
            fails = bad[rows] | (share[rows] < ratio * area[rows])
            if floor is not None:
                fails |= share[rows] < floor
            frac = float(fails.mean())
            hit_rate = float(hit[rows].mean())
            good = rows[~bad[rows]]
            mean_share = float(share[good].mean()) if len(good) else 0.0
            is_judged = len(rows) >= p.min_samples
            class_failed = is_judged and (frac > ceiling or (p.min_hit_rate is not None and hit_rate < p.min_hit_rate))
            table[cname] = {
                "n": len(rows), "mean_share_inside": rnd(mean_share), "median_share_inside":
                rnd(float(np.median(np.where(bad[rows], 0.0, share[rows])))),
                "mean_area_share": rnd(float(area[rows].mean())),
                "median_enrichment": rnd(float(np.median(np.where(bad[rows], 0.0, share[rows]) / area[rows]))),
                "fraction_failing": rnd(frac), "n_failing": int(fails.sum()), "hit_rate": rnd(hit_rate),
                "n_unusable_maps": int(bad[rows].sum()), "min_enrichment": ratio, "min_share_inside": floor,
                "max_fraction_failing": ceiling, "judged": is_judged, "failed": class_failed,
            }
            if class_failed:
                failing_classes.append(cname)
            if is_judged:
                judged.append((class_failed, frac - ceiling, -mean_share, ci))
        reasons: dict[str, int] = {}
        for w in problem:
            if w is not None:
                reasons[w] = reasons.get(w, 0) + 1
        details = {
            "explainer": name, "explainers_tried": trust_details(tried), "scope": p.scope, "group_by": p.group_by,
            "n_evaluated": len(with_roi), "n_skipped_without_roi": n_no_roi, "n_roi_too_large": n_large,
            "max_area_share": p.max_area_share, "unusable_maps": reasons, "tolerance_px": p.tolerance_px,
            "per_class": table,
        }
        if not judged:
            return [self.error(f"no class has {p.min_samples} or more {scope_words(p.scope)} samples with a ROI "
                               f"({len(with_roi)} evaluated)")]
        judged.sort(key=lambda t: (not t[0], -t[1], t[2]))
        worst = judged[0][3]
        wname = evidence.classes[worst]
        w = table[wname]
        details["worst_class"] = wname
        rows = np.flatnonzero(groups == worst)
        order = rows[np.lexsort((rows, np.where(bad[rows], -1.0, share[rows])))]
        evidence_ids = [with_roi[i] for i in order[:MAX_EVIDENCE_IDS]]
        who = "true" if p.group_by == "true" else "predicted"
        below = (f"{w['min_enrichment']:g}× the ROI's share of the image" if w["min_enrichment"] != 1 else
                 "the ROI's share of the image (what an evenly spread map puts there)")
        if w["min_share_inside"] is not None:
            below += f" or {pct(w['min_share_inside'])}"
        head = (f"'{wname}' ({who} class): {w['n_failing']} of {w['n']} {scope_words(p.scope)} samples put less "
                f"of their {title} mass inside the ROI than {below} (mean share {pct(w['mean_share_inside'])} on a "
                f"mean area share of {pct(w['mean_area_share'])}, pointing-game hits {pct(w['hit_rate'])}")
        if w["n_unusable_maps"]:
            head += f"; {w['n_unusable_maps']} map(s) unusable: " + ", ".join(sorted(reasons))
        head += ")"
        others = "; ".join(f"'{c}' {pct(t['fraction_failing'])} failing, mean share {pct(t['mean_share_inside'])}"
                           for c, t in table.items() if c != wname and t["n"])
        skipped = f" {n_no_roi} sample(s) without ROI skipped." if n_no_roi else ""
        if n_large:
            skipped += (f" {n_large} sample(s) whose ROI covers more than {pct(p.max_area_share)} of the image not "
                        "judged.")
        skipped += f" {tried[-1].reason[:1].upper()}{tried[-1].reason[1:]}." + not_used_words(tried)
        if failing_classes:
            msg = (f"{len(failing_classes)} class(es) with attribution outside the ROI. {head}, above the ceiling "
                   f"of {pct(w['max_fraction_failing'])} failing. Other classes: {others or 'none'}.{skipped}")
        else:
            msg = (f"attribution inside the ROI for every class; worst {head}, within the ceiling of "
                   f"{pct(w['max_fraction_failing'])} failing. Other classes: {others or 'none'}.{skipped}")
        return [self.finding(bool(failing_classes), msg, w["fraction_failing"], w["max_fraction_failing"],
                             evidence_ids if failing_classes else evidence_ids[:4], details)]
