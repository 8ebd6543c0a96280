"""A small, fixed subset of the shortcut-zoo benchmark (bench/zoo.py) in CI: the letterbox confounder on the
small CNN and its clean twin, through the bench's own code path (data sets, training, reliance on the swapped
copy, data checks, the bundled pack's rules, the detection / false-alarm table with Wilson intervals). The
letterbox is the case whose clean twin the old region sweep failed (one bar swapped alone is half an artefact).
Models and results are cached on disk (``$MODEL_AUDIT_ZOO_BENCH_CACHE``), so a rerun takes seconds; from scratch
one to two minutes on two cores. The other kinds run in tests/rules/test_shortcut_zoo.py (corner, frame, tint,
site) and in the benchmark (9 kinds x 3 architectures x 3 seeds), which is not a test."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from zoo_bench import bench_modules

from audit.rules.pack import load_pack

ROOT = Path(__file__).resolve().parents[2]
# (arch, kind, seed) -> the pack rules judged on it (its intended rule and the data-level checks)
SUBSET = {("cnn", "letterbox", 0): ("region-sweep", "data-confounders", "cross-class-duplicates")}
INTENDED = {"letterbox": "region-sweep"}


@pytest.fixture(scope="module")
def zoo():
    """bench/zoo.py and bench/zoo_eval.py, imported by their plain names as the bench does."""
    with bench_modules("zoo", "zoo_eval") as mods:
        yield mods


def test_wilson_interval_known_values(zoo) -> None:
    bench, _ = zoo
    lo, hi = bench.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = bench.wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-3), pytest.approx(0.7634, abs=1e-3))
    assert all(math.isnan(v) for v in bench.wilson(0, 0))
    assert bench.fmt_rate(bench.rate(27, 27)) == "27/27 (100 %, 88–100)"


@pytest.mark.slow
def test_fixed_zoo_subset_detects_and_spares_the_clean_twins(zoo) -> None:
    bench, zoo_eval = zoo
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))
    try:
        pack = load_pack(ROOT / "rules" / "shortcuts.toml")
        results = [zoo_eval.evaluate_case(zoo_eval.Case(arch, kind, seed, version), pack, rules)
                   for (arch, kind, seed), rules in SUBSET.items() for version in ("confounded", "clean")]
    finally:
        torch.set_num_threads(threads)
    for r in results:
        kind, version = r["case"]["kind"], r["case"]["version"]
        status = {f["rule"]: f["status"] for f in r["findings"]}
        if version == "confounded":  # the planted cue is used (swapped accuracy drops) and its rule says so
            assert r["relies"], (kind, r["acc_iid"], r["acc_swapped"])
            assert status[INTENDED[kind]] == "fail", (kind, status)
        else:  # the clean twin: the same artefacts, independent of the class; no error-severity rule fails
            assert r["acc_iid"] - r["acc_swapped"] < 0.05, (kind, r["acc_iid"], r["acc_swapped"])
            errors = [f for f in r["findings"] if f["severity"] == "error" and f["status"] in ("fail", "error")]
            assert not errors, (kind, errors)
            assert status[INTENDED[kind]] == "pass", (kind, status)
    rules = [r for r in pack.rules if r.params.id in {x for v in SUBSET.values() for x in v}]
    a = bench.analyse(results, rules)
    assert (a["n_models"], a["n_reliant"], a["n_clean"]) == (2, 1, 1)
    for kind, rule in INTENDED.items():
        det, fa = a["rules"][rule]["detection"][kind], a["rules"][rule]["false_alarms"][kind]
        assert (det["k"], det["n"], fa["k"], fa["n"]) == (1, 1, 0, 1)
        assert det["ci95"][0] > 0.0 and fa["ci95"][1] < 1.0
    gate = a["overall"]
    assert gate["detection"]["all"]["k"] == 1 and gate["false_alarms"]["all"]["k"] == 0
    md = bench.markdown(a, "python bench/zoo.py --archs cnn --seeds 0 --kinds letterbox", 60.0)
    assert "| `region-sweep` | error | 1/1 (100 %, 21–100) | 0/1 (0 %, 0–79) |" in md
    assert "**any error-severity rule (the gate)**" in md
