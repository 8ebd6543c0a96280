"""Output-format registry: format name -> OutputFormat class. A new format is one module (its writer, files and
parse checks on one class) plus one line here, or an entry point in the group ``model_audit.outputs``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ...errors import ConfigError
from ...plugins import Registry
from .annex_iv import AnnexIvOutput
from .base import OutputFormat, Report
from .junit import JunitOutput
from .maps_npz import MapsOutput
from .model_card import ModelCardOutput
from .render import HtmlOutput, PdfOutput
from .results_json import JsonOutput
from .summary import SummaryOutput
from .timings_json import TimingsOutput

#: in writing order: maps.npz first (results.json names it), results.json before what is built from it
_BUILTIN: tuple[type[OutputFormat], ...] = (
    MapsOutput, JsonOutput, TimingsOutput, SummaryOutput, JunitOutput, ModelCardOutput, AnnexIvOutput, HtmlOutput,
    PdfOutput,
)

ENTRY_POINT_GROUP = "model_audit.outputs"
OUTPUTS: Registry[type[OutputFormat]] = Registry(_BUILTIN, ENTRY_POINT_GROUP, "name", "report.formats", "output format")


def registry() -> dict[str, type[OutputFormat]]:
    """Built-in output formats plus those third parties expose through the entry-point group."""
    return OUTPUTS.all()


def check_formats(names: Iterable[str]) -> None:
    """ConfigError naming ``report.formats`` for a name no selectable format has."""
    known = {n: cls for n, cls in registry().items() if cls.selectable}
    for name in names:
        if name not in known:
            raise ConfigError(f"report.formats: unknown output format {name!r}; known: {', '.join(sorted(known))}")


def report_files() -> frozenset[str]:
    """Every file name a format may write (what manifest.json may list)."""
    return frozenset(f for cls in registry().values() for f in cls.files.values())


def parsers() -> dict[str, Callable[[Path], object]]:
    """File name -> the check that the written file parses."""
    return {f: parse for cls in registry().values() for f, parse in cls.parsers.items()}


__all__ = ["OutputFormat", "Report", "check_formats", "parsers", "registry", "report_files"]
