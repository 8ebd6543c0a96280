"""What [robustness] names, resolved against the registries before the model runs (the inputs stage calls
``resolve``; the robustness stage uses its answer): corruption names and sets, the frost textures, OOD detectors
with their options, far-OOD sets and the folders. Every error names the config field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import AuditConfig
from ..errors import ConfigError
from .corruptions import IMAGENET_C, IMAGENET_C_EXTRA, Corruption, frost_corruption, load_textures, registry
from .farood import SETS as FAR_OOD_SETS
from .ood import REGISTRY as DETECTORS
from .ood import Detector

NAMED_SETS = {"imagenet_c": IMAGENET_C, "imagenet_c_extra": IMAGENET_C_EXTRA}
FIELD = "robustness.corruptions.names"
TEXTURE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Resolved:
    corruptions: dict[str, Corruption] = field(default_factory=dict)  # in the order configured
    detectors: dict[str, Detector] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def corruption_names(names: list[str], known: Mapping[str, Corruption]) -> list[str]:
    """Names, sets ("imagenet_c", "imagenet_c_extra") and families ("noise", "acquisition", ...) -> corruption
    names, in order, each once."""
    families = {c.family for c in known.values()}
    out: list[str] = []
    for n in names:
        if n in NAMED_SETS:
            out += NAMED_SETS[n]
        elif n in known:
            out.append(n)
        elif n in families:
            out += [c.name for c in known.values() if c.family == n]
        else:
            raise ConfigError(f"{FIELD}: unknown corruption {n!r}; known: {', '.join(sorted(known))}; sets: "
                              f"{', '.join(NAMED_SETS)}; families: {', '.join(sorted(families))}")
    return list(dict.fromkeys(out))


def _corruptions(cfg: AuditConfig) -> tuple[dict[str, Corruption], list[str]]:
    rc = cfg.robustness
    assert rc is not None and rc.corruptions is not None
    known = registry()
    names = corruption_names(rc.corruptions.names, known)
    chosen = {n: known[n] for n in names}
    notes = []
    folder = rc.corruptions.frost_textures
    if folder is not None:
        where = cfg.resolve(folder)
        files = sorted(p for p in where.glob("*") if p.suffix.lower() in TEXTURE_SUFFIXES) if where.is_dir() else []
        if not files:
            raise ConfigError(f"robustness.corruptions.frost_textures: no PNG or JPEG images in {where}")
        if "frost" in chosen:
            chosen["frost"] = frost_corruption(load_textures(files), name="frost")
    elif "frost" in chosen:
        notes.append("frost blends synthetic textures with the statistics of imagecorruptions' photographs, not the "
                     "photographs: its numbers are not comparable with published ImageNet-C frost results (set "
                     "robustness.corruptions.frost_textures to the photographs)")
    c = cfg.data.channels
    wrong = [n for n, cor in chosen.items() if cor.colour and c not in (1, 3)]
    if wrong:
        raise ConfigError(f"{FIELD}: {', '.join(wrong)} need 1 or 3 channels; data.channels = {c}")
    return chosen, notes


def _detectors(cfg: AuditConfig) -> tuple[dict[str, Detector], list[str]]:
    rc = cfg.robustness
    assert rc is not None and rc.ood is not None
    ood = rc.ood
    unknown = sorted(set(ood.options) - set(ood.detectors))
    if unknown:
        raise ConfigError(f"robustness.ood.options: {', '.join(unknown)} not in robustness.ood.detectors")
    out = {}
    for name in ood.detectors:
        cls = DETECTORS.get(name)
        try:
            out[name] = cls(**ood.options.get(name, {}))
        except TypeError as e:
            raise ConfigError(f"robustness.ood.options.{name}: {e}") from None
    bad = [s for s in ood.far_ood if s not in FAR_OOD_SETS]
    if bad:
        raise ConfigError(f"robustness.ood.far_ood: unknown far-OOD set {bad[0]!r}; known: {', '.join(FAR_OOD_SETS)}")
    if "photos" in ood.far_ood and cfg.data.channels not in (1, 3):
        raise ConfigError(f"robustness.ood.far_ood: 'photos' has 1 or 3 channels; data.channels = {cfg.data.channels}")
    for key, p in (("folder", ood.folder), ("fit_manifest", ood.fit_manifest)):
        if p is not None and not cfg.resolve(p).exists():
            raise ConfigError(f"robustness.ood.{key}: {cfg.resolve(p)} not found")
    photos = ("the far-OOD set 'photos' (scikit-image's photographs) is not out of distribution for a model of "
              "everyday photographs: its AUROC then measures nothing")
    notes = [photos] if "photos" in ood.far_ood else []
    return out, notes


def resolve(cfg: AuditConfig) -> Resolved:
    """The plugins [robustness] names (ConfigError naming the field for a name no registry knows)."""
    rc = cfg.robustness
    if rc is None:
        return Resolved()
    corruptions, notes = _corruptions(cfg) if rc.corruptions is not None else ({}, [])
    detectors, more = _detectors(cfg) if rc.ood is not None else ({}, [])
    return Resolved(corruptions, detectors, tuple(notes + more))
