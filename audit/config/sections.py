"""The other sections of the audit config (selection, explainers, views, cache, compute, rules, report, model
card, concepts) and the whole config, ``AuditConfig``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .family import FamilyAuditConfig, FamilyMemberConfig, check_family
from .model_data import DataConfig, ModelConfig, _Strict
from .robustness import RobustnessConfig
from .slices import SlicesConfig


class SelectionConfig(_Strict):
    """How many samples to pick for a closer look."""

    k: int = Field(default=4, ge=0, le=1000, description="picks per category overall")
    per_class: int = Field(default=1, ge=0, le=100, description="picks per category and class")


class ExplainersConfig(_Strict):
    """Explainers drawn for every picked sample (rules may run others on demand)."""

    methods: list[str] = Field(default_factory=lambda: ["gradcam"])
    target: Literal["predicted", "label"] = "predicted"
    batch_size: int = Field(default=16, ge=1, le=4096)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-method parameters")


class ViewsConfig(_Strict):
    """Model-level views: embeddings of penultimate features and per-layer linear probes."""

    embeddings: list[Literal["pca", "tsne"]] = Field(default_factory=lambda: ["pca", "tsne"])
    max_samples: int = Field(default=500, ge=3, le=100_000, description="samples embedded (seeded subset)")
    probe_layers: list[str] | None = None  # default: up to five conv layers from input to output
    probe_samples: int = Field(default=400, ge=0, le=100_000, description="0 switches the probe off")


class CacheConfig(_Strict):
    """Reuse predictions when model weights, images and preprocessing are unchanged."""

    enabled: bool = True
    dir: Path = Path(".audit-cache")
    checkpoint_seconds: float = Field(default=30.0, ge=0.0, description="scoring progress saved this often")


class ComputeConfig(_Strict):
    """Where the model passes run (this process, or a Ray cluster) and inference speed-ups: autocast (inference
    passes only, never explainers) and channels-last memory format."""

    engine: str = Field(
        default="local", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="an engine of the registry (checked by the inputs stage): 'local' runs every pass in this process, "
        "'ray' scores on Ray Data and runs rule work on Ray actors (model-audit[ray])")
    address: str | None = Field(
        default=None, description="Ray cluster to join ('auto', 'ray://head:10001'); default: RAY_ADDRESS, else a "
        "Ray instance started on this machine")
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs per Ray model worker (actor)")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs per Ray model worker; > 0 runs the workers on CUDA")
    concurrency: int = Field(default=1, ge=1, le=100_000, description="Ray model workers (actors)")
    decode_cpus: float = Field(default=1.0, gt=0, description="CPUs per Ray decoding task")
    storage: str | None = Field(
        default=None, description="where Ray workers write scored batches: a folder every node reaches, or a URI "
        "pyarrow opens (s3://bucket/prefix); default: <cache.dir>/ray")
    autocast: Literal["off", "auto", "fp16", "bf16"] = Field(
        default="off", description="'auto' = fp16 on CUDA; changes probabilities slightly, so off by default")
    channels_last: Literal["auto", "on", "off"] = Field(
        default="auto", description="'auto' = on for models with 2-D convolutions when a test forward agrees")


class RulesConfig(_Strict):
    pack: str = "default"  # a name of a bundled pack (rules/<name>.toml) or a path


class MlflowConfig(_Strict):
    """Where ``[report] mlflow`` logs the audit (pip install "model-audit[mlflow]")."""

    tracking_uri: str = Field(description="MLflow tracking URI, e.g. 'file:///srv/mlruns', 'sqlite:///mlflow.db' or "
                              "'http://mlflow:5000'; a relative file: path is read from the config's folder")
    experiment: str = Field(default="model-audit", min_length=1, description="experiment name (created when missing)")
    run_name: str | None = Field(default=None, description="default: the audit's name")
    artifact_path: str = Field(default="audit-report", description="folder of the run's artifacts holding the report")

    @model_validator(mode="after")
    def _mlflow_installed(self) -> MlflowConfig:
        import importlib.util

        if importlib.util.find_spec("mlflow") is None:
            raise ValueError('logging to MLflow needs the mlflow package: pip install "model-audit[mlflow]"')
        return self


class ReportConfig(_Strict):
    formats: list[str] = Field(
        default_factory=lambda: ["html", "pdf", "json", "junit"],
        description="output formats of the registry (audit.report.writers, checked before the audit runs): html, "
        "pdf, json, junit, model_card (model_card.md in the Hugging Face layout + model_card.json in the Model Card "
        "Toolkit layout), annex_iv (annex_iv.md + annex_iv.json: EU AI Act Annex IV headings the audit can evidence)",
    )
    title: str | None = None
    save_maps: bool = Field(default=True, description="keep the report's maps in maps.npz (float16) for comparisons")
    pdf_variant: Literal["pdf/a-1b", "pdf/a-2b", "pdf/a-3b", "pdf/a-2u", "pdf/a-3u", "pdf/ua-1"] | None = Field(
        default=None, description="archival PDF variant written by WeasyPrint (not validated here)")
    mlflow: MlflowConfig | None = Field(default=None, description="log metrics, rule results, verdict, config and the "
                                        "report folder to an MLflow run after the report is written")


class ModelCardConfig(_Strict):
    """User-supplied model-card fields, printed in the report, kept in provenance and used by the model_card and
    annex_iv exports (which say they are the provider's statements, not verified by the audit)."""

    intended_use: str = ""
    out_of_scope_uses: str = ""
    owner: str = ""
    version: str = ""
    limitations: str = ""
    description: str = Field(default="", description="what the model is and does, in a paragraph")
    intended_users: str = ""
    license: str = ""
    contact: str = ""
    references: list[str] = Field(default_factory=list)
    citation: str = ""
    training_data: str = Field(default="", description="where the training data came from (the audit sees only the "
                               "held-out set)")
    ethical_considerations: str = ""
    tradeoffs: str = ""
    human_oversight: str = Field(default="", description="how people oversee the system in use (Annex IV 2(e), 3)")
    risk_management: str = Field(default="", description="the risk-management system the audit feeds (Annex IV 5)")
    post_market_monitoring: str = Field(default="", description="how performance is monitored after release (Annex "
                                        "IV 9)")
    standards: list[str] = Field(default_factory=list, description="harmonised standards or specifications applied")


class ConceptSetConfig(_Strict):
    """One concept (Kim et al. 2018): a folder of images that show it, and what the concept_reliance rule makes of
    it."""

    folder: Path = Field(description="images showing the concept, preprocessed like the held-out set")
    forbidden: bool = Field(default=False, description="concept_reliance fails when a class significantly uses it")
    required: bool = Field(default=False, description="concept_reliance fails when a class does not use it")
    classes: list[str] | None = Field(default=None, description="classes (labels) tested for it; default: all")
    description: str = ""

    @model_validator(mode="after")
    def _one_role(self) -> ConceptSetConfig:
        if self.forbidden and self.required:
            raise ValueError("a concept cannot be both forbidden and required")
        if self.classes is not None and not self.classes:
            raise ValueError("'classes' is empty: leave it out to test every class")
        return self


class ConceptsConfig(_Strict):
    """Concept tests with TCAV (Kim et al. 2018): one CAV per concept, layer and random counterexample set; TCAV
    scores per class, a t-test against random CAVs, Bonferroni over the tests."""

    sets: dict[str, ConceptSetConfig] = Field(description="named concept folders")
    random_folder: Path | None = Field(
        default=None, description="random counterexample images; default: seeded subsets of the held-out set")
    layers: list[str] | None = Field(default=None, description="default: up to 3 block layers spread through the "
                                     "model (the input-side one left out when there are more than 3)")
    runs: int = Field(default=10, ge=3, le=1000, description="random counterexample sets = CAVs per concept and layer")
    set_size: int = Field(default=50, ge=5, le=10_000, description="images per concept and random set")
    max_inputs: int = Field(default=100, ge=1, le=100_000, description="inputs scored per class (seeded subset)")
    min_inputs: int = Field(default=10, ge=2, le=100_000, description="classes with fewer inputs are not tested")
    activations: Literal["flatten", "mean"] = Field(
        default="flatten", description="flatten a layer's output (Kim et al.) or average it over positions/tokens")
    classifier: Literal["sgd", "logistic"] = Field(
        default="sgd", description="CAV classifier: SGD hinge, alpha 0.01 (Kim et al., captum) or logistic")
    min_cav_accuracy: float = Field(default=0.7, ge=0.5, le=1.0,
                                    description="below this held-out accuracy a layer cannot separate the concept")

    @field_validator("sets")
    @classmethod
    def _names(cls, v: dict[str, ConceptSetConfig]) -> dict[str, ConceptSetConfig]:
        if not v:
            raise ValueError('at least one concept set is needed, e.g. [concepts.sets.ruler] folder = "concepts/ruler"')
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}", name):
                raise ValueError(f"concept name {name!r}: letters, digits, space, '.', '_', '-' only (at most 64)")
        return v


class AuditConfig(_Strict):
    name: str = Field(default="audit", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    model: ModelConfig
    data: DataConfig
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    explainers: ExplainersConfig = Field(default_factory=ExplainersConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    views: ViewsConfig = Field(default_factory=ViewsConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    model_card: ModelCardConfig = Field(default_factory=ModelCardConfig)
    concepts: ConceptsConfig | None = Field(default=None, exclude_if=lambda v: v is None)  # off unless configured
    robustness: RobustnessConfig | None = Field(default=None, exclude_if=lambda v: v is None)  # off unless configured
    slices: SlicesConfig | None = Field(default=None, exclude_if=lambda v: v is None)  # off unless configured
    # [[family]]: checkpoints of the released model's recipe audited beside it (off unless configured)
    family: list[FamilyMemberConfig] = Field(default_factory=list, exclude_if=lambda v: not v)
    family_audit: FamilyAuditConfig | None = Field(default=None, exclude_if=lambda v: v is None)
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="", exclude=True)  # the config file read, for the report's re-run line

    @field_validator("family")
    @classmethod
    def _family(cls, v: list[FamilyMemberConfig], info: ValidationInfo) -> list[FamilyMemberConfig]:
        return check_family(v, info.data.get("model"))

    @field_validator("family_audit")
    @classmethod
    def _family_audit(cls, v: FamilyAuditConfig | None, info: ValidationInfo) -> FamilyAuditConfig | None:
        if v is not None and not info.data.get("family"):
            raise ValueError("needs [[family]] entries (the members to audit)")
        return v

    def resolve(self, p: Path) -> Path:
        """A config-relative path made absolute."""
        return p if p.is_absolute() else (self.base_dir / p)

    def to_jsonable(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"base_dir", "source"})
