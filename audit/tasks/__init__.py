"""Task registry: task name -> Task class. A new task type is one module plus one line here (or an entry point
in the group ``model_audit.tasks``)."""

from __future__ import annotations

from collections.abc import Sequence

from ..plugins import Registry
from .anomaly import AnomalyTask
from .base import ReportSection, SampleSummary, Task, TaskMetrics, TaskOptions
from .binary import BinaryTask
from .multiclass import MulticlassTask
from .multilabel import MultilabelTask
from .segmentation import SegmentationTask

_BUILTIN: tuple[type[Task], ...] = (MulticlassTask, BinaryTask, MultilabelTask, SegmentationTask, AnomalyTask)

ENTRY_POINT_GROUP = "model_audit.tasks"
TASKS: Registry[type[Task]] = Registry(_BUILTIN, ENTRY_POINT_GROUP, "name", "model.task", "task")


def registry() -> dict[str, type[Task]]:
    """Built-in tasks plus those third parties expose through the entry-point group."""
    return TASKS.all()


def build_task(name: str, classes: Sequence[str], extra: dict[str, type[Task]] | None = None,
               options: TaskOptions | None = None) -> Task:
    """The task named in the config, for these classes (``extra``: tasks supplied by the caller, e.g. a test)."""
    return TASKS.get(name, extra)(classes, options)


__all__ = ["ReportSection", "SampleSummary", "Task", "TaskMetrics", "TaskOptions", "build_task", "registry"]
