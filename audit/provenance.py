"""Provenance: what exactly was audited, with what, when, and where."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .loading.data import SampleRecord
from .loading.model import sha256_file

PACKAGES = ("model-audit", "torch", "torchvision", "captum", "numpy", "scikit-learn", "pandas", "weasyprint",
            "jinja2", "pydantic")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def data_fingerprint(records: Sequence[SampleRecord], root: Path) -> str:
    """SHA-256 over the sorted list of (image path relative to the data root, image SHA-256, label)."""
    rows = []
    for r in records:
        try:
            rel = r.path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = r.path.resolve().as_posix()
        rows.append(f"{rel}\t{sha256_file(r.path)}\t{r.label}")
    h = hashlib.sha256()
    for line in sorted(rows):
        h.update(line.encode("utf-8") + b"\n")
    return h.hexdigest()


def git_state(folder: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the git work tree holding ``folder``, or None outside one."""
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=False)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=30, check=False)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None
