"""Helpers for the bad-input tests: a fast variant of the tiny setup, manifest editing, and the one assertion every
bad-input case makes (exit 2, a one-line message naming the problem, no traceback, no report left behind)."""

from __future__ import annotations

import csv
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from audit.cli import app

# Keeps full runs cheap on a shared two-core machine: no t-SNE, no linear probe, no prediction cache, JSON only.
FAST = """
[views]
embeddings = ["pca"]
probe_samples = 0
[cache]
enabled = false
[report]
formats = ["json"]
"""

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_ATTR = '"><img src=x onerror=alert(1)>'

_runner = CliRunner()


def invoke(*args: str):
    """`audit ARGS` in process; exceptions are caught and show up as a non-2 exit code."""
    return _runner.invoke(app, [str(a) for a in args])


def drop_sections(text: str, names: tuple[str, ...]) -> str:
    """``text`` (TOML) without the tables named ``names`` (lines from ``[name]`` up to the next table)."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip().strip("[]") in names
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


def read_manifest(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def write_manifest(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def edit_manifest(path: Path, fn: Callable[[list[str], list[list[str]]], tuple[list[str], list[list[str]]] | None]
                  ) -> None:
    header, rows = read_manifest(path)
    res = fn(header, rows)
    if res is not None:
        header, rows = res
    write_manifest(path, header, rows)


def leftovers(out: Path) -> list[Path]:
    """Report folders or temporary folders a run left next to ``out``."""
    found = [out] if out.exists() else []
    if out.parent.is_dir():
        found += [p for kind in ("partial", "old", "probe") for p in sorted(out.parent.glob(f".{out.name}.{kind}-*"))]
    return found


def assert_bad_input(res, out: Path, *needles: str) -> str:
    """Exit 2, exactly one line 'error: …' holding every needle, no traceback, nothing written at ``out``."""
    text = res.output
    assert res.exit_code == 2, f"exit {res.exit_code} (expected 2): {text}\n{res.exception!r}"
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    for n in needles:
        assert n in lines[0], f"{n!r} not in message: {lines[0]}"
    assert not leftovers(out), leftovers(out)
    return lines[0]


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def forged_bomb_png(path: Path, width: int = 100_000, height: int = 100_000) -> None:
    """A valid-looking PNG (correct CRCs, a few bytes) whose header declares width × height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                     + _png_chunk(b"IEND", b""))
