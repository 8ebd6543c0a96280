"""The shortcut zoo's models: three architectures trained on a zoo data set, cached on disk.

    cnn     three conv blocks, global average pooling, one linear layer (about 7 k parameters)
    resnet  a ResNet-style net: stem + three basic blocks (16 / 32 / 64 channels, batch norm), GAP, linear
    vit     a tiny vision transformer with a convolutional stem: 8×8 tokens of 64 dims, 3 timm blocks, 4 heads

Training: AdamW with a one-cycle schedule, batch 64, no augmentation (a flip would move a corner tag). A trained
model is cached under ``$MODEL_AUDIT_ZOO_BENCH_CACHE`` (default /tmp/model-audit-zoo-bench) as
``<family>-<arch>-<kind>-<version>-s<seed>-<key>.pt``; the key hashes the data spec, the training spec, the
sources of the data modules (zoo_bases.py, zoo_cues.py, zoo_data.py) and this file's architecture code, and
torch's version, so any change retrains.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from zoo_data import DataSpec, make_set

CACHE = Path(os.environ.get("MODEL_AUDIT_ZOO_BENCH_CACHE", "/tmp/model-audit-zoo-bench"))
ARCHS = ("cnn", "resnet", "vit")
NUM_CLASSES = 3
DATA_MODULES = ("zoo_bases.py", "zoo_cues.py", "zoo_data.py")
MEAN, STD = 0.5, 0.25
EPOCHS = {"cnn": 30, "resnet": 12, "vit": 16}
LR = {"cnn": 5e-3, "resnet": 3e-3, "vit": 2e-3}


@dataclass(frozen=True)
class TrainSpec:
    arch: str
    version: str  # "confounded" | "clean"
    epochs: int
    lr: float
    batch: int = 64
    weight_decay: float = 5e-4


def train_spec(arch: str, version: str) -> TrainSpec:
    return TrainSpec(arch, version, EPOCHS[arch], LR[arch])


class SmallCNN(nn.Module):
    def __init__(self, width: int = 16, num_classes: int = 3) -> None:
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


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (nn.Sequential() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self, width: int = 16, num_classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = BasicBlock(width, width, 1)
        self.layer2 = BasicBlock(width, 2 * width, 2)
        self.layer3 = BasicBlock(2 * width, 4 * width, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layer3(self.layer2(self.layer1(self.stem(x))))).flatten(1))


class TinyViT(nn.Module):
    """A vision transformer with a convolutional stem (Xiao et al. 2021, "Early convolutions help transformers
    see better"): three 3×3 convolutions make an 8×8 grid of 64-dim tokens, plus learned position embeddings,
    three timm transformer blocks (4 heads), mean pooling over tokens, LayerNorm, linear head. A plain 4×4-patch
    ViT trained from scratch on 600 images stays below 55 % held-out accuracy; this one learns the shapes."""

    def __init__(self, dim: int = 64, depth: int = 3, heads: int = 4, num_classes: int = 3) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, dim, 3, 2, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(),
            nn.Conv2d(dim, dim, 3, 1, 1),
        )
        self.pos = nn.Parameter(torch.zeros(1, 64, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio=2.0) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.stem(x).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.norm(self.blocks(t)).mean(1))


def tiny_vit(num_classes: int = 3) -> nn.Module:
    return TinyViT(num_classes=num_classes)


def build(arch: str) -> nn.Module:
    if arch == "cnn":
        return SmallCNN(16, NUM_CLASSES)
    if arch == "resnet":
        return SmallResNet(16, NUM_CLASSES)
    if arch == "vit":
        return tiny_vit(NUM_CLASSES)
    raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")


def to_input(u8: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(u8).float().permute(0, 3, 1, 2) / 255.0 - MEAN) / STD


def code_digest(source: str) -> str:
    """A hash of Python source that ignores comments, docstrings and layout (edits to the words retrain nothing)."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return hashlib.sha1(ast.dump(tree).encode()).hexdigest()


DATA_SOURCES = hashlib.sha1("".join(code_digest(Path(__file__).with_name(m).read_text(encoding="utf-8"))
                                    for m in DATA_MODULES).encode()).hexdigest()
_SOURCES = hashlib.sha1((DATA_SOURCES + "".join(code_digest(inspect.getsource(c)) for c in
                                                (SmallCNN, BasicBlock, SmallResNet, TinyViT))).encode()).hexdigest()


def model_key(data: DataSpec, ts: TrainSpec) -> str:
    blob = json.dumps({"data": asdict(data), "train": asdict(ts), "src": _SOURCES,
                       "torch": torch.__version__.split("+")[0]}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def model_path(data: DataSpec, ts: TrainSpec) -> Path:
    return CACHE / f"{data.family}-{ts.arch}-{data.kind}-{ts.version}-s{data.seed}-{model_key(data, ts)}.pt"


def train(data: DataSpec, ts: TrainSpec) -> nn.Module:
    zs = make_set(data, "train", ts.version)
    torch.manual_seed(data.seed)
    model = build(ts.arch)
    x, y = to_input(zs.images), torch.from_numpy(zs.labels)
    steps = ts.epochs * ((len(x) + ts.batch - 1) // ts.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=ts.lr, weight_decay=ts.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=ts.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(data.seed)
    model.train()
    for _ in range(ts.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), ts.batch):
            idx = perm[s:s + ts.batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def load_or_train(data: DataSpec, ts: TrainSpec) -> tuple[nn.Module, bool]:
    """The trained model (from the cache when there) and whether it was trained now."""
    path = model_path(data, ts)
    if path.is_file():
        model = build(ts.arch)
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval(), False
        except Exception:  # noqa: BLE001, S110 - a stale or corrupt cache entry is retrained
            pass
    t0 = time.perf_counter()
    model = train(data, ts)
    seconds = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({"train_seconds": round(seconds, 1)}))
    return model, True


def train_seconds(data: DataSpec, ts: TrainSpec) -> float | None:
    """How long the cached model took to train (CPU-thread seconds as measured then), if recorded."""
    side = model_path(data, ts).with_suffix(".json")
    try:
        return float(json.loads(side.read_text())["train_seconds"])
    except (OSError, ValueError, KeyError):
        return None


@torch.inference_mode()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    logits = torch.cat([model(to_input(images[s:s + 256])) for s in range(0, len(images), 256)])
    return float((logits.argmax(1).numpy() == labels).mean())
