"""audit.report.writers.text: visible escapes for XML-illegal characters, inline Markdown escaping that keeps the text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from report_helpers import HOSTILE, check_inert, hostile_text, inline_text

from audit.report.writers.text import WORD_JOINER, md_code, md_text, truncate, visible, xml_text


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\x1bb", "a\\x1bb"), ("\x00", "\\x00"), ("\x7f\x85", "\\x7f\\x85"), ("\ufffe\uffff", "\\ufffe\\uffff"),
    ("\ud800", "\\ud800"), ("\u202eabc", "\\u202eabc"), ("tab\tnl\ncr\r", "tab\tnl\ncr\r"), ("é漢😀", "é漢😀"),
    (None, ""), (0.5, "0.5"),
])
def test_visible_escapes_what_xml_forbids_or_hides(raw, shown):
    assert visible(raw) == shown
    assert xml_text(raw) == shown


def test_truncate_marks_the_cut():
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abc", 4) == "abc"
    assert truncate("abc", None) == "abc"


@pytest.mark.parametrize(("raw", "escaped"), [
    ("![x](http://e.com/a.png)", "\\!\\[x\\]\\(http\\:" + WORD_JOINER + "//e\\.com/a\\.png\\)"),
    ("<img src=x>", "&lt;img src=x&gt;"),
    ("a & b", "a &amp; b"),
    ("a | b\nc", "a \\| b c"),
    ("accuracy 0.912 (CI 0.85–0.95): ok", "accuracy 0.912 \\(CI 0.85–0.95\\): ok"),
    ("region-sweep", "region-sweep"),
    ("- item", "\\- item"),
    ("-0.01", "-0.01"),
    ("= x", "\\= x"),
    ("@user", "\\@" + WORD_JOINER + "user"),
    ("\\", "\\\\"),
])
def test_md_text_examples(raw, escaped):
    assert md_text(raw) == escaped


def test_md_code_only_for_plain_identifiers():
    assert md_code("region-sweep") == "`region-sweep`"
    assert md_code("weights.pt") == "`weights.pt`"
    assert md_code("a`b") == "a\\`b"
    assert md_code("<img>") == "&lt;img&gt;"
    assert md_code("") == ""


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_strings_render_inert(raw):
    check_inert(md_text(raw))
    check_inert(f"| a |\n|---|\n| {md_text(raw)} |")


def _expected(s: str) -> str:
    return " ".join(visible(s).split()).replace(WORD_JOINER, "")


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_md_text_renders_exactly_the_visible_text(s):
    """Escaping loses nothing: the rendered text is the input (controls made visible, whitespace runs as one
    space), and nothing in it is active."""
    m = md_text(s)
    check_inert(m)
    assert inline_text(m).replace(WORD_JOINER, "") == _expected(s)


@settings(max_examples=150, deadline=None)
@given(hostile_text, hostile_text)
def test_md_text_in_a_table_cell_stays_one_cell(a, b):
    doc = f"| x | y |\n|---|---|\n| {md_text(a)} | {md_text(b)} |\n"
    check_inert(doc)
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("gfm-like").parse(doc)
    assert [t.type for t in tokens].count("td_open") == 2
