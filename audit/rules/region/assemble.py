"""From confounder_region's settings to its tests, from measured directions to judged cells, and from cells to
the per-region tables of results.json; and the check that keeps a whole-image statistic edit from being judged
where it would move the object's own statistics (no ROI)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.stats import rankdata

from .._shortcuts import rnd
from ..base import Criterion
from .cells import Direction, brief, judged_direction
from .edits import Edit
from .levels import measure
from .match import acquisition, colour
from .params import ConfounderRegionParams
from .plan import Setup, Test
from .regions import Region, background, object_region

STATISTIC_EDITS = ("colour", "spectrum", "acquisition")
MOVES = {"colour": "colour statistics (per-channel mean and spread)",
         "spectrum": "high-frequency share of the spectrum", "resolution": "resolution", "blur": "sharpness",
         "jpeg": "JPEG blocking", "noise": "noise level"}


def tests_for(p: ConfounderRegionParams, regions: list[Region], base: Edit, has_roi: bool, H: int, W: int
              ) -> list[Test]:
    """The rule's tests: every (edit, region). A statistic edit of the whole image becomes, with ROIs, one on the
    background (judged) and one on the object (information)."""
    if base.how == "acquisition":
        edits = [Edit("spectrum", base.norm, base.sigma, base.cutoff, base.margin_px) if e == "spectrum"
                 else Edit("level", base.norm, base.sigma, base.cutoff, base.margin_px, level=e) for e in p.acquisition]
    else:
        edits = [base]
    out: list[Test] = []
    for reg in regions:
        split = (base.how in STATISTIC_EDITS and has_roi and p.object_apart and not reg.per_sample
                 and bool(reg.mask.all()))
        for r in ((background(H, W), object_region(H, W)) if split else (reg,)):
            for e in edits:
                key = r.key if len(edits) == 1 else f"{e.name}:{r.key}"
                out.append(Test(key, r.label, e, r))
    return out


def _separation(stat: np.ndarray, member_of: np.ndarray) -> tuple[float, int]:
    """The largest ROC AUC (either sign) with which one feature of ``stat`` (n, d) tells one group apart, and
    the group."""
    best, best_g = 0.5, -1
    ranks = np.apply_along_axis(rankdata, 0, stat)
    for g in range(member_of.shape[1]):
        pos = member_of[:, g]
        n1, n0 = int(pos.sum()), int((~pos).sum())
        if n1 < 2 or n0 < 2:
            continue
        auc = (ranks[pos].sum(0) - n1 * (n1 + 1) / 2) / (n1 * n0)
        a = float(np.max(np.maximum(auc, 1 - auc)))
        if a > best:
            best, best_g = a, g
    return best, best_g


def not_applicable_without_roi(setup: Setup, tests: Sequence[Test], has_roi: bool) -> dict[str, str]:
    """Tests of a whole-image statistic that cannot be judged: the statistic the edit moves tells a group apart
    on the donor pool, so it may be the object's own (legitimately different between classes) as much as a cue.
    Returns test key -> reason."""
    p, pool = setup.p, setup.pool
    out: dict[str, str] = {}
    groups = setup.probe.task.groups()
    for t in tests:
        if t.region.per_sample or not t.region.mask.all() or t.edit.how not in ("colour", "spectrum", "level"):
            continue
        if pool is None:
            continue
        raw = setup.raw(pool.images.get(np.arange(len(pool.ids))))
        if t.edit.how == "colour":
            stat = colour(raw)
        elif t.edit.how == "spectrum":
            stat = acquisition(raw, t.edit.cutoff)
        else:
            stat = measure(t.edit.level, raw, torch.ones(len(raw), 1, *raw.shape[-2:])).reshape(-1, 1)
        auc, g = _separation(np.asarray(stat, dtype=np.float64), pool.member_of)
        if auc >= p.max_statistic_auc:
            what = MOVES[t.edit.name]
            out[t.key] = (f"{what} of the whole image tells '{groups[g]}' apart from the other groups (ROC AUC "
                          f"{auc:.2f} ≥ {p.max_statistic_auc:.2f}){'' if not has_roi else ' and object_apart is off'}"
                          ": the edit would move the object's own statistics, which may legitimately differ between "
                          "the classes, together with any cue; add ROI boxes or masks so that the background is "
                          "edited alone")
    return out


def cell_entry(test: Test, g: int, rows_all: np.ndarray, rows: np.ndarray | None, measured: object,
               min_samples: int, limit: float, crit: Criterion, criterion: str = "prob_drop",
               n_eligible: int | None = None) -> dict:
    """One judged (or reported) cell from an occlusion's figures or a donor / level edit's directions."""
    cell: dict = {"test": test, "region": test.region, "group": g, "n_unmatched": 0, "failed": False,
                  "judged": False, "inconclusive": False, "share": None}
    entry: dict = {"n": 0, "n_left_out": int(len(rows_all) - (n_eligible if n_eligible is not None else
                                                               len(rows) if rows is not None else len(rows_all)))}
    cell["entry"] = entry
    if isinstance(measured, dict) or measured is None:  # an occlusion
        c = measured
        if c is None:
            if rows is not None and len(rows):
                entry["note"] = "no samples of other groups to compare with"
            return cell
        cell.update(c)
        cell["control"] = {**c["control"], "direction": "removal"}
        entry["n"] = c["n"]
        floor = c["floor"]
    else:
        dirs: list[Direction] = list(measured)  # type: ignore[call-overload]
        summ = {d.direction: d.summary(criterion) for d in dirs}
        cell["n_unmatched"] = sum(d.n_unmatched for d in dirs)
        unmatched = {d.direction: d.n_unmatched for d in dirs if d.n_unmatched}
        if unmatched:
            entry["n_unmatched"] = unmatched
        done = [s for s in summ.values() if s is not None and s["n"]]
        rm, ins = summ.get("removal"), summ.get("insertion")
        skipped = [d.direction for d in dirs if d.skipped]
        entry.update(n=rm["n"] if rm else 0, n_insertion=ins["n"] if ins else 0, removal=brief(rm),
                     insertion=brief(ins))
        if skipped:
            entry["not_measured"] = {s: "the other direction is clearly below the limit" for s in skipped}
        cell["passes"] = 2 * sum(d.n for d in dirs)
        entry["passes"] = cell["passes"]
        if not done:
            return cell
        weak, floor = judged_direction(done)
        shown = rm if rm is not None and rm["n"] else ins
        assert shown is not None
        cell.update(rows=shown["rows"], n=shown["n"], value=weak["est"], lo=weak["lo"], hi=weak["hi"],
                    drop=float(shown["effect"].mean()), flip=float(shown["flip"].mean()),
                    n_flipped=int(shown["flip"].sum()), per_sample=shown["per_sample"], direction=weak["direction"],
                    control={"prob_drop": shown["control"], "flip_rate": shown["control_flip"],
                             "direction": weak["direction"], "dirs": {d["direction"]: d for d in done},
                             "skipped": skipped, "one_way": test.edit.how == "level"},
                    n_available=shown["n_available"])
        rows = shown["rows"]
    est = cell["value"]
    entry.update(excess=rnd(est), ci95=[rnd(cell["lo"]), rnd(cell["hi"])], prob_drop=rnd(cell["drop"]),
                 flip_rate=rnd(cell["flip"]), n_flipped=cell["n_flipped"],
                 control_prob_drop=rnd(cell["control"]["prob_drop"]),
                 control_flip_rate=rnd(cell["control"]["flip_rate"]), share=None, n_share_over=None)
    judged = int(cell.get("n_available", cell["n"])) >= min_samples
    entry["judged"] = cell["judged"] = judged
    if judged:
        failed = bool(crit.exceeds(est, limit) and floor > 0)
        cell["failed"] = failed and not test.info
        dirs_ = list(cell["control"].get("dirs", {}).values())
        if dirs_:
            incon = (any(d["inconclusive"] for d in dirs_) if failed
                     else min(dirs_, key=lambda d: d["est"])["inconclusive"]
                     and not any(d["decided"] == "below" for d in dirs_))
        else:
            incon = cell["lo"] <= limit <= cell["hi"]
        cell["inconclusive"] = bool(incon)
        entry["failed"] = cell["failed"]
        if test.info:  # information: over the limit or not, it never fails the rule
            entry["over_limit"] = failed
        entry["inconclusive"] = cell["inconclusive"]
    if test.info:
        entry["information"] = True
    return cell


def assemble(cells: Sequence[dict], tests: Sequence[Test], groups: Sequence[str],
             share_maps: tuple[np.ndarray, np.ndarray] | None, setup: Setup, max_share: float) -> dict:
    """results.json's per-region tables: each test's label, area and per-group entries (with the attribution share
    in fixed regions, information)."""
    tables: dict = {}
    for t in tests:
        tables[t.key] = {"label": t.label if t.edit.how != "level" and len(tests) == len({x.region.key for x in tests})
                         else f"{MOVES.get(t.edit.name, t.edit.name)}: {t.label}",
                         "area_fraction": rnd(float(t.region.mask.mean())) if not t.region.per_sample else None,
                         "per_group": {}}
        if t.info:
            tables[t.key]["information"] = True
    for c in cells:
        t: Test = c["test"]
        if t.key not in tables:  # a refinement's region: summarised in details["refined"], not a tested region
            continue
        if share_maps is not None and not t.region.per_sample and "rows" in c and len(c["rows"]):
            pos, bad = share_maps
            rows = c["rows"]
            tot = pos[rows].reshape(len(rows), -1).sum(1)
            inside = (pos[rows] * t.region.mask).reshape(len(rows), -1).sum(1)
            sh = np.where(bad[rows] | (tot <= 0), 0.0, inside / np.where(tot > 0, tot, 1.0))
            c["share"] = float(sh.mean())
            c["entry"].update(share=rnd(c["share"]), n_share_over=int((sh > max_share).sum()))
        tables[t.key]["per_group"][groups[c["group"]]] = c["entry"]
    return tables
