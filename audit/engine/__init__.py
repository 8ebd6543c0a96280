"""Engines run the model for every stage. Registry: engine name -> Engine class; a new engine is one module plus one
line here (or an entry point in the group ``model_audit.engines``)."""

from __future__ import annotations

from ..config import AuditConfig
from ..loading.model import LoadedModel
from ..plugins import Registry
from ..tasks.base import Task
from .base import Engine, PredictOutput, ScoringOptions, ScoringProgress
from .local import LocalEngine
from .ray_engine import RayEngine  # imports Ray only when a RayEngine starts

_BUILTIN: tuple[type[Engine], ...] = (LocalEngine, RayEngine)

ENTRY_POINT_GROUP = "model_audit.engines"
ENGINES: Registry[type[Engine]] = Registry(_BUILTIN, ENTRY_POINT_GROUP, "name", "compute.engine", "engine")


def registry() -> dict[str, type[Engine]]:
    """Built-in engines plus those third parties expose through the entry-point group."""
    return ENGINES.all()


def engine_class(name: str) -> type[Engine]:
    """The engine called ``name``, installed (ConfigError naming compute.engine otherwise)."""
    cls = ENGINES.get(name)
    cls.check_available()
    return cls


def start_engine(cfg: AuditConfig, loaded: LoadedModel, task: Task) -> Engine:
    """The stage that starts the configured engine (``compute.engine``, through the registry) with the model on its
    device and the compute settings resolved."""
    return engine_class(cfg.compute.engine).from_config(cfg, loaded, task)


__all__ = ["Engine", "LocalEngine", "PredictOutput", "ScoringOptions", "ScoringProgress", "engine_class",
           "registry", "start_engine"]
