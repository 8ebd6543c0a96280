"""JUnit XML: one test case per rule result, so CI systems show rule failures like test failures.

Outcomes (one per rule result):

- ``fail`` → ``<failure type="RuleFailed">``, ``error`` → ``<error type="RuleError">``;
- ``warn`` → a passing test case (a warning-severity rule does not block the release, and a ``<failure>`` would
  turn Jenkins builds UNSTABLE, show as a failed test in GitLab's merge-request widget and fail GitHub check runs
  such as mikepenz/action-junit-report or dorny/test-reporter) with ``WARNING (does not block the release): …``
  in ``<system-err>``, which the reporters show with the case, the details in ``<system-out>``, and the suite
  property ``warnings`` listing every warning. Not ``<skipped>``: the rule ran, and a reader of "skipped" would
  take it for a check that did not;
- ``not_applicable`` → ``<skipped message="not applicable: …">``: the rule did not apply to this audit;
- ``pass`` → a bare test case with the details in ``<system-out>``.

The failure or error ``message`` is the result's headline from results.json (the comparison and what was judged:
class, label, region or column).

The suite's properties hold the verdict, the warnings, the blocking rules, the model, the explainers listed in the
config that produced no maps (``explainers.unavailable``: "name: reason; …") and, when the pack downgrades the completeness
check to a warning, ``incomplete_evidence_blocks = false``.

Every string from the results (class names in messages, sample ids, rule ids, model metadata) goes through
:func:`audit.report.writers.text.xml_text`: the document is well-formed XML 1.0 for any input. Times: the suite's is
``provenance.finished - started`` (its ``timestamp`` the start, UTC, ISO 8601 without zone as Ant writes it);
a test case's is ``details.seconds`` when the rule recorded it, else 0.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from ..criteria import headline_of
from .base import OutputFormat, Report
from .text import xml_text

MAX_SAMPLE_IDS = 20


def _parse_time(s: Any) -> datetime | None:
    if not isinstance(s, str):
        return None
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _seconds(x: Any) -> float:
    """A non-negative finite number of seconds, else 0."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
        return 0.0
    return float(x)


def _fmt_seconds(t: float) -> str:
    """Decimal seconds, millisecond precision, no exponent: 0 → "0", 1.5 → "1.5"."""
    return f"{t:.3f}".rstrip("0").rstrip(".")


def _criterion(r: Mapping[str, Any]) -> str:
    """"probability drop 0.276 > 0.200 (for 'seven', top-left corner) · probability, 0–1": the headline results.json
    states (comparison and what was judged) with the unit, when the result names its criterion, else ""."""
    crit, v, t = r.get("criterion"), r.get("value"), r.get("threshold")
    numbers = all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in (v, t))
    if not (isinstance(crit, Mapping) and crit.get("name") and numbers):
        return ""
    unit = str(crit.get("unit") or "")
    return xml_text(headline_of(r) + (f" · {unit}" if unit else "")) + "\n"


def _number(v: Any) -> str:
    """A value as a reader compares it: four decimals (a bound of 1.73e-18 reads 0.0000), a count as an integer,
    anything else as visible text."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return xml_text(v)
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return f"{v:.4f}" if math.isfinite(v) else xml_text(v)


def _case_text(r: Mapping[str, Any]) -> str:
    text = (f"{_criterion(r)}value={_number(r.get('value'))} threshold={_number(r.get('threshold'))} "
            f"severity={xml_text(r.get('severity'))}\n{xml_text(r.get('message'))}")
    ids = list(r.get("sample_ids") or ())
    if ids:
        text += "\nsamples: " + ", ".join(xml_text(i) for i in ids[:MAX_SAMPLE_IDS])
        if len(ids) > MAX_SAMPLE_IDS:
            text += f" (+{len(ids) - MAX_SAMPLE_IDS} more)"
    return text


def _case(suite: ET.Element, r: Mapping[str, Any]) -> float:
    """Append the test case of rule result ``r``; returns its time."""
    seconds = _seconds((r.get("details") or {}).get("seconds"))
    case = ET.SubElement(suite, "testcase", name=xml_text(r["id"]), classname=f"rules.{xml_text(r['kind'])}",
                         time=_fmt_seconds(seconds))
    status, text = r["status"], _case_text(r)
    headline = xml_text(headline_of(r))  # the comparison and what was judged: the line a CI reader sees first
    if status == "fail":
        ET.SubElement(case, "failure", message=headline, type="RuleFailed").text = text
    elif status == "error":
        ET.SubElement(case, "error", message=headline, type="RuleError").text = text
    elif status == "not_applicable":
        ET.SubElement(case, "skipped", message=f"not applicable: {xml_text(r.get('message'))}")
    if status not in ("fail", "error"):
        ET.SubElement(case, "system-out").text = f"{xml_text(status).upper()}: {text}"
    if status == "warn":
        ET.SubElement(case, "system-err").text = f"WARNING (does not block the release): {headline}"
    return seconds


def _properties(suite: ET.Element, results: Mapping[str, Any]) -> None:
    props = ET.SubElement(suite, "properties")

    def prop(name: str, value: Any) -> None:
        ET.SubElement(props, "property", name=name, value=xml_text(value))

    prop("verdict", results["verdict"])
    warned = [r for r in results.get("rules") or () if r.get("status") == "warn"]
    if warned:  # warnings pass the gate; listed here and in each case's system-err
        prop("warnings", "; ".join(f"{xml_text(r.get('id'))}: {xml_text(headline_of(r))}" for r in warned))
    prop("schema_version", results["schema_version"])
    blocking = (results.get("summary") or {}).get("blocking")
    if blocking:
        prop("blocking", ", ".join(xml_text(b) for b in blocking))
    gone = [e for e in results.get("explainers") or () if e.get("status") != "ok"]
    if gone:  # explainers listed in the config that produced no maps (evidence-complete names them too)
        prop("explainers.unavailable", "; ".join(f"{xml_text(e.get('name'))}: {xml_text(e.get('reason'))}"
                                                 for e in gone))
    downgraded = [r for r in results.get("rules") or ()
                  if r.get("kind") == "evidence_complete" and r.get("severity") == "warning"]
    if downgraded:
        prop("incomplete_evidence_blocks", "false")
    model = (results.get("provenance") or {}).get("model") or {}
    for key in ("name", "version", "sha256"):
        if model.get(key) is not None:
            prop(f"model.{key}", model[key])


def build_junit(results: Mapping[str, Any]) -> str:
    """The report.junit.xml document: ``<testsuites>`` holding one ``<testsuite>`` of rule results."""
    rules = results["rules"]
    counts = {s: str(sum(1 for r in rules if r["status"] == s)) for s in ("fail", "error", "not_applicable")}
    prov = results.get("provenance") or {}
    started, finished = _parse_time(prov.get("started")), _parse_time(prov.get("finished"))
    attrs = {"name": f"model-audit.{xml_text(results['name'])}", "tests": str(len(rules)),
             "failures": counts["fail"], "errors": counts["error"]}
    suite = ET.Element("testsuite", {**attrs, "skipped": counts["not_applicable"]})
    if started is not None:
        suite.set("timestamp", started.replace(tzinfo=None).isoformat(timespec="seconds"))
    _properties(suite, results)
    case_total = sum(_case(suite, r) for r in rules)
    total = (finished - started).total_seconds() if started and finished else case_total
    suite.set("time", _fmt_seconds(max(total, 0.0)))
    # <testsuites> carries no skipped count: the Jenkins schema (junit-10.xsd) has none there
    root = ET.Element("testsuites", {**attrs, "name": "model-audit", "time": suite.get("time", "0")})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


class JunitOutput(OutputFormat):
    name = "junit"
    title = "JUnit XML (one test case per rule result)"
    files: ClassVar = {"junit": "report.junit.xml"}
    parsers: ClassVar = {"report.junit.xml": ET.parse}

    def write(self, report: Report, folder: Path) -> None:
        (folder / "report.junit.xml").write_text(build_junit(report.results), encoding="utf-8")
