"""Damage done to a cache file by the fault-injection tests (tests/core/test_cache_faults.py,
tests/engine/test_ray_store_faults.py): each fault, and the words the discarded entry's note must hold."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audit.engine.sealed import FORMAT, MAGIC, TRAILER_SIZE


def _other_format(data: bytes) -> bytes:
    """The entry unchanged but for its trailer's format version (a valid entry of another version)."""
    head, trailer = data[:-TRAILER_SIZE], data[-TRAILER_SIZE:]
    meta = json.loads(trailer[len(MAGIC):])
    meta["format"] = FORMAT + 1
    body = json.dumps(meta, sort_keys=True).encode()
    return head + MAGIC + body + b" " * (TRAILER_SIZE - len(MAGIC) - len(body) - 1) + b"\n"


def flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x10
    return bytes(out)


#: fault name -> (damage, words the note's problem must hold)
FAULTS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (lambda b: b[: len(b) // 2], "no model-audit trailer"),
    "flipped payload byte": (lambda b: flip(b, (len(b) - TRAILER_SIZE) // 2), "SHA-256"),
    "flipped trailer byte": (lambda b: flip(b, len(b) - TRAILER_SIZE + len(MAGIC) + 3), "trailer"),
    "random bytes": (lambda b: np.random.default_rng(0).bytes(len(b)), "no model-audit trailer"),
    "zero length": (lambda b: b"", "empty file"),
    "other format version": (_other_format, f"this version reads format {FORMAT}"),
    "unsealed (earlier layout)": (lambda b: b[:-TRAILER_SIZE], "no model-audit trailer"),
}


def damage(path: Path, fault: str) -> None:
    path.write_bytes(FAULTS[fault][0](path.read_bytes()))
