"""A segmentation family (the hand-built example nets, no training): a member that reads the striped context fails
the context rules judged on every member while the released clean net and its twin pass; answers compared per
pixel; the record validates against the schema."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from audit.config import load_config
from audit.demo import examples
from audit.report.writers.results_json import build_results
from audit.runner import run_audit

SCHEMA = json.loads(files("audit").joinpath("schema/results.schema.json").read_text())


@pytest.fixture(scope="module")
def segmentation_family(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg-family")
    context = examples.prepare_segmentation(root / "context", clean=False, n=30)
    cfg = examples.prepare_segmentation(root / "clean", clean=True, n=30)
    cfg.write_text(cfg.read_text().replace('formats = ["html", "json", "junit", "pdf"]', 'formats = ["json"]')
                   + '\n[[family]]\nname = "context"\nfactory = "audit.demo.segment:build"\n'
                   'factory_kwargs = { hand_built = true, context = true }\n'
                   f'weights = "{(context.parent / "weights.safetensors").as_posix()}"\n'
                   '\n[[family]]\nname = "twin"\nweights = "weights.safetensors"\n')
    return run_audit(load_config(cfg, ["cache.enabled=false"]))


def test_context_member_named_by_the_context_rules(segmentation_family):
    fam = segmentation_family.family
    for rule in ("context-swap", "context-attribution"):
        o = fam.outcome(rule)
        assert o is not None and o.failing(fam.trained) == ("context",), (rule, o.members)
    assert segmentation_family.family.member("ensemble").role == "ensemble"


def test_answers_compared_per_pixel(segmentation_family):
    fam = segmentation_family.family
    a, b = fam.member("released"), fam.member("context")
    pair = next(p for p in fam.pairs if (p.a, p.b) == ("released", "context"))
    assert a.answers.ndim == 3  # (N, H, W) labels per pixel
    expected = cohen_kappa_score(a.answers.ravel(), b.answers.ravel())
    assert pair.kappa == pytest.approx(expected, abs=1e-12) or (np.isnan(pair.kappa) and np.isnan(expected))
    jsonschema.validate(build_results(segmentation_family), SCHEMA)
