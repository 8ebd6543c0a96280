"""What makes the audited model the model it is, beyond its weights: the cache key's model part.

Two runs may reuse each other's predictions only when everything that can change an output is the same: the
weights (hashed separately, ``engine/cache.model_digest``), how the module was built (source kind, factory or
architecture name, keyword arguments), the code of every class in the module tree outside torch and torchvision
(their versions are keyed separately), the files it came from, and how its outputs are read (task, output kind).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from pathlib import Path
from typing import Any

from torch import nn

from ..config import AuditConfig
from .model import LoadedModel, sha256_file

VERSIONED = ("torch", "torchvision")  # packages whose code is identified by their version in the key


def code_digests(module: nn.Module) -> dict[str, str]:
    """{python module name: SHA-256 of its source file} for every class in the module tree (and the model's own
    class), except those of versioned packages; a class without a file (defined in a notebook or ``__main__``) is
    keyed by its own source where Python can recover it. TorchScript modules carry their code in the file."""
    out: dict[str, str] = {}
    for cls in sorted({type(m) for m in module.modules()}, key=lambda c: (c.__module__, c.__qualname__)):
        name = cls.__module__
        if name.split(".")[0] in VERSIONED or name in out:
            continue
        f = getattr(sys.modules.get(name), "__file__", None)
        if name != "__main__" and f and Path(f).is_file():
            out[name] = hashlib.sha256(Path(f).read_bytes()).hexdigest()
            continue
        try:
            src = inspect.getsource(cls)
        except (OSError, TypeError):
            src = "source not available"  # the scoring stage's spot check still compares recomputed rows
        out[f"{name}.{cls.__qualname__}"] = hashlib.sha256(src.encode()).hexdigest()
    return out


def model_identity(cfg: AuditConfig, loaded: LoadedModel) -> dict[str, Any]:
    mc = cfg.model
    m = loaded.module
    return {
        "source": next(k for k in ("torchvision", "timm", "huggingface", "torchscript", "factory", "pickle", "python")
                       if getattr(mc, k)),
        "name": str(mc.torchvision or mc.timm or mc.factory or ""),
        "kwargs": {"architecture": mc.architecture_kwargs, "model": mc.model_kwargs, "factory": mc.factory_kwargs},
        "num_classes": mc.num_classes,
        "class": f"{type(m).__module__}.{type(m).__qualname__}",
        "code": code_digests(m),
        "files": [sha256_file(p) for p in loaded.files],
        "task": mc.task,
        "output_kind": mc.output_kind,
        "output": loaded.output,
    }
