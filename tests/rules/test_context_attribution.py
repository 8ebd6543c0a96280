"""The segmentation pack's context-attribution entry (a roi_attribution rule on each class's true region) on a planted
context shortcut and its clean twin: the hand-built nets of the segmentation example (one reads each pixel's
brightness, one decides disc against square from the background stripes of the whole image), 30 scenes each.

The entry is read from rules/segmentation.toml, so the test checks the pack's own judgement: a sample fails when its
saliency mass inside the (grown) region is below a multiple of the region's share of the image, the saliency maps
are checked on the model first, and the background (a region covering most of the image) is not judged."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import audit
from audit.demo import examples

PACK = Path(__file__).resolve().parents[2] / "rules" / "segmentation.toml"
RULE_ID = "context-attribution"


def one_rule_pack(entry: dict) -> str:
    lines = ['[pack]\nname = "context"\n', "[[rule]]"]
    for k, v in entry.items():
        lines.append(f"{k} = " + (f'"{v}"' if isinstance(v, str) else repr(v)))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> dict:
    entry = next(r for r in tomllib.loads(PACK.read_text())["rule"] if r["id"] == RULE_ID)
    out = {}
    for name, clean in (("clean", True), ("context", False)):
        root = tmp_path_factory.mktemp(f"ctx-{name}")
        cfg = examples.prepare_segmentation(root, clean=clean, n=30)
        (root / "pack.toml").write_text(one_rule_pack(entry))
        result = audit.run(cfg, overrides=["cache.enabled=false", 'report.formats=["json"]',
                                           f'rules.pack="{root / "pack.toml"}"', 'explainers.methods=["saliency"]'])
        out[name] = next(f for f in result.result.findings if f.rule == RULE_ID)
    return out


def test_the_clean_net_passes_with_no_sample_failing(findings) -> None:
    f = findings["clean"]
    assert f.status == "pass", f.message
    table = f.details["per_class"]
    assert table["disc"]["fraction_failing"] == table["square"]["fraction_failing"] == 0.0
    # the clean net's evidence is its own pixels: many times the region's share of the image
    assert min(table["disc"]["median_enrichment"], table["square"]["median_enrichment"]) > 4.0
    assert "background" not in [c for c, t in table.items() if t["n"]]  # covers most of the image: not judged
    assert f.details["n_roi_too_large"] == 30 and "Saliency (gradient) passes the checks" in f.message


def test_the_context_net_fails_on_the_evidence_it_takes_from_the_stripes(findings) -> None:
    f, clean = findings["context"], findings["clean"]
    assert f.status == "fail" and f.blocking, f.message
    assert f.value > f.threshold
    worst = f.details["per_class"][f.details["worst_class"]]
    assert worst["median_enrichment"] < f.details["per_class"][f.details["worst_class"]]["min_enrichment"]
    for c in ("disc", "square"):  # each class's evidence lies less in its region than the clean net's does
        assert f.details["per_class"][c]["median_enrichment"] < clean.details["per_class"][c]["median_enrichment"] / 2
