"""One registry helper for every kind of plugin (tasks, rule kinds, explainers, engines, output formats, image
corruptions, OOD detectors): the built-in plugins, plus those third parties expose through an entry-point group,
looked up by a name each plugin carries. A plugin is a class (a task, a rule kind, ...) or a frozen instance (a
corruption: a function with its parameters). A new plugin is one module and one line in its package's ``_BUILTIN``
tuple (or one entry point)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Registry(Generic[T]):
    """Plugins of one kind, by name (``T``: a plugin class's type, ``type[Rule]``, or an instance's, ``Corruption``).
    ``key``: the attribute holding a plugin's name; ``field`` and ``what`` word the error for an unknown name
    ("compute.engine: unknown engine 'x'; known: local, ray")."""

    builtin: tuple[T, ...]
    group: str  # entry-point group, e.g. "model_audit.engines"
    key: str  # "name" or "kind"
    field: str  # where the name is configured, e.g. "compute.engine"
    what: str  # "engine"

    def all(self, extra: Mapping[str, T] | None = None) -> dict[str, T]:
        """Built-in plugins, then entry points (a built-in name wins), then ``extra`` (a caller's own, e.g. a test's)."""
        reg = {getattr(p, self.key): p for p in self.builtin}
        for ep in entry_points(group=self.group):
            plugin = ep.load()
            reg.setdefault(getattr(plugin, self.key), plugin)
        reg.update(extra or {})
        return reg

    def get(self, name: str, extra: Mapping[str, T] | None = None) -> T:
        """The plugin called ``name``; ConfigError naming the field and the known names otherwise."""
        reg = self.all(extra)
        if name not in reg:
            raise ConfigError(f"{self.field}: unknown {self.what} {name!r}; known: {', '.join(sorted(reg))}")
        return reg[name]
