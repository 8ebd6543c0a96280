"""Write every report file into a temporary folder and move it into place only when all succeeded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..errors import RenderError
from ..maps.store import MAPS_FILE, save_maps
from ..result import AuditResult
from .context import build_context
from .junit import build_junit
from .render import render_html, render_pdf
from .results import build_results, dumps
from .summary import build_summary

MANIFEST = "manifest.json"


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def write_manifest(folder: Path, names: Iterable[str]) -> dict:
    """SHA-256 of every report file; the document id printed on every PDF page is the short hash of
    results.json (the manifest cannot hash the PDF that prints its own hash)."""
    files = {n: _sha256(folder / n) for n in sorted(names)}
    doc_id = files.get("results.json", "")[:12]
    manifest = {"algorithm": "sha256", "files": files, "document_id": doc_id}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def check_output_dir(out_dir: Path) -> None:
    """Fail fast, before the audit runs, when no report can be written at ``out_dir``. Creates nothing."""
    out_dir = out_dir.resolve()
    anc = out_dir.parent
    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise RenderError(f"{out_dir}: exists and is not a folder (the report is written as a folder)")
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        if not anc.is_dir():
            raise RenderError(f"{out_dir}: cannot create the output folder: {anc} is a file, not a folder")
        os.rmdir(tempfile.mkdtemp(prefix=f".{out_dir.name}.probe-", dir=anc))
    except OSError as e:
        raise RenderError(
            f"{out_dir}: cannot create the output folder: {anc} is not writable ({e.strerror or e})"
        ) from None


def write_outputs(result: AuditResult, out_dir: Path, formats: Iterable[str]) -> dict[str, Path]:
    """Write the requested formats (json, html, pdf, junit) plus summary.md and manifest.json."""
    formats = list(dict.fromkeys(formats))
    out_dir = out_dir.resolve()
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=parent))
    except OSError as e:
        raise RenderError(f"{out_dir}: cannot create the output folder: {e.strerror or e}") from None
    written: dict[str, str] = {}
    try:
        kept = result.explanations.kept
        if result.config.report.save_maps and kept:
            save_maps(tmp / MAPS_FILE, kept)
            written["maps"] = MAPS_FILE
        results = build_results(result, maps_file=written.get("maps"))
        results_text = dumps(results)
        (tmp / "results.json").write_text(results_text, encoding="utf-8")
        document_id = hashlib.sha256(results_text.encode("utf-8")).hexdigest()[:12]
        written["json"] = "results.json"
        (tmp / "summary.md").write_text(build_summary(results, result.task.headline(result.metrics)), encoding="utf-8")
        written["summary"] = "summary.md"
        if "junit" in formats:
            (tmp / "report.junit.xml").write_text(build_junit(results), encoding="utf-8")
            written["junit"] = "report.junit.xml"
        if "html" in formats or "pdf" in formats:
            html = render_html(build_context(result, document_id))
            if "html" in formats:
                (tmp / "report.html").write_text(html, encoding="utf-8")
                written["html"] = "report.html"
            if "pdf" in formats:
                render_pdf(html, tmp / "report.pdf", result.config.report.pdf_variant)
                written["pdf"] = "report.pdf"
        write_manifest(tmp, written.values())
        written["manifest"] = MANIFEST
        _replace_dir(tmp, out_dir)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RenderError(f"{out_dir}: cannot write the report: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {k: out_dir / v for k, v in written.items()}


def _replace_dir(src: Path, dst: Path) -> None:
    """Swap ``src`` into ``dst``; an earlier report at ``dst`` is replaced only after src is complete."""
    old = None
    if dst.exists():
        if not dst.is_dir():
            raise RenderError(f"{dst}: exists and is not a folder")
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except BaseException:
        if old is not None:  # put the earlier report back: a failed run must not lose it
            os.replace(old, dst)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
