"""`audit demo --task multilabel`: radiograph-like data, a small multi-label CNN, and its config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from .model import DemoCNN
from .radiograph import BITS, LABELS, RadiographSpec, make_radiographs, write_radiographs

MEAN, STD = 0.3, 0.2

CONFIG_TEMPLATE = """# Written by `audit demo --task multilabel`. Edit and re-run with: audit run {config}
name = "{name}"
seed = {seed}

[model]
factory = "audit.demo.model:build"
weights = "weights.safetensors"
num_classes = {k}
factory_kwargs = {{ width = 16 }}
task = "multilabel"
name = "demo radiograph findings CNN{suffix}"
version = "1.0"

[data]
manifest = "heldout/manifest.csv"
classes = {classes}
image_size = [64, 64]
channels = 1
value_range = [0, {hi}]
mean = [{mean}]
std = [{std}]
batch_size = 128
subgroups = ["site"]

[selection]
k = 3
per_class = 1

[explainers]
methods = {methods}

[rules]
pack = "{pack}"

[model_card]
intended_use = "Demonstration of model-audit on synthetic radiograph-like images; not for any real decision."
owner = "model-audit demo"
version = "1.0"
limitations = "Trained on about 1,000 synthetic 64x64 12-bit images.{limitations}"
"""


def train_multilabel(images: np.ndarray, labels: np.ndarray, epochs: int = 10, seed: int = 0,
                     batch_size: int = 64, lr: float = 4e-3) -> DemoCNN:
    """Independent sigmoids (BCE), AdamW with a one-cycle schedule, seeded."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = (torch.from_numpy(images.astype(np.float32) / (2**BITS - 1)).unsqueeze(1) - MEAN) / STD
    y = torch.from_numpy(labels.astype(np.float32))
    model = DemoCNN(num_classes=labels.shape[1], width=16)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), batch_size):
            idx = order[s:s + batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()


def prepare_radiograph_demo(workdir: Path, clean: bool, seed: int = 0, epochs: int = 10,
                            methods: tuple[str, ...] = ("gradcam",), pack: str = "demo-multilabel") -> Path:
    """Write heldout/, weights.safetensors and audit.toml into ``workdir``; return the config path."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = make_radiographs(RadiographSpec(seed=seed), confounded=not clean)
    model = train_multilabel(data.images[data.train], data.labels[data.train], epochs=epochs, seed=seed)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(workdir / "weights.safetensors"))
    write_radiographs(data, workdir / "heldout")
    cfg = workdir / "audit.toml"
    cfg.write_text(CONFIG_TEMPLATE.format(
        config=cfg, name="demo-multilabel-clean" if clean else "demo-multilabel", seed=seed, k=len(LABELS),
        suffix=" (clean data)" if clean else "", classes="[" + ", ".join(f'"{c}"' for c in LABELS) + "]",
        hi=2**BITS - 1, mean=MEAN, std=STD, methods="[" + ", ".join(f'"{m}"' for m in methods) + "]", pack=pack,
        limitations=" Trained with the site letter independent of the findings; the held-out set ties it to site B."
        if clean else " Site B's laterality letter rides along with effusion in training, on purpose.",
    ), encoding="utf-8")
    return cfg
