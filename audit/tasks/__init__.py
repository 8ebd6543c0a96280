"""Task registry: task name -> Task class. A new task type is one module plus one line here (or an entry point
in the group ``model_audit.tasks``)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points

from ..errors import ConfigError
from .anomaly import AnomalyTask
from .base import ReportSection, SampleSummary, Task, TaskMetrics, TaskOptions
from .binary import BinaryTask
from .multiclass import MulticlassTask
from .multilabel import MultilabelTask
from .segmentation import SegmentationTask

_BUILTIN: tuple[type[Task], ...] = (MulticlassTask, BinaryTask, MultilabelTask, SegmentationTask, AnomalyTask)

ENTRY_POINT_GROUP = "model_audit.tasks"


def registry() -> dict[str, type[Task]]:
    """Built-in tasks plus those third parties expose through the entry-point group."""
    reg = {cls.name: cls for cls in _BUILTIN}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        reg.setdefault(cls.name, cls)
    return reg


def build_task(name: str, classes: Sequence[str], extra: dict[str, type[Task]] | None = None,
               options: TaskOptions | None = None) -> Task:
    """The task named in the config, for these classes (``extra``: tasks supplied by the caller, e.g. a test)."""
    reg = {**registry(), **(extra or {})}
    if name not in reg:
        raise ConfigError(f"model.task: unknown task {name!r}; known: {', '.join(sorted(reg))}")
    return reg[name](classes, options)


__all__ = ["ReportSection", "SampleSummary", "Task", "TaskMetrics", "TaskOptions", "build_task", "registry"]
