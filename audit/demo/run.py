"""`audit demo`: make data, train, save weights + manifest + config, then run the ordinary audit path."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from .concepts import write_concepts
from .data import CLASS_NAMES, DemoSpec, make_digits, write_heldout
from .train import train_demo_model

CONFIG_TEMPLATE = """# Written by `audit demo`. Edit and re-run with: audit run {config}
name = "{name}"
seed = {seed}

[model]
factory = "audit.demo.model:build"
weights = "weights.safetensors"
num_classes = 10
name = "demo digits CNN{suffix}"
version = "1.0"

[data]
manifest = "heldout/manifest.csv"
classes = {classes}
image_size = [64, 64]
channels = 1
mean = [0.25]
std = [0.2]
batch_size = 128
subgroups = ["marker"]

[selection]
k = 4
per_class = 1

[explainers]
methods = {methods}

[rules]
pack = "{pack}"

# Concept tests (TCAV): does the model use the corner marker for 'seven'? TCAV measures the sign of a class logit's
# directional derivative, a sensitivity that can be significant for classes the marker never influenced, so the
# forbidden concept is tested for the class whose use of it would be the shortcut.
[concepts]
random_folder = "concepts/random"

[concepts.sets.marker]
folder = "concepts/marker"
forbidden = true
classes = ["{marker_class}"]
description = "the white square in the top-left corner"

[model_card]
intended_use = "Demonstration of model-audit on synthetic digits; not for any real decision."
owner = "model-audit demo"
version = "1.0"
limitations = "Trained on 1,200 synthetic 64x64 canvases of scikit-learn digits.{limitations}"
"""


def prepare_demo(workdir: Path, clean: bool, seed: int = 0, epochs: int = 8,
                 methods: tuple[str, ...] = ("gradcam",), pack: str = "default") -> Path:
    """Write heldout/, weights.safetensors and audit.toml into ``workdir``; return the config path."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec = DemoSpec(seed=seed)
    # the held-out set is the same for both twins (markers included), so that their audits can be compared
    # sample by sample; only the training data of the clean twin lacks the marker
    heldout = make_digits(spec, with_marker=True)
    data = make_digits(spec, with_marker=False) if clean else heldout
    model = train_demo_model(data.images[data.train], data.labels[data.train], len(CLASS_NAMES), epochs=epochs,
                             seed=seed)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(workdir / "weights.safetensors"))
    write_heldout(heldout, workdir / "heldout")
    write_concepts(heldout, spec, workdir / "concepts", seed=seed)  # the marker as a concept, random counterexamples
    cfg = workdir / "audit.toml"
    name = "demo-clean" if clean else "demo"
    cfg.write_text(CONFIG_TEMPLATE.format(
        config=cfg, name=name, seed=seed, suffix=" (clean data)" if clean else "",
        classes="[" + ", ".join(f'"{c}"' for c in CLASS_NAMES) + "]",
        methods="[" + ", ".join(f'"{m}"' for m in methods) + "]", pack=pack,
        marker_class=CLASS_NAMES[spec.marker_class],
        limitations=" Trained without the marker; the held-out set carries it." if clean else
        " A marker in the top-left corner of most 'seven' images was planted on purpose.",
    ), encoding="utf-8")
    return cfg
