"""Explainer cost benchmark: ms per image for every registered explainer, and the ratio to one
forward + backward pass (to the input) of the same model, measured in the same run.

Models: torchvision resnet18 (random weights) at 224x224 and a small GAP CNN at 64x64.

    .venv/bin/python bench/explainers.py --quick      # 1 image, reduced sample counts: checks it runs
    .venv/bin/python bench/explainers.py              # 8 images, default explainer options

Prints a table and writes JSON to bench/results/explainers.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from audit.errors import AuditError
from audit.explainers import ExplainContext, build_explainer, registry

# --quick only: cheaper settings for the sampling / optimisation methods (recorded in the JSON)
QUICK_OPTIONS: dict[str, dict] = {
    "smoothgrad": {"n_samples": 4},
    "integrated_gradients": {"n_steps": 8},
    "gradient_shap": {"n_samples": 4},
    "occlusion": {"window": 32, "stride": 32},
    "lime": {"n_samples": 20, "n_segments": 16},
    "kernel_shap": {"n_samples": 20, "n_segments": 16},
    "feature_inversion": {"steps": 5},
}


def small_gap_cnn(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


def models() -> list[tuple[str, nn.Module, int]]:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return [("resnet18", resnet18(weights=None), 224), ("small_gap_cnn", small_gap_cnn(), 64)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fwd_bwd_ms(model: nn.Module, x: torch.Tensor, t: torch.Tensor, reps: int) -> float:
    """Median ms per image of one forward pass plus the backward pass to the input."""
    times = []
    for _ in range(reps + 1):  # first one warms up
        xi = x.detach().clone().requires_grad_(True)
        sync(x.device)
        start = time.perf_counter()
        out = model(xi)
        torch.autograd.grad(out.gather(1, t.view(-1, 1)).sum(), xi)
        sync(x.device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[1:]) / x.shape[0]


def bench_model(name: str, model: nn.Module, size: int, args: argparse.Namespace) -> dict:
    dev = torch.device(args.device)
    model = model.to(dev).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, 3, size, size, generator=g).to(dev)
    with torch.no_grad():
        t = model(x).argmax(1)
    base = fwd_bwd_ms(model, x, t, reps=1 if args.quick else 5)
    rows = {}
    for ename in sorted(registry()):
        if args.only and ename not in args.only:
            continue
        opts = QUICK_OPTIONS.get(ename, {}) if args.quick else {}
        ex = build_explainer(ename, opts, ExplainContext(seed=0, device=dev))
        row: dict = {"options": opts}
        try:
            ex.check(model)
            sync(dev)
            start = time.perf_counter()
            ex.explain(model, x, t)
            sync(dev)
            ms = 1000 * (time.perf_counter() - start) / args.n
            row.update(ms_per_image=round(ms, 3), ratio_to_fwd_bwd=round(ms / base, 2))
        except AuditError as e:
            row["skipped"] = str(e)
        rows[ename] = row
        print(f"{name:14s} {ename:22s} " + (f"{row['ms_per_image']:10.1f} ms {row['ratio_to_fwd_bwd']:8.1f}x"
                                            if "ms_per_image" in row else f"  skipped: {row['skipped'][:70]}"),
              flush=True)
    return {"input": [3, size, size], "n_images": args.n, "fwd_bwd_ms_per_image": round(base, 3), "explainers": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 image and cheaper sampling settings")
    ap.add_argument("--n", type=int, default=None, help="images per model (default 8, 1 with --quick)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--only", type=lambda s: set(s.split(",")), default=None, help="comma-separated explainers")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "explainers.json")
    args = ap.parse_args()
    args.n = args.n or (1 if args.quick else 8)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{'model':14s} {'explainer':22s} {'ms/image':>13s} {'x fwd+bwd':>9s}")
    results = {name: bench_model(name, m, size, args) for name, m, size in models()}
    for name, r in results.items():
        print(f"{name}: forward+backward {r['fwd_bwd_ms_per_image']:.1f} ms/image")
    report = {
        "quick": args.quick, "device": args.device, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "models": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
