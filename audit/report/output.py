"""Write every report file into a temporary folder (one writer per output format of the registry,
``writers/``), check each one parses, and move the folder into place only when all succeeded and the
output-folder policy (``folder.py``) allows replacing what is there. The temporary folder is marked as this run's
(``partial.py``); the next run for the same ``--out`` removes those a killed run left."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable
from pathlib import Path

from ..errors import RenderError
from ..result import AuditResult
from ..signals import sigterm_held
from . import partial
from .folder import MANIFEST, Protected, check_allowed, foreign_contents, protected_paths
from .mlflow_log import log_run
from .writers import Report, check_formats, parsers, registry
from .writers.results_json import build_results, dumps

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


#: what a parse check raises for a file that does not parse (ValueError: JSON, UTF-8, a format's own check)
PARSE_ERRORS = (ValueError, ET.ParseError, zipfile.BadZipFile, EOFError)


def check_parses(folder: Path, names: Iterable[str], out_dir: Path) -> None:
    """Raise ``RenderError`` naming the first file in ``folder`` (the report for ``out_dir``) that does not
    parse (each format states how its files are read back: ``OutputFormat.parsers``)."""
    parse = parsers()
    for name in names:
        try:
            parse[name](folder / name)
        except PARSE_ERRORS as e:
            raise RenderError(f"{out_dir}: cannot write the report: {name} does not parse "
                              f"({type(e).__name__}: {e}); no report was written") from None


def write_outputs(result: AuditResult, out_dir: Path, formats: Iterable[str],
                  protected: Protected | None = None) -> dict[str, Path]:
    """Write every output format the registry holds that ``formats`` asks for (json, html, pdf, junit, model_card,
    annex_iv, or a plugin's) plus those always written (summary.md, maps.npz when kept), then manifest.json.
    ``protected`` (default: the inputs of ``result.config``) is checked again right before the report is moved
    into place."""
    formats = tuple(dict.fromkeys(formats))
    check_formats(formats)
    if protected is None:
        protected = protected_paths(result.config)
    check_allowed(out_dir, protected)
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
        chosen = [cls() for cls in registry().values()]
        chosen = [fmt for fmt in chosen if fmt.wanted(result, formats)]
        files = {key: name for fmt in chosen for key, name in fmt.files.items()}
        results = build_results(result, maps_file=files.get("maps"))
        report = Report(result, formats, results, dumps(results))
        for fmt in chosen:
            fmt.write(report, tmp)
            written.update(fmt.files)
        check_parses(tmp, written.values(), out_dir)
        write_manifest(tmp, written.values())
        written["manifest"] = MANIFEST
        partial.unmark(tmp)
        check_allowed(out_dir, protected)  # the folder may have changed during a long audit
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
        source = Path(result.config.source) if result.config.source else None
        run_id, uri = log_run(mlflow, report.results, out_dir, report.document_id, result.config.to_jsonable(),
                              source, Path(result.config.base_dir))
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
