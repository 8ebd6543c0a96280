"""Build the model from a torchvision or timm architecture, a Hugging Face folder, a TorchScript file, a factory,\nor (opt-in) a pickle; weights and the output adapter attached."""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from ..config import AuditConfig, ModelConfig
from ..errors import ModelError
from .outputs import adapt_outputs
from .sources import build_huggingface, build_timm
from .weights import apply_weights, unsafe_torch_load


@dataclass(frozen=True)
class LoadedModel:
    module: nn.Module
    source: str  # human description, e.g. "torchvision resnet18 + weights.safetensors"
    files: tuple[Path, ...]  # files the model came from (hashed in provenance)
    pickled: bool  # True when arbitrary pickle loading was allowed and used
    notes: tuple[str, ...] = ()  # what loading changed (e.g. weights converted to the model's dtype)
    output: str = "the tensor forward returns"  # how the output adapter reads forward's result


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


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


def _import_fresh(mod_name: str, base_dir: Path) -> ModuleType:
    """Import the factory's module as the files are now. A module imported earlier in this process (a notebook,
    a second audit) is re-executed when it lives under the config's folder, and dropped when the name now resolves
    to another file: an edited or different factory must never be served from a stale import."""
    existing = sys.modules.pop(mod_name, None)
    if existing is not None:
        try:  # where the name resolves now (find_spec would answer from sys.modules while the name is there)
            spec = importlib.util.find_spec(mod_name)
        except (ImportError, ValueError):
            spec = None
        sys.modules[mod_name] = existing
        old_file = getattr(existing, "__file__", None)
        if spec is None or spec.origin != old_file:
            del sys.modules[mod_name]
        elif old_file and Path(old_file).resolve().is_relative_to(base_dir.resolve()):
            return importlib.reload(existing)
    return importlib.import_module(mod_name)


def _factory(mc: ModelConfig, base_dir: Path) -> nn.Module:
    mod_name, _, fn_name = (mc.factory or "").partition(":")
    added = False
    if str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
        added = True
    try:
        module = _import_fresh(mod_name, base_dir)
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


def _load_torchscript(path: Path) -> nn.Module:
    if not path.is_file():
        raise ModelError(f"{path}: TorchScript file not found")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # noqa: BLE001 - the C++ loader raises RuntimeError, UnicodeDecodeError, …
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: not a TorchScript archive: {first}") from None


def _load_pickle(path: Path, allow_pickle: bool) -> nn.Module:
    if not path.is_file():
        raise ModelError(f"{path}: pickled model file not found")
    module = unsafe_torch_load(path, allow_pickle, "model")
    if not isinstance(module, nn.Module):
        raise ModelError(f"{path}: the pickle holds {type(module).__name__}, not a torch.nn.Module")
    return module


def load_model(cfg: AuditConfig, num_classes: int, module: nn.Module | None = None) -> LoadedModel:
    """Build the model on the CPU in eval mode, with its output adapter attached (one forward on a blank input of
    the configured size). Nothing from a checkpoint runs unless allow_pickle is set; nothing is downloaded.
    ``module``: an in-memory model (``model.python``); the audit works on a deep copy of it."""
    mc = cfg.model
    files: list[Path] = []
    pickled = False
    notes: tuple[str, ...] = ()
    if mc.python:
        if module is None:
            raise ModelError("model.python is set by audit.run(model=...) only; a config file names a factory")
        module = copy.deepcopy(module).cpu()
        source = f"in-memory {type(module).__qualname__}"
    elif mc.torchscript:
        path = cfg.resolve(mc.torchscript)
        module = _load_torchscript(path)
        files.append(path)
        source = f"TorchScript {path.name}"
    elif mc.pickle:
        path = cfg.resolve(mc.pickle)
        module = _load_pickle(path, mc.allow_pickle)
        files.append(path)
        pickled = True
        source = f"pickled module {path.name} (allow_pickle)"
    elif mc.huggingface:
        module, hf, pickled = build_huggingface(cfg)
        files.extend(hf)
        source = f"Hugging Face {type(module).__name__} from {hf[0].parent.name}/" + (
            " (pickled weights, allow_pickle)" if pickled else "")
    else:
        if mc.torchvision:
            module = _torchvision(mc, num_classes)
            source = f"torchvision {mc.torchvision}"
        elif mc.timm:
            module = build_timm(mc, num_classes)
            source = f"timm {mc.timm}"
        else:
            module = _factory(mc, cfg.base_dir)
            source = f"factory {mc.factory}"
        if mc.weights:
            path = cfg.resolve(mc.weights)
            pickled, notes = apply_weights(module, path, mc.allow_pickle)
            files.append(path)
            source += f" + {path.name}" + (" (unpickled with allow_pickle)" if pickled else "")
        else:
            source += " (no weights file: initial weights)"
    module.eval()
    size = cfg.data.image_size or (224, 224)
    adapted = adapt_outputs(module, mc.output, torch.zeros(1, cfg.data.channels, *size))
    return LoadedModel(module=adapted.module, source=source, files=tuple(files), pickled=pickled, notes=notes,
                       output=adapted.description)


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
