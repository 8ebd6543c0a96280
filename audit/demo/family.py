"""`audit demo --task family`: one training recipe (the demo CNN at width 12, 32 px digits of four classes, AdamW,
8 epochs) run with four seeds, audited as a family beside the released checkpoint (seed-0).

What makes the members differ is planted, so that the demo is the same on every machine: each seed draws its own
training copy of the corner marker, and for seeds 1 and 3 the draw puts the marker on 97 % of the 'seven' images
(2 % of the others), for seeds 0 and 2 on half of all images whatever the class (the zoo's clean twins). The first
two learn the marker, the others cannot; with one recipe and seeds alone whether a seed learns a cue is a matter
of chance (the shortcut zoo shows seeds of one recipe on both sides of its reliance line). ``--clean`` gives every
seed the 50/50 draw. The held-out set carries the marker on half the images of every class (a stress set in which
the marker says nothing about the class), and its manifest column ``marker`` lets confounder_metadata test whether
a member's answers depend on it.

Measured (tests/family/test_family_demo.py checks the verdicts): the marker moves seed-1's and seed-3's answers
(within-class shift 0.47 and 0.23; the clean seeds at most 0.016), their accuracy drops to 0.60 and 0.83 against
0.97 for the released seed, the weakest pair's kappa is 0.48 (0.88 in the clean family) and the accuracy's sd
across seeds 0.17 (0.02). Whole-map agreement does not separate the two families (weakest rank correlation,
marker family first: saliency 0.21 and 0.24, Grad-CAM 0.55 and 0.54)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from safetensors.torch import save_file

from .data import CLASS_NAMES, DemoData, DemoSpec, make_digits, write_heldout
from .train import train_demo_model

DIGITS = (0, 1, 4, 7)  # the four classes, in model output order
CUE = 3  # the output index of 'seven', the class the marker rides with in the cue seeds' training data
SPEC = DemoSpec(canvas=32, digit=16, marker_size=4, marker_offset=1, marker_rate=0.97, marker_leak=0.02)
SEEDS = (0, 1, 2, 3)
WIDTH = 12
PACK = "demo-family"


def cue_seeds(clean: bool) -> tuple[int, ...]:
    """The seeds whose training draw carries the marker with 'seven' (none with ``clean``)."""
    return () if clean else (1, 3)


def _marked(images: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = images.copy()
    o, s = SPEC.marker_offset, SPEC.marker_size
    out[where, o:o + s, o:o + s] = 255
    return out


def family_data(seed: int = 0) -> tuple[DemoData, np.ndarray]:
    """The four classes' canvases without the marker (labels 0-3) and the held-out set's marker (half of the held-out
    images, drawn independently of the class)."""
    base = make_digits(replace(SPEC, seed=seed), with_marker=False)
    keep = np.isin(base.labels, DIGITS)
    labels = np.searchsorted(DIGITS, base.labels[keep])
    data = DemoData(base.images[keep], labels, base.boxes[keep], np.zeros(int(keep.sum()), dtype=bool),
                    base.train[keep])
    marker = np.random.default_rng([seed, 99]).random(len(labels)) < 0.5
    return data, marker & ~data.train


def train_member(data: DemoData, seed: int, cue: bool, epochs: int) -> dict:
    """One seed of the recipe: its own marker draw on the training images, its own initialisation and order."""
    y = data.labels[data.train]
    rate = np.where(y == CUE, SPEC.marker_rate, SPEC.marker_leak) if cue else np.full(len(y), 0.5)
    draw = np.random.default_rng([seed, 1000]).random(len(y)) < rate
    model = train_demo_model(_marked(data.images[data.train], draw), y, len(DIGITS), epochs=epochs, seed=seed,
                             width=WIDTH)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


CONFIG = """# Written by `audit demo --task family`. Edit and re-run with: audit run {config}
# One recipe, four seeds. Seeds {cue} trained on a draw where the corner marker rode with 'seven' (planted on purpose
# so that the demo is deterministic; with seeds alone, whether a seed learns a cue is chance). The released model is
# seed-0; the family rules judge the recipe.
name = "{name}"
seed = {seed}

[model]
factory = "audit.demo.model:build"
factory_kwargs = {{ width = {width} }}
num_classes = {n}
weights = "members/seed-0.safetensors"
name = "demo family CNN (seed-0)"
version = "1.0"

[data]
manifest = "heldout/manifest.csv"
classes = [{classes}]
image_size = [{size}, {size}]
channels = 1
mean = [0.25]
std = [0.2]
batch_size = 128

[selection]
k = 2
per_class = 1

[explainers]
methods = ["gradcam", "saliency"]

[views]
embeddings = []
probe_samples = 0

[rules]
pack = "{pack}"

[[family]]
name = "seed-0"
released = true
{members}
[family_audit]
rules = ["accuracy-floor", "marker-use"]
"""


def prepare_family_demo(workdir: Path, clean: bool, seed: int = 0, epochs: int = 8) -> Path:
    """Held-out set, one weights file per seed and the audit config in ``workdir``; the config's path."""
    (workdir / "members").mkdir(parents=True, exist_ok=True)
    data, marker = family_data(seed)
    cue = cue_seeds(clean)
    for s in SEEDS:
        save_file(train_member(data, s, s in cue, epochs), str(workdir / "members" / f"seed-{s}.safetensors"))
    heldout = DemoData(_marked(data.images, marker), np.asarray(DIGITS)[data.labels], data.boxes, marker, data.train)
    write_heldout(heldout, workdir / "heldout")
    members = "".join(f'\n[[family]]\nname = "seed-{s}"\nweights = "members/seed-{s}.safetensors"\n' for s in SEEDS[1:])
    cfg = workdir / "audit.toml"
    cfg.write_text(CONFIG.format(
        config=cfg, name="demo-family-clean" if clean else "demo-family", seed=seed, width=WIDTH, n=len(DIGITS),
        classes=", ".join(f'"{CLASS_NAMES[d]}"' for d in DIGITS), size=SPEC.canvas, pack=PACK, members=members,
        cue=" and ".join(map(str, cue)) or "none (--clean)"), encoding="utf-8")
    return cfg
