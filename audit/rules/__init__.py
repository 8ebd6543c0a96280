"""Rule registry: kind -> class. A new rule kind is one module plus one line here."""

from __future__ import annotations

from importlib.metadata import entry_points

from .base import Rule, RuleParams
from .baseline_explanation_change import BaselineExplanationChange
from .baseline_flips import BaselineFlips
from .baseline_metric_drop import BaselineMetricDrop
from .baseline_new_failures import BaselineNewFailures
from .baseline_recall_drop import BaselineRecallDrop
from .class_recall import ClassRecallMin
from .concept_reliance import ConceptReliance
from .confounder_metadata import ConfounderMetadata
from .confounder_region import ConfounderRegion
from .confusion import ConfusionMax
from .data_confounder import DataConfounder
from .data_duplicates import DataDuplicates
from .evidence_complete import EvidenceComplete
from .explanation_sanity import ExplanationSanity
from .faithfulness import Faithfulness
from .metric import MetricMax, MetricMin
from .roi_attribution import RoiAttribution
from .shortcut_discovery import ShortcutDiscovery
from .skipped import SkippedMax

_BUILTIN: tuple[type[Rule], ...] = (
    MetricMin, MetricMax, ClassRecallMin, ConfusionMax, SkippedMax,
    RoiAttribution,
    ConfounderRegion,
    ConfounderMetadata,
    DataConfounder,
    DataDuplicates,
    ShortcutDiscovery,
    ExplanationSanity,
    Faithfulness,
    ConceptReliance,
    BaselineMetricDrop, BaselineRecallDrop, BaselineFlips, BaselineNewFailures, BaselineExplanationChange,
    EvidenceComplete,
)

ENTRY_POINT_GROUP = "model_audit.rules"


def registry() -> dict[str, type[Rule]]:
    """Built-in rule kinds plus those third parties expose through the entry-point group."""
    reg = {cls.kind: cls for cls in _BUILTIN}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        reg.setdefault(cls.kind, cls)
    return reg


__all__ = ["Rule", "RuleParams", "registry"]
