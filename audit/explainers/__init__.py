"""Explainer registry: registry name -> class. A new method is one module plus one line here."""

from __future__ import annotations

from importlib.metadata import entry_points

from ..errors import ConfigError
from .base import ExplainContext, Explainer, ExplainerParams
from .gradcam import GradCAM

_BUILTIN: tuple[type[Explainer], ...] = (GradCAM,)

ENTRY_POINT_GROUP = "model_audit.explainers"


def registry() -> dict[str, type[Explainer]]:
    """Built-in explainers plus those third parties expose through the entry-point group."""
    reg = {cls.name: cls for cls in _BUILTIN}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        reg.setdefault(cls.name, cls)
    return reg


def build_explainer(name: str, options: dict | None = None, context: ExplainContext | None = None) -> Explainer:
    """Instantiate a registered explainer with validated parameters (errors name the method and field)."""
    from pydantic import ValidationError

    reg = registry()
    if name not in reg:
        raise ConfigError(f"explainers: unknown explainer {name!r}; known: {', '.join(sorted(reg))}")
    cls = reg[name]
    try:
        params = cls.Params.model_validate(options or {})
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ConfigError(f"explainers.options.{name}: {detail}") from None
    return cls(params, context)


__all__ = ["ExplainContext", "Explainer", "ExplainerParams", "build_explainer", "registry"]
