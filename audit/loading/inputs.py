"""The first stage: everything that can be checked before the model runs (data listing, rule pack, task,
explainer names and options, preprocessing)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import AuditConfig
from ..errors import ConfigError
from ..explainers import build_explainer
from ..explainers import registry as explainer_registry
from ..rules.pack import RulePack, find_pack, load_pack
from ..tasks import Task, build_task
from .listing import HeldOutSet, load_heldout
from .preprocess import Preprocess, make_preprocess


@dataclass(frozen=True)
class Inputs:
    """The validated inputs of one audit."""

    heldout: HeldOutSet
    pack: RulePack
    task: Task
    preprocess: Preprocess

    @property
    def classes(self) -> tuple[str, ...]:
        return self.heldout.classes

    @property
    def source(self) -> str:
        """The data source as named in messages and the report: the manifest, else the image folder."""
        return str(self.heldout.manifest or self.heldout.root)


def prepare_inputs(cfg: AuditConfig, tasks: dict[str, type[Task]] | None = None) -> Inputs:
    """Validate the listing, the rule pack (every kind applicable to the task), the explainers and their options.

    ``tasks``: extra task classes by name, beside the registered ones (for callers that bring their own)."""
    heldout = load_heldout(cfg)
    pack = load_pack(find_pack(cfg.rules.pack, cfg.base_dir))
    task = build_task(cfg.model.task, heldout.classes, tasks)
    for rule in pack.rules:
        task.check_rule_kind(rule.kind, rule.params.id)
    for name in cfg.explainers.methods:
        build_explainer(name, cfg.explainers.options.get(name))  # ConfigError names unknown ones
    unknown_opts = set(cfg.explainers.options) - set(explainer_registry())
    if unknown_opts:
        raise ConfigError(f"explainers.options: unknown explainer(s) {', '.join(sorted(unknown_opts))}")
    if cfg.data.image_size is None:
        raise ConfigError("data.image_size: required (the model's input height and width)")
    return Inputs(heldout=heldout, pack=pack, task=task, preprocess=make_preprocess(cfg.data))
