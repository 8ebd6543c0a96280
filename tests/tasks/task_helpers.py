"""Helpers of the segmentation and inspection tests: configs for the examples' models, schema validation."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import jsonschema
from typer.testing import CliRunner, Result

from audit.cli import app
from audit.demo import examples

SCHEMA = json.loads(files("audit").joinpath("schema/results.schema.json").read_text())


def valid(doc: dict) -> list[str]:
    """Schema violations of a results.json document ([] when it validates)."""
    return [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc)]


def _quick(cfg: Path) -> Path:
    """No PDF and no cache unless a test asks for them."""
    cfg.write_text(cfg.read_text().replace('"html", "json", "junit", "pdf"', '"html", "json", "junit"')
                   + "[cache]\nenabled = false\n")
    return cfg


def seg_config(root: Path, context: bool) -> Path:
    """The example's config in ``root`` (which holds the set) for the clean or the context net."""
    return _quick(examples.segmentation_model(root, clean=not context))


def parts_config(root: Path, detector: str) -> Path:
    """The example's config in ``root`` for the local-deviation ("local") or the fixture detector."""
    return _quick(examples.inspection_model(root, clean=detector == "local"))


def run_audit_cli(cfg: Path, out: Path, *extra: str) -> Result:
    """`audit run CFG --out OUT [extra]` in-process."""
    return CliRunner().invoke(app, ["run", str(cfg), "--out", str(out), *extra])
