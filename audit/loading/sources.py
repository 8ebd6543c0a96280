"""Model sources beyond torchvision / TorchScript / factory / pickle: timm architectures and local Hugging Face
``save_pretrained`` folders. Nothing is ever downloaded: timm models are built with ``pretrained=False``, Hugging
Face folders load with ``local_files_only=True``. Both are optional dependencies (``model-audit[timm]``,
``model-audit[hf]``); a missing one is a ModelError naming the extra to install.

Both also know how their models expect images (size, mean, std): ``data_defaults`` reads that without building
the model, so the data section can be filled before anything is decoded.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from ..config import AuditConfig, ModelConfig
from ..errors import ModelError

HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
HF_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


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


def _timm_defaults(mc: ModelConfig) -> tuple[dict[str, Any], str]:
    timm = optional("timm", "timm", "model.timm")
    pcfg = timm.models.get_pretrained_cfg(mc.timm or "")
    if pcfg is None:
        return {}, ""
    d = pcfg.to_dict()
    img = mc.model_kwargs.get("img_size")
    if isinstance(img, int):
        size = (img, img)
    elif isinstance(img, (list, tuple)) and len(img) == 2:
        size = (int(img[0]), int(img[1]))
    else:
        size = (int(d["input_size"][1]), int(d["input_size"][2]))
    out = {"image_size": size, "mean": list(d["mean"]), "std": list(d["std"]),
           "channels": int(mc.model_kwargs.get("in_chans", d["input_size"][0]))}
    return out, f"timm's pretrained config of {mc.timm} (interpolation there: {d.get('interpolation', '?')})"


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


def _hf_defaults(cfg: AuditConfig) -> tuple[dict[str, Any], str]:
    folder = hf_folder(cfg)
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return {}, ""
    try:
        p = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: not valid JSON: {e}") from None
    out: dict[str, Any] = {}
    size, crop = p.get("size"), p.get("crop_size")
    if p.get("do_center_crop") and isinstance(crop, dict) and {"height", "width"} <= set(crop):
        out["image_size"] = (int(crop["height"]), int(crop["width"]))
        out["resize"] = "center_crop"
    elif isinstance(size, dict) and {"height", "width"} <= set(size):
        out["image_size"] = (int(size["height"]), int(size["width"]))
    elif isinstance(size, dict) and "shortest_edge" in size:
        out["image_size"] = (int(size["shortest_edge"]),) * 2
        out["resize"] = "center_crop"
    elif isinstance(size, int):
        out["image_size"] = (size, size)
    if p.get("do_normalize", True) and p.get("image_mean") is not None:
        out["mean"], out["std"] = list(p["image_mean"]), list(p["image_std"])
    factor = p.get("rescale_factor", 1 / 255)
    if p.get("do_rescale", True) and abs(float(factor) - 1 / 255) > 1e-9:
        raise ModelError(f"{path}: rescale_factor {factor} is not 1/255; set data.mean / data.std for the values "
                         "this model expects")
    how = RESAMPLE.get(int(p.get("resample", 2)), "?")
    return out, f"the model's preprocessor_config.json (it resizes with {how})"


def data_defaults(cfg: AuditConfig) -> tuple[dict[str, Any], str]:
    """(data-section values the model's own preprocessing implies, where they come from), without building it."""
    if cfg.model.timm:
        return _timm_defaults(cfg.model)
    if cfg.model.huggingface:
        return _hf_defaults(cfg)
    return {}, ""
