"""Rule registry: kind -> class. A new rule kind is one module plus one line here."""

from __future__ import annotations

from ..plugins import Registry
from .base import Rule, RuleParams
from .baseline.explanation_change import BaselineExplanationChange
from .baseline.flips import BaselineFlips
from .baseline.metric_drop import BaselineMetricDrop
from .baseline.new_failures import BaselineNewFailures
from .baseline.recall_drop import BaselineRecallDrop
from .class_recall import ClassRecallMin
from .concept_reliance import ConceptReliance
from .confounder_metadata import ConfounderMetadata
from .confusion import ConfusionMax
from .corruption_floor import CorruptionMetricMin
from .data_confounder import DataConfounder
from .data_duplicates import DataDuplicates
from .evidence_complete import EvidenceComplete
from .explanation_sanity import ExplanationSanity
from .faithfulness import Faithfulness
from .family.agreement import FamilyAgreementMin
from .family.explanation_agreement import FamilyExplanationAgreementMin
from .family.members_fail import FamilyMembersFailMax
from .family.spread import FamilySpreadMax
from .metric import MetricMax, MetricMin
from .ood_auroc import OODAurocMin
from .region.confounder_region import ConfounderRegion
from .relative_ce import RelativeCEMax
from .robust_accuracy import RobustAccuracyMin
from .roi_attribution import RoiAttribution
from .shortcut_discovery import ShortcutDiscovery
from .skipped import SkippedMax
from .slice_gap import SliceGapMax

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
    CorruptionMetricMin, RelativeCEMax, RobustAccuracyMin, OODAurocMin,
    SliceGapMax,
    FamilySpreadMax, FamilyAgreementMin, FamilyExplanationAgreementMin, FamilyMembersFailMax,
    EvidenceComplete,
)

ENTRY_POINT_GROUP = "model_audit.rules"
RULES: Registry[type[Rule]] = Registry(_BUILTIN, ENTRY_POINT_GROUP, "kind", "kind", "rule kind")


def registry() -> dict[str, type[Rule]]:
    """Built-in rule kinds plus those third parties expose through the entry-point group."""
    return RULES.all()


__all__ = ["Rule", "RuleParams", "registry"]
