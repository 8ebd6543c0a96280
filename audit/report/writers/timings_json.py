"""timings.json: where the audit's time went (``audit.timing``): wall and CPU seconds, model passes, images and
model seconds per stage, per rule and per explainer. Kept out of results.json, which the same inputs and seed
reproduce (timings differ from run to run); manifest.json lists and hashes it like every report file, and its
``document_id`` names the results.json of the same run. Layout: ``timings_version``, ``document_id``, ``started``,
``finished``, ``counted`` (how passes were counted), ``total``, then lists ``stages``, ``rules``, ``explainers`` of
spans (``audit.timing.Span.as_json``: kind, name, wall_s, cpu_s, passes, images, model_s, other_s, stage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from ...result import AuditResult
from ...timing import TIMINGS_FILE
from .base import OutputFormat, Report

TIMINGS_VERSION = "1.0"


def check_timings(p: Path) -> None:
    doc = json.loads(p.read_bytes())
    if not isinstance(doc, dict) or not {"total", "stages", "rules", "explainers"} <= doc.keys():
        raise ValueError("not a timings document (total, stages, rules, explainers)")


class TimingsOutput(OutputFormat):
    """Written with every report of an audit that ran here (an AuditResult with timings)."""

    name = "timings"
    title = "timings.json (seconds and model passes per stage; differs from run to run)"
    files: ClassVar = {"timings": TIMINGS_FILE}
    parsers: ClassVar = {TIMINGS_FILE: check_timings}
    selectable = False

    def wanted(self, result: AuditResult, formats: Sequence[str]) -> bool:
        return result.timings is not None

    def write(self, report: Report, folder: Path) -> None:
        t = report.result.timings
        assert t is not None
        doc = {"timings_version": TIMINGS_VERSION, "document_id": report.document_id,
               "started": report.result.provenance.started, "finished": report.result.provenance.finished,
               **t.as_json()}
        (folder / TIMINGS_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
