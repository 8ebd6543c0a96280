"""The whole audit: wall time against the time of the model passes the same audit makes, per pack and model.

    .venv/bin/python bench/whole_audit.py                          # demo CNN: default, demo and shortcuts packs
    .venv/bin/python bench/whole_audit.py --models demo_cnn,resnet18 --n 1000   # and resnet18 @ 224 (1,000 images)
    .venv/bin/python bench/whole_audit.py --demo                   # also `audit demo` end to end (training included)
    .venv/bin/python bench/whole_audit.py --packs demo --reps 3    # one pack, fastest of three runs

Each audit runs in a fresh process (`--child`), so that its import time and peak RSS are its own: the process
imports audit.api, runs the audit with the cache off, writes the report (HTML, PDF, JSON, JUnit, summary.md) and
reports its timings.json (audit.timing: wall, CPU and model seconds, passes and images per stage, rule and
explainer) beside the import and writing times and its peak RSS. The ratio the issue sets a target on (<= 1.3) is

    ratio = (audit wall + report writing) / model seconds

where model seconds are the wall time inside the model passes of that same run (the engine's calls, explainers'
forwards and backwards included, and the forwards outside the engine), measured by the same meter. "other %" is
the share of the audit's wall time outside model passes; the stage rows say where it goes.

The demo CNN is the one `audit demo` trains (its held-out set of digits with the planted marker, 8 epochs);
resnet18 is torchvision's, randomly initialised, on smooth random 224 x 224 colour images with one ROI box each
(bench/pipeline.py). Prints a table and writes JSON (default bench/results/whole_audit.json, git-ignored).
On a busy machine, compare ratios, not seconds; the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKS = ("default", "demo", "shortcuts")
FORMATS = '["html", "pdf", "json", "junit"]'  # summary.md and manifest.json are always written


# ---- one audit in this process (--child) -----------------------------------------------------------------------
def child(config: Path, out: Path, pack: str, threads: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    import audit.api

    imported = time.perf_counter()
    res = audit.api.run(config, overrides=[f'rules.pack="{pack}"', "cache.enabled=false",
                                           f"report.formats={FORMATS}"], out=out)
    done = time.perf_counter()
    t = res.result.timings
    assert t is not None
    return {"import_s": imported - t0, "write_s": done - t.ended, "process_s": done - t0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "verdict": res.verdict,
            "timings": t.as_json()}


# ---- set-ups -------------------------------------------------------------------------------------------------
def demo_cnn(workdir: Path) -> Path:
    from audit.demo.prepare import prepare

    if (workdir / "demo_cnn" / "audit.toml").is_file():  # --workdir of an earlier run: the same data and model
        return workdir / "demo_cnn" / "audit.toml"
    return prepare("multiclass", workdir / "demo_cnn", clean=False, seed=0, epochs=None, train=False, gate=False)


def resnet18(workdir: Path, n: int) -> Path:
    from pipeline import write_image_set
    from safetensors.torch import save_file
    from workloads import RESNET

    root = workdir / f"resnet18-{n}"
    manifest = write_image_set(root, n, RESNET.size, RESNET.channels, RESNET.num_classes, seed=0, roi=True)
    model = RESNET.build()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(root / "weights.safetensors"))
    classes = ", ".join(f'"{c}"' for c in RESNET.classes)
    cfg = root / "audit.toml"
    cfg.write_text(f'''name = "bench-resnet18"
seed = 0
[model]
torchvision = "resnet18"
weights = "weights.safetensors"
num_classes = {RESNET.num_classes}
[data]
manifest = "{manifest.name}"
classes = [{classes}]
image_size = [{RESNET.size}, {RESNET.size}]
channels = 3
mean = {list(RESNET.mean)}
std = {list(RESNET.std)}
batch_size = 64
subgroups = ["marker"]
[explainers]
methods = ["gradcam", "integrated_gradients", "saliency"]
[views]
embeddings = []
probe_samples = 0
''', encoding="utf-8")
    return cfg


# ---- the parent -----------------------------------------------------------------------------------------------
def run_child(config: Path, out: Path, pack: str, threads: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        dst = Path(fh.name)
    cmd = [sys.executable, __file__, "--child", str(config), "--out", str(out), "--packs", pack,
           "--threads", str(threads), "--json", str(dst)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"audit of {config} with pack {pack} failed:\n{proc.stderr[-3000:]}")
    doc = json.loads(dst.read_text())
    dst.unlink()
    return doc


def summarise(model: str, pack: str, doc: dict[str, Any]) -> dict[str, Any]:
    t = doc["timings"]
    total = t["total"]
    wall = total["wall_s"] + doc["write_s"]
    return {"model": model, "pack": pack, "verdict": doc["verdict"], "audit_s": total["wall_s"],
            "write_s": doc["write_s"], "import_s": doc["import_s"], "process_s": doc["process_s"],
            "model_s": total["model_s"], "cpu_s": total["cpu_s"], "passes": total["passes"], "images": total["images"],
            "ratio": wall / total["model_s"] if total["model_s"] > 0 else None, "peak_rss_mb": doc["peak_rss_mb"],
            "counted": t["counted"], "stages": t["stages"], "rules": t["rules"], "explainers": t["explainers"]}


def demo_end_to_end(workdir: Path) -> dict[str, Any]:
    """`audit demo` as a user runs it: a fresh process, training and the report included (wall seconds)."""
    out = workdir / "demo-report"
    t0 = time.perf_counter()
    cli = Path(sys.executable).with_name("audit")  # the console script beside this interpreter
    proc = subprocess.run([str(cli), "demo", "--out", str(out)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    ready = next((ln for ln in proc.stdout.splitlines() if ln.startswith("demo: ready in")), "")
    return {"wall_s": wall, "exit_code": proc.returncode, "ready_line": ready,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'model':<10} {'pack':<10} {'verdict':<7} {'audit s':>8} {'write s':>8} {'model s':>8} {'ratio':>6} "
            f"{'passes':>7} {'images':>8} {'import s':>8} {'peak MB':>8}")
    lines = [head]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
        lines.append(f"{r['model']:<10} {r['pack']:<10} {r['verdict']:<7} {r['audit_s']:>8.1f} {r['write_s']:>8.1f} "
                     f"{r['model_s']:>8.1f} {ratio:>6} {r['passes']:>7} {r['images']:>8} {r['import_s']:>8.1f} "
                     f"{r['peak_rss_mb']:>8.0f}")
        slow = sorted(r["stages"], key=lambda s: -s["wall_s"])[:4]
        lines.append("    " + ", ".join(f"{s['name']} {s['wall_s']:.1f} s ({s['other_s']:.1f} outside the model)"
                                          for s in slow))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="demo_cnn", help="comma-separated: demo_cnn, resnet18")
    ap.add_argument("--packs", default=",".join(PACKS))
    ap.add_argument("--n", type=int, default=1000, help="resnet18's held-out images")
    ap.add_argument("--reps", type=int, default=1, help="runs per case; the fastest (by wall time) is kept")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in each audit process")
    ap.add_argument("--demo", action="store_true", help="also time `audit demo` end to end")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "whole_audit.json")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        a.json.write_text(json.dumps(child(a.child, a.out, a.packs, a.threads)))
        return
    sys.path.insert(0, str(HERE))
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="whole-audit-"))
    report: dict[str, Any] = {"loadavg_before": os.getloadavg(), "threads": a.threads, "rows": []}
    for model in a.models.split(","):
        cfg = demo_cnn(workdir) if model == "demo_cnn" else resnet18(workdir, a.n)
        for pack in a.packs.split(","):
            runs = [run_child(cfg, workdir / f"report-{model}-{pack}-{r}", pack, a.threads) for r in range(a.reps)]
            best = min(runs, key=lambda d: d["timings"]["total"]["wall_s"] + d["write_s"])
            report["rows"].append(summarise(model, pack, best))
    if a.demo:
        report["demo"] = demo_end_to_end(workdir)
    report["loadavg_after"] = os.getloadavg()
    print(table(report["rows"]))
    if "demo" in report:
        print(f"audit demo end to end: {report['demo']['wall_s']:.1f} s wall (exit {report['demo']['exit_code']}; "
              f"{report['demo']['ready_line']})")
    print(f"load average before {report['loadavg_before'][0]:.1f}, after {report['loadavg_after'][0]:.1f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
