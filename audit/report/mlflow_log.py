"""``[report] mlflow``: log a finished audit to an MLflow run, and fetch an earlier run's report as a baseline.

What one run holds (MLflow's own client, no global state: the tracking URI is passed to ``MlflowClient``):

- metrics: every headline metric (``accuracy``, ``ece``, … with ``accuracy_ci95_low/high``), per class
  ``precision.<class>`` / ``recall.<class>`` / ``f1.<class>`` (segmentation: ``iou``, ``dice``, ``boundary_f1``),
  per rule ``rule.<id>.value`` and ``rule.<id>.threshold``, ``rule.<id>.passed`` for a rule that held or did not
  (1 pass; 0 fail or error) and ``rule.<id>.warned`` (1) for a warning-severity rule that did not hold: it passes the
  gate, so it is neither a pass nor a failure (a rule that did not apply logs neither), and ``audit.passed`` (1 / 0);
- tags: ``audit.verdict``, ``audit.reason``, ``audit.blocking``, ``audit.document_id``, ``audit.schema_version``,
  ``audit.artifact_path``, ``rule.<id>.status``, ``rule.<id>.criterion`` (the headline results.json states:
  "probability drop 0.276 > 0.200 (for 'seven', top-left corner)") and ``rule.<id>.subject`` (what was judged);
- params: model name, version and SHA-256, data hashes, rule pack and its SHA-256, task, seed, sample count;
- artifacts: the report folder under ``artifact_path`` (default ``audit-report``) and the resolved config as
  ``audit_config.json`` (plus the config file itself as ``audit_config.toml`` when there is one).

Names are sanitised to MLflow's alphabet (letters, digits, ``_ - . / space``); other characters become ``_``.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..config import MlflowConfig
from ..errors import DataError, RenderError
from .criteria import headline_of
from .writers.attest import metric_rows

BASELINE_PREFIX = "mlflow:"
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./ ]")


def _client(tracking_uri: str) -> Any:
    """MLflow's client for ``tracking_uri``. A ``file:`` store is what the user asked for: MLflow >= 3.7 keeps it
    in maintenance mode and refuses it unless MLFLOW_ALLOW_FILE_STORE is set, which is set here (when unset)."""
    import os

    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RenderError('report.mlflow needs the mlflow package: pip install "model-audit[mlflow]"') from None
    if urlparse(tracking_uri).scheme == "file":
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=tracking_uri)


def resolve_uri(uri: str, base_dir: Path) -> str:
    """A tracking URI with a relative local path (``mlruns``, ``file:mlruns``, ``sqlite:///rel.db``) made absolute
    against the config's folder; other URIs unchanged."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") and not parsed.netloc:
        p = Path(parsed.path if parsed.scheme else uri)
        return (p if p.is_absolute() else (base_dir / p)).resolve().as_uri()
    if parsed.scheme == "sqlite" and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str((base_dir / uri[len("sqlite:///"):]).resolve())
    return uri


def key(*parts: str) -> str:
    return ".".join(_UNSAFE.sub("_", str(p)) for p in parts)[:250]


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def run_contents(results: Mapping[str, Any], document_id: str,
                 artifact_path: str) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """(metrics, params, tags) of one audit, from results.json."""
    metrics: dict[str, float] = {}
    for r in metric_rows(results):
        metrics[key(r["name"])] = r["value"]
        if r["ci95"]:
            metrics[key(r["name"] + "_ci95_low")], metrics[key(r["name"] + "_ci95_high")] = r["ci95"]
    for c in (results.get("metrics") or {}).get("per_class") or ():
        for m in ("precision", "recall", "f1", "iou", "dice", "boundary_f1"):  # classification; segmentation
            v = _num(c.get(m))
            if v is not None:
                metrics[key(m, c.get("class"))] = v
    tags = {"audit.verdict": str(results.get("verdict")),
            "audit.reason": str((results.get("summary") or {}).get("reason", ""))[:5000],
            "audit.blocking": ", ".join((results.get("summary") or {}).get("blocking") or []) or "none",
            "audit.document_id": document_id, "audit.schema_version": str(results.get("schema_version")),
            "audit.artifact_path": artifact_path}
    for r in results.get("rules") or ():
        rid = str(r.get("id"))
        for field in ("value", "threshold"):
            v = _num(r.get(field))
            if v is not None:
                metrics[key("rule", rid, field)] = v
        status = r.get("status")
        if status in ("pass", "fail", "error"):
            metrics[key("rule", rid, "passed")] = 1.0 if status == "pass" else 0.0
        elif status == "warn":
            metrics[key("rule", rid, "warned")] = 1.0
        tags[key("rule", rid, "status")] = str(status)
        tags[key("rule", rid, "criterion")] = headline_of(r)[:5000]
        about = (r.get("subject") or {}).get("text")
        if about:
            tags[key("rule", rid, "subject")] = str(about)[:5000]
    metrics["audit.passed"] = 1.0 if results.get("verdict") == "pass" else 0.0
    prov = results.get("provenance") or {}
    model, data, pack = prov.get("model") or {}, prov.get("data") or {}, prov.get("rule_pack") or {}
    params = {"model.name": model.get("name"), "model.version": model.get("version"),
              "model.sha256": model.get("sha256"), "model.source": model.get("source"),
              "data.manifest_sha256": data.get("manifest_sha256"), "data.images_sha256": data.get("images_sha256"),
              "data.n_scored": data.get("n_scored"), "rule_pack": pack.get("name"),
              "rule_pack.sha256": pack.get("sha256"), "task": (prov.get("config") or {}).get("model", {}).get("task"),
              "seed": prov.get("seed"), "audit.name": results.get("name")}
    return metrics, {k: str(v)[:6000] for k, v in params.items() if v is not None}, tags


def log_run(cfg: MlflowConfig, results: Mapping[str, Any], report_dir: Path, document_id: str,
            config_json: Mapping[str, Any], config_file: Path | None, base_dir: Path) -> tuple[str, str]:
    """Log the audit whose report is in ``report_dir``; returns (run id, tracking URI). Errors name the URI."""
    from mlflow.entities import Metric, Param

    uri = resolve_uri(cfg.tracking_uri, base_dir)
    client = _client(uri)
    try:
        exp = client.get_experiment_by_name(cfg.experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(cfg.experiment)
        metrics, params, tags = run_contents(results, document_id, cfg.artifact_path)
        run = client.create_run(exp_id, run_name=cfg.run_name or str(results.get("name")), tags=tags)
        rid = run.info.run_id
        now = int(time.time() * 1000)
        items = [Metric(k, v, now, 0) for k, v in metrics.items()]
        for i in range(0, max(len(items), 1), 900):  # MLflow batches hold at most 1000 metrics
            client.log_batch(rid, metrics=items[i:i + 900],
                             params=[Param(k, v) for k, v in params.items()] if i == 0 else [])
        client.log_artifacts(rid, str(report_dir), cfg.artifact_path)
        client.log_dict(rid, dict(config_json), "audit_config.json")
        if config_file is not None and config_file.is_file():
            client.log_text(rid, config_file.read_text(encoding="utf-8"), "audit_config.toml")
        client.set_terminated(rid, "FINISHED")
    except Exception as e:  # noqa: BLE001 - MLflow raises many kinds (MlflowException, OSError, HTTP errors)
        raise RenderError(f"{report_dir}: the report was written, but logging it to MLflow at {uri} failed: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    return rid, uri


def is_run_ref(spec: str | Path) -> bool:
    return str(spec).startswith((BASELINE_PREFIX, "runs:/"))


def fetch_baseline(spec: str | Path, tracking_uri: str | None) -> Path:
    """A local folder holding the report logged by run ``mlflow:<run id>`` (or ``runs:/<run id>[/path]``);
    ``spec`` unchanged when it is a plain path. The tracking URI comes from ``tracking_uri`` or
    MLFLOW_TRACKING_URI."""
    import os

    s = str(spec)
    if not is_run_ref(s):
        return Path(spec)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise DataError(f"{s}: an MLflow baseline needs a tracking URI: --mlflow-uri or MLFLOW_TRACKING_URI")
    uri = resolve_uri(uri, Path.cwd())
    ref = s[len(BASELINE_PREFIX):] if s.startswith(BASELINE_PREFIX) else s[len("runs:/"):]
    run_id, _, sub = ref.partition("/")
    client = _client(uri)
    try:
        run = client.get_run(run_id)
        path = sub or run.data.tags.get("audit.artifact_path", "audit-report")
        dst = Path(tempfile.mkdtemp(prefix="audit-mlflow-baseline-"))
        local = Path(client.download_artifacts(run_id, path, str(dst)))
    except Exception as e:  # noqa: BLE001 - MLflow raises many kinds
        raise DataError(f"{s}: cannot fetch the baseline from MLflow at {uri}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if not (local / "results.json").is_file():
        raise DataError(f"{s}: the run's artifacts at '{path}' hold no results.json (not a model-audit report)")
    return local
