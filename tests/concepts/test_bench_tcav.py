"""Smoke test of bench/tcav.py: TCAV's runtime per concept and layer, and its ratio to the forward and
forward+backward passes it needs, are measured and reported (no timing assertion: a CI machine's numbers mean
nothing)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def test_bench_reports_time_per_concept_and_layer_and_the_ratio_to_the_passes(tmp_path):
    path, modules = list(sys.path), set(sys.modules)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = importlib.util.spec_from_file_location("bench_tcav", ROOT / "bench" / "tcav.py")
        assert spec is not None and spec.loader is not None
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        out = tmp_path / "tcav.json"
        report = bench.run([bench.TINY], quick=True, reps=1, out=out, runs=3, set_size=8, n_inputs=8, verbose=False)
    finally:
        torch.set_num_threads(threads)
        sys.path[:] = path
        for name in set(sys.modules) - modules:  # bench modules have plain names (harness, workloads)
            file = getattr(sys.modules[name], "__file__", None)
            if file and Path(file).resolve().parent == ROOT / "bench":
                del sys.modules[name]
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    rows = report["stages"]["tcav"]
    assert [(r["variant"].split(",")[0]) for r in rows] == ["TCAV 1 concept(s) x 1 layer(s)",
                                                           "TCAV 1 concept(s) x 3 layer(s)"]
    for r in rows:
        assert r["ratio_to_passes"] > 0 and r["seconds_per_concept_layer"] > 0 and r["passes_seconds"] > 0
        assert r["forward_images"] == 8 + 3 * 8 and r["forward_backward_images"] == 8
        assert r["speed_vs_reference"] > 0
