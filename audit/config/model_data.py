"""The [model] and [data] sections of the audit config: where the model and the held-out set come from."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

MODEL_SOURCES = ("torchvision", "timm", "huggingface", "torchscript", "factory", "pickle", "python")
DATA_SOURCES = ("image_folder", "manifest", "dataframe")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """Where the model comes from: exactly one of torchvision, timm, huggingface, torchscript, factory, pickle."""

    torchvision: str | None = None
    timm: str | None = Field(default=None, description="a timm architecture name, built with pretrained=False")
    huggingface: Path | None = Field(default=None, description="a local save_pretrained folder (config + weights)")
    torchscript: Path | None = None
    factory: str | None = None
    pickle: Path | None = Field(default=None, description="a fully pickled nn.Module; needs allow_pickle")
    python: str | None = Field(default=None, description="set by audit.run(model=...): the in-memory model's class")
    num_classes: int | None = Field(default=None, ge=1)
    weights: Path | None = None
    factory_kwargs: dict[str, Any] = Field(default_factory=dict)
    architecture_kwargs: dict[str, Any] = Field(default_factory=dict, description="torchvision keyword arguments")
    model_kwargs: dict[str, Any] = Field(default_factory=dict, description="timm.create_model keyword arguments")
    output: str | int | None = Field(
        default=None, description="which part of forward's result holds the logits: a key or attribute name, or an "
        "index into a tuple; default: the tensor itself, .logits of a ModelOutput, the first tensor of a tuple")
    allow_pickle: bool = False
    task: str = Field(default="auto", description="what the outputs mean: auto (multi-label listing -> multilabel, "
                      "two classes -> binary, else multiclass) or a task type `audit list` shows")
    output_kind: Literal["auto", "logits", "probabilities"] = Field(
        default="auto", description="'probabilities' when forward already applies softmax/sigmoid; 'auto' reads "
        "logits and refuses outputs that look like probabilities; 'logits' reads logits without that check")
    threshold: float | dict[str, float] | None = Field(
        default=None, description="binary / multi-label operating threshold on the probability, one or per label "
        "(default 0.5); an anomaly detector's threshold on its score")
    operating_point: str | None = Field(
        default=None, pattern=r"^(sensitivity|specificity|precision)>=(0(\.\d+)?|1(\.0+)?)$|^youden$|^f1$",
        description="choose the threshold on the held-out set instead: 'sensitivity>=0.95', 'specificity>=0.9', "
        "'precision>=0.8', 'youden' or 'f1' (max F1) (reported as chosen on the test data; an anomaly detector without "
        "a threshold gets 'f1')")
    name: str | None = None
    version: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        sources = [k for k in MODEL_SOURCES if getattr(self, k)]
        if len(sources) != 1:
            got = ", ".join(sources) if sources else "none"
            raise ValueError(
                "exactly one of 'torchvision', 'timm', 'huggingface', 'torchscript', 'factory' or 'pickle' must be "
                "set; got " + got
            )
        if self.threshold is not None and self.operating_point is not None:
            raise ValueError("give either 'threshold' or 'operating_point', not both")
        if self.task == "anomaly":  # a raw anomaly score: any finite value
            values = self.threshold.values() if isinstance(self.threshold, dict) else [self.threshold]
            if not all(v is None or math.isfinite(v) for v in values):
                raise ValueError("'threshold' must be a finite anomaly score")
        elif isinstance(self.threshold, float) and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"'threshold' must lie strictly between 0 and 1; got {self.threshold}")
        if self.task != "anomaly" and isinstance(self.threshold, dict) and \
                not all(0.0 < v < 1.0 for v in self.threshold.values()):
            raise ValueError("every per-label 'threshold' must lie strictly between 0 and 1")
        if self.huggingface and self.weights:
            raise ValueError("'weights' cannot be combined with 'huggingface' (the folder holds its weights)")
        if self.factory and ":" not in self.factory:
            raise ValueError(f"'factory' must look like 'package.module:function'; got {self.factory!r}")
        if self.torchscript and self.weights:
            raise ValueError("'weights' cannot be combined with 'torchscript' (the file holds its weights)")
        if self.pickle and not self.allow_pickle:
            raise ValueError(
                "'pickle' loads arbitrary code; set allow_pickle = true to opt in (the report will say so)"
            )
        return self


class DataConfig(_Strict):
    """The held-out set and how images become model inputs."""

    image_folder: Path | None = None
    dataframe: str | None = Field(default=None, description="set by audit.run(data=...): the in-memory manifest")
    manifest: Path | None = None
    classes: list[str] | None = Field(default=None, description="order = model output index")
    label_separator: str = Field(default="|", min_length=1, max_length=3,
                                 description="separates the labels of a multi-label 'labels' column")
    image_size: tuple[int, int] | None = Field(default=None, description="(height, width) of model input")
    channels: Literal[1, 3] = 3
    mean: list[float] | None = None
    std: list[float] | None = None
    batch_size: int = Field(default=64, ge=1, le=65536)
    num_workers: int = Field(default=0, ge=0, le=64)
    subgroups: list[str] = Field(default_factory=list, description="metadata columns to score per value")
    on_bad_image: Literal["fail", "skip"] = "fail"
    allow_outside_root: bool = False
    train_manifest: Path | None = Field(
        default=None, description="the training listing (CSV like the manifest): the data checks look for held-out "
        "images that also appear in it (leakage)")
    checks: list[Literal["properties", "metadata", "duplicates", "train_overlap"]] = Field(
        default_factory=lambda: ["properties", "metadata", "duplicates", "train_overlap"],
        description="the data checks computed in the model-free pass over the held-out set: image properties and "
        "metadata columns that alone predict a class, duplicates across classes, training/held-out overlap (with "
        "train_manifest); [] = none (the pass then only reads the files for the data fingerprint)")
    resize: Literal["stretch", "letterbox", "center_crop"] = Field(
        default="stretch", description="how images meet image_size: stretch, letterbox (pad) or center_crop")
    resize_to: int | tuple[int, int] | None = Field(
        default=None, description="center_crop in two steps: resize the image first (an int: its shortest edge to "
        "that length, keeping the aspect ratio; [h, w]: to that size), then cut the centre image_size out of it")
    crop_pct: float | None = Field(
        default=None, gt=0.0, le=1.0, description="center_crop as timm and ConvNeXt do it: resize_to = "
        "floor(image_size / crop_pct) (the shortest edge for a square image_size, else each side)")
    crop_rounding: Literal["round", "floor"] = Field(
        default="round", description="the centre crop's offset (resized size - image_size) / 2 rounded as "
        "torchvision's CenterCrop does (round) or as Hugging Face's processors do (floor)")
    interpolation: Literal["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"] = Field(
        default="bilinear", description="the resampling filter for image pixels (masks: nearest)")
    resampler: Literal["pillow", "torch"] = Field(
        default="pillow", description="the library that resamples: Pillow, or torchvision's resize of tensors "
        "(antialiased), as Hugging Face's default (torchvision-backend) image processors do")
    preprocessing: Literal["auto", "model", "config"] = Field(
        default="auto", description="'model': the model's own preprocessing in full (a Hugging Face folder's image "
        "processor; timm's data config: crop_pct, interpolation, mean, std); 'auto': 'model' for Hugging Face, for "
        "timm only image_size, mean and std; 'config': the data section alone")
    pad_value: float = Field(default=0.0, ge=0.0, le=1.0,
                             description="letterbox border: a decoded intensity in [0, 1], before mean/std")
    value_range: tuple[float, float] | None = Field(
        default=None, description="raw pixel values (lo, hi) mapped to [0, 1] for every non-DICOM image")
    window: tuple[float, float] | None = Field(
        default=None, description="DICOM VOI window (center, width); wins over the files' window tags")
    swapped_size: Literal["refuse", "finding"] = Field(
        default="refuse", description="when most images have image_size's aspect ratio the other way round (the "
        "(height, width) pair given as (width, height)): 'refuse' (exit 2) or 'finding' (audit as configured; an "
        "error finding blocks the verdict)")

    @field_validator("value_range")
    @classmethod
    def _range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"value_range must be two finite numbers [lo, hi] with lo < hi; got {list(v)}")
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[1] >= 1):
            raise ValueError(f"window must be [center, width] with finite values and width >= 1; got {list(v)}")
        return v

    @field_validator("image_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        if isinstance(v, int):
            return (v, v)
        return v

    @field_validator("image_size")
    @classmethod
    def _size_positive(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (v[0] < 1 or v[1] < 1 or v[0] > 8192 or v[1] > 8192):
            raise ValueError(f"image_size must be between 1 and 8192 pixels; got {v}")
        return v

    @field_validator("std")
    @classmethod
    def _std_positive(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not all(0 < s < math.inf for s in v):
            raise ValueError("every std value must be a finite number > 0")
        return v

    @field_validator("mean")
    @classmethod
    def _mean_finite(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not all(math.isfinite(m) for m in v):
            raise ValueError("every mean value must be a finite number")
        return v

    @field_validator("resize_to", mode="before")
    @classmethod
    def _resize_to(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)) and len(v) == 1:
            return v[0]
        return v

    @model_validator(mode="after")
    def _crop_steps(self) -> DataConfig:
        two_step = [k for k in ("resize_to", "crop_pct") if getattr(self, k) is not None]
        if two_step and self.resize != "center_crop":
            raise ValueError(f"'{two_step[0]}' needs resize = \"center_crop\" (it sets how the image is resized "
                             "before the centre is cut)")
        if len(two_step) == 2:
            raise ValueError("give either 'resize_to' or 'crop_pct', not both")
        to = self.resize_to
        sides = (to,) if isinstance(to, int) else to or ()
        if any(not 1 <= s <= 16384 for s in sides):
            raise ValueError(f"resize_to must be between 1 and 16384 pixels; got {to}")
        if isinstance(to, tuple) and self.image_size is not None and (to[0] < self.image_size[0]
                                                                      or to[1] < self.image_size[1]):
            raise ValueError(f"resize_to {list(to)} is smaller than image_size {list(self.image_size)}: the centre "
                             "crop would need padding")
        if isinstance(to, int) and self.image_size is not None and to < min(self.image_size):
            raise ValueError(f"resize_to {to} (the shortest edge) is smaller than image_size "
                             f"{list(self.image_size)}: the centre crop would need padding")
        if self.resampler == "torch":
            if self.interpolation in ("box", "hamming"):
                raise ValueError(f"interpolation = {self.interpolation!r} has no torch resampler (torchvision "
                                 "resizes tensors with nearest, bilinear, bicubic or lanczos)")
            if self.resize == "center_crop" and not two_step:
                raise ValueError("resampler = \"torch\" with resize = \"center_crop\" needs resize_to or crop_pct "
                                 "(the one-step crop resamples a sub-pixel box, which only Pillow does)")
        return self

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        given = [k for k in DATA_SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of 'image_folder' or 'manifest' must be set"
                             + (f"; got {', '.join(given)}" if given else ""))
        for name in ("mean", "std"):
            val = getattr(self, name)
            if val is not None and len(val) not in (1, self.channels):
                raise ValueError(f"'{name}' needs 1 or {self.channels} values (channels = {self.channels})")
        if self.classes is not None:
            if len(self.classes) < 2:
                raise ValueError("'classes' needs at least two class names")
            if len(set(self.classes)) != len(self.classes):
                raise ValueError("'classes' has duplicate names")
        return self
