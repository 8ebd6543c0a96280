"""Engines run the model for every stage. Registry: engine name -> Engine class; a new engine is one module
plus one line here."""

from __future__ import annotations

from ..config import AuditConfig
from ..errors import ConfigError
from ..loading.model import LoadedModel
from ..tasks.base import Task
from .base import Engine, PredictOutput, ScoringOptions, ScoringProgress
from .local import LocalEngine
from .ray_engine import RayEngine  # imports Ray only when a RayEngine starts

_BUILTIN: tuple[type[Engine], ...] = (LocalEngine, RayEngine)


def registry() -> dict[str, type[Engine]]:
    return {cls.name: cls for cls in _BUILTIN}


def engine_class(name: str) -> type[Engine]:
    reg = registry()
    if name not in reg:
        raise ConfigError(f"compute.engine: unknown engine {name!r}; known: {', '.join(sorted(reg))}")
    return reg[name]


def start_engine(cfg: AuditConfig, loaded: LoadedModel, task: Task) -> Engine:
    """The stage that starts the configured engine (``compute.engine``, through the registry) with the model on its
    device and the compute settings resolved."""
    return engine_class(cfg.compute.engine).from_config(cfg, loaded, task)


__all__ = ["Engine", "LocalEngine", "PredictOutput", "ScoringOptions", "ScoringProgress", "engine_class",
           "registry", "start_engine"]
