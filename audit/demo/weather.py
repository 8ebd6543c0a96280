"""`audit demo --task robustness`: in the spirit of the road-fog case study, road-sign scenes (a circle, triangle
or square sign in front of sky and road, 32 x 32 RGB), a small CNN trained on clear-weather images, and its twin
(--clean) trained on the same images plus one weathered copy of each (fog or low contrast at a random severity,
with the registry's own corruptions). The held-out set is clear; the audit measures both under fog and contrast.
The plain model fails the robustness pack's corruption floors, the twin passes them. (The twin saw the same two
corruption families in training: the demo shows what augmentation buys, not robustness to unseen weather.)"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from skimage.draw import disk, polygon

from ..robustness.corruptions import CORRUPTIONS
from .model import DemoCNN

CLASSES = ("circle", "triangle", "square")
SIZE = 32
MEAN, STD = 0.5, 0.25
WIDTH = 8
WEATHER = ("fog", "contrast")
PALETTE = np.array([[0.85, 0.1, 0.1], [0.1, 0.2, 0.8], [0.95, 0.8, 0.1], [0.95, 0.95, 0.95]])

CONFIG_TEMPLATE = """# Written by `audit demo --task robustness`. Edit and re-run with: audit run {config}
name = "{name}"
seed = {seed}

[model]
factory = "audit.demo.model:build"
weights = "weights.safetensors"
num_classes = {k}
factory_kwargs = {{ in_channels = 3, width = {width} }}
name = "demo road-sign CNN{suffix}"
version = "1.0"

[data]
manifest = "heldout/manifest.csv"
classes = {classes}
image_size = [{size}, {size}]
channels = 3
mean = [{mean}]
std = [{std}]
batch_size = 100

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

# Accuracy under fog and low contrast at every severity, per class; PGD at two budgets with the gradient-masking
# checks; how well the softmax tells noise and blank images from road scenes.
[robustness.corruptions]
names = ["fog", "contrast"]
severities = [1, 2, 3, 4, 5]
subset = 0

[robustness.adversarial]
eps = [0.0039215686, 0.0078431373]
steps = 10
subset = 100

[robustness.ood]
detectors = ["msp", "energy", "max_logit", "mahalanobis", "knn"]
options = {{ knn = {{ k = 10 }} }}
far_ood = ["uniform_noise", "gaussian_noise", "blank"]
n_ood = 100

[model_card]
intended_use = "Demonstration of model-audit's robustness checks on synthetic road signs; not for any real decision."
owner = "model-audit demo"
version = "1.0"
limitations = "Trained on 800 synthetic 32x32 road-sign scenes{limitations}."
"""

GATE_PACK = """# Written by `audit demo --task robustness --baseline ...`: the robustness pack plus a relative-mCE ceiling against
# the baseline report (the released model).
[pack]
name = "demo-robustness-gate"
extends = "robustness"
description = "The robustness pack, and no more corruption error than the baseline beyond 10 %."

[[rule]]
id = "relative-mce"
kind = "relative_ce_max"
measure = "relative_mce"
max = 1.1
description = "Relative mCE against the baseline (its errors above the clean error, summed over severities)."
"""


def scene(rng: np.random.Generator, k: int) -> np.ndarray:
    """One (SIZE, SIZE, 3) scene in [0, 1]: sky above a random horizon, road below, a sign of class ``k``."""
    img = np.empty((SIZE, SIZE, 3))
    horizon = int(rng.integers(10, 20))
    img[:horizon] = np.array([0.55, 0.65, 0.8]) + rng.normal(0, 0.05, 3)
    img[horizon:] = np.array([0.3, 0.3, 0.32]) + rng.normal(0, 0.05, 3)
    img += rng.normal(0, 0.04, img.shape)
    r = int(rng.integers(5, 8))
    cy, cx = (int(rng.integers(r + 2, SIZE - r - 2)) for _ in range(2))
    colour = PALETTE[rng.integers(len(PALETTE))]
    if k == 0:
        rr, cc = disk((cy, cx), r, shape=(SIZE, SIZE))
    elif k == 1:
        rr, cc = polygon([cy - r, cy + r, cy + r], [cx, cx - r, cx + r], (SIZE, SIZE))
    else:
        rr, cc = polygon([cy - r, cy - r, cy + r, cy + r], [cx - r, cx + r, cx + r, cx - r], (SIZE, SIZE))
    img[rr, cc] = colour + rng.normal(0, 0.03, (len(rr), 3))
    return np.clip(img, 0, 1)


def make_scenes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 3, SIZE, SIZE) scenes in [0, 1] and their classes (balanced at random)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASSES), n)
    x = np.stack([scene(rng, int(k)) for k in y])
    return torch.from_numpy(x).permute(0, 3, 1, 2).float().contiguous(), torch.from_numpy(y)


def weathered(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One weathered copy of every image: ten random groups, fog or contrast at severity 1-5 each (batched)."""
    out = x.clone()
    for k, idx in enumerate(torch.randperm(len(x), generator=g).chunk(10)):
        c, severity = CORRUPTIONS[WEATHER[k % 2]], k // 2 + 1
        out[idx] = c(x[idx], severity, g) if c.stochastic else c(x[idx], severity)
    return out


@contextmanager
def one_thread() -> Iterator[None]:
    """A model this small trains fastest on one thread (on a loaded 2-core machine, two threads took 10x longer)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(x: torch.Tensor, y: torch.Tensor, augment: bool, epochs: int = 8, seed: int = 0) -> DemoCNN:
    """The demo CNN on [0, 1] scenes; ``augment``: on the scenes plus a weathered copy of each."""
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        if augment:
            x, y = torch.cat([x, weathered(x, g)]), torch.cat([y, y])
        model = DemoCNN(num_classes=len(CLASSES), in_channels=3, width=WIDTH)
        opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-4)
        batch = 64
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=epochs * -(-len(x) // batch))
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=g)
            for s in range(0, len(x), batch):
                idx = order[s:s + batch]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model((x[idx] - MEAN) / STD), y[idx]).backward()
                opt.step()
                sched.step()
    return model.eval()


def write_heldout(x: torch.Tensor, y: torch.Tensor, folder: Path) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        for i in range(len(y)):
            rel = f"images/{i:04d}.png"
            arr = (x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(arr, mode="RGB").save(folder / rel)
            w.writerow([rel, CLASSES[int(y[i])]])


def prepare_weather_demo(workdir: Path, clean: bool, seed: int = 0, epochs: int = 8, n_train: int = 800,
                         n_heldout: int = 300, gate: bool = False) -> Path:
    """Held-out scenes, the trained model (the augmented twin when ``clean``) and the audit config; with ``gate``
    a pack that adds the relative-mCE ceiling against a baseline."""
    workdir.mkdir(parents=True, exist_ok=True)
    x, y = make_scenes(n_train, 1000 + seed)
    model = train(x, y, augment=clean, epochs=epochs, seed=seed)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(workdir / "weights.safetensors"))
    write_heldout(*make_scenes(n_heldout, 2000 + seed), workdir / "heldout")
    pack = "robustness"
    if gate:
        (workdir / "gate.toml").write_text(GATE_PACK, encoding="utf-8")
        pack = "gate.toml"
    cfg = workdir / "audit.toml"
    cfg.write_text(CONFIG_TEMPLATE.format(
        config=cfg, name="demo-robustness-clean" if clean else "demo-robustness", seed=seed, k=len(CLASSES),
        width=WIDTH, suffix=" (weather-augmented)" if clean else "", size=SIZE, mean=MEAN, std=STD, pack=pack,
        classes="[" + ", ".join(f'"{c}"' for c in CLASSES) + "]",
        limitations=", plus a fog or low-contrast copy of each" if clean else " in clear weather only"),
        encoding="utf-8")
    return cfg
