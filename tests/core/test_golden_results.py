"""A refactor must not change what an audit says: one audit of the tiny set with committed weights, compared field
by field with tests/golden/tiny-results.json (regenerate it with tests/golden/regenerate.py only when a change of
results is intended, and review the diff)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import load_file
from typer.testing import CliRunner

from audit.cli import app
from audit.demo.model import DemoCNN

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
WEIGHTS = GOLDEN / "tiny.safetensors"
VOLATILE = {"started", "finished", "versions", "git"}  # provenance fields that differ from run to run


def golden_run(tmp: Path, write_setup: Callable[..., Any]) -> dict[str, Any]:
    """The golden audit: the tiny set (``write_setup`` of tests/conftest.py), the committed weights, the demo pack,
    four explainers, no cache."""
    model = DemoCNN(num_classes=3, width=4)
    model.load_state_dict(load_file(str(WEIGHTS)))
    setup = write_setup(tmp / "tiny", model.eval(), pack="demo")
    out = tmp / "report"
    res = CliRunner().invoke(app, [
        "run", str(setup.config), "--out", str(out), "--set", "cache.enabled=false",
        "--set", 'explainers.methods=["gradcam","saliency","integrated_gradients","occlusion"]',
        "--set", 'report.formats=["json"]'], catch_exceptions=False)
    assert res.exit_code in (0, 1), res.output
    return json.loads((out / "results.json").read_text())


def normalise(doc: Any, root: str | None = None) -> Any:
    """Drop run-dependent provenance and replace the temporary folder in paths by '<tmp>'."""
    if root is None:
        root = str(Path(doc["provenance"]["data"]["source"]).parents[1])
        doc = json.loads(json.dumps(doc))
        for k in VOLATILE:
            doc["provenance"].pop(k, None)
    if isinstance(doc, dict):
        return {k: normalise(v, root) for k, v in doc.items()}
    if isinstance(doc, list):
        return [normalise(v, root) for v in doc]
    if isinstance(doc, str):
        return doc.replace(root, "<tmp>").replace(str(REPO), "<repo>")
    return doc


def _diff(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in golden" for k in a.keys() - b.keys()]
        out += [f"{where}.{k}: only in this run" for k in b.keys() - a.keys()]
        if list(a.keys() & b.keys()) and [k for k in a if k in b] != [k for k in b if k in a]:
            out.append(f"{where}: key order differs")
        for k in a.keys() & b.keys():
            out += _diff(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        # the golden file was made on another machine: allow last-digit float noise, nothing more
        return [] if math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) else [f"{where}: {a} != {b}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def test_results_match_the_golden_audit(tmp_path, make_setup):
    golden = json.loads((GOLDEN / "tiny-results.json").read_text(encoding="utf-8"))
    got = normalise(golden_run(tmp_path, make_setup))
    problems = _diff(golden, got)
    assert not problems, "results.json differs from the golden audit:\n" + "\n".join(problems[:30])
