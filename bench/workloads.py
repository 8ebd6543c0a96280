"""What the benchmark measures: the models and input sizes (workloads), the sizes of every stage per profile
(full, quick, tiny) and the targets, written as speed = reference seconds / pipeline seconds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class Workload:
    name: str
    arch: str  # "resnet18" | "demo_cnn"
    size: int
    channels: int
    width: int = 24  # demo CNN width
    num_classes: int = 10

    @property
    def mean(self) -> tuple[float, ...]:
        return (0.485, 0.456, 0.406) if self.channels == 3 else (0.25,)

    @property
    def std(self) -> tuple[float, ...]:
        return (0.229, 0.224, 0.225) if self.channels == 3 else (0.2,)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(f"c{i}" for i in range(self.num_classes))

    def build(self) -> nn.Module:
        torch.manual_seed(0)
        if self.arch == "resnet18":
            from torchvision.models import resnet18

            return resnet18(weights=None, num_classes=self.num_classes).eval()
        from audit.demo.model import build

        return build(num_classes=self.num_classes, in_channels=self.channels, width=self.width).eval()


RESNET = Workload("resnet18@224", "resnet18", 224, 3)
DEMO = Workload("demo_cnn@64", "demo_cnn", 64, 1)
TINY = Workload("tiny_cnn@32", "demo_cnn", 32, 1, width=4)
WORKLOADS = (RESNET, DEMO, TINY)


@dataclass(frozen=True)
class ExplainCase:
    workload: Workload
    batch: int  # images explained, all in one batch (the probe's explain_batch_size is set to it)
    methods: tuple[str, ...] = ("gradcam", "saliency", "integrated_gradients", "occlusion")
    options: dict[str, dict] = field(default_factory=dict)  # identical for the pipeline and the bare call


@dataclass(frozen=True)
class Profile:
    name: str
    scoring: tuple[tuple[Workload, int, int], ...]  # (workload, N, batch size)
    explain: tuple[ExplainCase, ...]
    perturb: tuple[tuple[Workload, int, int], ...]  # (workload, N, k perturbations)
    memory: tuple[int, int]  # demo CNN images: small N, large N
    render_images: int  # 0: skip the render stage
    render_pdf: bool
    render_picks: tuple[int, int]  # selection.k, selection.per_class
    quantus_images: int
    reps: int


def _opts(ig_steps: int, window: int, stride: int) -> dict[str, dict]:
    return {"integrated_gradients": {"n_steps": ig_steps, "baseline": "zeros"},
            "occlusion": {"window": window, "stride": stride, "perturbations_per_eval": 16}}


PROFILES = {
    "full": Profile(
        "full",
        scoring=((RESNET, 256, 64), (RESNET, 2048, 64), (DEMO, 2048, 128)),
        explain=(ExplainCase(RESNET, 16, options=_opts(8, 32, 32)), ExplainCase(DEMO, 64, options=_opts(16, 16, 8))),
        perturb=((RESNET, 64, 4), (DEMO, 1024, 4)),
        memory=(1000, 10000), render_images=600, render_pdf=True, render_picks=(16, 5), quantus_images=16, reps=3,
    ),
    "quick": Profile(
        "quick",
        scoring=((RESNET, 64, 64), (RESNET, 128, 64), (DEMO, 512, 128)),
        explain=(ExplainCase(RESNET, 8, ("gradcam", "saliency")),
                 ExplainCase(DEMO, 16, options=_opts(8, 16, 16))),
        perturb=((RESNET, 32, 4), (DEMO, 256, 4)),
        memory=(200, 1000), render_images=0, render_pdf=True, render_picks=(16, 4), quantus_images=8, reps=3,
    ),
    # the CI smoke test: every stage, seconds in all
    "tiny": Profile(
        "tiny",
        scoring=((TINY, 16, 8),),
        explain=(ExplainCase(TINY, 4, options=_opts(4, 16, 16)),),
        perturb=((TINY, 16, 2),),
        memory=(20, 40), render_images=12, render_pdf=False, render_picks=(2, 1), quantus_images=2, reps=1,
    ),
}

TARGETS = {  # speed = reference seconds / pipeline seconds
    "scoring": 0.9,
    "captum": 0.9,
    "pytorch_grad_cam": 2.5,
    "perturbation": 1 / 1.2,
    "memory": 1.10,  # peak RSS ratio large / small, at most
    "render_s": 10.0,  # HTML + PDF (+ JSON, JUnit) for >= 100 picks x 4 explainers, seconds, at most
}


def select_profile(name: str, reps: int | None = None, workloads: tuple[str, ...] | None = None) -> Profile:
    """Profile ``name``, with ``reps`` overridden and, given ``workloads`` (names such as "demo_cnn@64"), only
    those kept in the scoring / explainer / perturbation stages."""
    p = PROFILES[name]
    if reps is not None:
        p = dataclasses.replace(p, reps=reps)
    if workloads:
        p = dataclasses.replace(
            p, scoring=tuple(e for e in p.scoring if e[0].name in workloads),
            explain=tuple(c for c in p.explain if c.workload.name in workloads),
            perturb=tuple(e for e in p.perturb if e[0].name in workloads))
    return p
