"""Stage "render": report rendering cost. ``write_outputs`` (HTML + PDF + JSON + JUnit, and HTML alone) for an
``AuditResult`` with many picks: ``run_audit`` of an untrained demo CNN on synthetic images with ROI boxes and
four explainers (its own time is reported too, as one run, not interleaved). Skipped with --quick.

Target: HTML + PDF (+ JSON, JUnit) for >= 100 picks x 4 explainers in <= 10 s.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from harness import make_row, measure, not_run
from pipeline import DataCache, data_config, write_image_set
from workloads import DEMO, TARGETS, Profile

if TYPE_CHECKING:
    from audit.result import AuditResult

RENDER_METHODS = ("gradcam", "saliency", "guided_backprop", "gradcam_pp")  # the "4 explainers"


def build_render_result(folder: Path, n: int, picks: tuple[int, int] = (16, 4)) -> tuple[AuditResult, float]:
    """run_audit of an untrained demo CNN on ``n`` synthetic images with ROI boxes; many picks. Returns the
    result and run_audit's seconds."""
    from safetensors.torch import save_file

    from audit.config import config_from_dict
    from audit.runner import run_audit

    w = DEMO
    folder.mkdir(parents=True, exist_ok=True)
    manifest = write_image_set(folder, n, w.size, w.channels, w.num_classes, seed=1, roi=True)
    model = w.build()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "weights.safetensors"))
    tree = {
        "name": "bench-render", "seed": 0, "device": "cpu",
        "model": {"factory": "audit.demo.model:build", "weights": "weights.safetensors", "num_classes": 10,
                  "factory_kwargs": {"in_channels": 1}},
        "data": {**data_config(w, manifest, 128), "subgroups": ["marker"]},
        "selection": {"k": picks[0], "per_class": picks[1]},
        "explainers": {"methods": list(RENDER_METHODS)},
    }
    cfg = config_from_dict(tree, base_dir=folder)
    t0 = time.perf_counter()
    result = run_audit(cfg)
    return result, time.perf_counter() - t0


def stage_render(p: Profile, data: DataCache, device: torch.device) -> list[dict]:
    if p.render_images <= 0:
        return [not_run("render", "-", "write_outputs", "skipped with --quick")]
    from audit.report.output import write_outputs

    folder = data.root / "render"
    result, audit_s = build_render_result(folder / "inputs", p.render_images, p.render_picks)
    n_picks = len(list(result.picks.all_ids()))
    n_maps = sum(len(o.maps.ids) for o in result.explanations.outcomes if o.maps is not None)
    formats = ["html", "pdf", "json", "junit"] if p.render_pdf else ["html", "json", "junit"]
    variants = {"all": lambda: write_outputs(result, folder / "out_all", formats)}
    if p.render_pdf:
        variants["html"] = lambda: write_outputs(result, folder / "out_html", ["html"])
    m = measure(variants, max(1, min(p.reps, 2)), device)
    sizes = {f.name: f.stat().st_size for f in (folder / "out_all").iterdir()}
    label = f"{p.render_images} images, {n_picks} picks"
    return [
        make_row("render", label, "run_audit (whole pipeline, untrained demo CNN)", p.render_images,
                 {"seconds": audit_s}, note="one run, not interleaved"),
        make_row("render", label, f"write_outputs {'+'.join(formats)} (per pick)", n_picks, m["all"],
                 maps=n_maps, explainers=len(RENDER_METHODS), file_bytes=sizes,
                 target_max_seconds=TARGETS["render_s"] if n_picks >= 100 else None,
                 meets_target=bool(m["all"]["seconds"] <= TARGETS["render_s"]) if n_picks >= 100 else None),
    ] + ([make_row("render", label, "write_outputs html only (per pick)", n_picks, m["html"])] if "html" in m else [])
