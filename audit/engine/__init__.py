"""Engines run the model for every stage. Registry: engine name -> Engine class; a new engine is one module
plus one line here."""

from __future__ import annotations

from ..errors import ConfigError
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


__all__ = ["Engine", "LocalEngine", "PredictOutput", "ScoringOptions", "ScoringProgress", "engine_class",
           "registry"]
