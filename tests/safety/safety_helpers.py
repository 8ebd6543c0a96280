"""Helpers for the output-safety tests: sentinel files, a genuine earlier report, leftovers beside a folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.report.output import write_manifest


@dataclass
class Sentinels:
    """Files recorded before a run: path -> (bytes, mtime_ns)."""

    files: dict[Path, tuple[bytes, int]]

    def assert_untouched(self) -> None:
        assert self.files, "nothing was recorded"
        for p, (data, mtime) in self.files.items():
            assert p.is_file(), f"{p} was removed"
            assert p.read_bytes() == data, f"{p} changed"
            assert p.stat().st_mtime_ns == mtime, f"{p} was rewritten"


def record(*folders: Path) -> Sentinels:
    """Every file under ``folders`` (images, manifest, config, weights, …)."""
    return Sentinels({p: (p.read_bytes(), p.stat().st_mtime_ns) for f in folders for p in f.rglob("*")
                      if p.is_file()})


def plant(*folders: Path) -> Sentinels:
    """A sentinel file in each folder, then ``record`` of all of them."""
    for i, folder in enumerate(folders):
        (folder / f"sentinel-{i}.txt").write_text(f"sentinel {i} in {folder}\n")
    return record(*folders)


def earlier_report(out: Path, text: str = "earlier") -> dict[str, bytes]:
    """A genuine earlier report (results.json, summary.md, manifest.json) at ``out``; returns its files."""
    out.mkdir(parents=True)
    (out / "results.json").write_text(f'{{"verdict": "pass", "{text}": true}}\n')
    (out / "summary.md").write_text(f"{text} report\n")
    write_manifest(out, ["results.json", "summary.md"])
    return snapshot(out)


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def siblings(out: Path) -> list[str]:
    """Temporary folders of a run (``.NAME.partial-*``, ``.NAME.old-*``, ``.NAME.probe-*``) left beside ``out``."""
    if not out.parent.is_dir():
        return []
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))
