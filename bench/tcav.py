"""TCAV cost: seconds per concept and layer, and the ratio to the model passes TCAV cannot avoid, measured in the
same process (interleaved, fastest rep kept: bench/harness.py).

TCAV of k concepts at L layers with N random sets of S images and n class inputs needs one forward pass over the
concept and random images (activations of every layer, the pass stops after the last tested layer) and one forward
+ backward pass over the class inputs (the gradients at every layer). The reference times exactly those passes as
plain model calls on the same tensors; everything else (CAV classifiers, directional derivatives, scores) is
the overhead the ratio shows. Images are tensors in memory: decoding is the scoring stage's business.

    .venv/bin/python bench/tcav.py                 # demo CNN at 64x64 and resnet18 at 224x224
    .venv/bin/python bench/tcav.py --quick         # demo CNN only, fewer reps
    .venv/bin/python bench/tcav.py --workloads tiny_cnn@32 --reps 1   # seconds (the smoke test)

Prints a table and writes JSON (default bench/results/tcav.json). ``speed`` in the table = reference seconds /
TCAV seconds (1/ratio); ``ratio_to_passes`` in the JSON is TCAV seconds / reference seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import numpy as np
import torch
from harness import format_table, make_row, measure, new_report, set_threads, write_json
from workloads import DEMO, PROFILES, RESNET, TINY, Workload

DEFAULT_OUT = BENCH_DIR / "results" / "tcav.json"


def cases(quick: bool) -> list[tuple[int, int]]:
    """(concepts, layers) per measured run."""
    return [(1, 1), (1, 3)] if quick else [(1, 1), (1, 3), (2, 3)]


def tcav_rows(w: Workload, n_concepts: int, n_layers: int, runs: int, set_size: int, n_inputs: int, reps: int,
              device: torch.device) -> list[dict[str, Any]]:
    from audit.concepts.stage import default_layers
    from audit.concepts.tcav import run_tcav
    from audit.explainers._common import capture

    torch.manual_seed(0)
    model = w.build().to(device).eval()
    gen = torch.Generator().manual_seed(0)
    shape = (w.channels, w.size, w.size)
    concepts = {f"c{j}": torch.randn(set_size, *shape, generator=gen) for j in range(n_concepts)}
    pool = torch.randn(runs * set_size, *shape, generator=gen)
    sets = [np.arange(i * set_size, (i + 1) * set_size) for i in range(runs)]
    inputs = {0: torch.randn(n_inputs, *shape, generator=gen)}
    layers = default_layers(model, pool[:1].to(device), max_layers=3)[-n_layers:]
    modules = dict(model.named_modules())
    fwd_images = torch.cat([*concepts.values(), pool])
    batch = 32

    def pipeline() -> None:
        run_tcav(model, layers, concepts, pool, sets, inputs, seed=0, device=device, batch_size=batch)

    def passes() -> None:
        """The passes TCAV needs, as plain calls: forward to the last layer over the concept and random images,
        forward + backward over the class inputs."""
        with torch.no_grad():
            for s in range(0, len(fwd_images), batch):
                capture(model, {n: modules[n] for n in layers}, fwd_images[s:s + batch].to(device), stop_early=True)
        for s in range(0, n_inputs, batch):
            x = inputs[0][s:s + batch].to(device).requires_grad_(True)
            logits, acts = capture(model, {n: modules[n] for n in layers}, x)
            torch.autograd.grad(logits[:, 0].sum(), [acts[n] for n in layers])

    m = measure({"tcav": pipeline, "passes": passes}, reps, device)
    n_images = len(fwd_images) + n_inputs
    per = m["tcav"]["seconds"] / (n_concepts * n_layers)
    variant = f"TCAV {n_concepts} concept(s) x {n_layers} layer(s), N={runs}, S={set_size}, n={n_inputs}"
    return [make_row("tcav", w.name, variant, n_images, m["tcav"], reference="forward + forward/backward passes",
                     ref=m["passes"], seconds_per_concept_layer=round(per, 4),
                     ratio_to_passes=round(m["tcav"]["seconds"] / m["passes"]["seconds"], 3),
                     passes_seconds=round(m["passes"]["seconds"], 4), layers=layers,
                     forward_images=len(fwd_images), forward_backward_images=n_inputs)]


def run(workloads: list[Workload], quick: bool, reps: int, out: Path | None, device: str = "cpu",
        runs: int = 10, set_size: int = 50, n_inputs: int = 100, verbose: bool = True) -> dict[str, Any]:
    dev = torch.device(device)
    report = new_report("quick" if quick else "full", PROFILES["quick" if quick else "full"], dev, None)
    rows: list[dict[str, Any]] = []
    for w in workloads:
        for n_concepts, n_layers in cases(quick):
            rows += tcav_rows(w, n_concepts, n_layers, runs, set_size, n_inputs, reps, dev)
            if verbose:
                print(format_table(rows[-1:]).split("\n", 2)[-1], flush=True)
    report["stages"]["tcav"] = rows
    if out is not None:
        write_json(report, out)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workloads", default=None, help="comma-separated: demo_cnn@64, resnet18@224, tiny_cnn@32")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--set-size", type=int, default=50)
    ap.add_argument("--inputs", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", default="auto")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    why = set_threads(args.threads)
    by_name = {w.name: w for w in (DEMO, RESNET, TINY)}
    names = args.workloads.split(",") if args.workloads else (["demo_cnn@64"] if args.quick else
                                                              ["demo_cnn@64", "resnet18@224"])
    reps = args.reps or (2 if args.quick else 3)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads ({why})", flush=True)
    report = run([by_name[n] for n in names], args.quick, reps, args.out, args.device, args.runs, args.set_size,
                 args.inputs)
    print("\n" + format_table(report["stages"]["tcav"]))
    for r in report["stages"]["tcav"]:
        print(f"  {r['workload']}: {r['variant']}: {r['seconds_per_concept_layer']} s per concept and layer, "
              f"{r['ratio_to_passes']} x the passes it needs ({r['passes_seconds']} s)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
