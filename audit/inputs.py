"""The first stage: everything that can be checked before the model runs (data listing, rule pack, task,
explainer names and options, preprocessing)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from torch import nn

from .config import AuditConfig, DataConfig
from .engine import engine_class
from .errors import ConfigError, ExplainerError
from .explainers import build_explainer
from .explainers import registry as explainer_registry
from .explainers.layers import named_module
from .loading.listing import load_heldout
from .loading.preprocess import Preprocess, make_preprocess
from .loading.records import HeldOutSet
from .loading.sources import data_defaults
from .robustness.plugins import resolve as resolve_robustness
from .rules.base import Rule
from .rules.family.base import check_family_rules
from .rules.pack import RulePack, find_pack, load_pack, with_automatic_rules
from .tasks import Task, TaskOptions, build_task
from .tasks.base import CAPABILITIES


def with_model_defaults(cfg: AuditConfig) -> tuple[AuditConfig, tuple[str, ...]]:
    """The config with the data fields it leaves out filled from the model's own preprocessing (a Hugging Face
    folder's preprocessor_config.json, timm's pretrained config), and a note saying which fields and whence."""
    values, whence = data_defaults(cfg)
    unset = {k: v for k, v in values.items() if k not in cfg.data.model_fields_set}
    if not unset:
        return cfg, ()
    data = DataConfig.model_validate({**cfg.data.model_dump(), **unset})
    note = f"data.{', data.'.join(sorted(unset))} taken from {whence}"
    return cfg.model_copy(update={"data": data}), (note,)


@dataclass(frozen=True)
class Inputs:
    """The validated inputs of one audit."""

    heldout: HeldOutSet
    pack: RulePack
    task: Task
    preprocess: Preprocess
    notes: tuple[str, ...] = ()  # e.g. data fields filled from the model's own preprocessing

    @property
    def classes(self) -> tuple[str, ...]:
        return self.heldout.classes

    @property
    def source(self) -> str:
        return self.heldout.source


def task_options(cfg: AuditConfig) -> TaskOptions:
    mc = cfg.model
    return TaskOptions(output_kind=mc.output_kind, threshold=mc.threshold, operating_point=mc.operating_point)


def task_name(declared: str, heldout: HeldOutSet) -> str:
    """model.task, or for "auto" what the listing implies: class masks are segmentation, label sets multilabel, two
    classes a binary task (one sigmoid output or a two-way softmax), more multiclass. (An anomaly detector is named:
    its 'normal' / 'anomalous' listing reads like a binary one.)"""
    listed = "segmentation" if heldout.masks else "multilabel" if heldout.multilabel else None
    if declared != "auto":
        if listed is not None and declared != listed:
            what = "class masks (segmentation)" if heldout.masks else "label sets (multi-label)"
            raise ConfigError(f"model.task = {declared!r}, but the manifest lists {what}")
        if declared == "segmentation" and not heldout.masks:
            raise ConfigError("model.task = 'segmentation' needs a 'mask' column in the manifest (PNG of class indices)")
        if heldout.defect_masks and declared != "anomaly":
            raise ConfigError(f"model.task = {declared!r} does not read the manifest's 'mask' column (defect masks are "
                              "read by model.task = 'anomaly'; a classifier's region of interest is 'roi_mask')")
        return declared
    if heldout.defect_masks:
        raise ConfigError("the manifest has 'label' and 'mask' columns (an inspection set with defect masks): set "
                          "model.task = 'anomaly', or name the region of interest of a classifier 'roi_mask'")
    if listed is not None:
        return listed
    return "binary" if len(heldout.classes) == 2 else "multiclass"


def check_applies(rule: Rule, task: Task, automatic: bool = False) -> None:
    """ConfigError when the task lacks a capability the rule's kind reads (``Rule.needs`` against
    ``Task.provides``); ``automatic``: the audit added the rule (its description says why)."""
    missing = sorted(rule.needs - task.provides)
    if missing:
        what = "; ".join(CAPABILITIES.get(m, m) for m in missing)
        why = f" ({rule.params.description})" if automatic else ""
        raise ConfigError(f"rule {rule.params.id!r}{why}: kind {rule.kind!r} does not apply to task {task.name!r} (it "
                          f"needs {what})" + (f"; {task.rule_hint}" if task.rule_hint and not automatic else ""))
def marked_concepts(cfg: AuditConfig) -> dict[str, str]:
    """The concepts [concepts] marks forbidden or required, with their role (each gets a concept_reliance check)."""
    sets = cfg.concepts.sets if cfg.concepts is not None else {}
    return {n: "forbidden" if c.forbidden else "required" for n, c in sets.items() if c.forbidden or c.required}


def prepare_inputs(cfg: AuditConfig, tasks: dict[str, type[Task]] | None = None,
                   notes: tuple[str, ...] = (), frame: pd.DataFrame | None = None) -> Inputs:
    """Validate the listing, the rule pack (every kind applicable to the task; 'default' is the task's default
    pack; the automatic rules added), the explainers and their options.

    ``tasks``: extra task classes by name, beside the registered ones (for callers that bring their own)."""
    heldout = load_heldout(cfg, frame)
    name = task_name(cfg.model.task, heldout)
    pack = with_automatic_rules(load_pack(find_pack(cfg.rules.pack, cfg.base_dir, name)), marked_concepts(cfg))
    task = build_task(name, heldout.classes, tasks, task_options(cfg))
    for rule in pack.rules:
        check_applies(rule, task, rule.params.id in pack.automatic)
    check_family_rules(cfg, pack.rules)  # [[family]]: what the family rules count is judged per member
    for name in cfg.explainers.methods:
        build_explainer(name, cfg.explainers.options.get(name))  # ConfigError names unknown ones
    unknown_opts = set(cfg.explainers.options) - set(explainer_registry())
    if unknown_opts:
        raise ConfigError(f"explainers.options: unknown explainer(s) {', '.join(sorted(unknown_opts))}")
    engine_class(cfg.compute.engine)  # a known engine, installed
    resolve_robustness(cfg)  # [robustness]: corruptions, OOD detectors and sets known, folders present
    if cfg.data.image_size is None:
        raise ConfigError("data.image_size: required (the model's input height and width)")
    return Inputs(heldout=heldout, pack=pack, task=task, preprocess=make_preprocess(cfg.data), notes=notes)


def check_configured_layers(cfg: AuditConfig, model: nn.Module) -> None:
    """Every layer the config names (explainer options ``layer`` / ``layers``, ``views.probe_layers``) exists in
    the loaded model: a user who asked for a layer gets exit 2, not a report without it."""
    named: list[tuple[str, str]] = []
    for method in cfg.explainers.methods:
        params = build_explainer(method, cfg.explainers.options.get(method)).params
        one = getattr(params, "layer", None)
        many = getattr(params, "layers", None) or []
        named += [(f"explainers.options.{method}.layer", one)] if one else []
        named += [(f"explainers.options.{method}.layers", n) for n in many]
    named += [("views.probe_layers", n) for n in cfg.views.probe_layers or []]
    for field, name in named:
        try:
            named_module(model, name)
        except ExplainerError as e:
            raise ConfigError(f"{field}: {e}") from None
