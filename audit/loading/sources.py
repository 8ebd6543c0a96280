"""Model sources beyond torchvision / TorchScript / factory / pickle: timm architectures and local Hugging Face
``save_pretrained`` folders. Nothing is ever downloaded: timm models are built with ``pretrained=False``, Hugging
Face folders load with ``local_files_only=True``. Both are optional dependencies (``model-audit[timm]``,
``model-audit[hf]``); a missing one is a ModelError naming the extra to install.

Both also know how their models expect images: ``data_defaults`` reads that without building the model (see
``model_preprocessing.py``), so the data section can be filled before anything is decoded.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from ..config import AuditConfig, ModelConfig
from ..errors import ConfigError, ModelError
from .model_preprocessing import hf_preprocessing, refuse_conflicts, timm_preprocessing

HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
HF_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def optional(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional dependency, or a ModelError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(f"{what} needs the {module!r} package: pip install \"model-audit[{extra}]\"") from None


# ---- timm -----------------------------------------------------------------------------------------------

def build_timm(mc: ModelConfig, num_classes: int) -> nn.Module:
    timm = optional("timm", "timm", "model.timm")
    name = mc.timm or ""
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:6]
        raise ModelError(f"model.timm: unknown architecture {name!r}" + (f" (e.g. {', '.join(close)})" if close else ""))
    kwargs = {"num_classes": mc.num_classes or num_classes, **mc.model_kwargs}
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ModelError(f"model.timm: cannot build {name!r}: {e}") from None


# ---- Hugging Face -----------------------------------------------------------------------------------------

def hf_folder(cfg: AuditConfig) -> Path:
    folder = cfg.resolve(cfg.model.huggingface or Path())
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder}: not a Hugging Face model folder (no config.json); give the folder written by "
                         "save_pretrained")
    return folder


def hf_files(folder: Path, allow_pickle: bool) -> tuple[Path, ...]:
    """The folder's config and weight files (hashed in provenance). Pickled weights need allow_pickle."""
    weights = [folder / n for n in HF_WEIGHTS if (folder / n).is_file()]
    weights += sorted(folder.glob("model-*.safetensors"))
    if not weights:
        pickled = [folder / n for n in HF_PICKLED_WEIGHTS if (folder / n).is_file()]
        if not pickled:
            raise ModelError(f"{folder}: no weights (model.safetensors) in the Hugging Face folder")
        if not allow_pickle:
            raise ModelError(f"{folder}: the weights are pickled (pytorch_model.bin); re-save with "
                             "save_pretrained(safe_serialization=True), or set model.allow_pickle = true if you trust it")
        weights = pickled + sorted(folder.glob("pytorch_model-*.bin"))
    extra = [folder / n for n in ("preprocessor_config.json",) if (folder / n).is_file()]
    return (folder / "config.json", *weights, *extra)


def build_huggingface(cfg: AuditConfig) -> tuple[nn.Module, tuple[Path, ...], bool]:
    """(model, files, whether pickled weights were loaded)."""
    transformers = optional("transformers", "hf", "model.huggingface")
    folder = hf_folder(cfg)
    files = hf_files(folder, cfg.model.allow_pickle)
    safe = any(f.suffix == ".safetensors" or f.name == "model.safetensors.index.json" for f in files)
    try:
        model = transformers.AutoModelForImageClassification.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=safe, attn_implementation="eager")
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{folder}: cannot load the Hugging Face model: {first}") from None
    return model, files, not safe


def data_defaults(cfg: AuditConfig) -> tuple[dict[str, Any], str]:
    """(data-section values the model's own preprocessing implies, where they come from), without building it
    (``model_preprocessing.py``; ``data.preprocessing`` chooses how much is taken)."""
    mode = cfg.data.preprocessing
    if mode == "config":
        return {}, ""
    if cfg.model.timm:
        timm = optional("timm", "timm", "model.timm")
        values, whence = timm_preprocessing(cfg.model, timm, full=mode == "model")
    elif cfg.model.huggingface:
        folder = hf_folder(cfg)
        if not (folder / "preprocessor_config.json").is_file():
            if mode == "model":
                raise ModelError(f"{folder}: data.preprocessing = \"model\" but the folder has no "
                                 "preprocessor_config.json")
            return {}, ""
        values, whence = hf_preprocessing(folder, optional("transformers", "hf", "model.huggingface"))
    else:
        if mode == "model":
            raise ConfigError("data.preprocessing = \"model\": only timm and Hugging Face models carry their own "
                              "preprocessing; state it in [data]")
        return {}, ""
    if mode == "model" or cfg.model.huggingface:
        refuse_conflicts(cfg, values, whence)
    return values, whence
