"""The [slices] stage in the audit (issue 30): on the tiny three-class set (tests/conftest.py, 300 images), a planted
failure slice (30 'left' images with the square near the top, relabelled 'middle' in the manifest) must be found
with the default settings (n_components 'auto': 7 components for 150 fitted samples and min_size 10), described by
the manifest column that marks it, warned about by slice_gap_max and
written to results.json (schema); exported as a manifest column, a second audit scores it as a named subgroup with
the accuracy of its members. The clean twin (the same images, true labels) reports no slice and passes."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from audit.config import load_config
from audit.errors import ConfigError
from audit.inputs import prepare_inputs
from audit.report.output import write_outputs
from audit.result import AuditResult
from audit.runner import run_audit
from audit.slices.export import column_from_results

N = 300
SCHEMA = json.loads((Path(__file__).parents[2] / "audit" / "schema" / "results.schema.json").read_text())


@dataclass(frozen=True)
class Audit:
    root: Path
    result: AuditResult
    results: dict
    planted: frozenset[str]  # sample ids of the planted slice


def _manifest(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _audit(root: Path, make_setup, model, plant: bool) -> Audit:
    s = make_setup(root, model, pack="slices", extra="[slices]\n", n=N)  # the bundled pack
    rows = _manifest(s.manifest)
    planted = set()
    for r in rows:  # where the square sits: a column a reviewer could name the slice by
        r["height"] = "top" if int(r["roi_y0"]) < 10 else "lower"
        if plant and r["label"] == "left" and r["height"] == "top" and len(planted) < 30:
            r["label"] = "middle"
            planted.add(r["path"])
    _write(s.manifest, rows)
    result = run_audit(load_config(s.config, ["cache.enabled=false"]))
    write_outputs(result, root / "report", ["json", "html"])
    return Audit(root, result, json.loads((root / "report" / "results.json").read_text()), frozenset(planted))


@pytest.fixture(scope="module")
def planted(tmp_path_factory, make_setup, tiny_model) -> Audit:
    return _audit(tmp_path_factory.mktemp("slices") / "planted", make_setup, tiny_model, plant=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory, make_setup, tiny_model) -> Audit:
    return _audit(tmp_path_factory.mktemp("slices") / "clean", make_setup, tiny_model, plant=False)


def test_the_planted_slice_is_found_described_and_warned_about(planted) -> None:
    run = planted.result.slices
    assert run is not None and run.status == "measured" and run.metric == "accuracy" and run.n == N
    assert len(planted.planted) == 30
    stage = next(s for s in planted.result.timings.stages if s.name == "slices")
    assert stage.passes == 0  # it reads the features scoring gathered: no model pass of its own
    top = run.reported[0]
    members = set(top.member_ids)
    assert len(members & planted.planted) >= 0.8 * len(members)  # precision
    assert len(members & planted.planted) >= 0.5 * len(planted.planted)  # recall
    assert top.significant and top.p_adjusted <= 0.05 and top.n >= 10
    ids = planted.result.scored.predictions.ids
    p = planted.result.scored.predictions
    correct = dict(zip(ids, p.preds == p.labels, strict=True))
    assert top.below_overall == pytest.approx(run.overall - top.metric) and top.below_overall > 0.3
    assert top.columns and top.columns[0].column == "height" and top.columns[0].auc > 0.7
    assert planted.results["slices"]["method"].startswith("7 mixture components, 'auto'")  # 150 fitted, min_size 10
    assert 0 < len(top.typical_ids) <= 8 and set(top.typical_ids) <= members and len(top.images) == len(top.typical_ids)
    assert np.mean([correct[m] for m in members]) < 0.2
    f = next(f for f in planted.result.findings if f.rule == "slice-gap")
    assert f.status == "warn" and f.value == pytest.approx(top.below_overall) and top.name in f.message
    jsonschema.validate(planted.results, SCHEMA)
    doc = planted.results["slices"]["slices"][0]
    assert doc["name"] == top.name and set(doc["members"]) == members and doc["significant"]
    summary = (planted.root / "report" / "summary.md").read_text().replace("\\", "")
    assert "**Discovered slices:**" in summary and f"{top.name}: accuracy {top.metric:.3f} on {top.n} tested" in summary
    assert "best told apart by height" in summary
    html = (planted.root / "report" / "report.html").read_text()
    assert 'id="slices"' in html and html.count("data:image/png") >= len(top.typical_ids)


def test_the_clean_twin_reports_no_slice_and_passes(clean) -> None:
    run = clean.result.slices
    assert run is not None and run.status == "measured" and run.reported == ()
    f = next(f for f in clean.result.findings if f.rule == "slice-gap")
    assert f.status == "pass"
    jsonschema.validate(clean.results, SCHEMA)


def test_an_exported_slice_is_scored_as_a_named_subgroup(planted) -> None:
    manifest = planted.root / "manifest.csv"
    rows = _manifest(manifest)
    ids = list(planted.result.scored.predictions.ids)
    column = column_from_results(planted.results["slices"], ids)
    by_id = dict(zip(ids, column, strict=True))
    for r in rows:
        r["slice"] = by_id[r["path"]]
    _write(manifest, rows)
    again = run_audit(load_config(planted.root / "audit.toml", ["cache.enabled=false", 'data.subgroups=["slice"]',
                                                                 "slices.seed=1"]))
    top = planted.result.slices.reported[0]
    p = planted.result.scored.predictions
    members = np.isin(p.ids, top.member_ids)
    want = float((p.preds == p.labels)[members].mean())
    subgroup = next(g for g in again.metrics.subgroups if g.column == "slice" and g.value == top.name)
    assert subgroup.n == int(members.sum()) and subgroup.accuracy == pytest.approx(want)


def test_bad_slice_settings_are_refused_naming_the_key(planted) -> None:
    cfg = planted.root / "audit.toml"
    with pytest.raises(ConfigError, match=r"slices.min_size"):
        load_config(cfg, ["slices.min_size=0"])
    with pytest.raises(ConfigError, match=r"slices.n_components"):
        load_config(cfg, ['slices.n_components="many"'])
    with pytest.raises(ConfigError, match=r"slices.n_components"):
        load_config(cfg, ["slices.n_components=0"])
    assert load_config(cfg, ["slices.n_components=6"]).slices.n_components == 6
    with pytest.raises(ConfigError, match=r"slices.correction"):
        load_config(cfg, ['slices.correction="bonferroni"'])
    with pytest.raises(ConfigError, match=r"slices.columns: unknown metadata column 'scanner'"):
        run_audit(load_config(cfg, ["cache.enabled=false", 'slices.columns=["scanner"]']))
    prepare_inputs(load_config(cfg))
