"""What an output format is, described once: its name in ``report.formats``, the files it writes, how each file is
read back to check that it parses, and the writer. Every place that lists formats or report files reads them from
the registry (``writers/__init__.py``): ``write_outputs``, the ``report.formats`` check, the output-folder policy's
list of report files, and the parse check before a report is moved into place."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from ...result import AuditResult
from ..context.document import build_context


@dataclass
class Report:
    """What every writer reads: the audit, the formats asked for, results.json (the document and its text as
    written) and, built once on first use, the context the HTML and PDF renderings share."""

    result: AuditResult
    formats: tuple[str, ...]
    results: dict[str, Any]
    results_text: str

    @cached_property
    def results_sha256(self) -> str:
        return hashlib.sha256(self.results_text.encode("utf-8")).hexdigest()

    @property
    def document_id(self) -> str:
        """The short hash of results.json printed on every page of the documents."""
        return self.results_sha256[:12]

    @cached_property
    def context(self) -> dict[str, Any]:
        return build_context(self.result, self.document_id, self.formats)


class OutputFormat(ABC):
    """One output format. ``files``: the key each file has in ``write_outputs``' answer -> its file name;
    ``parsers``: file name -> a function that reads the file back (ValueError, or what ``output.PARSE_ERRORS``
    lists, when it does not parse)."""

    name: ClassVar[str]
    title: ClassVar[str]
    files: ClassVar[Mapping[str, str]]
    parsers: ClassVar[Mapping[str, Callable[[Path], object]]]
    selectable: ClassVar[bool] = True  # report.formats may name it
    always: ClassVar[bool] = False  # written whatever report.formats lists

    def wanted(self, result: AuditResult, formats: Sequence[str]) -> bool:
        return self.always or self.name in formats

    @abstractmethod
    def write(self, report: Report, folder: Path) -> None:
        """Write this format's files into ``folder`` (the report's temporary folder)."""


def utf8_text(p: Path) -> str:
    return p.read_bytes().decode("utf-8")


def json_document(p: Path) -> object:
    return json.loads(p.read_bytes())
