"""Rule packs: TOML files listing rule entries ([[rule]] tables) that users pick and edit."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError

from ..config import format_validation_error
from ..errors import ConfigError
from ..resources import rules_dir
from . import registry
from .base import Rule


@dataclass(frozen=True)
class RulePack:
    name: str
    description: str
    path: Path
    rules: tuple[Rule, ...]
    files: tuple[Path, ...] = ()  # this pack's file and every pack it extends, outermost first
    automatic: tuple[str, ...] = ()  # ids of the rules every audit adds whatever the pack (with_automatic_rules)

    def evidence_rule(self) -> Rule | None:
        """The pack's ``evidence_complete`` rule (its severity says whether missing evidence blocks)."""
        return next((r for r in self.rules if r.kind == "evidence_complete"), None)


DEFAULT = "default"
EVIDENCE_ID = "evidence-complete"
CONCEPT_ID = "concept-reliance"


def find_pack(spec: str, base_dir: Path, task: str | None = None) -> Path:
    """A bundled pack by name ('default', 'ci-gate') or a path (relative to the config's folder).

    'default' is the default pack of ``task``: ``default-<task>.toml`` where one is bundled (multilabel,
    segmentation, anomaly), else ``default.toml`` (multiclass, binary)."""
    if spec == DEFAULT and task is not None and (rules_dir() / f"{DEFAULT}-{task}.toml").is_file():
        return rules_dir() / f"{DEFAULT}-{task}.toml"
    p = Path(spec)
    if p.suffix == ".toml" or "/" in spec or "\\" in spec:
        full = p if p.is_absolute() else base_dir / p
        if not full.is_file():
            raise ConfigError(f"rules.pack: rule pack file not found: {full}")
        return full
    bundled = rules_dir() / f"{spec}.toml"
    if not bundled.is_file():
        names = sorted(x.stem for x in rules_dir().glob("*.toml"))
        raise ConfigError(f"rules.pack: no bundled pack {spec!r}; bundled packs: {', '.join(names)}")
    return bundled


def load_pack(path: Path, _chain: tuple[Path, ...] = ()) -> RulePack:
    """Read and validate a pack. ``[pack] extends = "NAME or path"`` starts from another pack's rules; an entry
    with the id of an inherited rule replaces it (to change a threshold), other entries are appended."""
    if path.resolve() in _chain:
        raise ConfigError(f"{path}: pack: 'extends' forms a cycle ({' -> '.join(str(p) for p in _chain)} -> {path})")
    try:
        tree = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is skipped, as in configs
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: rule pack is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: rule pack is not a UTF-8 text file") from None
    unknown = set(tree) - {"pack", "rule"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))} (expected [pack] and [[rule]])")
    meta = tree.get("pack", {})
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: pack: must be a table ([pack]), got {type(meta).__name__}")
    parent: RulePack | None = None
    extends = meta.get("extends")
    if extends is not None:
        if not isinstance(extends, str) or not extends.strip():
            raise ConfigError(f"{path}: pack.extends: must be a pack name or path, got {extends!r}")
        parent = load_pack(find_pack(extends, path.parent), (*_chain, path.resolve()))
    entries = tree.get("rule", [])
    if not isinstance(entries, list) or (not entries and parent is None):
        raise ConfigError(f"{path}: a rule pack needs at least one [[rule]] table")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: rule[{i}]: must be a table ([[rule]]), got {type(entry).__name__}")
    reg = registry()
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{path}: rule[{i}]"
        kind = entry.get("kind")
        if not isinstance(kind, str) or kind not in reg:
            raise ConfigError(f"{where}: kind: unknown rule kind {kind!r}; known: {', '.join(sorted(reg))}")
        cls = reg[kind]
        try:
            params = cls.Params.model_validate(entry)
        except ValidationError as e:
            raise ConfigError(format_validation_error(where + f" ({entry.get('id', kind)})", e)) from None
        if params.id in seen:
            raise ConfigError(f"{where}: id: duplicate rule id {params.id!r}")
        seen.add(params.id)
        rules.append(cls(params))
    if parent is not None:
        own = {r.params.id: r for r in rules}
        inherited = [own.pop(r.params.id, r) for r in parent.rules]
        rules = inherited + [r for r in rules if r.params.id in own]
    return RulePack(name=str(meta.get("name", path.stem)), description=str(meta.get("description", "")),
                    path=path, rules=tuple(rules), files=(path, *(parent.files if parent else ())))


def _free_id(base: str, taken: set[str]) -> str:
    rid, n = base, 1
    while rid in taken:
        n += 1
        rid = f"{base}-{n}"
    return rid


def with_automatic_rules(pack: RulePack, marked: Mapping[str, str]) -> RulePack:
    """The pack plus the rules every audit runs whatever the pack:

    - ``concept_reliance`` (severity error) for the concepts ``marked`` (name -> "forbidden" / "required") in
      [concepts] that no concept_reliance rule of the pack judges (a rule without ``concepts`` judges every
      marked concept);
    - ``evidence_complete`` (severity error) unless the pack lists a rule of that kind: listing it with
      ``severity = "warning"`` is how a pack lets an audit on incomplete evidence pass (the report says so).
    """
    reg = registry()
    taken = {r.params.id for r in pack.rules}
    added: list[Rule] = []
    judged: set[str] = set()
    for r in pack.rules:
        if r.kind == "concept_reliance":
            names = getattr(r.params, "concepts", None)
            judged |= set(marked) if names is None else set(names)
    unjudged = [n for n in marked if n not in judged]
    if unjudged:
        roles = ", ".join(f"'{n}' {marked[n]}" for n in unjudged)
        cls = reg["concept_reliance"]
        rid = _free_id(CONCEPT_ID, taken)
        taken.add(rid)
        added.append(cls(cls.Params.model_validate({
            "id": rid, "kind": "concept_reliance", "concepts": unjudged,
            "description": f"Added automatically: [concepts] marks {roles}; a marked concept is always judged, "
                           "whatever the pack."})))
    if pack.evidence_rule() is None:
        cls = reg["evidence_complete"]
        added.append(cls(cls.Params.model_validate({
            "id": _free_id(EVIDENCE_ID, taken), "kind": "evidence_complete",
            "description": "Added automatically: every listed explainer, every rule of the pack, every marked "
                           "concept and every data check a rule reads was produced; missing evidence blocks."})))
    if not added:
        return pack
    return replace(pack, rules=(*pack.rules, *added), automatic=tuple(r.params.id for r in added))
