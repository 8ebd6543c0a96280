"""report.junit.xml: well-formed and valid against the published Jenkins schema and this project's stricter one for
any string; warnings pass (with the warning in system-err and a suite property), a rule that did not apply is
<skipped>; times, consistent counts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_helpers import CONTROL, HOSTILE, check_junit, hostile_text, junit_schema, results, rule

from audit.report.writers.junit import build_junit
from audit.report.writers.text import visible

STATUSES = ("pass", "warn", "fail", "error")


def _mixed() -> dict:
    return results([
        rule("acc", "fail", "accuracy 0.5 < 0.9", sample_ids=("a.png", "b.png")),
        rule("soft", "warn", "ECE 0.2 > 0.1", severity="warning"),
        rule("crash", "error", "class 'nope' is not in classes"),
        rule("ok", "pass", "fine", details={"seconds": 1.25}),
        rule("na", "not_applicable", "no ROI on any sample"),
    ], model={"name": "net", "version": "1.0", "sha256": "ab" * 32})


def test_outcomes_counts_and_times():
    res = _mixed()
    root = check_junit(build_junit(res), res)
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("5", "1", "1", "1")
    assert suite.get("time") == "62" and root.get("time") == "62"  # finished - started
    assert suite.get("timestamp") == "2025-01-02T03:04:05"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["acc"].find("failure").get("type") == "RuleFailed"
    assert "samples: a.png, b.png" in cases["acc"].find("failure").text
    assert cases["crash"].find("error").get("type") == "RuleError"
    assert cases["soft"].find("failure") is None and cases["soft"].find("skipped") is None  # a warning ran: no skip
    assert cases["soft"].find("system-out").text.startswith("WARN: ")
    assert cases["soft"].find("system-err").text.startswith("WARNING (does not block the release): ")
    assert cases["na"].find("skipped").get("message") == "not applicable: no ROI on any sample"
    assert cases["ok"].find("system-out").text.startswith("PASS: ") and list(cases["ok"]) == [cases["ok"][0]]
    assert cases["ok"].get("time") == "1.25" and cases["acc"].get("time") == "0"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "fail" and props["blocking"] == "acc, crash"
    assert props["warnings"].startswith("soft: ")
    assert props["model.name"] == "net" and props["model.sha256"] == "ab" * 32


def test_time_without_provenance_times_is_the_sum_of_cases():
    res = results([rule("a", details={"seconds": 0.5}), rule("b", details={"seconds": float("nan")})],
                  started=None, finished="not a time")
    suite = check_junit(build_junit(res), res).find("testsuite")
    assert suite.get("time") == "0.5" and suite.get("timestamp") is None


def test_zoned_start_is_written_in_utc_without_zone():
    res = results([rule()], started="2025-01-02T05:04:05+02:00", finished="2025-01-02T05:04:04+02:00")
    suite = check_junit(build_junit(res), res).find("testsuite")
    assert suite.get("timestamp") == "2025-01-02T03:04:05" and suite.get("time") == "0"  # never negative


def test_no_rules():
    res = results([])
    check_junit(build_junit(res), res)


def test_schema_rejects_what_it_should():
    """The vendored schema is not a rubber stamp."""
    schema = junit_schema()
    assert schema.is_valid('<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
                           '<testcase name="c" classname="k" time="0"/></testsuite></testsuites>')
    for bad in (
        '<testsuites><testsuite name="s" tests="-1" failures="0" errors="0"/></testsuites>',  # negative count
        ('<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
         '<testcase name="c" classname="k"><failure/><skipped/></testcase></testsuite></testsuites>'),  # 2 outcomes
        '<testsuites><testsuite name="s" tests="1" failures="0" errors="0" timestamp="yesterday"/></testsuites>',
        '<testsuites><testsuite tests="1" failures="0" errors="0"/></testsuites>',  # no name
        ('<testsuites><testsuite name="s" tests="0" failures="0" errors="0">'
         '<testcase name="c" classname="k" time="1e3"/></testsuite></testsuites>'),  # exponent time
    ):
        assert not schema.is_valid(bad), bad


@pytest.mark.parametrize("s", HOSTILE)
def test_hostile_strings_everywhere(s):
    res = results([rule(f"{s}-{st_}", st_, s, kind=s, severity=s, value=s, threshold=s, sample_ids=(s, s))
                   for st_ in STATUSES], name=s, model={"name": s, "version": s, "sha256": s})
    root = check_junit(build_junit(res), res)
    if visible(s) == s:  # attribute values come back exactly
        assert [c.get("name") for c in root.iter("testcase")] == [r["id"] for r in res["rules"]]
        assert root.find(".//failure").get("message") == s


def test_control_character_is_visible():
    res = results([rule("r", "fail", CONTROL)])
    xml = build_junit(res)
    assert "\x1b" not in xml and "\x00" not in xml and "a\\x1bb\\x00c\\x7f" in xml
    check_junit(xml, res)


_rules = st.lists(
    st.builds(rule, rid=hostile_text, status=st.sampled_from(STATUSES), message=hostile_text, kind=hostile_text,
              severity=hostile_text, value=st.one_of(st.none(), st.floats(), hostile_text),
              threshold=st.one_of(st.none(), st.floats()), sample_ids=st.lists(hostile_text, max_size=25).map(tuple),
              details=st.one_of(st.just({}), st.fixed_dictionaries({"seconds": st.one_of(st.floats(), hostile_text)}))),
    max_size=6,
)
_model = st.fixed_dictionaries({"name": st.one_of(st.none(), hostile_text), "version": st.one_of(st.none(), hostile_text),
                                "sha256": st.one_of(st.none(), hostile_text)})


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rules, hostile_text, _model, st.one_of(st.none(), hostile_text, st.just("2025-01-02T03:04:05Z")))
def test_any_strings_give_valid_junit(rules, name, model, started):
    res = results(rules, name=name, model=model, started=started)
    root = check_junit(build_junit(res), res)
    for case, r in zip(root.iter("testcase"), rules, strict=True):
        assert case.get("name") == visible(r["id"])


def test_numbers_read_as_a_reader_compares_them():
    """A bound of 1.73e-18 prints as 0.0000, a count as an integer (issue: a CI lower bound printed as 1.73e-18)."""
    res = results([rule("tiny", "fail", "m", value=1.73e-18, threshold=0.05), rule("n", "pass", value=3.0, threshold=5)])
    root = check_junit(build_junit(res), res)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert "value=0.0000 threshold=0.0500" in cases["tiny"].find("failure").text
    assert "value=3 threshold=5" in cases["n"].find("system-out").text
    assert "e-18" not in build_junit(res)
