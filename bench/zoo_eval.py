"""One zoo model through the audit's data checks and rules, without the runner: the i.i.d. held-out set as PNG /
JPEG files with ROI boxes and metadata, a ModelProbe over the trained model, an Evidence with the data-checks
product, and every rule of a pack evaluated on it. The result (statuses, values, thresholds, each finding's
details for reading other limits later, reliance measured on the swapped copy) is cached as JSON beside the
model, keyed by the model, the pack file and the code the rules run on (``rule_code``), so a rerun after a rule
change evaluates the rules again on the cached models and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from zoo_bases import SIZE
from zoo_data import DataSpec, ZooSet, make_set, write_set
from zoo_models import (
    CACHE,
    DATA_SOURCES,
    MEAN,
    STD,
    accuracy,
    code_digest,
    load_or_train,
    model_key,
    train_seconds,
    train_spec,
)

import audit
from audit.datachecks import DataChecks, run_datachecks
from audit.engine.probe import ModelProbe
from audit.loading.decode import DecodeOptions, decode_image
from audit.loading.preprocess import Preprocess
from audit.loading.records import SampleRecord
from audit.products import Picks, Predictions
from audit.rules.evaluate import evaluate
from audit.rules.evidence import Evidence
from audit.rules.pack import RulePack
from audit.scoring.classification import score
from audit.tasks.multiclass import MulticlassTask

PREPROCESS = Preprocess(size=(32, 32), channels=3, mean=(MEAN,) * 3, std=(STD,) * 3)
RELIANCE_DROP = 0.15  # a confounded model "relies" on its cue when swapped accuracy is this far below i.i.d.
PACKAGE = Path(audit.__file__).resolve().parent
# what a rule's verdict can depend on: the rules, the data checks, the probe and engines, explainers, tasks, loading
RULE_CODE = ("rules", "datachecks", "engine", "explainers", "tasks", "loading", "maps", "scoring")
_DROP = {"mean_map", "member_ids", "eigenvalues"}  # bulky details no limit is read from


@dataclass(frozen=True)
class Case:
    arch: str
    kind: str
    seed: int
    version: str  # "confounded" | "clean" (the clean twin)
    family: str = "shapes"

    @property
    def name(self) -> str:
        return f"{self.family}/{self.arch}/{self.kind}/{self.version}/s{self.seed}"

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.kind, seed=self.seed, family=self.family)


@cache
def rule_code() -> dict[str, Any]:
    """The identity of the rule code this process runs: a hash of its files (and this file's), and the commit it
    came from (a snapshot's ZOO_SNAPSHOT file, else git HEAD, 'dirty' when those files differ from it)."""
    files = sorted(f for d in RULE_CODE for f in (PACKAGE / d).rglob("*.py"))
    digest = hashlib.sha1(b"".join(f.relative_to(PACKAGE).as_posix().encode() + f.read_bytes() for f in files)
                          + code_digest(Path(__file__).read_text(encoding="utf-8")).encode()).hexdigest()[:12]
    root = PACKAGE.parent
    snap = root / "ZOO_SNAPSHOT"
    if snap.is_file():
        return {"hash": digest, "commit": snap.read_text().strip(), "dirty": False}
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "audit", "rules"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        head, dirty = "unknown", True
    return {"hash": digest, "commit": head, "dirty": dirty}


def data_dir(spec: DataSpec, version: str) -> Path:
    key = hashlib.sha1(json.dumps([asdict(spec), DATA_SOURCES]).encode()).hexdigest()[:10]
    return CACHE / "data" / f"{spec.family}-{spec.kind}-s{spec.seed}-{version}-{key}"


def upscaled(zs: ZooSet, scale: int) -> ZooSet:
    """The set at ``scale`` times its size (bilinear, as a camera of higher resolution would not add detail; boxes
    scaled with it), stored as PNG."""
    h, w = zs.images.shape[1:3]
    images = np.stack([np.asarray(Image.fromarray(im).resize((w * scale, h * scale), Image.Resampling.BILINEAR))
                       for im in zs.images])
    return replace(zs, images=images, boxes=zs.boxes * scale, fmt="png", encoded=())


@cache
def heldout(spec: DataSpec, version: str = "confounded", scale: int = 1
            ) -> tuple[list[SampleRecord], pd.DataFrame, ZooSet]:
    """The held-out set as files (``scale`` > 1: upscaled, see upscaled()): records with ROI boxes and metadata, the
    metadata frame and the ZooSet."""
    zs = make_set(spec, "test", version)
    folder = data_dir(spec, version)
    if scale != 1:
        zs, folder = upscaled(zs, scale), folder.with_name(f"{folder.name}-x{scale}")
    paths = write_set(zs, folder)
    meta = pd.DataFrame({k: v.astype(str) for k, v in zs.metadata.items()})
    recs = [SampleRecord(id=f"s{i:04d}", path=p, label=int(zs.labels[i]),
                         roi_box=tuple(float(v) for v in zs.boxes[i]), metadata=dict(meta.iloc[i]),
                         source=f"zoo {spec.family} {spec.kind} #{i}") for i, p in enumerate(paths)]
    return recs, meta, zs


@cache
def datachecks(spec: DataSpec, version: str = "confounded", scale: int = 1) -> DataChecks:
    recs, meta, _ = heldout(spec, version, scale)
    return run_datachecks(recs, spec.classes, meta, 3, DecodeOptions(), spec.seed)


def _predictions(model: nn.Module, x: torch.Tensor, ids: list[str], labels: np.ndarray, meta: pd.DataFrame
                 ) -> Predictions:
    feats: list[torch.Tensor] = []
    lin = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    hook = lin.register_forward_pre_hook(lambda _m, args: feats.append(args[0].detach()))
    try:
        with torch.inference_mode():
            logits = torch.cat([model(x[s:s + 256]) for s in range(0, len(x), 256)])
    finally:
        hook.remove()
    return Predictions(ids=np.array(ids, dtype=object), labels=labels.copy(),
                       probs=torch.softmax(logits.float(), 1).numpy().astype(np.float64),
                       metadata=meta.reset_index(drop=True), features=torch.cat(feats).numpy().astype(np.float32))


def build_evidence(model: nn.Module, spec: DataSpec, scale: int = 1) -> Evidence:
    """The evidence of an audit of ``model`` on the i.i.d. held-out set (``scale`` > 1: upscaled files, read at
    that size; the zoo's nets pool globally, so they take any size)."""
    recs, meta, zs = heldout(spec, "confounded", scale)
    ids = [r.id for r in recs]
    pre = PREPROCESS if scale == 1 else replace(PREPROCESS, size=(SIZE * scale, SIZE * scale))
    x = torch.stack([torch.from_numpy(pre.fit(decode_image(r.path, 3))).permute(2, 0, 1) for r in recs])
    x = (x - MEAN) / STD
    preds = _predictions(model, x.float(), ids, zs.labels, meta)
    metrics = score(preds, spec.classes, np.random.default_rng(spec.seed))
    probe = ModelProbe.local(model, recs, pre, preds, task=MulticlassTask(spec.classes), seed=spec.seed,
                             batch_size=256, explain_batch_size=64, dataset_mean=x.mean(0))
    return Evidence(classes=spec.classes, predictions=preds, metrics=metrics, picks=Picks(overall={}, per_class={}),
                    probe=probe, seed=spec.seed, explainers=("gradcam",), n_listed=len(ids), data=datachecks(spec, "confounded", scale))


def _plain(x: Any) -> Any:
    """JSON-safe copy of a finding's details without the bulky parts."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items() if k not in _DROP}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)


def _summary(f: Any) -> dict[str, Any]:
    return {"rule": f.rule, "kind": f.kind, "severity": f.severity, "status": f.status, "value": f.value,
            "threshold": f.threshold, "message": f.message[:600], "details": _plain(dict(f.details or {}))}


def result_path(case: Case, pack: RulePack, rule_ids: tuple[str, ...] | None) -> Path:
    ts = train_spec(case.arch, case.version)
    pack_hash = hashlib.sha1(b"".join(p.read_bytes() for p in pack.files)).hexdigest()[:12]
    key = hashlib.sha1(json.dumps([model_key(case.spec, ts), pack_hash, rule_code()["hash"], rule_ids]).encode()
                       ).hexdigest()[:16]
    return CACHE / "results" / f"{case.family}-{case.arch}-{case.kind}-{case.version}-s{case.seed}-{key}.json"


def reliance(case: Case, model: nn.Module) -> tuple[float, float]:
    """Accuracy on the i.i.d. held-out set and on its cue-swapped copy."""
    _, _, iid = heldout(case.spec)
    swapped = make_set(case.spec, "test", "swapped")
    return accuracy(model, iid.images, iid.labels), accuracy(model, swapped.images, swapped.labels)


def evaluate_case(case: Case, pack: RulePack, rule_ids: tuple[str, ...] | None = None, force: bool = False,
                  cached_only: bool = False, train_only: bool = False) -> dict[str, Any]:
    """Train (or load) the case's model, measure its reliance and evaluate the pack's rules; cached
    (``cached_only``: FileNotFoundError when this case has no cached result; ``train_only``: the model and its
    reliance, no rules, nothing cached beyond the model)."""
    out = result_path(case, pack, rule_ids)
    if out.is_file() and not force and not train_only:
        return json.loads(out.read_text())
    if cached_only:
        raise FileNotFoundError(out)
    ts = train_spec(case.arch, case.version)
    t0 = time.perf_counter()
    model, trained = load_or_train(case.spec, ts)
    t_train = time.perf_counter() - t0
    acc_iid, acc_sw = reliance(case, model)
    res: dict[str, Any] = {"case": asdict(case), "target": case.spec.classes[case.spec.target], "acc_iid": acc_iid,
                           "acc_swapped": acc_sw, "reliance": acc_iid - acc_sw,
                           "relies": bool(acc_iid - acc_sw >= RELIANCE_DROP), "trained_now": trained,
                           "train_seconds": train_seconds(case.spec, ts) or round(t_train, 1)}
    if train_only:
        return res
    ev = build_evidence(model, case.spec)
    rules = [r for r in pack.rules if r.phase == "main" and (rule_ids is None or r.params.id in rule_ids)]
    t1 = time.perf_counter()
    findings = []
    for r in rules:
        ts0 = time.perf_counter()
        f = evaluate([r], ev)[0]
        findings.append({**_summary(f), "seconds": round(time.perf_counter() - ts0, 2)})
    res.update(rules_seconds=round(time.perf_counter() - t1, 1), rule_code=rule_code(), findings=findings)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(out)
    return res


def data_level(spec: DataSpec) -> dict[str, Any]:
    """The data checks on the confounded held-out set and on a clean one (cue independent of the class)."""
    out = {}
    for version in ("confounded", "clean"):
        dc = datachecks(spec, version)
        out[version] = [{"property": p.name, "group": b["group"], "auc": b["auc"], "lo": b["ci95"][0]}
                        for p in dc.properties if (b := p.best()) is not None]
        out[version + "_cross_class_duplicates"] = dc.n_cross_class_duplicates
    return out
