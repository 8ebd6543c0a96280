"""One registry helper for every kind of plugin (tasks, rule kinds, explainers, engines, output formats): the
built-in classes, plus those third parties expose through an entry-point group, looked up by a name each class
carries. A new plugin is one module and one line in its package's ``_BUILTIN`` tuple (or one entry point)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Registry(Generic[T]):
    """Plugins of one kind, by name. ``key``: the class attribute holding a plugin's name; ``field`` and ``what``
    word the error for an unknown name ("compute.engine: unknown engine 'x'; known: local, ray")."""

    builtin: tuple[type[T], ...]
    group: str  # entry-point group, e.g. "model_audit.engines"
    key: str  # "name" or "kind"
    field: str  # where the name is configured, e.g. "compute.engine"
    what: str  # "engine"

    def all(self, extra: Mapping[str, type[T]] | None = None) -> dict[str, type[T]]:
        """Built-in plugins, then entry points (a built-in name wins), then ``extra`` (a caller's own, e.g. a test's)."""
        reg = {getattr(cls, self.key): cls for cls in self.builtin}
        for ep in entry_points(group=self.group):
            cls = ep.load()
            reg.setdefault(getattr(cls, self.key), cls)
        reg.update(extra or {})
        return reg

    def get(self, name: str, extra: Mapping[str, type[T]] | None = None) -> type[T]:
        """The plugin called ``name``; ConfigError naming the field and the known names otherwise."""
        reg = self.all(extra)
        if name not in reg:
            raise ConfigError(f"{self.field}: unknown {self.what} {name!r}; known: {', '.join(sorted(reg))}")
        return reg[name]
