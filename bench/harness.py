"""The measuring shared by every stage: interleaved timing, peak RSS, result rows, the printed table, the thread
policy and the JSON report.

Every pipeline timing is paired with a reference timed in the same process, interleaved: rep r runs the
variants in an order rotated by r; the fastest rep is kept, since load from other processes only ever adds
time; medians and rep-by-rep ratios go into the JSON too. Peak RSS is the process's high-water mark during a
variant (reset through /proc/self/clear_refs where Linux allows it, else the process-lifetime peak).
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from workloads import TARGETS, Profile

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "run.json"

# ----------------------------------------------------------------------------------------------------------
# memory


def _read_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return _read_status_kb("VmHWM") is not None
    except OSError:
        return False


RESETTABLE_PEAK = _can_reset_peak()


def reset_peak_rss() -> None:
    if RESETTABLE_PEAK:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")


def peak_rss_mb() -> float:
    kb = _read_status_kb("VmHWM")
    if kb is None:  # ru_maxrss is in kB on Linux, bytes on macOS
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            kb //= 1024
    return kb / 1024.0


def rss_mb() -> float:
    kb = _read_status_kb("VmRSS")
    return kb / 1024.0 if kb is not None else float("nan")


# ----------------------------------------------------------------------------------------------------------
# timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(variants: dict[str, Callable[[], object]], reps: int, device: torch.device,
            min_sample_s: float = 0.25) -> dict[str, dict]:
    """Time every variant ``reps`` times, interleaved in rotated order; fastest and median seconds per call.

    After the first rep, a variant that took under ``min_sample_s`` is called several times per sample
    (timeit's autorange), so that short calls are not timed at scheduler-tick granularity.
    """
    names = list(variants)
    secs: dict[str, list[float]] = {k: [] for k in names}
    peaks: dict[str, float] = dict.fromkeys(names, 0.0)
    number: dict[str, int] = dict.fromkeys(names, 1)
    gc.collect()
    gc.freeze()  # long-lived objects (modules, torch internals) out of the collector: later collects are cheap
    for r in range(reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            gc.collect()
            reset_peak_rss()
            sync(device)
            t0 = time.perf_counter()
            for _ in range(number[k]):
                variants[k]()
            sync(device)
            dt = (time.perf_counter() - t0) / number[k]
            secs[k].append(dt)
            peaks[k] = max(peaks[k], peak_rss_mb())
            if r == 0 and dt < min_sample_s:
                number[k] = min(50, math.ceil(min_sample_s / max(dt, 1e-6)))
    return {k: {"seconds": min(secs[k]), "median_seconds": statistics.median(secs[k]),
                "all_seconds": [round(s, 5) for s in secs[k]], "calls_per_sample": number[k],
                "peak_rss_mb": round(peaks[k], 1)} for k in names}


# ----------------------------------------------------------------------------------------------------------
# rows and the table


def make_row(stage: str, workload: str, variant: str, n: int, m: dict, *, reference: str | None = None,
             ref: dict | None = None, target: float | None = None, note: str = "", **extra: Any) -> dict:
    s = m["seconds"]
    row: dict[str, Any] = {
        "stage": stage, "workload": workload, "variant": variant, "n_images": n,
        "seconds": round(s, 4), "all_seconds": m.get("all_seconds", [round(s, 4)]),
        "images_per_s": round(n / s, 2) if s > 0 else None,
        "ms_per_image": round(1000 * s / n, 3) if n else None,
        "peak_rss_mb": m.get("peak_rss_mb"),
        "reference": reference, "speed_vs_reference": None, "target": target, "meets_target": None,
    }
    if ref is not None:
        speed = ref["seconds"] / s
        row["speed_vs_reference"] = round(speed, 3)
        if "median_seconds" in m and "median_seconds" in ref:
            row["speed_vs_reference_median"] = round(ref["median_seconds"] / m["median_seconds"], 3)
        if len(m.get("all_seconds", [])) == len(ref.get("all_seconds", [])) > 1:  # rep-by-rep (same rep = adjacent)
            row["speed_vs_reference_paired"] = [round(a / b, 3) for a, b in zip(ref["all_seconds"], m["all_seconds"])
                                                if b > 0]
        if target is not None:
            row["meets_target"] = bool(speed >= target)
    if note:
        row["note"] = note
    row.update(extra)
    return row


def not_run(stage: str, workload: str, variant: str, reason: str) -> dict:
    """A row for a variant that was not measured, with the reason."""
    return {"stage": stage, "workload": workload, "variant": variant, "not_run": reason}


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_table(rows: list[dict]) -> str:
    head = (f"{'stage':12s} {'workload':26s} {'variant':52s} {'img/s':>9s} {'ms/img':>9s} {'peakRSS MB':>10s} "
            f"{'speed':>7s} {'target':>7s}  ok")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "not_run" in r or "error" in r:
            what = f"not run: {r['not_run']}" if "not_run" in r else f"ERROR: {r['error']}"
            lines.append(f"{r['stage']:12s} {r['workload'][:26]:26s} {r['variant'][:52]:52s} {what}")
            continue
        target = r.get("target")
        ok = r.get("meets_target")
        if r["stage"] == "memory" and "peak_rss_ratio_vs_small" in r:
            speed, target = f"{r['peak_rss_ratio_vs_small']:.3f}r", f"<={r['target_max_ratio']:.2f}"
        else:
            speed = _fmt(r.get("speed_vs_reference"), ".3f")
            target = _fmt(target, ".2f") if target is None else f">={target:.2f}"
        lines.append(
            f"{r['stage']:12s} {r['workload'][:26]:26s} {r['variant'][:52]:52s} {_fmt(r['images_per_s'], '9.1f')} "
            f"{_fmt(r['ms_per_image'], '9.2f')} {_fmt(r['peak_rss_mb'], '10.0f')} {speed:>7s} {target:>7s}  "
            f"{'' if ok is None else ('yes' if ok else 'NO')}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# threads, the machine, the JSON report


def loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def set_threads(spec: str | int) -> str:
    """Apply ``--threads`` (a number or auto); return why that count was chosen.

    On a busy machine (load average >= CPUs) torch's thread pool thrashes (a tiny CNN ran ~100x slower with 2
    threads than with 1 on a loaded 2-core box), so auto drops to one thread."""
    if str(spec) != "auto":
        torch.set_num_threads(int(spec))
        return "--threads"
    load, cpus = loadavg(), os.cpu_count() or 1
    if cpus > 1 and load is not None and load[0] >= cpus - 0.5:
        torch.set_num_threads(1)
        return f"auto: load average {load[0]:.1f} on {cpus} CPUs"
    return "auto: torch default"


def new_report(profile: str, p: Profile, device: torch.device, workloads: tuple[str, ...] | None) -> dict[str, Any]:
    """The JSON report before any stage ran: the machine, the profile's settings and the targets."""
    return {
        "profile": profile, "device": str(device), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "loadavg_start": loadavg(), "peak_rss_resettable": RESETTABLE_PEAK, "reps": p.reps,
        "workloads_filter": list(workloads) if workloads else None,
        "targets": {"scoring_speed_min": TARGETS["scoring"], "captum_speed_min": TARGETS["captum"],
                    "gradcam_vs_pytorch_grad_cam_min": TARGETS["pytorch_grad_cam"],
                    "perturbation_speed_min": round(TARGETS["perturbation"], 4),
                    "memory_peak_ratio_max": TARGETS["memory"]},
        "explain_cases": [{"workload": c.workload.name, "batch": c.batch, "methods": list(c.methods),
                           "options": c.options} for c in p.explain],
        "stages": {},
    }


def write_json(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
