"""Hostile input: markup in class names, file names, metadata and config strings is escaped in report.html and
the PDF still renders; a checkpoint or model file that would run code is refused before it runs; a real Ctrl-C
(SIGINT to a real process) ends with exit 130 and no report.

(The pickle/TorchScript refusals and the decompression bomb are cases of test_bad_input_corpus.py, which checks
that no payload ran.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from badinput_helpers import XSS_ATTR, XSS_SCRIPT, drop_sections, edit_manifest, invoke, leftovers
from pypdf import PdfReader

ESCAPED = {
    XSS_SCRIPT: "&lt;script&gt;alert(1)&lt;/script&gt;",
    XSS_ATTR: "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
}


@pytest.fixture(scope="module")
def hostile_run(make_setup, tiny_model, tmp_path_factory):
    """The tiny audit with markup everywhere a user string reaches the report; HTML and PDF."""
    root = tmp_path_factory.mktemp("hostile")
    s = make_setup(root / "tiny", tiny_model)
    q = json.dumps  # a JSON string is a valid TOML basic string
    text = drop_sections(s.config.read_text(), ("views", "cache", "report"))
    text = text.replace('classes = ["left", "middle", "right"]',
                        f'classes = [{q(XSS_SCRIPT)}, {q(XSS_ATTR)}, "right"]')
    text = text.replace('subgroups = ["site"]', f'subgroups = ["site", {q(XSS_ATTR)}]')
    text = text.replace("[model]\n", f"[model]\nname = {q(XSS_SCRIPT)}\nversion = {q(XSS_ATTR)}\n")
    text += f"""
[views]
embeddings = ["pca"]
probe_samples = 0
[cache]
enabled = false
[report]
formats = ["html", "pdf", "json", "junit"]
title = {q("Audit " + XSS_SCRIPT)}
[model_card]
intended_use = {q(XSS_ATTR)}
owner = {q(XSS_SCRIPT)}
limitations = {q(XSS_SCRIPT + XSS_ATTR)}
"""
    s.config.write_text(text)
    img = s.root / "img"

    def fn(header, rows):
        header.append(XSS_ATTR)  # a metadata column whose name is markup
        for i, r in enumerate(rows):
            r[1] = {"left": XSS_SCRIPT, "middle": XSS_ATTR}.get(r[1], r[1])  # labels by (hostile) class name
            # file names with markup; "<script>alert(1)</script>" needs a folder named "<script>alert(1)<"
            new = f"img/{i:03d}{XSS_ATTR}.png" if i % 2 else f"img/{XSS_SCRIPT}{i:03d}.png"
            (s.root / new).parent.mkdir(parents=True, exist_ok=True)
            (img / f"{i:03d}.png").rename(s.root / new)
            r[0] = new
            r[6] = XSS_SCRIPT if i % 2 else XSS_ATTR  # site
            r.append(XSS_ATTR if i % 3 else XSS_SCRIPT)

    edit_manifest(s.manifest, fn)
    out = root / "report"
    return invoke("run", s.config, "--out", out), out


def test_hostile_run_completes(hostile_run):
    res, out = hostile_run
    assert res.exit_code in (0, 1), res.output
    assert "Traceback" not in res.output
    assert not leftovers(out)[1:]


@pytest.mark.parametrize("raw", [XSS_SCRIPT, XSS_ATTR], ids=["script-tag", "attribute-breakout"])
def test_markup_is_escaped_in_html(hostile_run, raw):
    _, out = hostile_run
    html = (out / "report.html").read_text()
    assert raw not in html
    assert ESCAPED[raw] in html
    assert "<script>alert" not in html and "<img src=x" not in html and "onerror=alert(1)>" not in html


def test_hostile_strings_reach_the_report(hostile_run):
    """The escaping test only means something if each kind of string is shown: class names, file names (sample
    ids), metadata values, model name and model card."""
    _, out = hostile_run
    html = (out / "report.html").read_text()
    assert html.count(ESCAPED[XSS_SCRIPT]) >= 5
    assert html.count(ESCAPED[XSS_ATTR]) >= 5
    results = json.loads((out / "results.json").read_text())
    assert results["classes"][:2] == [XSS_SCRIPT, XSS_ATTR]
    shown_ids = [s["id"] for s in results["samples"]["correct"] + results["samples"]["incorrect"]
                 + results["samples"]["borderline"]]
    assert shown_ids and all("alert(1)" in sid for sid in shown_ids)
    for sid in shown_ids:  # every picked file name is in the page, escaped
        assert sid.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") in html


def test_pdf_renders_the_markup_as_text(hostile_run):
    _, out = hostile_run
    pdf = out / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "alert(1)" in text  # shown as text, not interpreted
    assert "Verdict" in text


def test_junit_is_well_formed(hostile_run):
    _, out = hostile_run
    ET.parse(out / "report.junit.xml")


# ---- a real Ctrl-C ------------------------------------------------------------------------------------------

_SIGINT_SCRIPT = """
import os, signal, sys, time
import audit.runner

# a background job of a non-interactive shell starts with SIGINT ignored; behave like a terminal session
signal.signal(signal.SIGINT, signal.default_int_handler)

def predict(*a, **k):  # SIGINT to this very process while the held-out set is scored
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(60)

audit.runner.predict = predict
from audit.cli import main
sys.argv = ["audit", "run", sys.argv[1], "--out", sys.argv[2]]
main()
"""


def test_real_sigint_exits_130_without_report(fast, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-c", _SIGINT_SCRIPT, str(fast.config), str(out)], capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).parents[2], check=False,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 130, proc.stderr
    assert "interrupted: no report was written" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not leftovers(out)
