"""One tiny audit per built-in task type for the common checks: held-out images with ROIs and a metadata column,
a small model (trained in a second or two, or the examples' hand-built nets), a concept folder for TCAV and a
config; plus the helpers that turn a rule kind's examples into a pack for one of them."""

from __future__ import annotations

import csv
import importlib
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from audit.compare.reports import load_results
from audit.compare.stage import Baseline
from audit.config import load_config
from audit.demo import examples
from audit.demo.model import DemoCNN
from audit.maps.store import load_maps
from audit.report.output import write_outputs
from audit.result import AuditResult
from audit.rules import registry as rule_registry
from audit.runner import run_audit
from audit.tasks import registry as task_registry

TOYS = Path(__file__).resolve().parent / "toys"
TASKS = ("multiclass", "binary", "multilabel", "segmentation", "anomaly")


@contextmanager
def toys_registered() -> Iterator[Path]:
    """The test-only plugins registered while inside (for collection-time parameters and wider fixtures)."""
    sys.path.insert(0, str(TOYS))
    importlib.invalidate_caches()
    try:
        yield TOYS
    finally:
        sys.path.remove(str(TOYS))
        for name in [m for m in sys.modules if m.startswith("toy_")]:
            del sys.modules[name]


SIZE = 32
SPOTS = ((4, 4), (20, 4), (12, 20))  # top-left corner (y, x) of each label's 8x8 square


@dataclass(frozen=True)
class AuditSet:
    task: str
    root: Path
    config: Path  # the set's audit.toml (its pack is chosen with --set rules.pack=...)


def squares(n: int, labels: np.ndarray, seed: int) -> np.ndarray:
    """Dark noisy canvases with a bright 8x8 square per positive label (labels (n, K) 0/1), at a place of its own."""
    rng = np.random.default_rng(seed)
    imgs = np.clip(rng.normal(0.2, 0.08, (n, SIZE, SIZE)), 0, 1)
    for i in range(n):
        for j, on in enumerate(labels[i]):
            if on:
                y0, x0 = SPOTS[j]
                imgs[i, y0:y0 + 8, x0:x0 + 8] = 0.9
    return (imgs * 255).astype(np.uint8)


def train(imgs: np.ndarray, y: np.ndarray, outputs: int, multilabel: bool) -> DemoCNN:
    torch.manual_seed(0)
    m = DemoCNN(num_classes=outputs, width=4)
    x = torch.from_numpy(imgs.astype(np.float32) / 255).unsqueeze(1)
    t = torch.from_numpy(y)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(12):
        for s in range(0, len(x), 32):
            opt.zero_grad()
            out = m(x[s:s + 32])
            if multilabel:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(out, t[s:s + 32].float())
            else:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], t[s:s + 32].float())
            loss.backward()
            opt.step()
    return m.eval()


CONFIG = """name = "{task}-contract"
seed = 0
[model]
task = "{task}"
factory = "audit.demo.model:build"
factory_kwargs = {{ width = 4 }}
weights = "weights.safetensors"
num_classes = {outputs}
[data]
manifest = "manifest.csv"
classes = {classes}
image_size = [{size}, {size}]
channels = 1
batch_size = 16
subgroups = ["site"]
[selection]
k = 2
per_class = 1
[explainers]
methods = ["gradcam"]
[views]
embeddings = []
probe_samples = 0
[report]
formats = ["json"]
"""


def squares_set(root: Path, task: str) -> AuditSet:
    """binary: a square at one place (present / absent); multilabel: up to three squares, each its own label."""
    multilabel = task == "multilabel"
    rng = np.random.default_rng(5)
    k = 3 if multilabel else 1
    y = (rng.random((140, k)) < 0.5).astype(np.int64)
    imgs = squares(140, y, seed=6)
    model = train(imgs[:80], y[:80] if multilabel else y[:80, 0], k, multilabel)
    root.mkdir(parents=True)
    (root / "img").mkdir()
    save_file({n: v.contiguous() for n, v in model.state_dict().items()}, str(root / "weights.safetensors"))
    classes = ("top", "bottom", "middle") if multilabel else ("absent", "present")
    with (root / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", *(list(classes) if multilabel else ["label"]), "roi_x0", "roi_y0", "roi_x1", "roi_y1",
                    "site"])
        for i in range(80, 140):
            rel = f"img/{i:03d}.png"
            Image.fromarray(imgs[i], mode="L").save(root / rel)
            y0, x0 = SPOTS[int(np.argmax(y[i])) if y[i].any() else 0]
            label = [int(v) for v in y[i]] if multilabel else [classes[int(y[i, 0])]]
            w.writerow([rel, *label, x0, y0, x0 + 8, y0 + 8, "A" if i % 2 else "B"])
    config = root / "audit.toml"
    config.write_text(CONFIG.format(task=task, outputs=k, classes=list(classes), size=SIZE).replace("'", '"'))
    return AuditSet(task, root, config)


def example_set(root: Path, task: str) -> AuditSet:
    """The segmentation and inspection examples (hand-built nets with known answers), one explainer."""
    config = (examples.prepare_segmentation(root, clean=True, n=30) if task == "segmentation"
              else examples.prepare_inspection(root, clean=True, n=40))
    return AuditSet(task, root, config)


def with_concepts(s: AuditSet, like: Path) -> AuditSet:
    """A forbidden concept the layers can tell from random images (a bright square in the bottom-right corner on
    noise, at the size of the set's image ``like``), tested cheaply (3 runs of 5 images)."""
    folder = s.root / "concept-x"
    folder.mkdir()
    w, h = Image.open(like).size
    rng = np.random.default_rng(9)
    for i in range(8):
        img = np.clip(rng.normal(0.2, 0.08, (h, w)), 0, 1)
        img[h - h // 3:, w - w // 3:] = 0.95
        Image.fromarray((img * 255).astype(np.uint8), mode="L").save(folder / f"c{i}.png")
    text = s.config.read_text()
    s.config.write_text(text + "\n[concepts]\nruns = 3\nset_size = 5\nmax_inputs = 10\nmin_inputs = 2\n"
                               "[concepts.sets.x]\nfolder = \"concept-x\"\nforbidden = true\n")
    return s


def pack_toml(entries: list[tuple[str, str, dict[str, Any]]]) -> str:
    """A rule pack of (id, kind, fields) entries."""
    lines = ['[pack]\nname = "contract"\n']
    for rid, kind, fields in entries:
        lines.append(f'[[rule]]\nid = "{rid}"\nkind = "{kind}"')
        lines += [f"{k} = {toml_value(v)}" for k, v in fields.items()]
        lines.append("")
    return "\n".join(lines)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def filled(fields: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A rule example with its {metric}, {class0}, {class1} named for one audit."""
    def one(v: Any) -> Any:
        if isinstance(v, str):
            return v.format(**names)
        if isinstance(v, list):
            return [one(x) for x in v]
        return v
    return {k: one(v) for k, v in fields.items()}


@dataclass(frozen=True)
class ContractAudit:
    audit_set: AuditSet
    result: AuditResult
    names: dict[str, str]  # what the rule examples' {metric}, {class0}, {class1} stood for


def headline_metric(result: AuditResult) -> str:
    """A headline metric of the task that its metrics can state (a finite scalar)."""
    section = result.task.results_sections(result.metrics)["metrics"]
    for name, value in section.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            try:
                if math.isfinite(result.metrics.scalar(name)):
                    return name
            except (KeyError, ValueError):
                continue
    raise AssertionError(f"task {result.task.name!r} states no finite headline metric")


def audit_with_every_kind(s: AuditSet, work: Path) -> ContractAudit:
    """Audit ``s`` once with a one-rule pack (the baseline report), then with every rule kind whose needs the task
    meets (each of its examples once) against that baseline."""
    first_pack = work / "first.toml"
    first_pack.write_text(pack_toml([("skipped", "skipped_max", {})]))
    base = ["cache.enabled=false", 'report.formats=["json"]']
    first = run_audit(load_config(s.config, [*base, f'rules.pack="{first_pack}"']))
    write_outputs(first, work / "baseline", ["json"])
    groups = first.task.groups()
    names = {"metric": headline_metric(first), "class0": groups[0], "class1": groups[-1]}
    provides = task_registry()[s.task].provides
    entries = [(f"{kind}-{i}", kind, filled(ex, names)) for kind, cls in rule_registry().items()
               if cls.needs <= provides for i, ex in enumerate(cls.examples)]
    pack = work / "all.toml"
    pack.write_text(pack_toml(entries))
    baseline = Baseline(load_results(work / "baseline"), load_maps(work / "baseline" / "maps.npz"), False)
    result = run_audit(load_config(s.config, [*base, f'rules.pack="{pack}"']), baseline=baseline)
    return ContractAudit(s, result, names)
