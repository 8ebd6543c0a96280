"""The bench's zoo modules (bench/zoo*.py) imported by their plain names, as the bench imports them, for the span
of one test module; none outlives it (another module may import a same-named file)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


@contextmanager
def bench_modules(*names: str) -> Iterator[tuple[ModuleType, ...]]:
    path, before = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(BENCH))
    try:
        yield tuple(importlib.import_module(n) for n in names)
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if file and Path(file).resolve().parent == BENCH:
                del sys.modules[name]
