"""Reading the audit config: a TOML file, CLI overrides (``--set key=value``), validation with one line per
problem naming the file (or the command line) and the field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from ..errors import ConfigError
from .model_data import DATA_SOURCES, MODEL_SOURCES
from .sections import AuditConfig


def format_validation_error(source: str, err: ValidationError, overridden: frozenset[str] = frozenset()) -> str:
    """One line per problem: 'FILE: field.path: message (got VALUE)'; a field set with ``--set`` (listed in
    ``overridden``) is blamed on the command line, not on the file."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        where = "--set" if any(loc == k or loc.startswith(k + ".") for k in overridden) else source
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required field is missing"
        got = e.get("input")
        suffix = "" if e["type"] in ("missing",) or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{where}: {loc}: {msg}{suffix}")
    return "; ".join(lines)


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        nxt = node.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {dotted}: '{k}' is not a section")
        node = nxt
    node[keys[-1]] = value


OVERRIDE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*")


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=VALUE' with VALUE parsed as TOML when it parses, else kept as a string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not OVERRIDE_KEY.fullmatch(key):
        raise ConfigError(f"--set {text!r}: the part before '=' must be a dotted key such as data.batch_size")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value




def read_config_tree(path: str | Path) -> dict[str, Any]:
    """The raw TOML tree of a config file (ConfigError naming the file when it cannot be read)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8-sig"))  # a byte-order mark (Windows editors) is skipped
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None


def build_config(tree: dict[str, Any], base_dir: Path, source: str, overrides: list[str] | None = None,
                 replace: dict[str, dict[str, Any]] | None = None) -> AuditConfig:
    """Validate a config tree after the command line's overrides. ``replace``: per section, keys that take the
    place of that section's source keys (the Python API's in-memory model and manifest)."""
    tree = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tree.items()}
    for section, values in (replace or {}).items():
        sources = MODEL_SOURCES if section == "model" else DATA_SOURCES
        kept = {k: v for k, v in dict(tree.get(section, {})).items() if k not in sources}
        if section == "model" and "weights" in kept:
            del kept["weights"]  # the weights of the file's model source; the in-memory module has its own
        tree[section] = {**kept, **values}
    keys = []
    for ov in overrides or []:
        k, v = parse_override(ov)
        set_dotted(tree, k, v)
        keys.append(k)
    return config_from_dict(tree, base_dir=base_dir, source=source, overridden=frozenset(keys))


def load_config(path: str | Path, overrides: list[str] | None = None) -> AuditConfig:
    """Read, override and validate a config file."""
    p = Path(path)
    return build_config(read_config_tree(p), p.resolve().parent, str(p), overrides)


def config_from_dict(tree: dict[str, Any], base_dir: Path, source: str = "<config>",
                     overridden: frozenset[str] = frozenset()) -> AuditConfig:
    for internal in ("base_dir", "source"):
        if internal in tree:
            raise ConfigError(f"{source}: {internal}: unknown key")
    try:
        return AuditConfig.model_validate({**tree, "base_dir": base_dir, "source": source})
    except ValidationError as e:
        raise ConfigError(format_validation_error(source, e, overridden)) from None
