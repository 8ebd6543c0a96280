"""The family in the report: the HTML section (members, forest plot, spread, agreement, rules per member) and its
PDF rendering, the summary.md lines and the JUnit test cases of the family rules, written from one audit."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from pypdf import PdfReader

from audit.report.output import write_outputs


@pytest.fixture(scope="module")
def written(underspecified, tmp_path_factory):
    folder = tmp_path_factory.mktemp("family-report") / "report"
    write_outputs(underspecified, folder, ["html", "pdf", "json", "junit"])
    return folder


def test_html_section(written):
    html = (written / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<h2 id="family"'):]
    section = section[:section.index("</section>")]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))
    assert "seed-0 (released)" in text
    assert "2 of 4" in text and "seed-1, seed-3" in text  # marker-use: k of K members fail, named
    assert "forest plot of accuracy per member: seed-0 1.000, seed-1 0.750, seed-2 1.000, seed-3 0.750" \
        in section
    assert "0.875" in text and "0.144" in text  # mean and sd of the four seeds' accuracy
    assert "0.500" in text  # kappa of seed-0 and seed-1 (16 of 64 answers differ)
    assert 'href="#finding-marker-members"' in section


def test_pdf_section(written):
    text = re.sub(r"\s+", " ", "\n".join(p.extract_text() for p in PdfReader(written / "report.pdf").pages))
    part = text[text.index("Family of models"):]
    assert "seed-0 (released)" in part and "Spread across members" in part
    assert "Rules on every member" in part and "seed-1, seed-3" in part


def test_summary_lines(written):
    md = (written / "summary.md").read_text(encoding="utf-8")
    part = md[md.index("**Family of models:**"):].replace("\\", "")  # Markdown escapes taken out
    assert "4 members of the recipe (released: 'seed-0') and their mean ensemble" in part
    assert "accuracy mean 0.875, sd 0.144" in part
    assert "Rule 'marker-use' fails on 2 of 4 members: seed-1, seed-3." in part
    assert "Weakest prediction agreement: 'seed-0' and 'seed-1', kappa 0.500 (16 of 64 answers differ)." in part


def test_junit_has_the_family_rules(written):
    root = ET.parse(next(written.glob("*.xml"))).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failing = next(c for n, c in cases.items() if "marker-members" in n)
    assert failing.find("failure") is not None and "seed-1, seed-3" in failing.find("failure").get("message", "") + \
        (failing.find("failure").text or "")
    passing = next(c for n, c in cases.items() if "marker-use" in n)
    assert passing.find("failure") is None
