"""summary.md: verdict first, blocking rules, model, counts, failures before warnings, and no active content."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lint import rendered_text
from markdown_it import MarkdownIt
from report_helpers import HOSTILE, IMG_TAG, MD_IMAGE, check_inert, hostile_text, results, rule

from audit.report.writers.summary import COMMENT_LIMIT, MAX_ROWS, build_summary

HEADLINE = "Accuracy 0.9111 (95 % CI 0.8000–0.9778), balanced accuracy 0.9111, macro F1 0.9100, n = 45."


def _rows(md: str) -> list[list[str]]:
    """Table body rows as lists of cell texts (GFM-like renderer)."""
    rows, row = [], None
    for t in MarkdownIt("gfm-like").parse(md):
        if t.type == "tr_open":
            row = []
        elif t.type == "inline" and row is not None:
            row.append(t.content)
        elif t.type == "tr_close":
            rows.append(row)
            row = None
    return rows[1:]  # without the header


def test_leads_with_verdict_blocking_model_and_counts():
    res = results([
        rule("soft", "warn", "ECE 0.2 > 0.1", severity="warning"),
        rule("ok", "pass"),
        rule("acc", "fail", "accuracy 0.5 < 0.9"),
        rule("soft-fail", "fail", "warning rule failed", severity="warning"),
        rule("crash", "error", "rule crashed"),
    ], model={"name": "chest-xray", "version": "3.0.1", "sha256": "ABCDEF0123456789" * 4})
    md = build_summary(res, HEADLINE)
    lines = md.splitlines()
    assert lines[0] == "## ❌ model-audit `tiny`: **FAIL**"
    assert lines[2] == "**Blocking:** `acc`, `crash`  "
    assert lines[3] == "**Model:** chest-xray 3.0.1 · sha256 `abcdef012345`  "
    assert lines[4] == "**Rules:** 2 fail · 1 error · 1 warn · 1 pass"
    rows = _rows(md)
    assert [r[0] for r in rows] == ["`acc`", "`crash`", "`soft-fail`", "`soft`"]  # blocking, fail, warn
    assert rows[0][1] == "**fail** · blocking" and rows[2][1] == "fail" and rows[3][1] == "warn"
    assert "Accuracy 0.9111 \\(95 % CI 0.8000–0.9778\\)" in md
    check_inert(md)


def test_model_line_prints_what_exists():
    md = build_summary(results([rule()], model={"name": None, "version": "2", "sha256": None}), HEADLINE)
    assert "**Model:** 2  " in md and "sha256" not in md
    md = build_summary(results([rule()], model={"name": None, "version": None, "sha256": "f" * 64}), HEADLINE)
    assert f"**Model:** sha256 `{'f' * 12}`" in md
    md = build_summary(results([rule()], model={"name": None, "version": None, "sha256": None}), HEADLINE)
    assert "Model" not in md


def test_passing_audit():
    md = build_summary(results([rule(), rule("b")]), HEADLINE)
    assert md.startswith("## ✅ model-audit `tiny`: **PASS**") and "Every rule passed." in md
    assert "Blocking" not in md and "**Rules:** 0 fail · 0 error · 0 warn · 2 pass" in md


def test_long_lists_are_capped():
    many = [rule(f"r{i}", "warn", "x" * 1000, severity="warning") for i in range(MAX_ROWS + 5)]
    md = build_summary(results(many), HEADLINE)
    assert len(_rows(md)) == MAX_ROWS and "… and 5 more" in md
    assert len(md) < 20_000


def test_comparison_section_escaped():
    comp = {"metrics": {MD_IMAGE: {"baseline": 0.9, "candidate": 0.8, "delta": -0.1}},
            "flips": {"to_wrong": 3, "to_right": 1},
            "explanations": {IMG_TAG: {"status": "ok", "n_compared": 5, "spearman": {"median": 0.5},
                                       "ssim": {"median": 0.4}}}}
    md = build_summary(results([rule()], comparison=comp), HEADLINE)
    assert "Changes since baseline:" in md and "0.9000 → 0.8000 (Δ -0.1000)" in md
    assert "- flips: 3 right → wrong, 1 wrong → right" in md and "median Spearman 0.5000" in md
    check_inert(md)


@pytest.mark.parametrize("s", HOSTILE)
def test_hostile_strings_render_inert(s):
    res = results([rule(s, "fail", s, value=s, threshold=s, sample_ids=(s,)), rule("w", "warn", s)],
                  name=s, model={"name": s, "version": s, "sha256": s}, blocking=[s],
                  comparison={"metrics": {s: {"baseline": s, "candidate": None, "delta": 0.1}},
                              "explanations": {s: {"status": "ok", "n_compared": s, "spearman": {"median": s},
                                                   "ssim": {"median": s}}}})
    md = build_summary(res, s)
    check_inert(md)
    assert len(_rows(md)) == 2 and all(len(r) == 5 for r in _rows(md))


_rules = st.lists(st.builds(rule, rid=hostile_text, status=st.sampled_from(("pass", "warn", "fail", "error")),
                            message=hostile_text, value=st.one_of(st.none(), st.floats(), hostile_text),
                            threshold=st.one_of(st.none(), st.floats(), hostile_text)), max_size=6)
_model = st.fixed_dictionaries({k: st.one_of(st.none(), hostile_text) for k in ("name", "version", "sha256")})


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rules, hostile_text, _model, hostile_text, st.dictionaries(hostile_text, st.floats(), max_size=3))
def test_any_strings_render_inert(rules, name, model, headline, metrics):
    comp = {"metrics": {k: {"baseline": v, "candidate": v, "delta": v} for k, v in metrics.items()}}
    res = results(rules, name=name, model=model, comparison=comp)
    md = build_summary(res, headline)
    check_inert(md)
    shown = [r for r in rules if r["status"] != "pass"]
    rows = _rows(md)
    assert len(rows) == min(len(shown), MAX_ROWS) and all(len(r) == 5 for r in rows)
    blocking = set(res["summary"]["blocking"])
    order = sorted(shown, key=lambda r: (r["id"] not in blocking, ("fail", "error", "warn").index(r["status"])))
    assert [r[1].split(" ")[0].strip("*") for r in rows] == [r["status"] for r in order][:MAX_ROWS]


def test_every_flag_of_results_json_is_listed():
    """summary.md carries every flag the report's cover carries (results.json ``summary.flags``): data-level
    flags, unchecked shortcut kinds, incomplete evidence, the baseline's headline."""
    res = results([rule("acc", "fail", "accuracy 0.5 < 0.9"), rule("ok", "pass")])
    res["summary"]["flags"] = [
        {"kind": "data", "text": "Data: mean brightness alone predicts 'seven' at AUC 0.92 (95 % interval 0.88–0.95)."},
        {"kind": "unchecked_shortcuts", "text": "Shortcut kinds not checked by this audit: texture (no rule)."},
        {"kind": "incomplete_evidence", "text": "Missing evidence does not block this verdict."},
        {"kind": "baseline", "text": "Compared with baseline “clean” (verdict pass): rules newly failing: acc."},
    ]
    shown = " ".join(rendered_text(build_summary(res, HEADLINE)).replace("\u2060", "").split())
    for flag in res["summary"]["flags"]:
        assert flag["text"] in shown
    assert "**Flags:**" not in build_summary(results([rule("ok", "pass")]), HEADLINE)  # none: no heading


def test_stays_under_the_github_comment_limit_and_says_where_the_rest_is():
    rules = [rule(f"r{i}", "fail", "x" * 280) for i in range(30)]
    res = results(rules)
    res["summary"]["flags"] = [{"kind": "data", "text": "y" * 1400 + str(i)} for i in range(60)]
    md = build_summary(res, HEADLINE)
    assert len(md) < COMMENT_LIMIT
    assert md.rstrip().endswith("beside this file in the report folder.")
    assert "results.json" in md.splitlines()[-1] and "report.html" in md.splitlines()[-1]
    short = build_summary(results([rule("ok", "pass")]), HEADLINE)
    assert "shortened" not in short  # only when it would be longer
