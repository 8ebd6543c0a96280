"""The audit config: one TOML file validated by pydantic, plus CLI overrides.

Relative paths in the file are resolved against the file's folder. Errors name the file and the field.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """Where the model comes from: exactly one of torchvision, timm, huggingface, torchscript, factory, pickle."""

    torchvision: str | None = None
    timm: str | None = Field(default=None, description="a timm architecture name, built with pretrained=False")
    huggingface: Path | None = Field(default=None, description="a local save_pretrained folder (config + weights)")
    torchscript: Path | None = None
    factory: str | None = None
    pickle: Path | None = Field(default=None, description="a fully pickled nn.Module; needs allow_pickle")
    python: str | None = Field(default=None, description="set by audit.run(model=...): the in-memory model's class")
    num_classes: int | None = Field(default=None, ge=1)
    weights: Path | None = None
    factory_kwargs: dict[str, Any] = Field(default_factory=dict)
    architecture_kwargs: dict[str, Any] = Field(default_factory=dict, description="torchvision keyword arguments")
    model_kwargs: dict[str, Any] = Field(default_factory=dict, description="timm.create_model keyword arguments")
    output: str | int | None = Field(
        default=None, description="which part of forward's result holds the logits: a key or attribute name, or an "
        "index into a tuple; default: the tensor itself, .logits of a ModelOutput, the first tensor of a tuple")
    allow_pickle: bool = False
    task: str = Field(default="auto", description="what the outputs mean: auto (multi-label listing -> multilabel, "
                      "two classes -> binary, else multiclass) or a task type `audit list` shows")
    output_kind: Literal["auto", "logits", "probabilities"] = Field(
        default="auto", description="'probabilities' when forward already applies softmax/sigmoid; 'auto' reads "
        "logits and refuses outputs that look like probabilities; 'logits' reads logits without that check")
    threshold: float | dict[str, float] | None = Field(
        default=None, description="binary / multi-label operating threshold on the probability, one or per label "
        "(default 0.5); an anomaly detector's threshold on its score")
    operating_point: str | None = Field(
        default=None, pattern=r"^(sensitivity|specificity|precision)>=(0(\.\d+)?|1(\.0+)?)$|^youden$|^f1$",
        description="choose the threshold on the held-out set instead: 'sensitivity>=0.95', 'specificity>=0.9', "
        "'precision>=0.8', 'youden' or 'f1' (max F1) (reported as chosen on the test data; an anomaly detector without "
        "a threshold gets 'f1')")
    name: str | None = None
    version: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        sources = [k for k in MODEL_SOURCES if getattr(self, k)]
        if len(sources) != 1:
            got = ", ".join(sources) if sources else "none"
            raise ValueError(
                "exactly one of 'torchvision', 'timm', 'huggingface', 'torchscript', 'factory' or 'pickle' must be "
                "set; got " + got
            )
        if self.threshold is not None and self.operating_point is not None:
            raise ValueError("give either 'threshold' or 'operating_point', not both")
        if self.task == "anomaly":  # a raw anomaly score: any finite value
            values = self.threshold.values() if isinstance(self.threshold, dict) else [self.threshold]
            if not all(v is None or math.isfinite(v) for v in values):
                raise ValueError("'threshold' must be a finite anomaly score")
        elif isinstance(self.threshold, float) and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"'threshold' must lie strictly between 0 and 1; got {self.threshold}")
        if self.task != "anomaly" and isinstance(self.threshold, dict) and \
                not all(0.0 < v < 1.0 for v in self.threshold.values()):
            raise ValueError("every per-label 'threshold' must lie strictly between 0 and 1")
        if self.huggingface and self.weights:
            raise ValueError("'weights' cannot be combined with 'huggingface' (the folder holds its weights)")
        if self.factory and ":" not in self.factory:
            raise ValueError(f"'factory' must look like 'package.module:function'; got {self.factory!r}")
        if self.torchscript and self.weights:
            raise ValueError("'weights' cannot be combined with 'torchscript' (the file holds its weights)")
        if self.pickle and not self.allow_pickle:
            raise ValueError(
                "'pickle' loads arbitrary code; set allow_pickle = true to opt in (the report will say so)"
            )
        return self


class DataConfig(_Strict):
    """The held-out set and how images become model inputs."""

    image_folder: Path | None = None
    dataframe: str | None = Field(default=None, description="set by audit.run(data=...): the in-memory manifest")
    manifest: Path | None = None
    classes: list[str] | None = Field(default=None, description="order = model output index")
    label_separator: str = Field(default="|", min_length=1, max_length=3,
                                 description="separates the labels of a multi-label 'labels' column")
    image_size: tuple[int, int] | None = Field(default=None, description="(height, width) of model input")
    channels: Literal[1, 3] = 3
    mean: list[float] | None = None
    std: list[float] | None = None
    batch_size: int = Field(default=64, ge=1, le=65536)
    num_workers: int = Field(default=0, ge=0, le=64)
    subgroups: list[str] = Field(default_factory=list, description="metadata columns to score per value")
    on_bad_image: Literal["fail", "skip"] = "fail"
    allow_outside_root: bool = False
    train_manifest: Path | None = Field(
        default=None, description="the training listing (CSV like the manifest): the data checks look for held-out "
        "images that also appear in it (leakage)")
    resize: Literal["stretch", "letterbox", "center_crop"] = Field(
        default="stretch", description="how images meet image_size: stretch, letterbox (pad) or center_crop")
    pad_value: float = Field(default=0.0, ge=0.0, le=1.0,
                             description="letterbox border: a decoded intensity in [0, 1], before mean/std")
    value_range: tuple[float, float] | None = Field(
        default=None, description="raw pixel values (lo, hi) mapped to [0, 1] for every non-DICOM image")
    window: tuple[float, float] | None = Field(
        default=None, description="DICOM VOI window (center, width); wins over the files' window tags")

    @field_validator("value_range")
    @classmethod
    def _range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"value_range must be two finite numbers [lo, hi] with lo < hi; got {list(v)}")
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[1] >= 1):
            raise ValueError(f"window must be [center, width] with finite values and width >= 1; got {list(v)}")
        return v

    @field_validator("image_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        if isinstance(v, int):
            return (v, v)
        return v

    @field_validator("image_size")
    @classmethod
    def _size_positive(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (v[0] < 1 or v[1] < 1 or v[0] > 8192 or v[1] > 8192):
            raise ValueError(f"image_size must be between 1 and 8192 pixels; got {v}")
        return v

    @field_validator("std")
    @classmethod
    def _std_positive(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not all(0 < s < math.inf for s in v):
            raise ValueError("every std value must be a finite number > 0")
        return v

    @field_validator("mean")
    @classmethod
    def _mean_finite(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not all(math.isfinite(m) for m in v):
            raise ValueError("every mean value must be a finite number")
        return v

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        given = [k for k in DATA_SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of 'image_folder' or 'manifest' must be set"
                             + (f"; got {', '.join(given)}" if given else ""))
        for name in ("mean", "std"):
            val = getattr(self, name)
            if val is not None and len(val) not in (1, self.channels):
                raise ValueError(f"'{name}' needs 1 or {self.channels} values (channels = {self.channels})")
        if self.classes is not None:
            if len(self.classes) < 2:
                raise ValueError("'classes' needs at least two class names")
            if len(set(self.classes)) != len(self.classes):
                raise ValueError("'classes' has duplicate names")
        return self


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

    engine: Literal["local", "ray"] = Field(
        default="local", description="'ray': scoring on Ray Data, rule work on Ray actors (model-audit[ray])")
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

    @field_validator("engine")
    @classmethod
    def _engine_installed(cls, v: str) -> str:
        import importlib.util

        if v == "ray" and importlib.util.find_spec("ray") is None:
            raise ValueError('the Ray engine needs the \'ray\' package: pip install "model-audit[ray]"')
        return v


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
    formats: list[Literal["html", "pdf", "json", "junit", "model_card", "annex_iv"]] = Field(
        default_factory=lambda: ["html", "pdf", "json", "junit"],
        description="model_card: model_card.md (Hugging Face layout) + model_card.json (Model Card Toolkit layout); "
        "annex_iv: annex_iv.md + annex_iv.json (EU AI Act Annex IV headings the audit can evidence)",
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
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="", exclude=True)  # the config file read, for the report's re-run line

    def resolve(self, p: Path) -> Path:
        """A config-relative path made absolute."""
        return p if p.is_absolute() else (self.base_dir / p)

    def to_jsonable(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"base_dir", "source"})


def format_validation_error(source: str, err: ValidationError, overridden: frozenset[str] = frozenset()) -> str:
    """One line per problem: 'FILE: field.path: message (got VALUE)'; a field set with ``--set`` (listed in
    ``overridden``) is blamed on the command line, not on the file."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        where = "--set" if any(loc == k or loc.startswith(k + ".") for k in overridden) else source
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required field is missing"
        got = e.get("input")
        suffix = "" if e["type"] in ("missing",) or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{where}: {loc}: {msg}{suffix}")
    return "; ".join(lines)


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        nxt = node.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {dotted}: '{k}' is not a section")
        node = nxt
    node[keys[-1]] = value


OVERRIDE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*")


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=VALUE' with VALUE parsed as TOML when it parses, else kept as a string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not OVERRIDE_KEY.fullmatch(key):
        raise ConfigError(f"--set {text!r}: the part before '=' must be a dotted key such as data.batch_size")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


MODEL_SOURCES = ("torchvision", "timm", "huggingface", "torchscript", "factory", "pickle", "python")
DATA_SOURCES = ("image_folder", "manifest", "dataframe")


def read_config_tree(path: str | Path) -> dict[str, Any]:
    """The raw TOML tree of a config file (ConfigError naming the file when it cannot be read)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None


def build_config(tree: dict[str, Any], base_dir: Path, source: str, overrides: list[str] | None = None,
                 replace: dict[str, dict[str, Any]] | None = None) -> AuditConfig:
    """Validate a config tree after the command line's overrides. ``replace``: per section, keys that take the
    place of that section's source keys (the Python API's in-memory model and manifest)."""
    tree = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tree.items()}
    for section, values in (replace or {}).items():
        sources = MODEL_SOURCES if section == "model" else DATA_SOURCES
        kept = {k: v for k, v in dict(tree.get(section, {})).items() if k not in sources}
        if section == "model" and "weights" in kept:
            del kept["weights"]  # the weights of the file's model source; the in-memory module has its own
        tree[section] = {**kept, **values}
    keys = []
    for ov in overrides or []:
        k, v = parse_override(ov)
        set_dotted(tree, k, v)
        keys.append(k)
    return config_from_dict(tree, base_dir=base_dir, source=source, overridden=frozenset(keys))


def load_config(path: str | Path, overrides: list[str] | None = None) -> AuditConfig:
    """Read, override and validate a config file."""
    p = Path(path)
    return build_config(read_config_tree(p), p.resolve().parent, str(p), overrides)


def config_from_dict(tree: dict[str, Any], base_dir: Path, source: str = "<config>",
                     overridden: frozenset[str] = frozenset()) -> AuditConfig:
    for internal in ("base_dir", "source"):
        if internal in tree:
            raise ConfigError(f"{source}: {internal}: unknown key")
    try:
        return AuditConfig.model_validate({**tree, "base_dir": base_dir, "source": source})
    except ValidationError as e:
        raise ConfigError(format_validation_error(source, e, overridden)) from None
