"""The audit config: one TOML file validated by pydantic, plus CLI overrides.

Relative paths in the file are resolved against the file's folder. Errors name the file and the field.
``model_data``: the [model] and [data] sections; ``sections``: the others and ``AuditConfig``; ``read``: reading,
overriding and validating a file.
"""

from .family import ENSEMBLE, FamilyAuditConfig, FamilyMemberConfig, OutOfFoldColumn, member_model
from .model_data import DATA_SOURCES, MODEL_SOURCES, DataConfig, ModelConfig
from .read import (
    OVERRIDE_KEY,
    build_config,
    config_from_dict,
    format_validation_error,
    load_config,
    parse_override,
    read_config_tree,
    set_dotted,
)
from .robustness import AdversarialConfig, CorruptionsConfig, OODConfig, RobustnessConfig
from .sections import (
    AuditConfig,
    CacheConfig,
    ComputeConfig,
    ConceptsConfig,
    ConceptSetConfig,
    ExplainersConfig,
    MlflowConfig,
    ModelCardConfig,
    ReportConfig,
    RulesConfig,
    SelectionConfig,
    ViewsConfig,
)
from .slices import SlicesConfig

__all__ = [
    "DATA_SOURCES",
    "ENSEMBLE",
    "MODEL_SOURCES",
    "OVERRIDE_KEY",
    "AdversarialConfig",
    "AuditConfig",
    "CacheConfig",
    "ComputeConfig",
    "ConceptSetConfig",
    "ConceptsConfig",
    "CorruptionsConfig",
    "DataConfig",
    "ExplainersConfig",
    "FamilyAuditConfig",
    "FamilyMemberConfig",
    "MlflowConfig",
    "ModelCardConfig",
    "ModelConfig",
    "OODConfig",
    "OutOfFoldColumn",
    "ReportConfig",
    "RobustnessConfig",
    "RulesConfig",
    "SelectionConfig",
    "SlicesConfig",
    "ViewsConfig",
    "build_config",
    "config_from_dict",
    "format_validation_error",
    "load_config",
    "member_model",
    "parse_override",
    "read_config_tree",
    "set_dotted",
]
