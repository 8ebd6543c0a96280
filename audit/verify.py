"""`audit verify DIR`: prove that a report folder is exactly what the audit wrote.

1. ``manifest.json`` is a model-audit manifest (``outdir.read_manifest``: algorithm sha256, report file names only,
   a document id).
2. The folder holds exactly the files it lists plus manifest.json: an added file, folder or link fails, naming
   it, as does a missing one (the desktop metadata ``.DS_Store`` / ``Thumbs.db`` are tolerated, as by the
   output-folder policy, ``report/outdir.py``).
3. Every listed file's SHA-256 is the manifest's.
4. The document id is recomputed from results.json (the first 12 hex digits of its SHA-256, as ``write_manifest``
   makes it) and must be the manifest's, the one report.html prints, and the results.json hash that the model card
   and Annex IV exports quote. (report.pdf prints it too; a PDF's text is not read here: its hash is checked.)

A folder that fails any check does not verify (exit 1); a folder without manifest.json is not a report (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DataError
from .report.folder import MANIFEST, read_manifest, scan, unlisted

RESULTS = "results.json"
#: report files that quote results.json's SHA-256: in an evidence row ``{"item": "results.json", "sha256": …}``
#: (annex_iv.json) or in words, "results.json SHA-256 <hex>" (model_card.json's documentation, which the Model Card
#: Toolkit schema allows no key of ours for)
QUOTES_RESULTS_HASH = ("model_card.json", "annex_iv.json")
_QUOTED = re.compile(r"results\.json SHA-256 ([0-9a-f]{64})")


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _quoted_hashes(doc: Any) -> Iterator[str]:
    """Every SHA-256 a JSON export quotes for results.json."""
    if isinstance(doc, dict):
        if doc.get("item") == RESULTS and isinstance(doc.get("sha256"), str):
            yield doc["sha256"]
        for v in doc.values():
            yield from _quoted_hashes(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _quoted_hashes(v)
    elif isinstance(doc, str):
        yield from _QUOTED.findall(doc)


def _document_id(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems with the document id (check 4)."""
    if RESULTS not in manifest["files"]:
        return [f"{RESULTS}: not listed in the manifest, so the document id cannot be recomputed"]
    if not (folder / RESULTS).is_file():
        return []  # named as missing already
    digest = _sha256(folder / RESULTS)
    doc_id = digest[:12]
    problems = []
    if manifest["document_id"] != doc_id:
        problems.append(f"{MANIFEST}: document id {manifest['document_id']!r} is not {doc_id!r}, the one "
                        f"recomputed from {RESULTS}")
    html = folder / "report.html"
    if "report.html" in manifest["files"] and html.is_file() \
            and f"Document {doc_id}" not in html.read_bytes().decode("utf-8", errors="replace"):
        problems.append(f"report.html: does not print document id {doc_id} (recomputed from {RESULTS})")
    for name in QUOTES_RESULTS_HASH:
        p = folder / name
        if name not in manifest["files"] or not p.is_file():
            continue
        try:
            quoted = set(_quoted_hashes(json.loads(p.read_bytes())))
        except ValueError:
            problems.append(f"{name}: not JSON")
            continue
        if quoted != {digest}:
            problems.append(f"{name}: quotes {RESULTS} SHA-256 {', '.join(sorted(quoted)) or 'nowhere'}, not {digest}")
    return problems


def verify_report(folder: Path) -> list[str]:
    """Every reason the report folder ``folder`` does not verify (empty when it does). DataError when it is not a
    report folder (missing, not a folder, no manifest.json)."""
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (give the report folder that holds {MANIFEST})")
    if not manifest_path.is_file():
        raise DataError(f"{manifest_path}: no {MANIFEST} in the folder: not a model-audit report folder")
    manifest = read_manifest(manifest_path)
    if manifest is None:
        return [(f"{MANIFEST}: not a model-audit manifest (algorithm sha256, report file names with their SHA-256 "
                 "and a document id)")]
    try:
        entries = scan(folder)
    except OSError as e:
        raise DataError(f"{folder}: cannot list the folder ({e.strerror or e})") from None
    listed = set(manifest["files"])
    problems = []
    for name in sorted(unlisted(entries, listed)):
        problems.append(f"{name}: {entries[name]} not listed in the manifest (added after the report was written)")
    for name, expected in sorted(manifest["files"].items()):
        kind = entries.get(name)
        if kind is None:
            problems.append(f"{name}: missing (listed in the manifest)")
        elif kind != "file":
            problems.append(f"{name}: a {kind}, not the regular file the manifest lists")
        elif _sha256(folder / name) != expected:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems + _document_id(folder, manifest)
