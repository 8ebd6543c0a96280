"""`audit verify`: recompute the report manifest and list every file that changed or went missing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import DataError


def verify_report(folder: Path) -> list[str]:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise DataError(f"{manifest}: no manifest.json in the report folder")
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        files = doc["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{manifest}: not a model-audit manifest: {e}") from None
    problems = []
    for name, expected in sorted(files.items()):
        p = folder / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif hashlib.sha256(p.read_bytes()).hexdigest() != expected:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems
