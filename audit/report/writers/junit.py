"""JUnit XML: one test case per rule result, so CI systems show rule failures like test failures.

Outcomes (one per rule result):

- ``fail`` → ``<failure type="RuleFailed">``, ``error`` → ``<error type="RuleError">``;
- ``warn`` → ``<skipped message="warning: …">`` plus the details in ``<system-out>``. A warning-severity rule
  must not fail the CI test report (a ``<failure>`` turns Jenkins builds UNSTABLE, shows as a failed test in
  GitLab's merge-request widget and fails GitHub check runs such as mikepenz/action-junit-report or
  dorny/test-reporter), yet a plain pass would hide it. ``skipped`` is the only other outcome every reporter
  knows: Jenkins, GitLab and the GitHub reporters count and show it apart (yellow / grey, "skipped"), never
  as a failure, and show its ``message``, whose ``warning:`` prefix says why it is there;
- ``pass`` → a bare test case with the details in ``<system-out>``.

The suite's properties hold the verdict, the blocking rules, the model, the explainers listed in the config that
produced no maps (``explainers.unavailable``: "name: reason; …") and, when the pack downgrades the completeness
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

from ..criteria import comparison
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
    """"probability drop 0.276 > 0.200 (probability, 0–1)" when the result names its criterion, else ""."""
    crit, v, t = r.get("criterion"), r.get("value"), r.get("threshold")
    numbers = all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in (v, t))
    if not (isinstance(crit, Mapping) and crit.get("name") and numbers):
        return ""
    c = {k: str(crit.get(k) or "") for k in ("name", "unit", "direction")}
    return xml_text(comparison(c, v, t) + (f" ({c['unit']})" if c["unit"] else "")) + "\n"


def _case_text(r: Mapping[str, Any]) -> str:
    text = (f"{_criterion(r)}value={xml_text(r.get('value'))} threshold={xml_text(r.get('threshold'))} "
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
    status, message, text = r["status"], xml_text(r.get("message")), _case_text(r)
    if status == "fail":
        ET.SubElement(case, "failure", message=message, type="RuleFailed").text = text
    elif status == "error":
        ET.SubElement(case, "error", message=message, type="RuleError").text = text
    else:
        if status == "warn":
            ET.SubElement(case, "skipped", message=f"warning: {message}")
        ET.SubElement(case, "system-out").text = f"{xml_text(status).upper()}: {text}"
    return seconds


def _properties(suite: ET.Element, results: Mapping[str, Any]) -> None:
    props = ET.SubElement(suite, "properties")

    def prop(name: str, value: Any) -> None:
        ET.SubElement(props, "property", name=name, value=xml_text(value))

    prop("verdict", results["verdict"])
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
    counts = {s: str(sum(1 for r in rules if r["status"] == s)) for s in ("fail", "error", "warn")}
    prov = results.get("provenance") or {}
    started, finished = _parse_time(prov.get("started")), _parse_time(prov.get("finished"))
    attrs = {"name": f"model-audit.{xml_text(results['name'])}", "tests": str(len(rules)),
             "failures": counts["fail"], "errors": counts["error"], "skipped": counts["warn"]}
    suite = ET.Element("testsuite", attrs)
    if started is not None:
        suite.set("timestamp", started.replace(tzinfo=None).isoformat(timespec="seconds"))
    _properties(suite, results)
    case_total = sum(_case(suite, r) for r in rules)
    total = (finished - started).total_seconds() if started and finished else case_total
    suite.set("time", _fmt_seconds(max(total, 0.0)))
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
