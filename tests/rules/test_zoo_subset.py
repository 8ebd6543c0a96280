"""A small, fixed subset of the shortcut-zoo benchmarks in CI, through the benches' own code paths.

1. bench/zoo.py: the letterbox confounder on the small CNN and its clean twin (the case whose clean twin the old
   region sweep failed: one bar swapped alone is half an artefact), with the detection / false-alarm table.
2. bench/zoo_split.py's zoo (16 kinds, two data families): each miss and false alarm issue 31 found on confounders
   and photographs the rules were never tuned on, as one case with the verdict the rules must give. Every case is
   the zoo's small CNN, seed 0, audited on its i.i.d. held-out set (confounded as in deployment) by the bundled
   pack's rules; a confounded case first checks that the model relies on its cue (swapped accuracy 15 points
   below i.i.d.), a clean twin that it does not.

Models and audits are cached on disk (``$MODEL_AUDIT_ZOO_BENCH_CACHE``, shared with the bench), so a rerun takes
seconds; from scratch five small CNNs train (about ten seconds each on two cores) and their audits run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from zoo_bench import bench_modules

import audit
from audit.rules.evaluate import evaluate
from audit.rules.pack import load_pack

PACK = Path(audit.__file__).resolve().parents[1] / "rules" / "shortcuts.toml"  # beside the package the test runs
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
        pack = load_pack(PACK)
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


# ---- issue 31: the held-out zoo's misses and false alarms ------------------------------------------------------

PASSING = ("pass", "not_applicable")  # a clean twin: no finding (a rule that cannot apply says so, never fails)
NEAR_MISS_MARGIN = 0.03  # a clean twin's statistic must stay this far below its limit (0.0991 against 0.1 was not)


class WrongVerdict(AssertionError):
    """The rule's verdict on a case differs from the one the issue asks for (an expected failure catches only
    this: a case whose premise breaks, e.g. a confounded model that does not rely on its cue, fails outright)."""


@dataclass(frozen=True)
class Expect:
    family: str
    kind: str
    version: str  # "confounded" (must rely on its cue) | "clean" (must not)
    rule: str
    verdict: tuple[str, ...]  # the statuses the rule may give
    why: str  # the observation

    @property
    def id(self) -> str:
        return f"{self.rule}-on-{self.family}-{self.kind}-{self.version}"


def _open(reason: str) -> pytest.MarkDecorator:
    """Not fixed yet: the test flips (strict XPASS fails) once the rule gives the verdict."""
    return pytest.mark.xfail(raises=WrongVerdict, strict=True, reason=reason)


EXPECT = [
    Expect("photos", "bg_hue", "clean", "colour-cast", PASSING,
           "failed the clean twin trained with a background-only hue shift at 50/50 (0.144 > 0.1)"),
    Expect("photos", "watermark", "clean", "colour-cast", PASSING,
           "failed the clean twin trained with a faint tiled watermark at 50/50 (0.110 > 0.1)"),
    Expect("photos", "bg_hue", "confounded", "background-swap", ("fail",),
           "missed a cue that lives only in the background (0.045 on the model that relies on it)"),
    Expect("photos", "lowres", "confounded", "acquisition", ("fail",),
           "missed a pixelated (nearest-upsampled) low-resolution site (0.0055)"),
    Expect("shapes", "checker", "clean", "region-sweep", ("pass",),
           "passed the clean shapes twin at 0.0991 against the limit 0.1 (the wide band pair overlaps the shapes)"),
    Expect("photos", "bg_hue", "clean", "roi-attribution", ("pass",),
           "warned on 6 of 7 clean CNN twins on photographs"),
    Expect("photos", "watermark", "clean", "roi-attribution", ("pass",),
           "warned on 6 of 7 clean CNN twins on photographs"),
    Expect("photos", "bg_hue", "clean", "shortcut-discovery", ("pass",),
           "warned on 6 of 7 clean CNN twins on photographs"),
    Expect("photos", "watermark", "clean", "shortcut-discovery", ("pass",),
           "warned on 6 of 7 clean CNN twins on photographs"),
]
OPEN = {  # Expect.id -> why it is not fixed yet (the rules at d665e3f)
    "acquisition-on-photos-lowres-confounded": "issue 31: acquisition's resolution edit measures 0.09 <= 0.10 on "
    "the pixelated low-resolution site of the photographs (caught on the shapes); no other rule fires either",
}


def _params() -> list[Any]:
    return [pytest.param(e, id=e.id, marks=[_open(OPEN[e.id])] if e.id in OPEN else []) for e in EXPECT]


@pytest.fixture(scope="module")
def held_out_zoo():
    """(family, kind, version) -> the zoo_split case's cached result (CNN, seed 0), evaluated once per module with
    every rule the expectations name for it; and the loaded model."""
    with bench_modules("zoo_eval", "zoo_models") as (zoo_eval, zoo_models):
        pack = load_pack(PACK)
        order = [r.params.id for r in pack.rules]
        done: dict[tuple[str, str, str], dict[str, Any]] = {}

        def result(family: str, kind: str, version: str) -> dict[str, Any]:
            key = (family, kind, version)
            if key not in done:
                ids = tuple(i for i in order if any(e.rule == i and (e.family, e.kind, e.version) == key
                                                    for e in EXPECT))
                threads = torch.get_num_threads()
                torch.set_num_threads(min(2, threads))
                try:
                    done[key] = zoo_eval.evaluate_case(zoo_eval.Case("cnn", kind, 0, version, family), pack, ids)
                finally:
                    torch.set_num_threads(threads)
            return done[key]

        yield result, zoo_eval, zoo_models, pack


@pytest.mark.slow
@pytest.mark.parametrize("expect", _params())
def test_held_out_zoo_case(held_out_zoo, expect: Expect) -> None:
    """Issue 31, item 2: each miss and false alarm on the held-out zoo, with the verdict the rule must give."""
    result, *_ = held_out_zoo
    r = result(expect.family, expect.kind, expect.version)
    drop = r["acc_iid"] - r["acc_swapped"]
    if expect.version == "confounded":
        assert r["relies"], ("the case's model must rely on its cue", r["acc_iid"], r["acc_swapped"])
    else:
        assert drop < 0.05, ("a clean twin must not rely on the cue", r["acc_iid"], r["acc_swapped"])
    f = next(f for f in r["findings"] if f["rule"] == expect.rule)
    if f["status"] not in expect.verdict:
        raise WrongVerdict(f"{expect.rule} on {expect.id}: {f['status']} (want {'/'.join(expect.verdict)}; "
                           f"issue 31: {expect.why}): {f['message'][:300]}")
    near = f["threshold"] is not None and not f["value"] <= f["threshold"] - NEAR_MISS_MARGIN
    if expect.version == "clean" and f["status"] == "pass" and f["kind"] == "confounder_region" and near:
        raise WrongVerdict(f"{expect.rule} on {expect.id}: a near miss, {f['value']:.4f} against the limit "
                               f"{f['threshold']} (issue 31: {expect.why})")


@pytest.mark.slow
def test_faithfulness_on_64px_photographs_is_never_an_error(held_out_zoo) -> None:
    """Issue 31: faithfulness was an error on 64 px photographs ("blur baseline keeps the prediction", 32 of 32
    samples). The zoo's clean photographs CNN (it pools globally) audited on its held-out set upscaled to 64 px:
    the rule measures with a baseline that removes information and states it, or is not applicable with the
    counts: a property of the data is never an error."""
    _, zoo_eval, zoo_models, pack = held_out_zoo
    case = zoo_eval.Case("cnn", "bg_hue", 0, "clean", "photos")
    model, _ = zoo_models.load_or_train(case.spec, zoo_models.train_spec("cnn", "clean"))
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))
    try:
        ev = zoo_eval.build_evidence(model, case.spec, scale=2)
        assert ev.probe is not None and ev.probe.preprocess.size == (64, 64)
        rule = next(r for r in pack.rules if r.params.id == "faithfulness")
        f = evaluate([rule], ev)[0]
    finally:
        torch.set_num_threads(threads)
    assert f.status in ("pass", "warn", "not_applicable"), (f.status, f.message)
    if f.status == "not_applicable":
        assert "baseline" in f.message, f.message
    else:
        d = dict(f.details)
        assert d["baseline"] in ("blur", "mean", "zero", "noise"), d
        assert d["baseline_setting"] == "auto", d
