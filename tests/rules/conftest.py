"""A shortcut zoo for the shortcut rules: small shape data sets built twice from the same images, with a planted
shortcut and clean, tiny GAP CNNs trained on each (cached on disk under /tmp, keyed by a hash of the
generator and training parameters), and a helper that builds an ``Evidence`` without the runner.

Data: 32×32 RGB images, three classes (disc, square, cross) of 7–10 px drawn at a random position (kept
4 px clear of the border) on a noisy grey background; the ROI is the shape's bounding box. A metadata column
``site`` (north / south) is correlated with the label in every version (85 % of 'disc' images are 'north',
15 % of the others). Shortcuts, on 90 % of one target class's images (3 % of the others):
- corner: a red 6×6 tag in the top-left corner (shapes are kept clear of the top-left 8×8 zone in every version);
- frame: a bright 2 px frame around the image;
- tint: a colour cast (red +0.12, blue −0.12) over the whole image;
- site: a faint horizontal stripe texture (+0.08 every 4th row) on every 'north' image (whatever the class).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from audit.datachecks import DataChecks, run_datachecks
from audit.engine.probe import ModelProbe
from audit.explainers import Explainer
from audit.loading.decode import DecodeOptions
from audit.loading.listing import SampleRecord
from audit.loading.preprocess import Preprocess
from audit.products import Picks, Predictions
from audit.rules.evidence import Evidence
from audit.scoring.classification import score
from audit.tasks.multiclass import MulticlassTask

try:
    from audit.selection.classification import select_samples
except ImportError:  # pragma: no cover - the selection module is the lead's
    select_samples = None

ZOO_VERSION = 3
CLASSES = ("disc", "square", "cross")
SHORTCUTS = ("corner", "frame", "tint", "site")
SITE_CLASS = 0  # 'site' is correlated with this class in every version
TARGET = {"none": 0, "corner": 2, "frame": 1, "tint": 0, "site": SITE_CLASS}
MEAN, STD = 0.5, 0.25
CACHE = Path(os.environ.get("MODEL_AUDIT_ZOO_CACHE", "/tmp/model-audit-zoo"))


@dataclass(frozen=True)
class ZooSpec:
    shortcut: str = "none"  # none | corner | frame | tint | site
    target: int = 0  # the class that carries the shortcut
    n_train: int = 600
    n_test: int = 240
    size: int = 32
    rate: float = 0.9
    leak: float = 0.03
    noise: float = 0.06
    shape_sizes: tuple[int, int] = (9, 13)
    contrast: tuple[float, float] = (0.55, 0.95)  # shape intensity range (background ≈ 0.3)
    seed: int = 0
    epochs: int = 25
    width: int = 8
    lr: float = 4e-3
    arch: str = "tiny"  # tiny | vgg

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "v": ZOO_VERSION, "torch": torch.__version__.split("+")[0]},
                          sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ZooData:
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,)
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 (exclusive)
    shortcut: np.ndarray  # (N,) bool: carries the planted shortcut
    site: np.ndarray  # (N,) str


def _shape(kind: int, s: int) -> np.ndarray:
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    c = s / 2
    if kind == 0:
        return ((yy - c) ** 2 + (xx - c) ** 2 <= (s / 2) ** 2).astype(np.float64)
    m = np.zeros((s, s))
    if kind == 1:
        b = max(1, s // 8)
        m[b:s - b, b:s - b] = 1
        return m
    w = max(2, s // 3)
    o = (s - w) // 2
    m[o:o + w, :] = 1
    m[:, o:o + w] = 1
    return m


def make_data(spec: ZooSpec, n: int, split_seed: int) -> ZooData:
    """Images of one split. The clean and every confounded version share the base images exactly."""
    rng = np.random.default_rng([spec.seed, split_seed])
    size = spec.size
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    imgs = np.zeros((n, size, size, 3))
    boxes = np.zeros((n, 4), dtype=np.int64)
    margin = 4
    for i in range(n):
        s = int(rng.integers(spec.shape_sizes[0], spec.shape_sizes[1] + 1))
        while True:  # keep the shape clear of the top-left 8×8 zone (where the corner tag goes)
            x0 = int(rng.integers(margin, size - margin - s + 1))
            y0 = int(rng.integers(margin, size - margin - s + 1))
            if x0 >= 8 or y0 >= 8:
                break
        bg = rng.normal(0.3, spec.noise, (size, size, 3))
        col = rng.uniform(*spec.contrast) * np.ones(3) + rng.normal(0, 0.05, 3)
        m = _shape(int(labels[i]), s)[..., None]
        bg[y0:y0 + s, x0:x0 + s] = bg[y0:y0 + s, x0:x0 + s] * (1 - m) + m * col
        imgs[i] = bg
        boxes[i] = (x0, y0, x0 + s, y0 + s)
    target = spec.target
    has = rng.random(n) < np.where(labels == target, spec.rate, spec.leak)
    site = np.where(rng.random(n) < np.where(labels == SITE_CLASS, 0.85, 0.15), "north", "south")
    sc = spec.shortcut
    if sc == "corner":
        imgs[has, 1:7, 1:7, :] = (1.0, 0.15, 0.15)
    elif sc == "frame":
        for sl in ((slice(None), slice(0, 2)), (slice(None), slice(-2, None)),
                   (slice(0, 2), slice(None)), (slice(-2, None), slice(None))):
            imgs[(has, *sl)] = 0.9
    elif sc == "tint":
        imgs[has, :, :, 0] += 0.12
        imgs[has, :, :, 2] -= 0.12
    elif sc == "site":
        has = site == "north"
        imgs[has, ::4, :, :] += 0.08
    elif sc != "none":
        raise ValueError(sc)
    u8 = (np.clip(imgs, 0, 1) * 255).round().astype(np.uint8)
    return ZooData(u8, labels.astype(np.int64), boxes, has if sc != "none" else np.zeros(n, bool), site)


def to_input(u8: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(u8).float().permute(0, 3, 1, 2) / 255.0 - MEAN) / STD


class TinyCNN(nn.Module):
    """Three conv blocks, global average pooling, one linear layer (Grad-CAM on an 8×8 map)."""

    def __init__(self, width: int = 8, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class VGGish(nn.Module):
    """VGG-style: 8 conv layers with batch norm in 4 stages, GAP, one linear layer (17 parameter layers).
    Deep enough for the randomisation test's reference pattern (guided backprop barely changes)."""

    def __init__(self, width: int = 12, num_classes: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for i, w in enumerate((width, width, 2 * width, 2 * width, 4 * width, 4 * width, 4 * width, 4 * width)):
            if i in (2, 4, 6):
                layers.append(nn.MaxPool2d(2))
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def make_model(spec: ZooSpec) -> nn.Module:
    return VGGish(spec.width, len(CLASSES)) if spec.arch == "vgg" else TinyCNN(spec.width, len(CLASSES))


def train_model(spec: ZooSpec, data: ZooData) -> nn.Module:
    torch.manual_seed(spec.seed)
    model = make_model(spec)
    x, y = to_input(data.images), torch.from_numpy(data.labels)
    bs = 64
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.lr,
                                                total_steps=spec.epochs * ((len(x) + bs - 1) // bs))
    gen = torch.Generator().manual_seed(spec.seed)
    model.train()
    for _ in range(spec.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), bs):
            idx = perm[s:s + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model


@dataclass
class ZooModel:
    spec: ZooSpec
    model: nn.Module
    test: ZooData
    folder: Path  # PNGs of the held-out split

    @property
    def name(self) -> str:
        return self.spec.shortcut


def load_or_train(spec: ZooSpec) -> tuple[nn.Module, ZooData]:
    test = make_data(spec, spec.n_test, 2)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{spec.arch}-{spec.shortcut}-{spec.key()}.pt"
    model = make_model(spec)
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            model.eval()
            return model, test
        except Exception:  # noqa: BLE001, S110 - a stale or corrupt cache entry is retrained
            pass
    model = train_model(spec, make_data(spec, spec.n_train, 1))
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model, test


def write_pngs(data: ZooData, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(data.images):
        p = folder / f"{i:04d}.png"
        if not p.exists():
            Image.fromarray(img, mode="RGB").save(p)


PREPROCESS = Preprocess(size=(32, 32), channels=3, mean=(MEAN,) * 3, std=(STD,) * 3)


def predictions_for(model: nn.Module, zm: ZooData, x: torch.Tensor, ids: list[str],
                    with_features: bool = True) -> Predictions:
    feats: list[torch.Tensor] = []
    lin = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    hook = lin.register_forward_pre_hook(lambda _m, args: feats.append(args[0].detach()))
    try:
        with torch.inference_mode():
            logits = model(x)
    finally:
        hook.remove()
    return Predictions(
        ids=np.array(ids, dtype=object), labels=zm.labels.copy(),
        probs=torch.softmax(logits.float(), 1).numpy().astype(np.float64),
        metadata=pd.DataFrame({"site": zm.site}),
        features=feats[-1].reshape(len(ids), -1).numpy().astype(np.float32) if with_features else None,
    )


def build_evidence(zm: ZooModel, explainers: tuple[str, ...] = ("gradcam",), seed: int = 0,
                   with_roi: bool = True, with_features: bool = True) -> Evidence:
    """An Evidence for a zoo model without the runner: PNG files, SampleRecords, Predictions, Metrics,
    Picks and a fresh ModelProbe (so monkeypatching its explainer cache stays local to a test)."""
    write_pngs(zm.test, zm.folder)
    ids = [f"s{i:04d}" for i in range(len(zm.test.labels))]
    records = [
        SampleRecord(id=sid, path=zm.folder / f"{i:04d}.png", label=int(zm.test.labels[i]),
                     roi_box=tuple(float(v) for v in zm.test.boxes[i]) if with_roi else None,
                     metadata={"site": str(zm.test.site[i])}, source=f"zoo {zm.name} #{i}")
        for i, sid in enumerate(ids)
    ]
    x = to_input(zm.test.images)
    preds = predictions_for(zm.model, zm.test, x, ids, with_features)
    metrics = score(preds, CLASSES, np.random.default_rng(seed))
    picks = (select_samples(preds, CLASSES, 4, 2) if select_samples is not None
             else Picks(overall={}, per_class={}))
    probe = ModelProbe.local(zm.model, records, PREPROCESS, preds, task=MulticlassTask(CLASSES), seed=seed,
                             batch_size=256, explain_batch_size=64, dataset_mean=x.mean(0))
    return Evidence(classes=CLASSES, predictions=preds, metrics=metrics, picks=picks, probe=probe, seed=seed,
                    explainers=explainers, n_listed=len(ids), data=zoo_datachecks(zm, records))


def zoo_datachecks(zm: ZooModel, records: list[SampleRecord]) -> DataChecks:
    """The data-checks stage as the runner runs it: the held-out listing, its metadata and the training listing
    (the training split written as PNGs too, so the train/held-out overlap check applies)."""
    key = (str(zm.folder), len(records), records[0].roi_box is not None)
    if key not in _DATACHECKS:
        train = make_data(zm.spec, zm.spec.n_train, 1)
        write_pngs(train, zm.folder / "train")
        train_records = [SampleRecord(id=f"t{i:04d}", path=zm.folder / "train" / f"{i:04d}.png",
                                      label=int(train.labels[i])) for i in range(len(train.labels))]
        meta = pd.DataFrame({"site": [r.metadata["site"] for r in records]})
        _DATACHECKS[key] = run_datachecks(records, CLASSES, meta, 3, DecodeOptions(), zm.spec.seed, train_records)
    return _DATACHECKS[key]


_DATACHECKS: dict[tuple, DataChecks] = {}


# ---- explainers with a known answer (registered only inside tests, on one probe) ---------------------------

class EdgeExplainer(Explainer):
    """Sobel edge magnitude of the input: ignores the model entirely (must fail the randomisation test)."""

    name = "test_edges"
    title = "Edge map (ignores the model)"
    signed = False
    legend = "test only"

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        g = inputs.detach().float().mean(1, keepdim=True)
        kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
        gx = F.conv2d(F.pad(g, (1, 1, 1, 1), mode="replicate"), kx)
        gy = F.conv2d(F.pad(g, (1, 1, 1, 1), mode="replicate"), kx.transpose(2, 3))
        return (gx**2 + gy**2).sqrt()[:, 0].cpu()


class RandomExplainer(Explainer):
    """Seeded smooth noise, unrelated to input and model (must fail faithfulness)."""

    name = "test_random"
    title = "Random map (test)"
    signed = False
    legend = "test only"

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(inputs.detach().float().abs().sum().item() * 1000) % (2**31))
        r = torch.rand((inputs.shape[0], 1, 8, 8), generator=g)
        return F.interpolate(r, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


class ConstantExplainer(Explainer):
    """All-zero maps (must never pass silently)."""

    name = "test_zero"
    title = "All-zero map (test)"
    signed = False
    legend = "test only"

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.zeros(inputs.shape[0], *inputs.shape[-2:])


class InvertedGradCAM(Explainer):
    """Grad-CAM turned upside down (max − map): ranks the least important pixels first."""

    name = "test_inverted_gradcam"
    title = "Inverted Grad-CAM (test)"
    signed = False
    legend = "test only"

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from audit.explainers.gradcam import GradCAM

        m = GradCAM().explain(model, inputs, targets)
        return m.amax(dim=(1, 2), keepdim=True) - m


TEST_EXPLAINERS = (EdgeExplainer, RandomExplainer, ConstantExplainer, InvertedGradCAM)


def add_test_explainers(ev: Evidence) -> Evidence:
    """Register the test explainers on this evidence's probe only (its explainer cache)."""
    assert ev.probe is not None
    for cls in TEST_EXPLAINERS:
        ev.probe._explainers[cls.name] = cls()
    return ev


# ---- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def zoo(zoo_dir: Path) -> Callable[[str], ZooModel]:
    """zoo(kind) -> the trained ZooModel for 'none' (clean) or a shortcut kind; trained once per session."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    cache: dict[str, ZooModel] = {}

    def get(kind: str, seed: int = 0) -> ZooModel:
        key = f"{kind}-{seed}"
        if key not in cache:
            spec = ZooSpec(shortcut=kind, target=TARGET[kind], seed=seed)
            model, test = load_or_train(spec)
            cache[key] = ZooModel(spec, model, test, zoo_dir / f"{kind}-{spec.key()}")
        return cache[key]

    return get


@pytest.fixture
def evidence_for() -> Callable[..., Evidence]:
    """evidence_for(zoo_model, **kw) -> a fresh Evidence (see build_evidence)."""
    return build_evidence


@pytest.fixture
def with_test_explainers() -> Callable[[Evidence], Evidence]:
    """with_test_explainers(evidence) registers the known-answer explainers on that evidence's probe."""
    return add_test_explainers


VGG_SPEC = ZooSpec(shortcut="none", arch="vgg", width=16, n_train=600, epochs=6, lr=3e-3)


@pytest.fixture(scope="session")
def vgg_evidence(zoo_dir: Path) -> Evidence:
    """Evidence for the clean VGG-style model (trained once, cached on disk: about 30 s on 2 cores)."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model, test = load_or_train(VGG_SPEC)
    return build_evidence(ZooModel(VGG_SPEC, model, test, zoo_dir / f"vgg-{VGG_SPEC.key()}"))


@pytest.fixture(scope="session")
def zoo_evidence(zoo: Callable[[str], ZooModel]) -> Callable[..., Evidence]:
    """zoo_evidence(kind) -> a shared Evidence (its probe caches maps); pass fresh=True for a private one."""
    cache: dict[str, Evidence] = {}

    def get(kind: str, fresh: bool = False, **kw: object) -> Evidence:
        if fresh or kw:
            return build_evidence(zoo(kind), **kw)  # type: ignore[arg-type]
        if kind not in cache:
            cache[kind] = build_evidence(zoo(kind))
        return cache[kind]

    return get


