"""Regenerate the golden audit of tests/core/test_golden_results.py — only when a change of results is intended.

    .venv/bin/python tests/golden/regenerate.py

Writes tests/golden/tiny.safetensors (the tiny CNN of tests/conftest.py, trained once) when missing, and
tests/golden/tiny-results.json (the normalised results.json of one audit of the tiny set with that model).
Review `git diff tests/golden` before committing: every changed number should be explained by the change.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))

from conftest import train_tiny, write_setup
from core.test_golden_results import WEIGHTS, golden_run, normalise


def main() -> None:
    if not WEIGHTS.is_file():
        model = train_tiny()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(WEIGHTS))
    with tempfile.TemporaryDirectory() as tmp:
        doc = normalise(golden_run(Path(tmp), write_setup))
    (HERE / "tiny-results.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", HERE / "tiny-results.json")


if __name__ == "__main__":
    main()
