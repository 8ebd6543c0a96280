"""The held-out zoo's machinery without training (bench/zoo_limits.py, zoo_protocol.py, zoo_tables.py,
zoo_cues.py, zoo_data.py): decision statistics read from findings, limits read on a tuning split, folds and
their tables checked by hand on made-up results, and the planted cues where they are said to be."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from zoo_bench import bench_modules


@pytest.fixture(scope="module")
def zoo():
    with bench_modules("zoo_limits", "zoo_protocol", "zoo_tables", "zoo_stats", "zoo_data") as mods:
        yield dict(zip(("limits", "protocol", "tables", "stats", "data"), mods, strict=True))


def region(cells: list[tuple[float, float, float | None]], status: str = "pass", value: float = 0.0) -> dict:
    """A confounder_region finding with cells (excess, removal lower end, insertion lower end or None)."""
    per_group = {}
    for i, (excess, lo_rm, lo_ins) in enumerate(cells):
        e = {"judged": True, "excess": excess, "ci95": [min(lo_rm, lo_ins or lo_rm), 1.0],
             "removal": {"ci95": [lo_rm, 1.0]}, "insertion": None if lo_ins is None else {"ci95": [lo_ins, 1.0]}}
        per_group[f"g{i}"] = e
    per_group["unjudged"] = {"judged": False, "excess": 9.0, "ci95": [5.0, 9.0]}
    return {"rule": "sweep", "kind": "confounder_region", "severity": "error", "status": status, "value": value,
            "threshold": 0.1, "details": {"regions": {"corner": {"per_group": per_group}}}}


def test_region_statistic_is_the_largest_excess_with_its_floor_above_zero(zoo) -> None:
    lim = zoo["limits"]
    # 0.30 has one direction's interval reaching below 0: not a candidate; 0.12 is; the unjudged 9.0 is not
    f = region([(0.30, 0.05, -0.01), (0.12, 0.02, 0.03), (0.05, 0.01, None)], status="fail", value=0.12)
    assert lim.statistic(f) == 0.12
    assert lim.flagged_at(f, 0.11) and not lim.flagged_at(f, 0.12)
    assert lim.statistic(region([(0.30, -0.01, 0.2)])) == -math.inf
    assert lim.statistic({**f, "status": "error"}) is None
    assert lim.blocks({**f, "status": "error"}, 0.5)  # an error blocks the gate at every limit
    assert lim.flagged_at({**f, "status": "fail", "details": {}}, 0.5)  # unreadable: the rule's own status
    # the object's own figures beside the judged background are information: never the statistic
    obj = region([(0.43, 0.2, 0.2)])["details"]["regions"]["corner"]
    both = {**f, "details": {"regions": {**f["details"]["regions"], "object": {**obj, "information": True}}}}
    assert lim.statistic(both) == 0.12
    cell = {**f["details"]["regions"]["corner"]["per_group"]["g0"], "excess": 0.5, "removal": {"ci95": [0.3, 1]},
            "insertion": None, "information": True}
    marked = {**f, "details": {"regions": {"corner": {"per_group": {**f["details"]["regions"]["corner"]["per_group"],
                                                                      "info": cell}}}}}
    assert lim.statistic(marked) == 0.12


def test_metadata_and_roi_statistics(zoo) -> None:
    lim = zoo["limits"]
    meta = {"rule": "m", "kind": "confounder_metadata", "severity": "error", "status": "pass", "value": 0.5,
            "threshold": 0.02, "details": {"columns": {
                "site": {"shift": 0.04, "p_value": 0.001, "alpha_corrected": 0.005},
                "scanner": {"shift": 0.5, "p_value": 0.2, "alpha_corrected": 0.005},
                "empty": {"note": "fewer than two values"}}}}
    assert lim.statistic(meta) == 0.04
    roi = {"rule": "r", "kind": "roi_attribution", "severity": "warning", "status": "warn", "value": 0.5,
           "threshold": 0.4, "details": {"per_class": {"a": {"judged": True, "fraction_failing": 0.5},
                                                       "b": {"judged": True, "fraction_failing": 0.2},
                                                       "c": {"judged": False, "fraction_failing": 0.9}}}}
    assert lim.statistic(roi) == 0.5
    other = {"rule": "s", "kind": "shortcut_discovery", "severity": "warning", "status": "pass", "value": 0.07,
             "threshold": 0.1, "details": {}}
    assert lim.statistic(other) == 0.07


def test_limit_policy_reads_the_largest_clean_value_rounded_up(zoo) -> None:
    pol = zoo["limits"].LimitPolicy()
    assert pol.read([-math.inf, 0.031, 0.05], "error") == pytest.approx(0.05)
    assert pol.read([0.051, -math.inf], "error") == pytest.approx(0.06)
    assert pol.read([-math.inf, -math.inf], "error") == pytest.approx(0.01)  # nothing significant: the step
    assert pol.read([], "error") == pytest.approx(0.01)
    vals = [i / 100 for i in range(1, 11)]  # 0.01 .. 0.10: the 90 % quantile ("higher") is 0.10
    assert pol.read(vals, "warning") == pytest.approx(0.10)
    assert pol.read([*vals, 0.5], "warning") == pytest.approx(0.10)


def fake(kind: str, version: str, stat: float, relies: bool = False, family: str = "shapes",
         status: str | None = None) -> dict:
    f = region([(stat, 0.01, 0.01)] if stat > 0 else [], status=status or ("fail" if stat > 0.1 else "pass"))
    return {"case": {"arch": "cnn", "kind": kind, "seed": 0, "version": version, "family": family},
            "relies": relies, "acc_iid": 0.9, "acc_swapped": 0.5 if relies else 0.9, "findings": [f]}


def test_leave_one_kind_out_reads_limits_on_the_other_kinds(zoo) -> None:
    proto, lim = zoo["protocol"], zoo["limits"]
    results = [fake("a", "confounded", 0.30, True), fake("a", "clean", 0.04),
               fake("b", "confounded", 0.05, True), fake("b", "clean", 0.20),
               fake("c", "confounded", 0.25, True), fake("c", "clean", -1.0)]
    out = proto.held_out(results, proto.kind_of, lim.LimitPolicy())
    limits = {f["held_out"]: f["limits"]["sweep"] for f in out["folds"]}
    # held out a: tuned on b, c clean (0.20, nothing) -> 0.20; b: a, c -> 0.04; c: a, b -> 0.20
    assert limits == pytest.approx({"a": 0.20, "b": 0.04, "c": 0.20})
    test = out["test"]["gate"]
    # reliant: a 0.30 > 0.20 yes, b 0.05 > 0.04 yes, c 0.25 > 0.20 yes; clean: a 0.04 no, b 0.20 > 0.04 yes, c no
    assert (test["reliant"]["all"]["k"], test["reliant"]["all"]["n"]) == (3, 3)
    assert (test["clean"]["all"]["k"], test["clean"]["all"]["n"]) == (1, 3)
    assert test["clean"]["kind:b"]["k"] == 1 and test["clean"]["kind:a"]["k"] == 0
    # tuning split pooled over folds: each model counted in the two folds it tunes
    assert out["tuning"]["gate"]["clean"]["all"]["n"] == 6 and out["tuning"]["gate"]["clean"]["all"]["k"] == 0
    assert "ci95" not in out["tuning"]["gate"]["clean"]["all"]  # pooled counts are no independent draws


def test_gate_targets_and_tables(zoo) -> None:
    proto, lim, tables, stats = zoo["protocol"], zoo["limits"], zoo["tables"], zoo["stats"]
    # zero false alarms bounds the rate below 2 % from 189 clean twins on (Wilson: z^2 / (n + z^2))
    assert stats.wilson(0, 192)[1] == pytest.approx(1.96 ** 2 / (192 + 1.96 ** 2)) and stats.wilson(0, 192)[1] < 0.02
    assert stats.wilson(0, 180)[1] > 0.02
    results = [fake(k, v, s, v == "confounded", fam) for fam in ("shapes", "photos") for k in ("a", "b")
               for v, s in (("confounded", 0.3), ("clean", 0.02))]
    a = proto.analyse(results, lim.LimitPolicy())
    assert a["statistic_check"]["sweep"] == {"agree": 8, "disagree": [], "no_statistic": 0}
    assert a["leave_one_family_out"]["folds"][0]["limits"]["sweep"] == pytest.approx(0.02)
    md = tables.markdown(a, "python bench/zoo_split.py", {"kind": ["a", "b"], "arch": ["cnn"],
                                                          "family": ["shapes", "photos"]}, 1.0)
    assert "| **gate (any error-severity rule)** |  |  |  | 4/4 (100.0 %, 51.0–100.0) | 0/4 (0.0 %, 0.0–49.0) |" in md
    assert "detection ≥ 95 % of reliant models: 100.0 % — **met**" in md
    assert "upper bound 49.0 % — **missed**" in md
    assert "`python bench/zoo_split.py`" in md



def test_warning_rates_per_architecture_against_the_targets(zoo) -> None:
    proto, lim, tables = zoo["protocol"], zoo["limits"], zoo["tables"]

    seeds = iter(range(100))  # models are named by their case: each its own seed

    def model(kind: str, version: str, arch: str, status: str, relies: bool = False) -> dict:
        r = fake(kind, version, 0.0, relies)
        warn = {"rule": "roi", "kind": "roi_attribution", "severity": "warning", "status": status, "value": 0.0,
                "threshold": 0.4, "details": {}}
        return {**r, "case": {**r["case"], "arch": arch, "seed": next(seeds)}, "findings": [*r["findings"], warn]}

    # cnn: 1 of 10 clean twins warned (10 %: met); reliant outside the ROI (corner) 4 of 5 (met), a reliant
    # tint model (whole image, not outside the ROI) is not counted; vit: 2 of 3 clean warned, one not applicable
    results = ([model("corner", "clean", "cnn", "warn")] + [model("corner", "clean", "cnn", "pass") for _ in range(9)]
               + [model("corner", "confounded", "cnn", "warn", True) for _ in range(4)]
               + [model("corner", "confounded", "cnn", "pass", True), model("tint", "confounded", "cnn", "pass", True)]
               + [model("logo", "clean", "vit", s) for s in ("warn", "warn", "not_applicable")])
    a = proto.analyse(results, lim.LimitPolicy())
    rows = tables.warning_rates(a, ["cnn", "vit"])
    assert rows[2] == ("| `roi` | cnn | 1/10 (10 %, 2–40) | 4/5 (80 %, 38–96) | 0 · 0 | clean ≤ 10 % met, "
                       "reliant ≥ 80 % met |")
    assert rows[3].startswith("| `roi` | vit | 2/3 (67 %, 21–94) | – | 1 · 0 | clean ≤ 10 % missed, reliant ≥ 80 % "
                              "missed |")
    assert len(rows) == 4

def test_cues_sit_where_each_kind_says(zoo) -> None:
    """Rows without the cue in both the confounded and the clean version are the same image; rows with it in one
    only differ; the background colour moves the background alone, the watermark reaches the object, the low
    resolution is 2x2 blocks."""
    data = zoo["data"]
    # the photos' object fills its box, so background-only cues must leave the whole box alone there
    for kind, family in [(k, "shapes") for k in data.KINDS] + [("bg_hue", "photos"), ("texture", "photos")]:
        spec = data.DataSpec(kind, seed=3, n_test=24, family=family)
        a, b = data.make_set(spec, "test", "confounded"), data.make_set(spec, "test", "clean")
        same = ~a.cue & ~b.cue
        assert np.array_equal(a.images[same], b.images[same]), kind
        one = a.cue & ~b.cue
        assert one.any(), kind
        diff = np.abs(a.images[one].astype(int) - b.images[one].astype(int)).max(axis=(1, 2, 3))
        assert (diff > 0).all(), kind
        inside = np.zeros(a.images.shape[:3], dtype=bool)
        for i, (x0, y0, x1, y1) in enumerate(a.boxes):
            inside[i, y0:y1, x0:x1] = True
        moved = np.abs(a.images.astype(int) - b.images.astype(int)).max(-1) > 0
        if kind in ("text", "logo", "corner", "checker", "letterbox", "ruler") or family == "photos":
            assert not (moved & inside)[one].any(), kind  # the object's box is left alone
        if kind == "watermark":
            assert (moved & inside)[one].any()
        if kind == "lowres":
            img = a.images[np.flatnonzero(one)[0]]
            assert np.array_equal(img[0::2, 0::2], img[1::2, 1::2])


def test_versions_put_the_cue_with_the_class_with_half_or_swapped(zoo) -> None:
    data = zoo["data"]
    spec = data.DataSpec("corner", seed=1, n_test=150, family="photos")
    rates = {}
    for version in ("confounded", "clean", "swapped"):
        zs = data.make_set(spec, "test", version)
        t = zs.labels == spec.target
        rates[version] = (zs.cue[t].mean(), zs.cue[~t].mean())
    assert rates["confounded"][0] > 0.8 and rates["confounded"][1] < 0.12
    assert rates["swapped"][0] < 0.12 and rates["swapped"][1] > 0.8
    assert abs(rates["clean"][0] - 0.5) < 0.15 and abs(rates["clean"][1] - 0.5) < 0.12


def test_a_partial_table_says_which_models_it_lacks() -> None:
    with bench_modules("zoo_run", "zoo_eval") as (zoo_run, zoo_eval):
        todo = [zoo_eval.Case("cnn", "corner", s, v, f) for s in (0, 1) for f in ("shapes", "photos")
                for v in ("confounded", "clean")]
        gone = [c.name for c in todo if c.seed == 1 and c.family == "photos"] + [todo[0].name]
        note = zoo_run.partial_note(todo, gone)
    assert note.startswith("**Partial**: 3 of 8 asked-for models had no audit")
    assert "(shapes/cnn/s0 1 of 2; photos/cnn/s1 2 of 2 (all))" in note



def test_readme_zoo_tables_are_the_bench_results() -> None:
    """The README's held-out zoo tables are bench/results/zoo_split.md's (committed beside it), and its gate
    figures, model counts and rule revision are the ones that file states."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    md = (root / "bench" / "results" / "zoo_split.md").read_text(encoding="utf-8")

    def table(heading: str) -> list[str]:
        return md[md.index(heading):].split("\n\n")[1].splitlines()

    loko = table("**Leave one confounder kind out**")
    for line in [*loko, *table("Per confounder kind"), *table("Warnings at the pack's limits")]:
        assert line.startswith("| ") and line in readme, line
    gate = next(line for line in loko if line.startswith("| **gate"))
    (dk, dn, dr), (fk, fn, fr, fhi) = (re.search(p, gate).groups() for p in (
        r"\| (\d+)/(\d+) \(([\d.]+) %, [\d.]+–[\d.]+\) \| \d+/\d+ \(",
        r"\| \d+/\d+ \([\d.]+ %, [\d.]+–[\d.]+\) \| (\d+)/(\d+) \(([\d.]+) %, [\d.]+–([\d.]+)\)"))
    text = " ".join(readme.split())
    assert f"the gate detects {dk} of {dn} reliant models ({dr} %" in text
    assert f"raises {fk} false alarms in {fn} clean twins ({fr} %, upper bound {fhi} %" in text
    n, reliant = re.search(r"held out: (\d+) models \((\d+) confounded models that rely", md).groups()
    assert f"{n} models, {reliant} reliant" in text
    rev = re.search(r"rule code ([0-9a-f]{12})", md).group(1)
    assert f"--snapshot {rev}" in text and f"--snapshot {rev}" in md
