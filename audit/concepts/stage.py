"""The concept stage: from ``[concepts]`` in the config to a ConceptRun (TCAV per concept, class and layer, with its
statistics). Bad input (a missing folder, too few images, an unknown layer or class) raises a ConfigError or
DataError naming the key; a model that cannot be differentiated at a layer is recorded in ``ConceptRun.error`` and
the concept_reliance rule reports it."""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..config import AuditConfig, ConceptsConfig
from ..engine.probe import ModelProbe
from ..errors import AuditError, ConfigError, DataError
from ..explainers.layers import block_layers, named_module
from ..loading.dataset import ImageDataset
from ..loading.listing import IMAGE_EXTENSIONS
from ..loading.preprocess import Preprocess
from ..loading.records import SampleRecord
from .result import ConceptInfo, ConceptRun, ConceptTest, LayerCAVs
from .stats import bonferroni, ttest
from .tcav import RANDOM, TCAVRaw, run_tcav

MIN_CONCEPT_IMAGES = 5
MAX_LAYERS = 3
N_EXAMPLES = 6  # concept images shown in the report
N_TOP = 6  # class inputs kept per test, ranked by their directional derivative
THUMB_PX = 96


def default_layers(model: nn.Module, x: torch.Tensor, max_layers: int = MAX_LAYERS) -> list[str]:
    """Up to ``max_layers`` block layers spread from the input to the output, the last one included; with more
    block layers than that the first (input-side) one is left out: it sees pixels, so any concept that differs in
    pixel statistics separates there."""
    blocks = block_layers(model, x)
    if len(blocks) > max_layers:
        blocks = blocks[1:]
    if len(blocks) <= max_layers:
        return blocks
    idx = np.unique(np.linspace(0, len(blocks) - 1, max_layers).round().astype(int))
    return [blocks[i] for i in idx]


def list_images(folder: Path, key: str, resize: str) -> list[SampleRecord]:
    """Image files below ``folder`` (hidden files and folders skipped), sorted, as records."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found ({key})")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return [SampleRecord(id=p.relative_to(folder).as_posix(), path=p, label=0, source=str(p),
                         resize=resize) for p in files]  # type: ignore[arg-type]


def load_images(records: Sequence[SampleRecord], preprocess: Preprocess) -> torch.Tensor:
    ds = ImageDataset(records, preprocess)
    if not records:
        return torch.empty(0)
    return torch.stack([ds[i][1] for i in range(len(records))])  # type: ignore[misc]


def thumbnail(x: torch.Tensor, preprocess: Preprocess) -> np.ndarray:
    img = Image.fromarray((preprocess.unnormalize(x) * 255).round().astype(np.uint8))
    if max(img.size) > THUMB_PX:
        scale = THUMB_PX / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    return np.asarray(img)


def draw_sets(n_pool: int, n_sets: int, size: int, rng: np.random.Generator) -> tuple[list[np.ndarray], bool]:
    """``n_sets`` index sets of ``size`` into a pool of ``n_pool`` images: disjoint when the pool is large enough,
    else each a seeded subset of its own (sets then share images). Returns (sets, disjoint)."""
    if n_pool >= n_sets * size:
        order = rng.permutation(n_pool)
        return [np.sort(order[i * size:(i + 1) * size]) for i in range(n_sets)], True
    return [np.sort(rng.choice(n_pool, size=size, replace=False)) for _ in range(n_sets)], False


def _rng(seed: int, salt: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"concepts:{salt}".encode())])


def run_concepts(cfg: AuditConfig, probe: ModelProbe) -> ConceptRun | None:
    """TCAV for every configured concept; None when ``[concepts]`` is not configured."""
    cc = cfg.concepts
    if cc is None:
        return None
    started = time.perf_counter()
    task, preds, pre = probe.task, probe.predictions, probe.preprocess
    groups = tuple(task.groups())
    concept_groups: dict[str, tuple[int, ...]] = {}
    for name, spec in cc.sets.items():
        if spec.classes is None:
            concept_groups[name] = tuple(range(len(groups)))
            continue
        unknown = [c for c in spec.classes if c not in groups]
        if unknown:
            raise ConfigError(f"concepts.sets.{name}.classes: {', '.join(repr(u) for u in unknown)} not among the "
                              f"classes ({', '.join(groups)})")
        concept_groups[name] = tuple(dict.fromkeys(groups.index(c) for c in spec.classes))

    # layers
    model = probe.model
    sample = probe.images([str(preds.ids[0])]).to(probe.device)
    if cc.layers:
        for layer in cc.layers:
            try:
                named_module(model, layer)
            except AuditError as e:
                raise ConfigError(f"concepts.layers: {e}") from None
        layers = list(dict.fromkeys(cc.layers))
    else:
        layers = default_layers(model, sample)
        if not layers:
            raise ConfigError("concepts.layers: the model runs no convolution or transformer block to test; name "
                              "the layers")

    # concept images: a folder with more than set_size images gives each run its own seeded subset, so that the
    # run-to-run spread includes which concept images were drawn
    concept_x: dict[str, torch.Tensor] = {}
    concept_sets: dict[str, list[np.ndarray]] = {}
    infos: list[ConceptInfo] = []
    for name, spec in cc.sets.items():
        folder = cfg.resolve(spec.folder)
        recs = list_images(folder, f"concepts.sets.{name}.folder", cfg.data.resize)
        if len(recs) < MIN_CONCEPT_IMAGES:
            raise DataError(f"{folder}: {len(recs)} image(s); concept {name!r} needs at least {MIN_CONCEPT_IMAGES} "
                            f"(Kim et al. used tens)")
        if len(recs) > cc.set_size:
            crng = _rng(cfg.seed, f"set:{name}")
            runs = [np.sort(crng.choice(len(recs), size=cc.set_size, replace=False)) for _ in range(cc.runs)]
        else:
            runs = [np.arange(len(recs))] * cc.runs
        loaded = np.unique(np.concatenate(runs))
        x = load_images([recs[i] for i in loaded], pre)
        concept_x[name] = x
        concept_sets[name] = [np.searchsorted(loaded, r) for r in runs]
        infos.append(ConceptInfo(
            name=name, folder=str(folder), n_images=min(len(recs), cc.set_size), n_found=len(recs),
            forbidden=spec.forbidden,
            required=spec.required, groups=tuple(groups[g] for g in concept_groups[name]),
            description=spec.description, examples=tuple(thumbnail(x[i], pre) for i in range(min(N_EXAMPLES, len(x)))),
        ))

    # random counterexample sets: N, one per run; the null CAVs pair set i + 1 with set i
    rng = _rng(cfg.seed, "random")
    if cc.random_folder is not None:
        folder = cfg.resolve(cc.random_folder)
        pool_recs = list_images(folder, "concepts.random_folder", cfg.data.resize)
        source = str(folder)
    else:
        pool_recs = []
        source = "held-out set"
    n_pool = len(pool_recs) if cc.random_folder is not None else preds.n
    if n_pool < cc.set_size:
        raise DataError(f"concepts: the random images ({source}) number {n_pool}; set_size = {cc.set_size} needs "
                        f"at least that many (lower concepts.set_size or add images)")
    sets, disjoint = draw_sets(n_pool, cc.runs, cc.set_size, rng)
    used = np.unique(np.concatenate(sets))
    if cc.random_folder is not None:
        pool_x = load_images([pool_recs[i] for i in used], pre)
    else:
        pool_x = probe.images([str(s) for s in preds.ids[used]])
    local = [np.searchsorted(used, s) for s in sets]  # into pool_x

    # class inputs
    tested = sorted({g for gs in concept_groups.values() for g in gs})
    class_x: dict[int, torch.Tensor] = {}
    class_ids: dict[int, list[str]] = {}
    skipped: dict[str, str] = {}
    for g in tested:
        rows = np.flatnonzero(task.members(preds, g, "true"))
        if len(rows) < cc.min_inputs:
            for name, gs in concept_groups.items():
                if g in gs:
                    skipped[f"{name} / {groups[g]}"] = (f"{len(rows)} held-out input(s) of this class, fewer than "
                                                       f"concepts.min_inputs = {cc.min_inputs}")
            continue
        if len(rows) > cc.max_inputs:
            rows = np.sort(_rng(cfg.seed, f"inputs:{g}").choice(rows, size=cc.max_inputs, replace=False))
        class_ids[g] = [str(s) for s in preds.ids[rows]]
        class_x[g] = probe.images(class_ids[g])

    notes: list[str] = []
    if not disjoint:
        notes.append(f"{n_pool} random images are too few for {cc.runs} disjoint sets of {cc.set_size}: the "
                     "sets are independent seeded subsets and share images")
    if cc.random_folder is None:
        notes.append("random counterexamples are drawn from the held-out set, which includes the tested classes' "
                     "inputs and any image that shows a concept")
    product = partial(ConceptRun, concepts=tuple(infos), layers=tuple(layers), runs=cc.runs, set_size=cc.set_size,
                      pooling=cc.activations, classifier=cc.classifier, random_source=source,
                      random_disjoint=disjoint, min_cav_accuracy=cc.min_cav_accuracy, skipped=skipped)
    if not class_x:
        return product(tests=(), cavs=(), notes=(*notes, "no class had enough inputs"),
                       seconds=time.perf_counter() - started)
    try:
        with task.explaining(model) as target_model:  # its output column g is group g's logit
            raw = run_tcav(model, layers, concept_x, pool_x, local, class_x, concept_sets=concept_sets,
                           target_model=target_model, pooling=cc.activations, classifier=cc.classifier,
                           seed=cfg.seed, device=probe.device, batch_size=probe.engine.explain_batch_size)
    except (RuntimeError, AuditError, ValueError) as e:
        return product(tests=(), cavs=(), notes=tuple(notes), seconds=time.perf_counter() - started,
                       error=f"TCAV could not run: {type(e).__name__}: {str(e).strip().splitlines()[0]}")
    tests, cavs = _tests(raw, cc, infos, concept_groups, groups, class_ids)
    top = dict.fromkeys(sid for t in tests for sid in t.top_ids[:4])
    thumbs: dict[str, np.ndarray] = {}
    if top:
        xs = probe.images(list(top))
        thumbs = {sid: thumbnail(xs[i], pre) for i, sid in enumerate(top)}
    return product(tests=tuple(tests), cavs=tuple(cavs), notes=tuple(notes), seconds=time.perf_counter() - started,
                   thumbnails=thumbs)


def _tests(raw: TCAVRaw, cc: ConceptsConfig, infos: Sequence[ConceptInfo], concept_groups: dict[str, tuple[int, ...]],
           groups: tuple[str, ...], class_ids: dict[int, list[str]]) -> tuple[list[ConceptTest], list[LayerCAVs]]:
    """One t-test per (concept, class, layer) with inputs; Bonferroni over all of them."""
    cavs: list[LayerCAVs] = []
    pending: list[ConceptTest] = []
    rows = raw.rows()
    for ls in raw.layers:
        for j, name in enumerate(rows):
            cavs.append(LayerCAVs(concept=name, layer=ls.layer, dim=ls.dim, accuracy=ls.accuracy[j],
                                  n_null=int(ls.null_directions[j].sum())))
        for j, info in enumerate(infos):
            acc = float(np.mean(ls.accuracy[j]))
            for g in concept_groups[info.name]:
                if g not in ls.scores:
                    continue
                s, r = ls.scores[g][j], ls.scores[g][-1]
                tt = ttest(s, r)
                dd = ls.mean_derivative[g][j]
                order = np.argsort(-dd, kind="stable")[:N_TOP]
                pending.append(ConceptTest(
                    concept=info.name, group=groups[g], group_index=g, layer=ls.layer, n_inputs=len(dd), scores=s,
                    random_scores=r, t=tt.t, p=tt.p, p_corrected=math.nan, cav_accuracy=acc,
                    separable=acc >= cc.min_cav_accuracy, n_zero=int(ls.n_zero[g][j]), note=tt.note,
                    top_ids=tuple(class_ids[g][i] for i in order), top_derivatives=tuple(float(dd[i]) for i in order)))
    m = max(1, len(pending))
    tests = [replace(t, p_corrected=float(bonferroni(t.p, m))) for t in pending]
    assert RANDOM == rows[-1]
    return tests, cavs
