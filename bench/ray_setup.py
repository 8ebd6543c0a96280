"""The Ray benchmark's profiles and engines: a Ray engine and a local engine on the same model over a synthetic
image set (bench/ray_run.py runs the stages)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import torch
from pipeline import data_config, local_engine
from workloads import Workload


@dataclasses.dataclass(frozen=True)
class RayProfile:
    name: str
    scoring: tuple[int, int]  # demo CNN images: two sizes
    sweep: tuple[int, int]  # images, regions
    memory: tuple[int, int]  # tiny images: small N, large N
    costs_images: int
    reps: int


PROFILES = {
    "full": RayProfile("full", scoring=(1024, 4096), sweep=(256, 8), memory=(10_000, 100_000), costs_images=16,
                       reps=3),
    "quick": RayProfile("quick", scoring=(256, 1024), sweep=(64, 8), memory=(2_000, 10_000), costs_images=16,
                        reps=2),
    "tiny": RayProfile("tiny", scoring=(16, 32), sweep=(8, 2), memory=(20, 40), costs_images=2, reps=1),
}


# ----------------------------------------------------------------------------------------------------------
# engines over a synthetic set


def _factory_model(w: Workload) -> dict[str, Any]:
    if w.arch == "resnet18":
        return {"torchvision": "resnet18", "num_classes": w.num_classes}
    return {"factory": "audit.demo.model:build",
            "factory_kwargs": {"num_classes": w.num_classes, "in_channels": w.channels, "width": w.width}}


def engines_for(w: Workload, manifest: Path, n: int, batch_size: int, concurrency: int = 1):
    """(RayEngine, LocalEngine on the same model with the workers' compute settings, held-out set of n, preprocess).
    The workers rebuild the model from the config (random initial weights: they take the driver's state dict)."""
    from audit.config import config_from_dict
    from audit.engine.ray_engine import RayEngine
    from audit.inputs import prepare_inputs, with_model_defaults
    from audit.loading.model import load_model

    cfg = config_from_dict({"model": _factory_model(w), "data": data_config(w, manifest, batch_size),
                            "cache": {"enabled": False}, "explainers": {"batch_size": batch_size},
                            "compute": {"engine": "ray", "concurrency": concurrency}}, base_dir=manifest.parent)
    cfg, notes = with_model_defaults(cfg)
    inputs = prepare_inputs(cfg, None, notes)
    loaded = load_model(cfg, len(inputs.classes))
    ray_engine = RayEngine.from_config(cfg, loaded, inputs.task)
    local = local_engine(ray_engine.model, inputs.classes, torch.device("cpu"), batch_size,
                         compute=ray_engine.worker_compute)
    hs = dataclasses.replace(inputs.heldout, records=inputs.heldout.records[:n])
    return ray_engine, local, hs, inputs.preprocess


def score_with(engine, hs, pre, batch_size: int):
    from audit.engine import ScoringOptions

    return engine.score(hs, pre, ScoringOptions(batch_size=batch_size, progress=False))


def images_of(hs, pre, n: int) -> torch.Tensor:
    from audit.loading.dataset import ImageDataset

    ds = ImageDataset(hs.records[:n], pre)
    return torch.stack([ds[i][1] for i in range(min(n, len(ds)))])  # type: ignore[misc]
