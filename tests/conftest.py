"""Shared fixtures: a tiny three-class image set on disk, a tiny trained CNN, and a config that audits it."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from audit.demo.model import DemoCNN

CLASSES = ("left", "middle", "right")
SIZE = 32


def make_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class = horizontal position of a bright 8×8 square on a noisy 32×32 canvas; ROI = the square."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    imgs = np.clip(rng.normal(0.2, 0.08, (n, SIZE, SIZE)), 0, 1)
    boxes = np.zeros((n, 4), dtype=int)
    for i, c in enumerate(labels):
        x0 = int(2 + c * 10 + rng.integers(0, 3))
        y0 = int(rng.integers(2, SIZE - 10))
        imgs[i, y0:y0 + 8, x0:x0 + 8] = 0.9
        boxes[i] = (x0, y0, x0 + 8, y0 + 8)
    return (imgs * 255).astype(np.uint8), labels, boxes


def train_tiny(seed: int = 0, epochs: int = 12) -> DemoCNN:
    imgs, labels, _ = make_images(240, seed + 100)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(imgs.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels)
    model = DemoCNN(num_classes=3, width=4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    steps = epochs * 8
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), 30):
            idx = order[s:s + 30]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()


@dataclass(frozen=True)
class TinySetup:
    root: Path
    config: Path
    manifest: Path
    weights: Path


def write_setup(root: Path, model: torch.nn.Module, pack: str = "default", extra: str = "", n: int = 45) -> TinySetup:
    root.mkdir(parents=True, exist_ok=True)
    imgs, labels, boxes = make_images(n, seed=7)
    (root / "img").mkdir(exist_ok=True)
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "roi_x0", "roi_y0", "roi_x1", "roi_y1", "site"])
        for i in range(n):
            rel = f"img/{i:03d}.png"
            Image.fromarray(imgs[i], mode="L").save(root / rel)
            w.writerow([rel, CLASSES[labels[i]], *boxes[i], "A" if i % 2 else "B"])
    weights = root / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    config = root / "audit.toml"
    config.write_text(f"""
name = "tiny"
seed = 0
[model]
factory = "audit.demo.model:build"
weights = "weights.safetensors"
num_classes = 3
factory_kwargs = {{ width = 4 }}
[data]
manifest = "manifest.csv"
classes = ["left", "middle", "right"]
image_size = [32, 32]
channels = 1
batch_size = 16
subgroups = ["site"]
[selection]
k = 2
per_class = 1
[explainers]
methods = ["gradcam"]
[rules]
pack = "{pack}"
[views]
embeddings = ["pca"]
probe_samples = 0
[report]
formats = ["html", "json", "junit"]
{extra}
""")
    return TinySetup(root, config, manifest, weights)


@pytest.fixture(scope="session")
def make_setup():
    """``write_setup`` for fixtures of wider scope than ``tiny``."""
    return write_setup


@pytest.fixture(scope="session")
def tiny_model() -> DemoCNN:
    return train_tiny()


@pytest.fixture()
def tiny(tmp_path: Path, tiny_model: DemoCNN) -> TinySetup:
    return write_setup(tmp_path / "tiny", tiny_model)


@dataclass(frozen=True)
class DemoRun:
    folder: Path  # the report folder
    exit_code: int
    output: str


#: the reports the demos make: `audit demo` arguments of each (the gate audits the confounded model against "clean")
DEMOS = {"clean": ["--clean"], "gate": ["--baseline", "{clean}"], "multilabel": ["--task", "multilabel"],
         "segmentation": ["--task", "segmentation"], "anomaly": ["--task", "anomaly"]}


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory):
    """``demo_report(name)``: the report of one demo run (``DEMOS``), built once per test session and shared by
    tests/demo and the report lint (each demo trains or builds its model and audits it: tens of seconds)."""
    from typer.testing import CliRunner

    from audit.cli import app

    root = tmp_path_factory.mktemp("demos")
    built: dict[str, DemoRun] = {}

    def get(name: str) -> DemoRun:
        if name not in built:
            args = [a.format(clean=get("clean").folder) if "{clean}" in a else a for a in DEMOS[name]]
            out = root / name
            res = CliRunner().invoke(app, ["demo", *args, "--out", str(out)])
            built[name] = DemoRun(out, res.exit_code, res.output)
        return built[name]

    return get
