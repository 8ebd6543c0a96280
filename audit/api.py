"""The Python API: one call runs one audit and returns an object a notebook can read.

    import audit
    result = audit.run("audit.toml")                       # the same audit as `audit run audit.toml`
    result = audit.run(config_dict, model=module, data=df)  # an in-memory model and a manifest DataFrame
    result.verdict, result.metrics, result.findings          # plain values and pandas DataFrames
    result.save("reports/x")                                 # the same report folder as the CLI writes

The CLI is a thin layer over ``run``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from .compare.reports import load_results
from .compare.stage import Baseline
from .config import AuditConfig, build_config, read_config_tree
from .errors import ConfigError
from .explainers.layers import candidate_layers, hookless, last_conv
from .inputs import with_model_defaults
from .loading.model import load_model
from .maps.store import load_maps, maps_beside
from .report.folder import Protected, check_writable, protected_paths
from .report.output import write_outputs
from .report.writers import check_formats
from .result import AuditResult
from .runner import run_audit
from .tasks.base import Task


class Audit:
    """One finished audit: the verdict, metrics, findings and predictions as tables, and ``save``."""

    def __init__(self, result: AuditResult, protected: Protected | None = None) -> None:
        self.result = result
        self._protected = protected
        self.written: dict[str, Path] = {}  # the files of the last save

    @property
    def verdict(self) -> str:
        return self.result.verdict

    @property
    def passed(self) -> bool:
        return self.result.verdict == "pass"

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per headline metric: value and, where computed, its 95 % interval."""
        section = self.result.task.results_sections(self.result.metrics)["metrics"]
        rows = []
        for name, value in section.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            ci = self.result.metrics.interval(name)
            rows.append({"metric": name, "value": float(value), "ci95_low": ci[0] if ci else None,
                         "ci95_high": ci[1] if ci else None})
        return pd.DataFrame(rows, columns=["metric", "value", "ci95_low", "ci95_high"])

    @property
    def per_class(self) -> pd.DataFrame:
        """Per-class metrics (empty when the task has none)."""
        section = self.result.task.results_sections(self.result.metrics)["metrics"]
        return pd.DataFrame(section.get("per_class", []))

    @property
    def findings(self) -> pd.DataFrame:
        """One row per rule result, blocking ones first."""
        rows = [{"rule": f.rule, "kind": f.kind, "severity": f.severity, "status": f.status,
                 "blocking": f.blocking, "value": f.value, "threshold": f.threshold, "message": f.message}
                for f in self.result.findings]
        df = pd.DataFrame(rows, columns=["rule", "kind", "severity", "status", "blocking", "value", "threshold",
                                         "message"])
        return df.sort_values("blocking", ascending=False, kind="stable").reset_index(drop=True)

    @property
    def predictions(self) -> pd.DataFrame:
        """Per sample: id, label and the task's prediction fields, then one score column per class."""
        r = self.result
        record = r.task.predictions_json(r.predictions)
        df = pd.DataFrame({k: list(v) for k, v in record.items()})
        df = df.rename(columns={"ids": "id", "labels": "label"})
        scores = pd.DataFrame(r.predictions.probs, columns=[f"score_{c}" for c in r.classes][:r.predictions.probs
                                                                                             .shape[1]])
        return pd.concat([df, scores], axis=1)

    def save(self, out: str | Path, formats: Sequence[str] | None = None) -> dict[str, Path]:
        """Write the report folder (the CLI's files); the same output-folder rules apply."""
        fmts = list(formats) if formats is not None else list(self.result.config.report.formats)
        self.written = write_outputs(self.result, Path(out), fmts, self._protected)
        return self.written

    def _repr_html_(self) -> str:
        r = self.result
        colour = "#1a7f37" if self.passed else "#c62828"
        rows = "".join(
            f"<tr><td>{html.escape(f.rule)}</td><td>{html.escape(f.status)}{' (blocking)' if f.blocking else ''}"
            f"</td><td>{html.escape(f.message[:300])}</td></tr>" for f in r.findings)
        return (f"<div><p style='color:white;background:{colour};padding:4px 8px;display:inline-block'>"
                f"<b>{html.escape(r.verdict.upper())}</b></p> <span>{html.escape(r.config.name)} — "
                f"{html.escape(r.task.headline(r.metrics))}</span>"
                f"<table><tr><th>rule</th><th>status</th><th>message</th></tr>{rows}</table></div>")

    def __repr__(self) -> str:
        blocking = [f.rule for f in self.result.findings if f.blocking]
        return (f"<Audit {self.result.config.name!r}: {self.verdict.upper()}"
                + (f", blocking: {', '.join(blocking)}" if blocking else "") + ">")


def _config(config: str | Path | Mapping[str, Any] | AuditConfig, overrides: Sequence[str],
            base_dir: str | Path | None, model: nn.Module | None, data: pd.DataFrame | None) -> AuditConfig:
    """The audit's config; an in-memory model or manifest takes the place of the config's own source."""
    replace: dict[str, dict[str, Any]] = {}
    if model is not None:
        replace["model"] = {"python": type(model).__qualname__}
    if data is not None:
        replace["data"] = {"dataframe": f"data frame ({len(data)} rows)"}
    if isinstance(config, AuditConfig):
        if replace or overrides:
            raise ConfigError("audit.run: pass a config file or dict (not an AuditConfig) with model=, data= or "
                              "overrides=")
        return config
    if isinstance(config, Mapping):
        return build_config(dict(config), Path(base_dir or Path.cwd()).resolve(), "<config dict>", list(overrides),
                            replace)
    path = Path(config)
    return build_config(read_config_tree(path), path.resolve().parent, str(path), list(overrides), replace)


def run(config: str | Path | Mapping[str, Any] | AuditConfig, *, model: nn.Module | None = None,
        data: pd.DataFrame | None = None, overrides: Sequence[str] = (), base_dir: str | Path | None = None, baseline: str | Path | None = None,
        unpaired: bool = False, out: str | Path | None = None, tasks: Mapping[str, type[Task]] | None = None
        ) -> Audit:
    """Run one audit. ``config``: a TOML file, a dict shaped like one (relative paths against ``base_dir``, default
    the working directory) or an AuditConfig. ``model``: an in-memory nn.Module instead of the config's model
    source (the audit works on a copy; the caller's module is left as it was). ``data``: the held-out manifest as a
    DataFrame (the CSV's columns; paths relative to ``base_dir``) instead of ``data.manifest`` / ``image_folder``. ``baseline``: an earlier report
    folder or results.json to gate against. ``out``: also write the report folder there (checked before the
    audit runs). Bad input raises ``audit.errors.AuditError`` subclasses with one-line messages."""
    cfg = _config(config, overrides, base_dir, model, data)
    check_formats(cfg.report.formats)
    base = None
    if baseline is not None:
        maps = maps_beside(baseline)
        base = Baseline(load_results(baseline), load_maps(maps) if maps is not None else None, unpaired)
    protected = protected_paths(cfg, [(Path(baseline), "the baseline report")] if baseline is not None else [])
    if out is not None:
        check_writable(Path(out), protected)
    audit = Audit(run_audit(cfg, baseline=base, tasks=dict(tasks or {}), model=model, data=data), protected)
    if out is not None:
        audit.written = audit.save(out, cfg.report.formats)
    return audit


def model_layers(config: str | Path | Mapping[str, Any], *, model: nn.Module | None = None,
                 base_dir: str | Path | None = None) -> pd.DataFrame:
    """The configured model's layers that can be explained (their output can be placed on the image), in the
    order they run on one blank input of the configured size, with the default target layer marked."""
    cfg, _ = with_model_defaults(_config(config, (), base_dir, model, None))
    if cfg.data.image_size is None:
        raise ConfigError("data.image_size: required (the model's input height and width)")
    loaded = load_model(cfg, cfg.model.num_classes or len(cfg.data.classes or ()) or 2, model)
    x = torch.zeros(1, cfg.data.channels, *cfg.data.image_size)
    rows = candidate_layers(loaded.module, x)
    default = None if hookless(loaded.module) else last_conv(loaded.module, x)[0]  # TorchScript: no hooks
    return pd.DataFrame([{"layer": n, "type": t, "output": "×".join(map(str, shape)), "layout": lay,
                          "default": n == default} for n, t, shape, lay in rows],
                        columns=["layer", "type", "output", "layout", "default"])
