"""JUnit XML: one test case per rule result, so CI systems show rule failures like test failures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any


def build_junit(results: Mapping[str, Any]) -> str:
    rules = results["rules"]
    failures = sum(1 for r in rules if r["status"] == "fail")
    errors = sum(1 for r in rules if r["status"] == "error")
    suite = ET.Element(
        "testsuite", name=f"model-audit.{results['name']}", tests=str(len(rules)), failures=str(failures),
        errors=str(errors), skipped="0",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="verdict", value=str(results["verdict"]))
    ET.SubElement(props, "property", name="schema_version", value=str(results["schema_version"]))
    for r in rules:
        case = ET.SubElement(suite, "testcase", classname=f"rules.{r['kind']}", name=r["id"])
        text = f"value={r['value']} threshold={r['threshold']} severity={r['severity']}\n{r['message']}"
        if r["sample_ids"]:
            text += "\nsamples: " + ", ".join(r["sample_ids"][:20])
        if r["status"] == "fail":
            ET.SubElement(case, "failure", message=r["message"], type="RuleFailed").text = text
        elif r["status"] == "error":
            ET.SubElement(case, "error", message=r["message"], type="RuleError").text = text
        else:
            ET.SubElement(case, "system-out").text = f"{r['status'].upper()}: {text}"
    root = ET.Element("testsuites", tests=str(len(rules)), failures=str(failures), errors=str(errors))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
