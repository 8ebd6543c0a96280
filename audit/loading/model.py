"""Build the model from a torchvision architecture, a TorchScript file, a factory, or (opt-in) a pickle."""

from __future__ import annotations

import hashlib
import importlib
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import AuditConfig, ModelConfig
from ..errors import ModelError


@dataclass(frozen=True)
class LoadedModel:
    module: nn.Module
    source: str  # human description, e.g. "torchvision resnet18 + weights.safetensors"
    files: tuple[Path, ...]  # files the model came from (hashed in provenance)
    pickled: bool  # True when arbitrary pickle loading was allowed and used


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def unsafe_torch_load(path: Path, allow_pickle: bool, what: str) -> object:
    """The only place that unpickles arbitrary objects (which can run code): refused unless the config opted in
    with ``model.allow_pickle = true``."""
    if not allow_pickle:
        raise ModelError(f"{path}: refused to unpickle {what}: set model.allow_pickle = true only if you trust it")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - an arbitrary pickle fails in arbitrary ways
        raise ModelError(f"{path}: cannot unpickle {what}: {type(e).__name__}: {e}") from None


def _read_state_dict(path: Path, allow_pickle: bool) -> tuple[dict[str, torch.Tensor], bool]:
    """The checkpoint's tensors, and whether arbitrary unpickling (opt-in) was needed to read them."""
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), False
        except Exception as e:  # noqa: BLE001 - SafetensorError, OSError, … from a corrupt file
            raise ModelError(f"{path}: not a valid safetensors file: {e}") from None
    unpickled = False
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not allow_pickle:
            raise ModelError(
                f"{path}: refused to unpickle: the checkpoint holds objects other than tensors "
                f"(loading it could run code). Re-save it as a state_dict or .safetensors, or set "
                f"model.allow_pickle = true if you trust its origin. ({(str(e).strip() or type(e).__name__).splitlines()[0]})"
            ) from None
        obj = unsafe_torch_load(path, allow_pickle, "checkpoint")
        unpickled = True
    except Exception as e:  # noqa: BLE001 - corrupt archives raise RuntimeError, OSError, KeyError, …
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: cannot read checkpoint (truncated or not a PyTorch file): {first}") from None
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path}: expected a state_dict (a mapping of names to tensors)")
    return obj, unpickled


def _apply_weights(module: nn.Module, path: Path, allow_pickle: bool) -> bool:
    """Load the weights strictly; True when reading them needed the allow_pickle opt-in."""
    sd, unpickled = _read_state_dict(path, allow_pickle)
    # checkpoints saved from DataParallel / torch.compile carry prefixes
    for prefix in ("module.", "_orig_mod."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [
        f"{k} (checkpoint {tuple(sd[k].shape)}, model {tuple(own[k].shape)})"
        for k in own if k in sd and sd[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("shape mismatch: " + ", ".join(wrong[:3]) + (" …" if len(wrong) > 3 else ""))
        if missing:
            parts.append("missing keys: " + ", ".join(missing[:3]) + (" …" if len(missing) > 3 else ""))
        if unexpected:
            parts.append("unexpected keys: " + ", ".join(unexpected[:3]) + (" …" if len(unexpected) > 3 else ""))
        raise ModelError(f"{path}: weights do not fit the model: " + "; ".join(parts))
    module.load_state_dict(sd, strict=True)
    return unpickled


def _torchvision(mc: ModelConfig, num_classes: int) -> nn.Module:
    import torchvision.models as tvm

    name = mc.torchvision or ""
    available = tvm.list_models(module=tvm)
    if name not in available:
        raise ModelError(f"model.torchvision: unknown architecture {name!r} (e.g. {', '.join(available[:6])}, …)")
    kwargs = {"weights": None, "num_classes": mc.num_classes or num_classes, **mc.architecture_kwargs}
    try:
        return tvm.get_model(name, **kwargs)
    except (TypeError, ValueError) as e:
        raise ModelError(f"model.torchvision: cannot build {name!r}: {e}") from None


def _factory(mc: ModelConfig, base_dir: Path) -> nn.Module:
    mod_name, _, fn_name = (mc.factory or "").partition(":")
    added = False
    if str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
        added = True
    try:
        module = importlib.import_module(mod_name)
    except ImportError as e:
        raise ModelError(f"model.factory: cannot import module {mod_name!r}: {e}") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed while being imported (syntax error, …)
        raise ModelError(f"model.factory: importing {mod_name!r} failed: {type(e).__name__}: {e}") from None
    finally:
        if added:
            sys.path.remove(str(base_dir))
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ModelError(f"model.factory: {mod_name!r} has no callable {fn_name!r}")
    kwargs = dict(mc.factory_kwargs)
    if mc.num_classes is not None:
        kwargs.setdefault("num_classes", mc.num_classes)
    try:
        model = fn(**kwargs)
    except Exception as e:  # noqa: BLE001 - whatever the user's factory raises is a problem with the model input
        raise ModelError(f"model.factory: calling {mc.factory} failed: {type(e).__name__}: {e}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"model.factory: {mc.factory} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_model(cfg: AuditConfig, num_classes: int) -> LoadedModel:
    """Build the model on the CPU in eval mode. Nothing from a checkpoint runs unless allow_pickle is set."""
    mc = cfg.model
    files: list[Path] = []
    pickled = False
    if mc.torchscript:
        path = cfg.resolve(mc.torchscript)
        if not path.is_file():
            raise ModelError(f"{path}: TorchScript file not found")
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:  # noqa: BLE001 - the C++ loader raises RuntimeError, UnicodeDecodeError, …
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"{path}: not a TorchScript archive: {first}") from None
        files.append(path)
        source = f"TorchScript {path.name}"
    elif mc.pickle:
        path = cfg.resolve(mc.pickle)
        if not path.is_file():
            raise ModelError(f"{path}: pickled model file not found")
        module = unsafe_torch_load(path, mc.allow_pickle, "model")
        if not isinstance(module, nn.Module):
            raise ModelError(f"{path}: the pickle holds {type(module).__name__}, not a torch.nn.Module")
        files.append(path)
        pickled = True
        source = f"pickled module {path.name} (allow_pickle)"
    else:
        if mc.torchvision:
            module = _torchvision(mc, num_classes)
            source = f"torchvision {mc.torchvision}"
        else:
            module = _factory(mc, cfg.base_dir)
            source = f"factory {mc.factory}"
        if mc.weights:
            path = cfg.resolve(mc.weights)
            pickled = _apply_weights(module, path, mc.allow_pickle)
            files.append(path)
            source += f" + {path.name}" + (" (unpickled with allow_pickle)" if pickled else "")
        else:
            source += " (no weights file: initial weights)"
    module.eval()
    return LoadedModel(module=module, source=source, files=tuple(files), pickled=pickled)


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelError(f"device: {spec!r} requested but CUDA is not available on this machine")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelError(f"device: {spec!r} requested but only {torch.cuda.device_count()} GPU(s) present")
        return dev
    return torch.device(spec)
