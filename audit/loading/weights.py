"""Reading checkpoints safely: tensors only (``weights_only=True`` or safetensors) unless the config opts in to
unpickling, strict key and shape matching, and weights in the model's own dtypes."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError


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


def apply_weights(module: nn.Module, path: Path, allow_pickle: bool) -> tuple[bool, tuple[str, ...]]:
    """Load the weights strictly; returns whether reading them needed the allow_pickle opt-in, and notes on
    dtype conversions."""
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
    notes: list[str] = []
    if not (missing or unexpected or wrong):
        sd, notes = _match_dtypes(sd, own, path)
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
    return unpickled, tuple(notes)


def _match_dtypes(sd: dict[str, torch.Tensor], own: dict[str, torch.Tensor], path: Path
                  ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Checkpoint tensors in the model's dtypes. Floating point to another floating-point precision is converted
    with a note (e.g. fp16 weights into an fp32 model); integer or boolean tensors where the model holds floating
    point (quantised weights whose scales live elsewhere) are refused: casting them would give a different model."""
    refused = [f"{k} ({str(sd[k].dtype).removeprefix('torch.')} into {str(own[k].dtype).removeprefix('torch.')})"
               for k in own if own[k].is_floating_point() and not sd[k].is_floating_point()]
    if refused:
        raise ModelError(f"{path}: weights hold non-floating-point tensors where the model has floating-point "
                         f"parameters: {', '.join(refused[:3])}{' …' if len(refused) > 3 else ''}; quantised or "
                         "integer checkpoints cannot be cast into this model (save the dequantised state_dict)")
    converted: dict[tuple[str, str], int] = {}
    out = {}
    for k, v in sd.items():
        if v.dtype != own[k].dtype:
            pair = (str(v.dtype).removeprefix("torch."), str(own[k].dtype).removeprefix("torch."))
            converted[pair] = converted.get(pair, 0) + 1
            v = v.to(own[k].dtype)
        out[k] = v
    notes = [f"{n} tensor(s) of {path.name} converted from {a} to the model's {b}"
             for (a, b), n in sorted(converted.items())]
    return out, notes
