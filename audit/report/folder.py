"""Output-folder policy: which folder a report may be written to, and what it may replace.

The rule (checked before the audit runs and again right before the finished report is moved into place):

1. ``--out`` (symlinks resolved) may not be, nor contain, any input: the config file and its folder, the
   manifest and its folder (the data folder), the image folder, the model files (weights, TorchScript, pickle),
   the rule pack file, the prediction cache folder, the baseline report, nor the current working directory.
   This holds even when the folder is empty or looks like a report.
2. ``--out`` may not lie inside an ``image_folder`` data set: every sub-folder there is read as a class, so a
   report would change what the next audit lists. A new folder inside a manifest's folder is allowed: a manifest
   lists its images by path, so the report cannot change the data set (the manifest's folder itself stays refused).
3. What exists at ``--out`` is replaced only when it is an empty folder or an earlier report of this tool: a
   ``manifest.json`` as written by ``write_manifest`` (keys algorithm, files, document_id; only report file names)
   whose file list is exactly the regular files in the folder. No sub-folders, symlinks or other files; the only
   extra entries tolerated (and deleted with the report) are the desktop metadata files ``.DS_Store`` and
   ``Thumbs.db``. Any other hidden file (``.git``, ``.env``, …) makes the folder foreign.

Anything else is refused with a ``RenderError`` (exit code 2) naming the folder and what is in it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import AuditConfig
from ..errors import AuditError, RenderError
from ..rules.pack import find_pack
from .writers import report_files

MANIFEST = "manifest.json"
#: desktop metadata a file browser drops into any folder it shows; deleted with an earlier report
OS_JUNK = frozenset({".DS_Store", "Thumbs.db"})
_MAX_MANIFEST_BYTES = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHOOSE = "choose another --out"


@dataclass(frozen=True)
class Protected:
    """Inputs a report may never replace (``inputs``: resolved path, what it is), and folders a report may not
    be written into (``no_inside``: an image_folder data set, whose sub-folders are read as classes)."""

    inputs: tuple[tuple[Path, str], ...]
    no_inside: tuple[tuple[Path, str], ...] = ()


def _variants(p: Path) -> list[Path]:
    """``p`` absolute with symlinks resolved, plus the link itself (in its resolved folder) when it is one."""
    p = Path(os.path.abspath(p))
    return list(dict.fromkeys([p.resolve(), p.parent.resolve() / p.name]))


def protected_paths(cfg: AuditConfig, extra: Iterable[tuple[Path, str]] = ()) -> Protected:
    """The inputs of the audit ``cfg`` describes (plus ``extra``, e.g. a baseline report) and the working
    directory. A rule pack that cannot be found is left out: the audit refuses it before anything is written."""
    named: list[tuple[Path, str]] = []
    if cfg.data.manifest is not None:
        manifest = cfg.resolve(cfg.data.manifest)
        named += [(manifest.parent, "the data folder (the manifest's folder)"), (manifest, "the manifest")]
    if cfg.data.image_folder is not None:
        named.append((cfg.resolve(cfg.data.image_folder), "the data folder (the image folder)"))
    named.append((cfg.base_dir, "the config file's folder"))
    if cfg.source and not cfg.source.startswith("<"):
        named.append((Path(cfg.source), "the config file"))
    for field, what in (("weights", "the model weights"), ("torchscript", "the TorchScript model"),
                        ("pickle", "the pickled model"), ("huggingface", "the Hugging Face model folder")):
        value = getattr(cfg.model, field)
        if value is not None:
            named.append((cfg.resolve(value), what))
    try:
        named.append((find_pack(cfg.rules.pack, cfg.base_dir), "the rule pack"))
    except AuditError:
        pass  # run_audit names the missing pack (exit 2) before any report is written
    if cfg.cache.enabled:
        named.append((cfg.resolve(cfg.cache.dir), "the prediction cache folder"))
    named += list(extra)
    named.append((Path.cwd(), "the current working directory"))
    inputs = tuple((v, what) for p, what in named for v in _variants(p))
    no_inside = ()
    if cfg.data.image_folder is not None:
        no_inside = tuple((v, "the image folder")
                          for v in _variants(cfg.resolve(cfg.data.image_folder)))
    return Protected(inputs, no_inside)


def shown(out_dir: Path) -> str:
    """``out_dir`` as an absolute path, with its target when it is (or passes through) a symlink."""
    plain, real = os.path.abspath(out_dir), out_dir.resolve()
    return plain if Path(plain) == real else f"{plain} (-> {real})"


def check_allowed(out_dir: Path, protected: Protected) -> None:
    """Raise ``RenderError`` unless a report may be written to ``out_dir`` (see the module docstring)."""
    real = out_dir.resolve()
    name = shown(out_dir)
    for p, what in protected.inputs:
        if real == p:
            raise RenderError(f"{name}: refused as the report folder: it is {what}; {_CHOOSE}")
    for p, what in protected.inputs:
        if real in p.parents:
            raise RenderError(f"{name}: refused as the report folder: it holds {what} at {p}; {_CHOOSE}")
    for p, what in protected.no_inside:
        if p in real.parents:
            raise RenderError(f"{name}: refused as the report folder: it lies inside {what} {p} (every sub-folder "
                              f"there is read as a class); {_CHOOSE}")
    if real.is_dir():
        problem = foreign_contents(real)
        if problem is not None:
            raise RenderError(f"{name}: {problem}; {_CHOOSE} or empty it")


def check_writable(out_dir: Path, protected: Protected) -> None:
    """Fail fast, before the audit runs, when no report may or can be written at ``out_dir``: it is or holds an
    input in ``protected`` (see ``protected_paths``), holds something other than an earlier report, or cannot be
    created. Creates nothing."""
    out_dir = Path(os.path.abspath(out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise RenderError(f"{out_dir}: exists and is not a folder (the report is written as a folder)")
    check_allowed(out_dir, protected)
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


def read_manifest(manifest: Path) -> dict[str, Any] | None:
    """A manifest.json as ``write_manifest`` writes it (algorithm sha256, a non-empty map of report file names to
    SHA-256, a document id), or None when it is not one of ours."""
    try:
        if manifest.stat().st_size > _MAX_MANIFEST_BYTES:
            return None
        doc = json.loads(manifest.read_bytes())
    except (OSError, ValueError):  # ValueError: not JSON, not UTF-8
        return None
    if not isinstance(doc, dict) or doc.get("algorithm") != "sha256" or not isinstance(doc.get("document_id"), str):
        return None
    files = doc.get("files")
    if not isinstance(files, dict) or not files:
        return None
    known = report_files()  # every file name an output format of the registry writes
    if not all(n in known and isinstance(h, str) and _SHA256.match(h) for n, h in files.items()):
        return None
    return doc


def _listed_files(manifest: Path) -> set[str] | None:
    """The file names a model-audit manifest.json lists, or None when it is not one of ours."""
    doc = read_manifest(manifest)
    return set(doc["files"]) if doc is not None else None


def scan(folder: Path) -> dict[str, str]:
    """Every entry of ``folder`` (not followed) as "file", "folder" or "link" (a symlink or anything else).
    OSError when it cannot be listed."""
    with os.scandir(folder) as it:
        return {e.name: "file" if e.is_file(follow_symlinks=False) else "folder" if e.is_dir(follow_symlinks=False)
                else "link" for e in it}


def unlisted(entries: dict[str, str], listed: set[str]) -> set[str]:
    """The entries of a report folder that its manifest does not account for (desktop metadata files are)."""
    return set(entries) - listed - {MANIFEST} - {n for n in OS_JUNK if entries.get(n) == "file"}


def _sample(names: Iterable[str], n: int = 3) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (", …" if len(names) > n else "")


def foreign_contents(folder: Path) -> str | None:
    """None when ``folder`` is empty or an earlier report that may be replaced; else what makes it foreign."""
    try:
        entries = scan(folder)
    except OSError as e:
        return f"cannot list the folder to check it is safe to replace ({e.strerror or e})"
    if not entries:
        return None
    files = {n for n, kind in entries.items() if kind == "file"}
    listed = _listed_files(folder / MANIFEST) if MANIFEST in files else None
    if listed is None:
        kinds = list(entries.values())
        counts = [(kinds.count("file"), "file"), (kinds.count("folder"), "folder"), (kinds.count("link"), "link")]
        held = " and ".join(f"{k} {word}{'s' * (k != 1)}" for k, word in counts if k)
        return f"not empty and not a model-audit report (holds {held}, e.g. {_sample(entries)})"
    extra = unlisted(entries, listed)
    missing = listed - files
    if not extra and not missing:
        return None
    parts = ([f"not listed: {_sample(extra)}"] if extra else []) + ([f"missing: {_sample(missing)}"] if missing else [])
    return f"not a model-audit report: its manifest.json does not match the folder ({'; '.join(parts)})"
