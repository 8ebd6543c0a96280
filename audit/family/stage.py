"""The family stage (``[[family]]``): every member scored through the engine and judged on the rows it was not
trained on, the mean ensemble as a member too, and the statistics across members. The pack's rules per member are
evaluated afterwards (``rules.family.outcomes``), once the released model's main rules have run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import ENSEMBLE, AuditConfig, FamilyAuditConfig, FamilyMemberConfig
from ..engine.cache import model_digest
from ..engine.predict import Scored
from ..engine.probe import ModelProbe
from ..loading.model import LoadedModel
from ..loading.preprocess import Preprocess
from ..loading.records import HeldOutSet
from ..products import Predictions
from ..tasks.base import Task
from .agreement import map_pairs, prediction_pairs
from .ensemble import SUPPORTED
from .members import Scored1, Scoring, answers, cut_probe, score_ensemble, score_member, subset
from .pooled import metric_values, pool, released_check
from .result import FamilyRun, MemberRun, Role
from .rows import Folds, resolve_folds
from .stats import spread

RELEASED = "released"  # the released member's name when no entry describes it


def _member(name: str, role: Role, s: Scored1, rows: np.ndarray, fold: np.ndarray | None, cfg: AuditConfig,
            names: Sequence[str]) -> MemberRun:
    preds = subset(s.predictions, rows)
    metrics = s.task.metrics(preds, np.random.default_rng(cfg.seed), cfg.data.subgroups)
    values, intervals = metric_values(metrics, names)
    right = s.task.outcome(s.predictions)
    return MemberRun(name=name, role=role, source=s.source, digest=s.digest, rows=rows, fold=fold,
                     answers=answers(s.predictions), right=None if right is None else np.asarray(right, dtype=bool),
                     predictions=preds, metrics=metrics, picks=s.task.select(preds, cfg.selection.k,
                                                                            cfg.selection.per_class),
                     probe=cut_probe(s.probe, rows, preds), values=values, intervals=intervals)


def _shared_picks(cfg: AuditConfig, task: Task, probe: ModelProbe, preds: Predictions, rows: np.ndarray
                  ) -> tuple[list[str], np.ndarray]:
    """The released model's picks among the rows no member was trained on, and the output each map explains (the
    pick's own target, else the task's target for the released model's answer or the label)."""
    if not len(rows):
        return [], np.zeros(0, dtype=np.int64)
    items = task.select(subset(preds, rows), cfg.selection.k, cfg.selection.per_class).all_items()
    ids = [sid for sid, _ in items]
    default = probe.targets_for(ids, cfg.explainers.target) if ids else np.zeros(0, dtype=np.int64)
    return ids, np.array([d if t is None else t for (_, t), d in zip(items, default, strict=True)], dtype=np.int64)


def run_family(cfg: AuditConfig, heldout: HeldOutSet, preprocess: Preprocess, task: Task, loaded: LoadedModel,
               scored: Scored, probe: ModelProbe, metrics: Sequence[str], explainers: Sequence[str],
               images_sha256: str) -> FamilyRun | None:
    """The family of ``cfg.family`` beside the released model (``scored``: its fitted predictions, ``probe``: its
    model service); None without ``[[family]]``. ``metrics``: the metrics compared (the task's key metric first);
    ``explainers``: those whose maps are compared."""
    if not cfg.family:
        return None
    settings = cfg.family_audit or FamilyAuditConfig()
    preds = scored.predictions
    released: FamilyMemberConfig | None = next((m for m in cfg.family if m.released), None)
    entries = [(released.name if released else RELEASED, released)] + [(m.name, m) for m in cfg.family
                                                                         if not m.released]
    folds = resolve_folds(entries, preds, [r.id for r in heldout.records])
    notes = list(folds.notes)
    names = list(dict.fromkeys([task.key_metric, *metrics]))
    s = Scoring(cfg, heldout, preprocess, task, preds.ids, images_sha256)
    first = Scored1(loaded.source, model_digest(probe.model), task, preds, probe, probe.model)
    scored_all: dict[str, Scored1] = {entries[0][0]: first}
    for name, entry in entries[1:]:
        assert entry is not None
        scored_all[name] = score_member(s, entry)
    members = [_member(name, "released" if i == 0 else "member", scored_all[name], folds.judged(name),
                       folds.folds[name], cfg, names) for i, (name, _) in enumerate(entries)]
    if settings.ensemble and task.name in SUPPORTED:
        ens = score_ensemble(s, [x.module for x in scored_all.values()], list(scored_all))
        scored_all[ENSEMBLE] = ens
        folds = Folds({**folds.folds, ENSEMBLE: folds.untrained}, folds.shared, folds.n, folds.notes)
        if len(folds.untrained):
            members.append(_member(ENSEMBLE, "ensemble", ens, folds.untrained, None, cfg, names))
        else:
            ens.probe.engine.close()
            notes.append("the mean ensemble is not judged: every row is in some member's training data")
    elif settings.ensemble:
        notes.append(f"no mean ensemble: task {task.name!r} has no probability form to average")
    if any(f is not None for f in folds.folds.values()) and not len(folds.untrained):
        notes.append("no row is outside every member's training data (no shared test rows): members are not "
                     "compared with each other, only through their out-of-fold figures")
    ids, targets = _shared_picks(cfg, task, probe, preds, folds.untrained)
    maps, status = map_pairs(members, explainers, ids, targets, settings.top_fraction)
    trained = [m for m in members if m.trained]
    return FamilyRun(
        members=tuple(members), folds=folds, key_metric=task.key_metric, metrics=tuple(names),
        spreads={k: spread(np.array([m.values[k] for m in trained]), settings.level) for k in names},
        pairs=prediction_pairs(members, folds), maps=maps, explainers=status, map_ids=tuple(ids),
        pooled=pool(members, {k: v.predictions for k, v in scored_all.items()}, folds.folds, task, names, cfg.seed,
                    cfg.data.subgroups),
        released=released_check(members, task.key_metric, settings.level), level=settings.level,
        top_fraction=settings.top_fraction, notes=tuple(notes))
