"""The [robustness] section: accuracy (the task's own metric) under common corruptions, adversarial robustness and
out-of-distribution detection. Off unless configured; each part runs when its table is present (an empty
``[robustness.corruptions]`` runs the defaults). Names of corruptions, detectors and far-OOD sets are judged by
their registries in the inputs stage, before the model runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .model_data import _Strict

LINF_EPS = (1 / 255, 2 / 255, 4 / 255)
L2_EPS = (0.1, 0.25, 0.5)


def _unique(values: list[Any], what: str) -> list[Any]:
    if not values:
        raise ValueError(f"at least one {what} is needed")
    dupes = sorted({str(v) for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{what} listed twice: {', '.join(dupes)}")
    return values


class CorruptionsConfig(_Strict):
    """The task's metric under each corruption at each severity, per class where the task has classes."""

    names: list[str] = Field(
        default_factory=lambda: ["imagenet_c"],
        description="corruptions (`audit list`), or the sets 'imagenet_c' (the 15 of ImageNet-C), 'imagenet_c_extra' "
        "(its 4 extra ones), or a family: 'noise', 'blur', 'weather', 'digital', 'acquisition', 'medical'")
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], description="severities 1-5")
    subset: int = Field(default=500, ge=0, le=10_000_000, description="held-out samples corrupted (seeded subset); 0: "
                        "every scored sample")
    examples: int = Field(default=2, ge=0, le=8, description="samples drawn at each severity in the report")
    frost_textures: Path | None = Field(
        default=None, description="folder of the frost photographs imagecorruptions ships (frost1.png ... frost6.jpg); "
        "default: synthetic frost textures with their statistics (not the photographs)")

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return _unique(v, "corruption")

    @field_validator("severities")
    @classmethod
    def _severities(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if not 1 <= s <= 5]
        if bad:
            raise ValueError(f"severities are 1-5, got {bad}")
        return sorted(_unique(v, "severity"))


class AdversarialConfig(_Strict):
    """Robust accuracy under a gradient attack at each eps, reported only when the gradient-masking checks pass."""

    attack: Literal["pgd", "apgd"] = Field(default="pgd", description="PGD (Madry et al. 2018) or APGD-CE (Croce & "
                                           "Hein 2020)")
    norm: Literal["linf", "l2"] = "linf"
    eps: list[float] | None = Field(
        default=None, description="budgets in [0, 1] pixel units (before mean/std); default 1/255, 2/255, 4/255 "
        "(linf) or 0.1, 0.25, 0.5 (l2)")
    steps: int = Field(default=10, ge=1, le=10_000)
    step_size: float | None = Field(default=None, gt=0, description="PGD's alpha; default 2.5 eps / steps")
    restarts: int = Field(default=1, ge=1, le=100)
    subset: int = Field(default=200, ge=1, le=10_000_000, description="held-out samples attacked (seeded subset)")
    check_subset: int = Field(default=32, ge=4, le=10_000, description="samples of the gradient-masking checks")
    examples: int = Field(default=2, ge=0, le=8, description="adversarial examples drawn in the report")

    @field_validator("eps")
    @classmethod
    def _eps(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        bad = [e for e in v if not e > 0]
        if bad:
            raise ValueError(f"eps must be > 0, got {bad}")
        return sorted(_unique(v, "eps"))

    @property
    def budgets(self) -> list[float]:
        return list(self.eps) if self.eps is not None else list(LINF_EPS if self.norm == "linf" else L2_EPS)


class OODConfig(_Strict):
    """How well OOD scores separate the held-out set from unfamiliar inputs (AUROC, FPR at 95 % TPR)."""

    detectors: list[str] = Field(default_factory=lambda: ["msp", "energy", "max_logit", "mahalanobis", "knn"],
                                 description="OOD scores (`audit list`)")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-detector parameters, e.g. "
                                               "knn = { k = 10 }")
    folder: Path | None = Field(default=None, description="a folder of out-of-distribution images (read recursively, "
                                "preprocessed like the held-out set)")
    far_ood: list[str] = Field(default_factory=lambda: ["uniform_noise", "gaussian_noise", "blank"],
                               description="built-in far-OOD sets: uniform_noise, gaussian_noise, blank, photos")
    n_ood: int = Field(default=200, ge=2, le=1_000_000, description="images per OOD set (a seeded subset of the "
                       "folder)")
    subset: int = Field(default=500, ge=4, le=10_000_000, description="in-distribution held-out samples (seeded)")
    fit_manifest: Path | None = Field(
        default=None, description="a manifest (path + label columns, as data.manifest) of in-distribution images to "
        "fit mahalanobis and knn on; default: a seeded part (fit_fraction) of the held-out subset, the rest scored")
    fit_fraction: float = Field(default=0.5, gt=0, lt=1)

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v: list[str]) -> list[str]:
        return _unique(v, "detector")

    @field_validator("far_ood")
    @classmethod
    def _sets(cls, v: list[str]) -> list[str]:
        return _unique(v, "far-OOD set") if v else v


class RobustnessConfig(_Strict):
    """[robustness]: each part runs when its table is present."""

    corruptions: CorruptionsConfig | None = None
    adversarial: AdversarialConfig | None = None
    ood: OODConfig | None = None
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1, description="default: the audit's seed")

    @model_validator(mode="after")
    def _some_part(self) -> RobustnessConfig:
        if self.corruptions is None and self.adversarial is None and self.ood is None:
            raise ValueError("name at least one part: [robustness.corruptions], [robustness.adversarial] or "
                             "[robustness.ood] (an empty table runs its defaults)")
        if self.ood is not None and self.ood.folder is None and not self.ood.far_ood:
            raise ValueError("ood: no OOD images: set ood.folder or list built-in far_ood sets")
        return self
