"""A tiny family for the family tests: 64 held-out images of two classes with a corner marker on half of each
class and a fold column, hand-built members (``family_nets``: clean or reading the marker, by seed), and a config
writer. Session-scoped: the images and weights are written once."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from family_nets import images, weights
from PIL import Image
from safetensors.torch import save_file

from audit.config import load_config
from audit.result import AuditResult
from audit.runner import run_audit

N = 64
FOLDS = 4
SHORTCUT = (1, 3)  # the seeds whose member reads the marker

CONFIG = """name = "family-test"
seed = 0
[model]
factory = "family_nets:build"
num_classes = 2
weights = "{root}/members/seed-0.safetensors"
[data]
manifest = "{root}/manifest.csv"
classes = ["left", "right"]
image_size = [32, 32]
channels = 1
mean = [0.0]
std = [1.0]
batch_size = 32
[selection]
k = 2
per_class = 1
[explainers]
methods = ["saliency"]
[views]
embeddings = []
probe_samples = 0
[cache]
enabled = false
[report]
formats = ["json"]
[rules]
pack = "{pack}"
"""


@pytest.fixture(scope="session")
def family_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Held-out images (manifest: path, label, marker, fold) and members/seed-{0..4}.safetensors (clean) and
    members/cue-{0..4}.safetensors (reading the marker)."""
    root = tmp_path_factory.mktemp("family")
    (root / "img").mkdir()
    (root / "members").mkdir()
    x, y, marker = images(N)
    with (root / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "marker", "fold"])
        for i in range(N):
            Image.fromarray(x[i], mode="L").save(root / "img" / f"{i:03d}.png")
            w.writerow([f"img/{i:03d}.png", ("left", "right")[y[i]], "yes" if marker[i] else "no", (i // 4) % FOLDS])
    for s in range(5):
        save_file(weights(s, shortcut=False), str(root / "members" / f"seed-{s}.safetensors"))
        save_file(weights(s, shortcut=True), str(root / "members" / f"cue-{s}.safetensors"))
    return root


@pytest.fixture(scope="session")
def family_config(family_root: Path) -> Callable[..., Path]:
    """write(name, pack_text, members_toml) -> the config's path (the [[family]] entries appended as given)."""

    def write(name: str, pack: str, members: str) -> Path:
        folder = family_root / name
        folder.mkdir()
        (folder / "pack.toml").write_text(pack)
        cfg = folder / "audit.toml"
        cfg.write_text(CONFIG.format(root=family_root.as_posix(), pack=(folder / "pack.toml").as_posix())
                       + members)
        return cfg

    return write


SEEDS_PACK = """[pack]
name = "family-test"
[[rule]]
id = "accuracy-floor"
kind = "metric_min"
metric = "accuracy"
threshold = 0.7
[[rule]]
id = "marker-use"
kind = "confounder_metadata"
columns = ["marker"]
probe = false
n_permutations = 199
[[rule]]
id = "accuracy-spread"
kind = "family_spread_max"
threshold = 0.05
[[rule]]
id = "answer-agreement"
kind = "family_agreement_min"
min_kappa = 0.8
[[rule]]
id = "saliency-agreement"
kind = "family_explanation_agreement_min"
explainer = "saliency"
statistic = "top_overlap"
threshold = 0.95
[[rule]]
id = "marker-members"
kind = "family_members_fail_max"
rule = "marker-use"
max_failing = 0
"""


def seed_members(cue: tuple[int, ...]) -> str:
    """Seeds 0-3, seed-0 released; ``cue``: the seeds whose member reads the marker. Top-k overlap on the 64 pixels
    (6.25 %) of a class's spot: a clean member's largest saliencies are its spot, a cue member's for the second
    class are the marker's 16 pixels and 48 of the spot."""
    out = '\n[[family]]\nname = "seed-0"\nreleased = true\n'
    for s in (1, 2, 3):
        kind = "cue" if s in cue else "seed"
        out += f'\n[[family]]\nname = "seed-{s}"\nweights = "../members/{kind}-{s}.safetensors"\n'
    return out + "\n[family_audit]\ntop_fraction = 0.0625\n"


@pytest.fixture(scope="session")
def underspecified(family_config: Callable[..., Path]) -> AuditResult:
    """Seeds 1 and 3 read the marker; the released seed-0 does not."""
    return run_audit(load_config(family_config("seeds-cue", SEEDS_PACK, seed_members(SHORTCUT))))


@pytest.fixture(scope="session")
def clean(family_config: Callable[..., Path]) -> AuditResult:
    """Four clean seeds."""
    return run_audit(load_config(family_config("seeds-clean", SEEDS_PACK, seed_members(()))))
