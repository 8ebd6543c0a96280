"""The whole audit on a tiny trained model: outputs, schema, PDF text, exit codes, determinism."""

import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from audit.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def passing_run(tiny_model, make_setup, tmp_path_factory):
    """One full audit (every format, model views on) shared by the read-only tests below."""
    root = tmp_path_factory.mktemp("passing")
    setup = make_setup(root / "tiny", tiny_model)
    out = root / "report"
    res = _run("run", str(setup.config), "--out", str(out), "--set", 'report.formats=["html","pdf","json","junit"]',
               "--set", 'views.embeddings=["pca","tsne"]', "--set", "views.probe_samples=45")
    return res, out


def test_passing_audit_writes_every_output(passing_run):
    res, out = passing_run
    assert res.exit_code == 0, res.output
    for name in ("report.html", "report.pdf", "results.json", "report.junit.xml", "summary.md", "manifest.json"):
        assert (out / name).is_file(), name
    assert "verdict: PASS" in res.output
    assert not list(out.parent.glob(".report.partial-*"))


def test_results_json_validates_against_schema(passing_run):
    _, out = passing_run
    results = json.loads((out / "results.json").read_text())
    schema = json.loads(files("audit").joinpath("schema/results.schema.json").read_text())
    jsonschema.validate(results, schema)
    assert results["verdict"] == "pass"
    assert results["classes"] == ["left", "middle", "right"]
    assert len(results["provenance"]["model"]["sha256"]) == 64
    assert len(results["provenance"]["data"]["manifest_sha256"]) == 64
    assert {r["id"] for r in results["rules"]} >= {"accuracy-floor", "class-recall-floor"}
    cm = results["confusion_matrix"]["counts"]
    assert sum(map(sum, cm)) == results["summary"]["n_samples"] == 45


def test_pdf_text_holds_verdict_and_sections(passing_run):
    _, out = passing_run
    text = "\n".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    assert "Verdict: PASS" in text
    for heading in ("Verdict summary", "Provenance", "Metrics", "Confusion matrix", "Calibration",
                    "Picked samples with explanations", "Rule findings", "Appendix: resolved configuration"):
        assert heading in text, heading
    assert "Page 1 of" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert f"Document {manifest['document_id']}" in text
    assert "Prepared by" in text and "Approved by" in text
    assert "autocast off, channels-last on" in text  # how inference ran is part of the record
    meta = PdfReader(out / "report.pdf").metadata
    assert meta.title == "Model audit: tiny"
    assert "verdict pass" in (meta.subject or "")


def test_junit_counts_match_results(passing_run):
    import xml.etree.ElementTree as ET

    _, out = passing_run
    results = json.loads((out / "results.json").read_text())
    root = ET.parse(out / "report.junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(results["rules"])
    assert int(root.get("failures")) == sum(r["status"] == "fail" for r in results["rules"])


def test_failing_rule_gives_exit_1(tiny, tmp_path):
    pack = tmp_path / "strict.toml"
    pack.write_text('[[rule]]\nid = "impossible"\nkind = "metric_min"\nmetric = "accuracy"\nthreshold = 1.01\n')
    res = _run("run", str(tiny.config), "--out", str(tmp_path / "r"), "--rules", str(pack))
    assert res.exit_code == 1, res.output
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["verdict"] == "fail" and results["summary"]["blocking"] == ["impossible"]


def test_warning_severity_does_not_block(tiny, tmp_path):
    pack = tmp_path / "warn.toml"
    pack.write_text('[[rule]]\nid = "soft"\nkind = "metric_min"\nmetric = "accuracy"\nthreshold = 1.01\n'
                    'severity = "warning"\n')
    res = _run("run", str(tiny.config), "--out", str(tmp_path / "r"), "--rules", str(pack))
    assert res.exit_code == 0
    assert json.loads((tmp_path / "r" / "results.json").read_text())["rules"][0]["status"] == "warn"


def test_crashing_rule_becomes_error_and_blocks(tiny, tmp_path):
    pack = tmp_path / "bad.toml"
    pack.write_text('[[rule]]\nid = "confuse"\nkind = "confusion_max"\ntrue_class = "left"\n'
                    'predicted_class = "nope"\nthreshold = 0.1\n')
    res = _run("run", str(tiny.config), "--out", str(tmp_path / "r"), "--rules", str(pack))
    assert res.exit_code == 1
    r = json.loads((tmp_path / "r" / "results.json").read_text())["rules"][0]
    assert r["status"] == "error" and "nope" in r["message"]


def test_same_seed_same_results(tiny, tmp_path):
    """Byte-identical results.json apart from the two time fields."""
    import re

    a, b = tmp_path / "a", tmp_path / "b"
    _run("run", str(tiny.config), "--out", str(a), "--set", "cache.enabled=false")
    _run("run", str(tiny.config), "--out", str(b), "--set", "cache.enabled=false")
    ta, tb = ((d / "results.json").read_bytes() for d in (a, b))
    times = re.compile(rb'"(started|finished)": "[^"]*"')
    assert len(times.findall(ta)) == 2
    assert times.sub(b"", ta) == times.sub(b"", tb)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s, root: s.replace('manifest = "manifest.csv"', 'manifest = "missing.csv"'), "missing.csv"),
        (lambda s, root: s.replace("[selection]", "[selection]\nbogus = 1"), "selection.bogus: unknown key"),
        (lambda s, root: s.replace('factory = "audit.demo.model:build"',
                                   'factory = "audit.demo.model:build"\ntorchvision = "resnet18"'), "exactly one of"),
        (lambda s, root: s.replace('methods = ["gradcam"]', 'methods = ["nonexistent"]'), "nonexistent"),
        (lambda s, root: s.replace('"left", "middle", "right"', '"left", "middle", "rite"'), "'right' is not in classes"),
        (lambda s, root: s.replace("width = 4", "width = 5"), "weights.safetensors: weights do not fit"),
        (lambda s, root: s.replace('pack = "default"', 'pack = "no-such-pack"'), "no bundled pack 'no-such-pack'"),
    ],
    ids=["missing-manifest", "unknown-key", "two-model-sources", "unknown-explainer", "label-not-in-classes",
         "checkpoint-shape-mismatch", "unknown-pack"],
)
def test_bad_input_exit_2_with_named_problem(tiny, tmp_path, edit, expected):
    text = tiny.config.read_text()
    tiny.config.write_text(edit(text, tiny.root))
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert expected in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_corrupt_image_named(tiny, tmp_path):
    (tiny.root / "img" / "003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "003.png" in res.output


def test_pickle_checkpoint_refused_without_opt_in(tiny, tmp_path):
    import torch

    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    bad = tiny.root / "weights.pt"
    torch.save({"x": Payload()}, bad)
    tiny.config.write_text(tiny.config.read_text().replace("weights.safetensors", "weights.pt"))
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "refused to unpickle" in res.output
    assert not (tmp_path / "pwned").exists()


def test_html_escapes_hostile_class_names(tiny, tmp_path):
    hostile = '<script>alert(1)</script>'
    text = tiny.config.read_text().replace('"left"', '"<script>alert(1)</script>"')
    tiny.config.write_text(text)
    m = tiny.manifest.read_text().replace(",left,", f",{hostile},")
    tiny.manifest.write_text(m)
    res = _run("run", str(tiny.config), "--out", str(tmp_path / "o"))
    assert res.exit_code in (0, 1), res.output
    html = (tmp_path / "o" / "report.html").read_text()
    assert hostile not in html and "&lt;script&gt;" in html


def test_verify_detects_a_changed_byte(passing_run, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(passing_run[1], out)
    assert _run("verify", str(out)).exit_code == 0
    html = out / "report.html"
    data = bytearray(html.read_bytes())
    data[100] ^= 1
    html.write_bytes(bytes(data))
    res = runner.invoke(app, ["verify", str(out)])
    assert res.exit_code == 1 and "report.html" in res.output


def test_prediction_cache_reused_and_invalidated(tiny, tmp_path):
    first = _run("run", str(tiny.config), "--out", str(tmp_path / "a"))
    assert "reused from the cache" not in first.output
    second = _run("run", str(tiny.config), "--out", str(tmp_path / "b"))
    assert "reused from the cache" in second.output
    ra, rb = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("a", "b"))
    for r in (ra, rb):
        r["provenance"].pop("started")
        r["provenance"].pop("finished")
    assert ra == rb
    # one changed image invalidates the cache
    from PIL import Image

    Image.new("L", (32, 32), 200).save(tiny.root / "img" / "000.png")
    third = _run("run", str(tiny.config), "--out", str(tmp_path / "c"))
    assert "reused from the cache" not in third.output
