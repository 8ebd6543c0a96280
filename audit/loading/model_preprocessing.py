"""The model's own preprocessing as data-section values: a Hugging Face folder's image processor and timm's eval
data config, reproduced exactly or refused.

- Hugging Face (``data.preprocessing`` "auto" or "model"): the processor ``AutoImageProcessor`` loads from the
  folder (``local_files_only``), read step by step: resize (``size`` height/width, or ``shortest_edge`` with a
  centre crop; ConvNeXt's ``crop_pct`` rule), ``resample``, ``do_center_crop`` / ``crop_size``, ``do_rescale`` /
  ``rescale_factor`` and ``do_normalize`` / mean / std (folded into data.mean / data.std: ``(x * f - m) / s``
  equals ``(x / 255 - m / (255 f)) / (s / (255 f))``), resampled by the library of the processor's backend
  (torchvision tensors by default) and cropped at floor offsets as it does. A processor class whose pipeline
  the audit does not know, or a step it cannot reproduce (padding, channel flips, variable output sizes), is a
  ModelError naming the step: nothing is approximated.
- timm (``data.preprocessing = "model"``): ``timm.data.resolve_data_config`` of the architecture's pretrained
  config (input size, interpolation, mean, std, crop_pct, crop_mode) as ``timm.data.create_transform`` applies
  it (Pillow resize of the shortest edge to floor(size / crop_pct), torchvision's CenterCrop). With "auto",
  only image_size, mean and std are taken, as before.

A data key the config sets itself that differs from the model's value is refused (exit 2 naming the key); the
data section alone is used with ``data.preprocessing = "config"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import AuditConfig, ModelConfig
from ..errors import ConfigError, ModelError

RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
STEPS = ("image_size", "resize", "resize_to", "crop_pct", "crop_rounding", "interpolation", "resampler", "mean",
         "std")
KNOWN_FLAGS = {"do_resize", "do_center_crop", "do_rescale", "do_normalize", "do_convert_rgb", "do_reduce_labels",
               "do_pad"}
PIPELINE = ("resize", "_preprocess", "center_crop", "rescale", "normalize", "rescale_and_normalize", "preprocess",
            "_preprocess_image_like_inputs", "process_image")
# classes whose own pipeline methods are read here: ConvNeXt's crop_pct resize; BEiT's only adds label reduction
# for segmentation maps (its images go through the base steps)
KNOWN_OVERRIDES = {"ConvNextImageProcessor", "ConvNextImageProcessorPil", "BeitImageProcessor",
                   "BeitImageProcessorPil"}


# ---- Hugging Face ---------------------------------------------------------------------------------------

def _own_pipeline(cls: type) -> list[str]:
    """The pipeline methods a processor class defines beyond the transformers backends it builds on."""
    return sorted({m for k in cls.__mro__ if k.__module__.startswith("transformers.models.")
                   for m in PIPELINE if m in k.__dict__})


def _refuse(path: Path, what: str) -> ModelError:
    return ModelError(f"{path}: {what} is not reproduced by the audit; set data.preprocessing = \"config\" and "
                      "state the preprocessing in [data] yourself")


def _per_channel(v: Any, n: int = 3) -> list[float]:
    vals = [float(x) for x in (v if isinstance(v, Sequence) else [v])]
    return vals * n if len(vals) == 1 else vals


def _intensity_scale(p: Any, path: Path) -> tuple[list[float], list[float]]:
    """data.mean / data.std on [0, 1] intensities equal to the processor's rescale and normalisation of 8-bit
    values x: (x * f - m) / s = (x / 255 - m / (255 f)) / (s / (255 f))."""
    f = float(p.rescale_factor) if p.do_rescale else 1.0
    if not f > 0:
        raise _refuse(path, f"rescale_factor {p.rescale_factor}")
    k = 255.0 * f
    if not p.do_normalize:
        return [0.0] * 3, [1.0 / k] * 3
    mean, std = _per_channel(p.image_mean), _per_channel(p.image_std)
    return [m / k for m in mean], [s / k for s in std]


def _geometry(p: Any, name: str, path: Path) -> dict[str, Any]:
    """image_size / resize / resize_to of the processor's resize and crop steps."""
    size, crop = p.size, p.crop_size if p.do_center_crop else None
    if not p.do_resize or size is None:
        raise _refuse(path, f"{name} without a resize (do_resize = false: every image keeps its own size)")
    if getattr(size, "longest_edge", None) or getattr(size, "max_height", None):
        raise _refuse(path, f"{name}'s size {dict(size.items()) if hasattr(size, 'items') else size} (a longest "
                      "edge or maximum size)")
    edge = getattr(size, "shortest_edge", None)
    if name.startswith("ConvNextImageProcessor") and edge:
        if edge >= 384:  # warped to edge x edge, no crop
            out: dict[str, Any] = {"image_size": (edge, edge), "resize": "stretch"}
        else:
            out = {"image_size": (edge, edge), "resize": "center_crop", "resize_to": int(edge / p.crop_pct)}
        if crop is not None and (crop.height, crop.width) != out["image_size"]:
            raise _refuse(path, f"{name}'s second centre crop to {crop.height}x{crop.width}")
        return out
    if edge and crop is None:
        raise _refuse(path, f"{name}'s resize of the shortest edge to {edge} without a crop (every image keeps its "
                      "own aspect ratio, so inputs differ in size)")
    if edge:
        if max(crop.height, crop.width) > edge:
            raise _refuse(path, f"{name}'s centre crop {crop.height}x{crop.width} beyond the resized shortest edge "
                          f"{edge} (padding)")
        return {"image_size": (crop.height, crop.width), "resize": "center_crop", "resize_to": int(edge)}
    hw = (int(size.height), int(size.width))
    if crop is None or (crop.height, crop.width) == hw:
        return {"image_size": hw, "resize": "stretch"}
    if crop.height > hw[0] or crop.width > hw[1]:
        raise _refuse(path, f"{name}'s centre crop {crop.height}x{crop.width} of a {hw[0]}x{hw[1]} image (padding)")
    return {"image_size": (crop.height, crop.width), "resize": "center_crop", "resize_to": hw}


def hf_preprocessing(folder: Path, transformers: Any) -> tuple[dict[str, Any], str]:
    """(data values, whence) from the folder's image processor, or a ModelError naming what is not
    reproduced."""
    path = folder / "preprocessor_config.json"
    try:
        p = transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: cannot load the image processor: {first}") from None
    name = type(p).__name__
    own = _own_pipeline(type(p))
    if own and name not in KNOWN_OVERRIDES:
        raise _refuse(path, f"{name}'s own preprocessing ({', '.join(own)})")
    flags = sorted(k for k, v in vars(p).items() if k.startswith("do_") and v and k not in KNOWN_FLAGS)
    if flags or getattr(p, "do_pad", False):
        raise _refuse(path, f"{name}'s step {(flags or ['do_pad'])[0]}")
    backend = getattr(p, "backend", "pil")
    if backend not in ("torchvision", "pil"):
        raise _refuse(path, f"{name}'s {backend!r} backend")
    resample = p.resample if p.resample is not None else 2
    how = RESAMPLE.get(int(resample))
    if how is None or (backend == "torchvision" and how in ("box", "hamming")):
        raise _refuse(path, f"{name}'s resample {resample}")
    out = {**_geometry(p, name, path), "interpolation": how, "crop_rounding": "floor",
           "resampler": "torch" if backend == "torchvision" else "pillow"}
    out["mean"], out["std"] = _intensity_scale(p, path)
    h, w = out["image_size"]
    to = out.get("resize_to")
    first = f"shortest edge to {to}" if isinstance(to, int) else f"resize to {to[1]}x{to[0]}" if to else ""
    steps = f"{first}, centre crop {w}x{h}" if to else f"resize to {w}x{h}"
    lib = "torchvision" if backend == "torchvision" else "Pillow"
    return out, f"the model's image processor ({name}: {steps}, {how}, resampled by {lib})"


# ---- timm -------------------------------------------------------------------------------------------------

def timm_preprocessing(mc: ModelConfig, timm: Any, full: bool) -> tuple[dict[str, Any], str]:
    """(data values, whence) of timm's eval data config for the architecture; ``full``: crop and interpolation
    too (data.preprocessing = "model"), else image_size, mean, std and channels only."""
    pcfg = timm.models.get_pretrained_cfg(mc.timm or "")
    if pcfg is None:
        if full:
            raise ModelError(f"model.timm: {mc.timm!r} has no pretrained config to take the preprocessing from")
        return {}, ""
    d = pcfg.to_dict()
    img, chans = mc.model_kwargs.get("img_size"), mc.model_kwargs.get("in_chans")
    c = int(chans if chans is not None else d["input_size"][0])
    if isinstance(img, int):
        img = (img, img)
    hw = (int(img[0]), int(img[1])) if isinstance(img, (list, tuple)) and len(img) == 2 else \
        (int(d["input_size"][1]), int(d["input_size"][2]))
    cfg = timm.data.resolve_data_config(args={"input_size": (c, *hw)}, pretrained_cfg=d)
    out: dict[str, Any] = {"image_size": hw, "mean": list(cfg["mean"]), "std": list(cfg["std"]), "channels": c}
    if not full:
        return out, (f"timm's pretrained config of {mc.timm} (its eval crop, crop_pct {cfg['crop_pct']} with "
                     f"{cfg['interpolation']} resizing, is not applied; data.preprocessing = \"model\" applies it)")
    mode, pct, how = cfg.get("crop_mode") or "center", float(cfg["crop_pct"]), cfg["interpolation"]
    if how not in RESAMPLE.values():
        raise ModelError(f"model.timm: {mc.timm}'s interpolation {how!r} is not reproduced by the audit")
    if pct > 1:
        raise ModelError(f"model.timm: {mc.timm}'s crop_pct {pct} > 1 pads the image, which the audit does not "
                         "reproduce")
    if mode == "squash":
        out["resize_to"] = (math.floor(hw[0] / pct), math.floor(hw[1] / pct))
    elif mode == "center" and hw[0] == hw[1]:
        out["crop_pct"] = pct
    else:
        raise ModelError(f"model.timm: {mc.timm}'s crop_mode {mode!r}" + (" on a non-square input" if mode ==
                         "center" else "") + " is not reproduced by the audit")
    out.update(resize="center_crop", interpolation=how, crop_rounding="round", resampler="pillow")
    return out, (f"timm's data config of {mc.timm} (crop_pct {pct}, crop_mode {mode}, {how}; resolve_data_config "
                 "+ create_transform)")


# ---- conflicts --------------------------------------------------------------------------------------------

def _same(key: str, mine: Any, theirs: Any, channels: int) -> bool:
    if key in ("mean", "std"):
        a, b = _per_channel(mine, channels), _per_channel(theirs, channels)
        return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) for x, y in zip(a, b,
                                                                                                       strict=True))
    if isinstance(mine, (list, tuple)) and isinstance(theirs, (list, tuple)):
        return [float(x) for x in mine] == [float(x) for x in theirs]
    if isinstance(mine, float) or isinstance(theirs, float):
        return mine is not None and theirs is not None and math.isclose(float(mine), float(theirs), rel_tol=1e-9)
    return mine == theirs


def refuse_conflicts(cfg: AuditConfig, values: dict[str, Any], whence: str) -> None:
    """A preprocessing key the data section sets itself must agree with the model's own."""
    d = cfg.data
    for key in STEPS:
        implied = values.get(key, type(d).model_fields[key].default)  # a step the model lacks: the default
        if key in d.model_fields_set and not _same(key, getattr(d, key), implied, d.channels):
            mine = list(getattr(d, key)) if isinstance(getattr(d, key), tuple) else getattr(d, key)
            theirs = list(implied) if isinstance(implied, tuple) else implied
            raise ConfigError(f"data.{key} = {mine!r} differs from {whence}: {theirs!r}; remove it to use the "
                              "model's, or set data.preprocessing = \"config\" to use the data section alone")
