"""Helpers for the JUnit / summary.md tests: minimal results dicts, the vendored JUnit schema, a CommonMark + GFM
renderer, the checks every output must pass, and hypothesis strategies for hostile strings."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import xmlschema
from hypothesis import strategies as st
from markdown_it import MarkdownIt

JUNIT_XSD = Path(__file__).with_name("junit.xsd")  # this project's stricter description of the dialect
#: the published schema the Jenkins xUnit plugin validates JUnit reports against (vendor/README.md)
JUNIT_PUBLISHED_XSD = Path(__file__).with_name("vendor") / "jenkins-xunit" / "junit-10.xsd"

CONTROL = "a\x1bb\x00c\x7f"
MD_IMAGE = "![x](http://evil.example/a.png)"
IMG_TAG = '<img src=x onerror="alert(1)">'
HOSTILE = [
    CONTROL, MD_IMAGE, IMG_TAG, "<script>alert(1)</script>", "[x](javascript:alert(1))", "<http://evil.example>",
    "http://evil.example/x", "www.evil.example", "weights.pt", "mail@evil.example", "@everyone #12 :octocat:",
    "a | b\n| c", "**bold** _it_ `code` ~~s~~ $x$", "# heading", "- item", "1. item", "> quote", "===", "---",
    "&lt;img src=x&gt;", "&#60;img&#62;", "\\", "\ud800lone", "\ufffe\uffff", "\u202eevil\u202c", "x\r\ny\u2028z",
    "<!-- c -->", "<![CDATA[x]]>", "]]>", '"><svg onload=alert(1)>', "[x]: http://evil.example", "[x]",
]


def rule(rid: str = "r", status: str = "pass", message: str = "m", *, kind: str = "metric_min",
         severity: str = "error", value: Any = 0.5, threshold: Any = 0.9, sample_ids: tuple[str, ...] = (),
         details: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of results["rules"] (see audit/report/results.py finding_dict)."""
    return {"id": rid, "kind": kind, "severity": severity, "status": status, "value": value,
            "threshold": threshold, "message": message, "sample_ids": list(sample_ids), "details": details or {}}


def results(rules: list[dict[str, Any]], *, name: str = "tiny", model: dict[str, Any] | None = None,
            started: str | None = "2025-01-02T03:04:05+00:00", finished: str | None = "2025-01-02T03:05:07+00:00",
            blocking: list[str] | None = None, comparison: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keys of results.json that junit.py and summary.py read."""
    counts = {s: sum(r["status"] == s for r in rules) for s in ("pass", "warn", "fail", "error")}
    if blocking is None:
        blocking = [r["id"] for r in rules if r["status"] in ("fail", "error") and r["severity"] == "error"]
    out = {
        "schema_version": "3", "name": name, "verdict": "fail" if blocking else "pass",
        "summary": {"rules": counts, "blocking": blocking},
        "rules": rules,
        "provenance": {"model": model if model is not None else {"name": None, "version": None, "sha256": None},
                       "started": started, "finished": finished},
    }
    if comparison is not None:
        out["comparison"] = comparison
    return out


# ---- JUnit ---------------------------------------------------------------------------------------------------

@cache
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(JUNIT_XSD))


@cache
def junit_published_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(JUNIT_PUBLISHED_XSD))


def check_junit(xml: str, res: dict[str, Any]) -> ET.Element:
    """Parses as written to disk (UTF-8), validates against both schemas, counts agree with the results: warnings
    are passing cases (they do not block), a rule that did not apply is skipped."""
    data = xml.encode("utf-8")  # raises on a lone surrogate
    root = ET.fromstring(data)
    junit_schema().validate(data.decode("utf-8"))
    junit_published_schema().validate(data.decode("utf-8"))
    suite = root.find("testsuite")
    assert suite is not None
    statuses = [r["status"] for r in res["rules"]]
    cases = suite.findall("testcase")
    expect = {"tests": len(statuses), "failures": statuses.count("fail"), "errors": statuses.count("error"),
              "skipped": statuses.count("not_applicable")}
    found = {"tests": len(cases), "failures": len(suite.findall("testcase/failure")),
             "errors": len(suite.findall("testcase/error")), "skipped": len(suite.findall("testcase/skipped"))}
    assert found == expect
    assert {k: int(suite.get(k)) for k in expect} == expect
    assert {k: int(root.get(k)) for k in expect if k != "skipped"} == {k: v for k, v in expect.items() if k != "skipped"}
    for el in (root, suite):
        assert el.get("time") is not None
    assert all(c.get("time") is not None for c in cases)
    return root


# ---- Markdown ------------------------------------------------------------------------------------------------

def renderers() -> list[MarkdownIt]:
    """CommonMark with raw HTML allowed (what an unescaped string would exploit) and GFM-like with tables,
    strikethrough and linkify (bare URLs, www., e-mail), as in GitHub/GitLab comments."""
    return [MarkdownIt("commonmark"), MarkdownIt("gfm-like", {"linkify": True})]


ALLOWED_TAGS = {"p", "h2", "strong", "code", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "br"}
_FORBIDDEN_TOKENS = {"html_block", "html_inline", "link_open", "image", "s_open", "em_open"}
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")
# what linkers that run on the rendered text (GitHub mentions, #refs, :emoji:, GitLab URL autolinks) would catch
_TEXT_LINKABLE = re.compile(r"[@#:][A-Za-z0-9_/]")


def _tokens(tokens):
    for t in tokens:
        yield t
        if t.children:
            yield from _tokens(t.children)


def check_inert(markdown: str) -> list[str]:
    """Asserts ``markdown`` renders to nothing active in either renderer; returns the rendered HTML."""
    out = []
    for md in renderers():
        tokens = list(_tokens(md.parse(markdown)))
        bad = [t.type for t in tokens if t.type in _FORBIDDEN_TOKENS]
        assert not bad, (bad, markdown)
        page = md.render(markdown)
        tags = {m.group(2).lower() for m in _TAG.finditer(page)}
        assert tags <= ALLOWED_TAGS, (tags - ALLOWED_TAGS, markdown)
        for needle in ("<img", "<a ", "<script", "<svg", "<iframe"):
            assert needle not in page.lower(), (needle, page)
        text = html.unescape(re.sub(r"<[^>]*>", " ", page))
        assert not _TEXT_LINKABLE.search(text), (_TEXT_LINKABLE.search(text), text)
        out.append(page)
    return out


def inline_text(markdown: str) -> str:
    """The text a one-paragraph Markdown string renders to (GFM-like renderer)."""
    md = MarkdownIt("gfm-like", {"linkify": True})
    parts = []
    for t in _tokens(md.parse(markdown)):
        if t.type in ("text", "text_special", "code_inline"):
            parts.append(t.content)
        elif t.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        else:
            assert t.type in ("paragraph_open", "paragraph_close", "inline"), (t.type, markdown)
    return "".join(parts)


# ---- hypothesis ----------------------------------------------------------------------------------------------

_ANY_CHAR = st.characters(codec=None, exclude_categories=())  # every code point, surrogates included
_PIECES = st.sampled_from(HOSTILE + list("<>&\"'\\`*_[]()!#|~:.@/-=+$^{}\n\r\t\x00\x1b\u2028\u2060 "))
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=_ANY_CHAR, max_size=40),
    st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=8).map("".join),
)
