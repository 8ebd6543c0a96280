"""Find the templates and rule packs shipped beside the package, from any working directory."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _resource_dir(name: str) -> Path:
    # Installed wheel: copied into audit/_resources/<name> by the build (see pyproject).
    bundled = _PKG / "_resources" / name
    if bundled.is_dir():
        return bundled
    # Source checkout or editable install: the top-level folder next to the package.
    source = _PKG.parent / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"model-audit resource folder {name!r} not found next to {_PKG}")


def templates_dir() -> Path:
    """Folder holding the Jinja2 templates and print CSS."""
    return _resource_dir("templates")


def rules_dir() -> Path:
    """Folder holding the bundled rule packs."""
    return _resource_dir("rules")
