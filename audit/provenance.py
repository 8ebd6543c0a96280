"""Provenance: what exactly was audited, with what, when, and where — assembled here and nowhere else."""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .config import AuditConfig
from .datachecks.fingerprint import fingerprint_of
from .datachecks.inspect import fingerprint_line
from .engine.base import Engine
from .engine.sealed import CacheLog
from .inputs import Inputs
from .loading.model import LoadedModel, sha256_file
from .loading.records import SampleRecord
from .version import __version__

PACKAGES = ("model-audit", "torch", "torchvision", "captum", "numpy", "scikit-learn", "pandas", "weasyprint",
            "jinja2", "pydantic")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def data_fingerprint(records: Sequence[SampleRecord], root: Path) -> str:
    """The data fingerprint of a listing computed here at once, reading every image file (the audit gets the same
    value from its model-free pass, ``datachecks.check_data``; ``datachecks.fingerprint`` defines it): LtHash over
    the lines (image path relative to the data root, image SHA-256, label or label set, and the SHA-256 of its
    segmentation or defect mask)."""
    base = str(root.resolve())
    return fingerprint_of([fingerprint_line(r, base) for r in records])


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


@dataclass(frozen=True)
class Provenance:
    """The record of one audit (results.json ``provenance``, the report's provenance table)."""

    tool: dict[str, str]
    model: dict[str, Any]
    data: dict[str, Any]
    rule_pack: dict[str, Any]
    config: dict[str, Any]
    model_card: dict[str, str]
    versions: dict[str, str]
    seed: int
    device: str
    compute: dict[str, object]
    git: dict[str, Any] | None
    started: str
    finished: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def with_cache_notes(prov: dict[str, Any], log: CacheLog) -> dict[str, Any]:
    """Provenance as results.json records it: plus ``cache_notes`` when a cache entry failed its check (or the
    spot check) and was discarded and recomputed (absent otherwise, so cached and fresh runs read the same)."""
    return {**prov, "cache_notes": log.as_json()} if log.notes else prov


def build_provenance(cfg: AuditConfig, inputs: Inputs, loaded: LoadedModel, engine: Engine, images_sha256: str,
                     n_scored: int, n_skipped: int, started: str) -> Provenance:
    heldout, pack = inputs.heldout, inputs.pack
    return Provenance(
        tool={"name": "model-audit", "version": __version__},
        model={
            "source": loaded.source,
            "files": [{"path": str(p), "sha256": sha256_file(p)} for p in loaded.files],
            "sha256": sha256_file(loaded.files[0]) if loaded.files else None,
            "allow_pickle": loaded.pickled,
            "notes": list(loaded.notes),
            "output": loaded.output,
            "task": inputs.task.name,
            "output_kind": cfg.model.output_kind,
            "name": cfg.model.name,
            "version": cfg.model.version,
        },
        data={
            "source": inputs.source,
            "manifest_sha256": sha256_file(heldout.manifest) if heldout.manifest else None,
            "images_sha256": images_sha256,
            "n_listed": len(heldout.records),
            "n_scored": n_scored,
            "n_skipped": n_skipped,
            "n_hidden_skipped": heldout.n_hidden_skipped,
            "notes": [*inputs.notes, *heldout.notes],
        },
        rule_pack={"name": pack.name, "path": str(pack.path), "sha256": sha256_file(pack.path),
                   "extends": [{"path": str(f), "sha256": sha256_file(f)} for f in pack.files[1:]],
                   "automatic": list(pack.automatic)},  # rules every audit adds whatever the pack's files say
        config=cfg.to_jsonable(),
        model_card=cfg.model_card.model_dump(),
        versions=package_versions(),
        seed=cfg.seed,
        device=str(engine.device),
        compute=engine.compute.describe(),
        git=git_state(cfg.base_dir),
        started=started,
        finished=now(),
    )
