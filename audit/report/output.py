"""Write every report file into a temporary folder, check each one parses, and move the folder into place only
when all succeeded and the output-folder policy (``outdir.py``) allows replacing what is there. The temporary
folder is marked as this run's (``partial.py``); the next run for the same ``--out`` removes those a killed run
left."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..errors import RenderError
from ..maps.store import MAPS_FILE, save_maps
from ..result import AuditResult
from ..signals import sigterm_held
from . import partial
from .annex_iv import build_annex_iv
from .context import build_context
from .junit import build_junit
from .model_card import build_model_card
from .outdir import MANIFEST, Protected, check_out_dir, foreign_contents, protected_paths
from .render import render_html, render_pdf
from .results import build_results, dumps
from .summary import build_summary

log = logging.getLogger(__name__)


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


def check_output_dir(out_dir: Path, protected: Protected) -> None:
    """Fail fast, before the audit runs, when no report may or can be written at ``out_dir``: it is or holds an
    input in ``protected`` (see ``outdir.protected_paths``), holds something other than an earlier report, or
    cannot be created. Creates nothing."""
    out_dir = Path(os.path.abspath(out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise RenderError(f"{out_dir}: exists and is not a folder (the report is written as a folder)")
    check_out_dir(out_dir, protected)
    out_dir = out_dir.resolve()
    anc = out_dir.parent
    try:
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        if not anc.is_dir():
            raise RenderError(f"{out_dir}: cannot create the output folder: {anc} is a file, not a folder")
        os.rmdir(tempfile.mkdtemp(prefix=f".{out_dir.name}.probe-", dir=anc))
    except OSError as e:
        raise RenderError(
            f"{out_dir}: cannot create the output folder: {anc} is not writable ({e.strerror or e})"
        ) from None


def _utf8(p: Path) -> str:
    return p.read_bytes().decode("utf-8")


def _check_html(p: Path) -> None:
    if "</html>" not in _utf8(p):
        raise ValueError("no closing </html>")


def _check_pdf(p: Path) -> None:
    with p.open("rb") as fh:
        head = fh.read(5)
        fh.seek(max(0, p.stat().st_size - 1024))
        tail = fh.read()
    if head != b"%PDF-" or not tail.rstrip().endswith(b"%%EOF"):
        raise ValueError("does not start with %PDF- and end with %%EOF")


def _check_front_matter_md(p: Path) -> None:
    text = _utf8(p)
    if not text.startswith("---\n") or "\n---\n" not in text[4:] or "\n# " not in text:
        raise ValueError("no YAML front matter or no title")


def _check_heading_md(p: Path) -> None:
    if not _utf8(p).startswith("# "):
        raise ValueError("does not start with a '# ' title")


def _check_npz(p: Path) -> None:
    with p.open("rb") as fh:
        if fh.read(2) != b"PK":
            raise ValueError("not an .npz (zip) archive")
    with np.load(p, allow_pickle=False) as z:
        if not list(z.keys()):
            raise ValueError("holds no arrays")


#: a cheap "does it parse" check per report file; manifest.json lists a file only after its check passed
PARSES: dict[str, Callable[[Path], object]] = {
    "results.json": lambda p: json.loads(p.read_bytes()),
    "summary.md": _utf8,
    "report.junit.xml": ET.parse,
    "report.html": _check_html,
    "report.pdf": _check_pdf,
    MAPS_FILE: _check_npz,
    "model_card.md": _check_front_matter_md,
    "model_card.json": lambda p: json.loads(p.read_bytes()),
    "annex_iv.md": _check_heading_md,
    "annex_iv.json": lambda p: json.loads(p.read_bytes()),
}


def check_parses(folder: Path, names: Iterable[str], out_dir: Path) -> None:
    """Raise ``RenderError`` naming the first file in ``folder`` (the report for ``out_dir``) that does not
    parse."""
    for name in names:
        try:
            PARSES[name](folder / name)
        except (ValueError, ET.ParseError, zipfile.BadZipFile, EOFError) as e:  # ValueError: JSON, UTF-8
            raise RenderError(f"{out_dir}: cannot write the report: {name} does not parse "
                              f"({type(e).__name__}: {e}); no report was written") from None


def write_outputs(result: AuditResult, out_dir: Path, formats: Iterable[str],
                  protected: Protected | None = None) -> dict[str, Path]:
    """Write the requested formats (json, html, pdf, junit, model_card, annex_iv) plus summary.md and manifest.json. ``protected``
    (default: the inputs of ``result.config``) is checked again right before the report is moved into place."""
    formats = list(dict.fromkeys(formats))
    if protected is None:
        protected = protected_paths(result.config)
    check_out_dir(out_dir, protected)
    out_dir = out_dir.resolve()
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for gone in partial.sweep(parent, out_dir.name):  # what runs killed before they could clean up left
            log.info("removed %s, left by a run that has ended", gone)
        tmp = partial.create(parent, out_dir.name)
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
        results_sha256 = hashlib.sha256(results_text.encode("utf-8")).hexdigest()
        for fmt, build in (("model_card", build_model_card), ("annex_iv", build_annex_iv)):
            if fmt in formats:
                md, js = build(results, result.config.model_card, results_sha256)
                (tmp / f"{fmt}.md").write_text(md, encoding="utf-8")
                (tmp / f"{fmt}.json").write_text(js, encoding="utf-8")
                written[fmt] = f"{fmt}.md"
                written[f"{fmt}_json"] = f"{fmt}.json"
        if "html" in formats or "pdf" in formats:
            context = build_context(result, document_id, formats)
            if "html" in formats:
                (tmp / "report.html").write_text(render_html(context, mode="html"), encoding="utf-8")
                written["html"] = "report.html"
            if "pdf" in formats:
                render_pdf(render_html(context, mode="pdf"), tmp / "report.pdf", result.config.report.pdf_variant)
                written["pdf"] = "report.pdf"
        check_parses(tmp, written.values(), out_dir)
        write_manifest(tmp, written.values())
        written["manifest"] = MANIFEST
        partial.unmark(tmp)
        check_out_dir(out_dir, protected)  # the folder may have changed during a long audit
        _replace_dir(tmp, out_dir)
        tmp = out_dir  # moved into place: a failure from here on must not remove it
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RenderError(f"{out_dir}: cannot write the report: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    mlflow = result.config.report.mlflow
    if mlflow is not None:  # after the report is in place: the run's artifacts are the finished folder
        from .mlflow_log import log_run

        source = Path(result.config.source) if result.config.source else None
        run_id, uri = log_run(mlflow, results, out_dir, document_id, result.config.to_jsonable(), source,
                              Path(result.config.base_dir))
        print(f"mlflow: logged run {run_id} in experiment '{mlflow.experiment}' at {uri}", file=sys.stderr)
    return {k: out_dir / v for k, v in written.items()}


def _replace_dir(src: Path, dst: Path) -> None:
    """Swap ``src`` into ``dst``; an earlier report at ``dst`` is replaced only after src is complete, and only
    when, once moved aside, it still is an empty folder or an earlier report (``outdir.foreign_contents``; closes
    the gap after the caller's check). SIGTERM is held across the swap: one that arrives before the commit puts
    the earlier report back and raises."""
    with sigterm_held() as hold:
        old = None
        if dst.exists():
            if not dst.is_dir():
                raise RenderError(f"{dst}: exists and is not a folder")
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.replace(dst, old)
        try:
            problem = foreign_contents(old) if old is not None else None
            if problem is not None:
                raise RenderError(f"{dst}: {problem}; choose another --out or empty it")
            hold.check()
            os.replace(src, dst)
        except BaseException:
            if old is not None:  # put the earlier report back: a failed run must not lose it
                os.replace(old, dst)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
