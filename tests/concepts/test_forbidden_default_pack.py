"""A concept marked forbidden in [concepts] is judged whatever the pack: with the default pack (no concept rule) the
audit adds concept_reliance; the planted use is caught and its twin passes."""

from __future__ import annotations

import json

import pytest
from test_audit_concepts import CONCEPTS, write_concept
from typer.testing import CliRunner

from audit.cli import app


def concepts_forbidden_for(cls: str) -> str:
    """test_audit_concepts' [concepts] with 'left-square' forbidden (not required) for ``cls``, over 10 runs."""
    out = CONCEPTS
    # CAV accuracy at features.8 is about 0.69-0.71 depending on the thread count that trained the tiny model: the
    # separability floor sits well below it, so the test judges the forbidden-concept path, not that margin
    for old, new in (("runs = 4", "runs = 10\nmin_cav_accuracy = 0.6"), ("required = true", "forbidden = true"),
                     ('classes = ["left"]', f'classes = ["{cls}"]')):
        assert old in out
        out = out.replace(old, new)
    return out


@pytest.fixture(scope="module")
def concept_audits(tmp_path_factory, make_setup, tiny_model):
    """The default pack with 'left-square' forbidden for the class the tiny model finds by it ('left'), and its
    twin where the same concept is forbidden for 'right' (whose logit it lowers)."""
    root = tmp_path_factory.mktemp("forbidden")
    runs = {}
    for cls in ("left", "right"):
        setup = make_setup(root / cls, tiny_model, pack="default", extra=concepts_forbidden_for(cls))
        write_concept(setup.root / "concepts" / "left", 30, 1)
        out = root / f"out-{cls}"
        res = CliRunner().invoke(app, ["run", str(setup.config), "--out", str(out), "--set", "cache.enabled=false",
                                       "--set", 'report.formats=["json"]'])
        doc = json.loads((out / "results.json").read_text())
        runs[cls] = res, doc, {r["id"]: r for r in doc["rules"]}
    return runs


def test_a_forbidden_concept_is_judged_with_the_default_pack(concept_audits):
    res, doc, rules = concept_audits["left"]
    assert res.exit_code == 1, res.output
    rule = rules["concept-reliance"]
    assert rule["kind"] == "concept_reliance" and rule["status"] == "fail" and rule["severity"] == "error"
    assert rule["description"].startswith("Added automatically: [concepts] marks 'left-square' forbidden")
    assert "forbidden concept 'left-square' is used for 'left'" in rule["message"]
    assert doc["summary"]["blocking"] == ["concept-reliance"] and rules["evidence-complete"]["status"] == "pass"
    # provenance names the rules the audit added beside the pack's own files
    assert doc["provenance"]["rule_pack"]["automatic"] == ["concept-reliance", "evidence-complete"]
    res, doc, rules = concept_audits["right"]  # the twin: the concept lowers 'right'
    assert res.exit_code == 0, res.output
    assert rules["concept-reliance"]["status"] == "pass"
    assert rules["concept-reliance"]["details"]["concepts"]["left-square"]["classes"]["right"]["status"] == "not used"
