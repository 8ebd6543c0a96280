"""model-audit: audit a trained PyTorch image model before it ships.

    import audit
    result = audit.run("audit.toml")   # see audit.api.run
"""

from __future__ import annotations

from typing import Any

from .version import SCHEMA_VERSION, __version__

__all__ = ["SCHEMA_VERSION", "Audit", "__version__", "run"]


def __getattr__(name: str) -> Any:
    # run / Audit pull in torch and the whole pipeline: imported on first use, so `import audit` (and the CLI's
    # --help, verify, compare) stay fast
    if name in ("run", "Audit"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
