"""The ``[[family]]`` entries and ``[family_audit]``: several checkpoints of one training recipe (k-fold models,
seeds) audited beside the released model (the ``[model]``), and how the family is compared.

A member names its model as ``[model]`` does (a weights file for the configured architecture, or a source of its
own: torchvision, timm, a Hugging Face folder, a factory, TorchScript) and optionally the held-out rows it was not
trained on (``out_of_fold``: sample ids, or a manifest column's values). ``member_model`` turns an entry into the
``[model]`` section it stands for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from .model_data import ModelConfig, _Strict

#: the member sources an entry may name (an in-memory model or a pickled module cannot be a member)
MEMBER_SOURCES = ("torchvision", "timm", "huggingface", "torchscript", "factory")
#: what the report and results.json call the family's mean ensemble (no entry may take the name)
ENSEMBLE = "ensemble"
NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$"


class OutOfFoldColumn(_Strict):
    """The rows of a manifest column that hold given values (e.g. the member's fold number)."""

    column: str = Field(min_length=1, description="a metadata column of the manifest, e.g. 'fold'")
    values: list[str | int] = Field(description="the column's values (compared as text) of the member's rows")

    @field_validator("values")
    @classmethod
    def _some(cls, v: list[str | int]) -> list[str | int]:
        if not v:
            raise ValueError("at least one value is needed")
        return v


class FamilyMemberConfig(_Strict):
    """One checkpoint of the family. Without a source of its own it is the configured architecture with its own
    ``weights``; ``released = true`` marks the entry that describes the ``[model]`` itself (no source, no weights)."""

    name: str = Field(pattern=NAME, description="how the report names the member, e.g. 'fold-3' or 'seed-7'")
    released: bool = Field(default=False, description="this entry is the released model, the [model] section")
    weights: Path | None = None
    torchvision: str | None = None
    timm: str | None = None
    huggingface: Path | None = None
    torchscript: Path | None = None
    factory: str | None = None
    factory_kwargs: dict[str, Any] | None = Field(default=None, description="default: [model]'s when the source is")
    architecture_kwargs: dict[str, Any] | None = None
    model_kwargs: dict[str, Any] | None = None
    num_classes: int | None = Field(default=None, ge=1)
    output: str | int | None = None
    out_of_fold: list[str] | OutOfFoldColumn | None = Field(
        default=None, description="the held-out rows this member was not trained on (its validation fold): sample "
        "ids, or {column, values} of the manifest; unset: it was trained on none of the listed rows")

    @model_validator(mode="after")
    def _source(self) -> FamilyMemberConfig:
        sources = [k for k in MEMBER_SOURCES if getattr(self, k)]
        if self.name.strip().lower() == ENSEMBLE:
            raise ValueError(f"the name {ENSEMBLE!r} is the family's mean ensemble; choose another")
        if self.released:
            if sources or self.weights is not None:
                raise ValueError("the released member is the [model] section itself: it names no source or weights")
            return self
        if len(sources) > 1:
            raise ValueError(f"at most one source per member; got {', '.join(sources)}")
        if not sources and self.weights is None:
            raise ValueError("name the member's 'weights' (for the [model]'s architecture) or a source of its own ("
                             + ", ".join(MEMBER_SOURCES) + ")")
        if self.factory and ":" not in self.factory:
            raise ValueError(f"'factory' must look like 'package.module:function'; got {self.factory!r}")
        if (self.huggingface or self.torchscript) and self.weights:
            raise ValueError("'weights' cannot be combined with 'huggingface' or 'torchscript' (the file holds them)")
        return self

    @property
    def source(self) -> str | None:
        return next((k for k in MEMBER_SOURCES if getattr(self, k)), None)


class FamilyAuditConfig(_Strict):
    """How the family is audited (only with ``[[family]]`` entries)."""

    ensemble: bool = Field(default=True, description="audit the mean of the members' scores as a member too")
    rules: list[str] | None = Field(
        default=None, description="ids of the pack's rules evaluated on every member (k of K members fail); default: "
        "every rule of the main phase")
    top_fraction: float = Field(default=0.1, gt=0.0, le=0.5, description="explanation agreement's top-k overlap: "
                                "the share of pixels with the largest attributions compared")
    level: float = Field(default=0.95, gt=0.5, lt=1.0, description="confidence level of the t-interval across "
                         "members and of the released member's prediction interval")

    @field_validator("rules")
    @classmethod
    def _rules(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            dupes = sorted({r for r in v if v.count(r) > 1})
            if dupes:
                raise ValueError(f"rule id listed twice: {', '.join(dupes)}")
        return v


def check_family(members: list[FamilyMemberConfig], model: ModelConfig | None) -> list[FamilyMemberConfig]:
    """Names unique (case-insensitive), at most one entry marked released, and each entry a valid [model]."""
    seen: dict[str, str] = {}
    for m in members:
        key = m.name.strip().lower()
        if key in seen:
            raise ValueError(f"member name {m.name!r} is used twice")
        seen[key] = m.name
    released = [m.name for m in members if m.released]
    if len(released) > 1:
        raise ValueError(f"only one member can be the released model; marked: {', '.join(released)}")
    if model is not None:
        if members and (model.python or model.pickle):
            raise ValueError("a family needs a [model] named by a file or a factory (not an in-memory or pickled "
                             "module): members inherit its architecture")
        for i, m in enumerate(members):
            if not m.released:
                try:
                    member_model(model, m)
                except ValueError as e:
                    raise ValueError(f"entry {i + 1} ({m.name!r}): {e}") from None
    return members


def member_model(model: ModelConfig, m: FamilyMemberConfig) -> ModelConfig:
    """The ``[model]`` section a member stands for: the member's own source, or the [model]'s architecture with the
    member's weights; how outputs are read (task, output kind, threshold or operating point) is the [model]'s."""
    if m.released:
        return model
    base = model.model_dump(exclude={*MEMBER_SOURCES, "pickle", "python", "weights", "name", "version"})
    if m.source is None:  # the configured architecture with the member's weights
        own = {k: getattr(model, k) for k in MEMBER_SOURCES if getattr(model, k)}
    else:
        own = {m.source: getattr(m, m.source)}
        base.update(factory_kwargs={}, architecture_kwargs={}, model_kwargs={})
    for key in ("factory_kwargs", "architecture_kwargs", "model_kwargs", "num_classes", "output"):
        if getattr(m, key) is not None:
            base[key] = getattr(m, key)
    return ModelConfig.model_validate({**base, **own, "weights": m.weights, "name": m.name})
