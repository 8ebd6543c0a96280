"""The segmentation and inspection examples on disk: a held-out set, a hand-built model's weights and an audit
config, ready for ``audit run`` (``audit demo --task segmentation | anomaly``; the tests use the same)."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file
from torch import nn

from . import inspection, segment

TRAINED_WIDTH = 24  # channels of the trained segmentation example's SceneNet


def _config(root: Path, *, task: str, factory: str, kwargs: str, classes: tuple[str, ...], pack: str,
            explainers: tuple[str, ...], subgroup: str) -> Path:
    cfg = root / "audit.toml"
    cfg.write_text(f'''name = "{task}-example"
seed = 0
[model]
task = "{task}"
factory = "{factory}"
factory_kwargs = {{ {kwargs} }}
weights = "weights.safetensors"
num_classes = {len(classes)}
[data]
manifest = "manifest.csv"
classes = [{", ".join(f'"{c}"' for c in classes)}]
image_size = [{segment.SIZE}, {segment.SIZE}]
channels = 1
batch_size = 16
subgroups = ["{subgroup}"]
[selection]
k = 2
per_class = 1
[explainers]
methods = [{", ".join(f'"{m}"' for m in explainers)}]
[rules]
pack = "{pack}"  # a bundled pack by name (rules/{pack}.toml)
[views]
embeddings = []
probe_samples = 0
[report]
formats = ["html", "json", "junit", "pdf"]
''')
    return cfg


def _weights(root: Path, model: nn.Module) -> None:
    root.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(root / "weights.safetensors"))


def segmentation_model(root: Path, clean: bool, trained: bool = False, seed: int = 0) -> Path:
    """Weights and config in ``root`` (which holds the set): the net that reads the object, or the stripes.
    ``trained``: a ``SceneNet`` trained on 400 scenes where squares lie only on stripes (or, clean, where the
    ground is drawn at random), instead of the hand-built nets."""
    if trained:
        layout: segment.Layout = "independent" if clean else "context"
        _weights(root, segment.train_scenenet(segment.make_scenes(400, 1000 + seed, layout, same_level=True),
                                              seed=seed, width=TRAINED_WIDTH))
        kwargs = f"width = {TRAINED_WIDTH}"
    else:
        _weights(root, segment.HandBuilt(context=not clean))
        kwargs = f"hand_built = true, context = {str(not clean).lower()}"
    return _config(root, task="segmentation", factory="audit.demo.segment:build", kwargs=kwargs,
                   classes=segment.CLASSES, pack="segmentation", explainers=("saliency", "gradcam"),
                   subgroup="background")


def prepare_segmentation(root: Path, clean: bool, n: int = 40, seed: int = 1, trained: bool = False) -> Path:
    """Discs and squares, squares only on striped ground, and the clean or the context net; returns the config.
    ``trained``: equally bright discs and squares (60 held-out scenes) and trained nets."""
    segment.write_scenes(root, segment.make_scenes(60 if trained else n, seed, "context", same_level=trained))
    return segmentation_model(root, clean, trained)


def inspection_model(root: Path, clean: bool) -> Path:
    """Weights and config in ``root``: the local-deviation detector, or the one that reads the fixture mark."""
    detector = "local" if clean else "fixture"
    _weights(root, inspection.build(detector=detector))
    return _config(root, task="anomaly", factory="audit.demo.inspection:build", kwargs=f'detector = "{detector}"',
                   classes=inspection.CLASSES, pack="inspection", explainers=("anomaly_map", "gradcam"),
                   subgroup="fixture")


def prepare_inspection(root: Path, clean: bool, n: int = 60, seed: int = 3) -> Path:
    """Scratched parts with the fixture mark on every defective one, and a detector; returns the config."""
    inspection.write_parts(root, inspection.make_parts(n, seed, "confounded"))
    return inspection_model(root, clean)
