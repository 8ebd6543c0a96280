"""The family audited end to end on hand-built members: a recipe whose seeds 1 and 3 read a corner marker fails
the family rules naming them although the released seed-0 passes; a family of clean seeds passes."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import numpy as np
import pytest

from audit.config import load_config
from audit.report.writers.results_json import build_results
from audit.runner import run_audit

SCHEMA = json.loads(files("audit").joinpath("schema/results.schema.json").read_text())


def by_rule(result):
    return {f.rule: f for f in result.findings}


def test_underspecified_recipe_fails_naming_the_cue_seeds(underspecified):
    f = by_rule(underspecified)
    assert f["marker-use"].status == "pass", f["marker-use"].message  # the released seed-0 does not read the marker
    assert f["marker-members"].status == "fail", f["marker-members"].message
    assert f["marker-members"].details["failing"] == ["seed-1", "seed-3"]
    assert "seed-1, seed-3" in f["marker-members"].message
    assert f["accuracy-spread"].status == "fail"
    assert f["answer-agreement"].status == "fail"
    assert f["saliency-agreement"].status == "fail"
    assert "'seed-0' and 'seed-1'" in f["answer-agreement"].message


def test_clean_family_passes(clean):
    assert all(x.status == "pass" for x in clean.findings), [(x.rule, x.status, x.message) for x in clean.findings]


def test_results_json_family_record(underspecified):
    doc = build_results(underspecified)  # floats rounded to 6 digits, as results.json keeps them
    jsonschema.validate(doc, SCHEMA)
    fam = doc["family"]
    assert [m["name"] for m in fam["members"]] == ["seed-0", "seed-1", "seed-2", "seed-3", "ensemble"]
    assert [m["role"] for m in fam["members"]] == ["released", "member", "member", "member", "ensemble"]
    acc = {m["name"]: m["metrics"]["accuracy"] for m in fam["members"]}
    # a cue seed answers 'right' on the 16 marked 'left' images of 64, a clean seed answers all right
    assert {k: v for k, v in acc.items() if k != "ensemble"} == {"seed-0": 1.0, "seed-1": 0.75, "seed-2": 1.0,
                                                                 "seed-3": 0.75}
    assert 0.75 <= acc["ensemble"] <= 1.0
    trained = np.array([1.0, 0.75, 1.0, 0.75])
    s = fam["spread"]["accuracy"]
    assert (s["n"], s["mean"], s["sd"]) == (4, 0.875, pytest.approx(trained.std(ddof=1), abs=1e-6))
    pairs = {(p["a"], p["b"]): p for p in fam["agreement"]}
    assert pairs[("seed-0", "seed-1")]["changed"] == 16 and pairs[("seed-0", "seed-2")]["changed"] == 0
    assert pairs[("seed-0", "seed-1")]["a_right_b_wrong"] == 16
    rule = next(r for r in fam["rules"] if r["rule"] == "marker-use")
    assert (rule["k"], rule["of"], rule["failing"]) == (2, 4, ["seed-1", "seed-3"])
    assert fam["released_check"]["member"] == "seed-0" and fam["released_check"]["other_members"] == 3
    assert json.loads(json.dumps(doc)) == doc  # JSON-safe (no NaN)


def test_same_inputs_give_the_same_family_record(underspecified):
    again = run_audit(load_config(underspecified.config.source))
    assert build_results(again)["family"] == build_results(underspecified)["family"]
