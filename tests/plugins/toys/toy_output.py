"""A test-only output format: findings.csv, one row per rule result. This module and one line of entry_points.txt
are all it takes."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import ClassVar

from audit.report.writers.base import OutputFormat, Report, utf8_text

HEADER = ["rule", "kind", "status", "value", "threshold"]


def findings_csv(results: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    for r in results["rules"]:
        w.writerow([r["id"], r["kind"], r["status"], "" if r["value"] is None else r["value"],
                    "" if r["threshold"] is None else r["threshold"]])
    return out.getvalue()


def read_findings_csv(p: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(utf8_text(p))))
    if not rows or list(rows[0]) != HEADER:
        raise ValueError(f"not a findings table (header {HEADER})")
    return rows


class FindingsCsv(OutputFormat):
    name = "toy_findings_csv"
    title = "toy: findings.csv"
    files: ClassVar = {"toy_findings_csv": "findings.csv"}
    parsers: ClassVar = {"findings.csv": read_findings_csv}

    def write(self, report: Report, folder: Path) -> None:
        (folder / "findings.csv").write_text(findings_csv(report.results), encoding="utf-8")
