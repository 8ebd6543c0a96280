"""One zoo model through the audit's data checks and rules, without the runner: the i.i.d. held-out set as PNG /
JPEG files with ROI boxes and metadata, a ModelProbe over the trained model, an Evidence with the data-checks
product, and every rule of a pack evaluated on it. The result (statuses, values, thresholds, criteria, the
worst cell, reliance measured on the swapped copy) is cached as JSON beside the model, keyed by the model, the
pack file and the rule code, so a rerun only evaluates what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from zoo_data import CLASSES, DataSpec, make_set, write_set
from zoo_models import CACHE, MEAN, STD, accuracy, load_or_train, model_key, train_spec

from audit.datachecks import DataChecks, run_datachecks
from audit.engine.probe import ModelProbe
from audit.loading.decode import DecodeOptions
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
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    arch: str
    kind: str
    seed: int
    version: str  # "confounded" | "clean" (the clean twin)

    @property
    def name(self) -> str:
        return f"{self.arch}/{self.kind}/{self.version}/s{self.seed}"


@cache
def _code_hash() -> str:
    files = sorted((ROOT / "audit" / "rules").glob("*.py")) + sorted((ROOT / "audit" / "datachecks").glob("*.py"))
    files += [Path(__file__)]
    return hashlib.sha1(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]


def data_dir(kind: str, seed: int, version: str) -> Path:
    return CACHE / "data" / f"{kind}-s{seed}-{version}"


@cache
def heldout(kind: str, seed: int, version: str = "confounded") -> tuple[list[SampleRecord], pd.DataFrame, Any]:
    """The held-out set as files: records with ROI boxes and metadata, the metadata frame and the ZooSet."""
    spec = DataSpec(kind, seed=seed)
    zs = make_set(spec, "test", version)
    paths = write_set(zs, data_dir(kind, seed, version))
    meta = pd.DataFrame({k: v.astype(str) for k, v in zs.metadata.items()})
    recs = [SampleRecord(id=f"s{i:04d}", path=p, label=int(zs.labels[i]),
                         roi_box=tuple(float(v) for v in zs.boxes[i]), metadata=dict(meta.iloc[i]),
                         source=f"zoo {kind} #{i}") for i, p in enumerate(paths)]
    return recs, meta, zs


@cache
def datachecks(kind: str, seed: int, version: str = "confounded") -> DataChecks:
    recs, meta, _ = heldout(kind, seed, version)
    return run_datachecks(recs, CLASSES, meta, 3, DecodeOptions(), seed)


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


def build_evidence(model: nn.Module, kind: str, seed: int) -> Evidence:
    recs, meta, zs = heldout(kind, seed)
    ids = [r.id for r in recs]
    x = torch.stack([torch.from_numpy(PREPROCESS.fit(_open(r.path))).permute(2, 0, 1) for r in recs])
    x = (x - MEAN) / STD
    preds = _predictions(model, x.float(), ids, zs.labels, meta)
    metrics = score(preds, CLASSES, np.random.default_rng(seed))
    probe = ModelProbe.local(model, recs, PREPROCESS, preds, task=MulticlassTask(CLASSES), seed=seed,
                             batch_size=256, explain_batch_size=64, dataset_mean=x.mean(0))
    return Evidence(classes=CLASSES, predictions=preds, metrics=metrics, picks=Picks(overall={}, per_class={}),
                    probe=probe, seed=seed, explainers=("gradcam",), n_listed=len(ids), data=datachecks(kind, seed))


def _open(path: Path) -> Any:
    from audit.loading.decode import decode_image

    return decode_image(path, 3)


def _summary(f: Any) -> dict[str, Any]:
    d = f.details or {}
    keep = {k: d[k] for k in ("worst_region", "worst_group", "worst_column", "criterion", "explainer", "flagged",
                              "not_model_sensitive") if k in d}
    return {"rule": f.rule, "kind": f.kind, "severity": f.severity, "status": f.status, "value": f.value,
            "threshold": f.threshold, "message": f.message[:600], **keep}


def evaluate_case(case: Case, pack: RulePack, rule_ids: tuple[str, ...] | None = None, force: bool = False,
                  cached_only: bool = False) -> dict[str, Any]:
    """Train (or load) the case's model, measure its reliance and evaluate the pack's rules; cached
    (``cached_only``: FileNotFoundError when this case has no cached result)."""
    spec = DataSpec(case.kind, seed=case.seed)
    ts = train_spec(case.arch, case.version)
    pack_hash = hashlib.sha1(b"".join(p.read_bytes() for p in pack.files)).hexdigest()[:12]
    key = hashlib.sha1(json.dumps([model_key(spec, ts), pack_hash, _code_hash(), rule_ids]).encode()).hexdigest()[:16]
    out = CACHE / "results" / f"{case.arch}-{case.kind}-{case.version}-s{case.seed}-{key}.json"
    if out.is_file() and not force:
        return json.loads(out.read_text())
    if cached_only:
        raise FileNotFoundError(out)
    t0 = time.perf_counter()
    model, trained = load_or_train(spec, ts)
    t_train = time.perf_counter() - t0
    _, _, iid = heldout(case.kind, case.seed)
    swapped = make_set(spec, "test", "swapped")
    acc_iid = accuracy(model, iid.images, iid.labels)
    acc_sw = accuracy(model, swapped.images, swapped.labels)
    ev = build_evidence(model, case.kind, case.seed)
    rules = [r for r in pack.rules if r.phase == "main" and (rule_ids is None or r.params.id in rule_ids)]
    t1 = time.perf_counter()
    findings = []
    for r in rules:
        ts0 = time.perf_counter()
        f = evaluate([r], ev)[0]
        findings.append({**_summary(f), "seconds": round(time.perf_counter() - ts0, 2)})
    res = {"case": asdict(case), "target": CLASSES[spec.target], "acc_iid": acc_iid, "acc_swapped": acc_sw,
           "reliance": acc_iid - acc_sw, "relies": bool(acc_iid - acc_sw >= RELIANCE_DROP),
           "trained_now": trained, "train_seconds": round(t_train, 1),
           "rules_seconds": round(time.perf_counter() - t1, 1), "findings": findings}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(out)
    return res


def data_level(kind: str, seed: int) -> dict[str, Any]:
    """The data checks on the confounded held-out set and on a clean one (cue independent of the class)."""
    out = {}
    for version in ("confounded", "clean"):
        dc = datachecks(kind, seed, version)
        out[version] = [{"property": p.name, "group": b["group"], "auc": b["auc"], "lo": b["ci95"][0]}
                        for p in dc.properties if (b := p.best()) is not None]
        out[version + "_cross_class_duplicates"] = dc.n_cross_class_duplicates
    return out
