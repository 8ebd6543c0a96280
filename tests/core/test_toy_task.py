"""A new task type is one module: a test-only task (one output, thresholded) gets a full audit through the
ordinary stages, and a pack asking for a rule kind the task does not support is refused before the model runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from audit.config import load_config
from audit.demo.model import DemoCNN
from audit.errors import ConfigError, ModelError
from audit.products import Pick, Picks, Predictions
from audit.report.output import write_outputs
from audit.runner import run_audit
from audit.tasks import ReportSection, SampleSummary, Task

# ---- the toy task: this block is all a new task type needs -------------------------------------------------


class ToyMetrics:
    def __init__(self, n: int, accuracy: float, mae: float) -> None:
        self.n, self.accuracy, self.mae = n, accuracy, mae

    def scalar(self, name: str) -> float:
        return {"accuracy": self.accuracy, "mae": self.mae}[name]

    def interval(self, name: str) -> tuple[float, float] | None:
        return None


class ThresholdTask(Task):
    """One output; its sigmoid is the probability of the second class, thresholded at 0.5."""

    name = "toy-threshold"
    title = "toy: one sigmoid output"
    provides = frozenset()  # no capability the rules read beyond named metrics: metric and data rules only
    model_views = False

    def check_outputs(self, outputs: object, batch: int) -> torch.Tensor:
        if not isinstance(outputs, torch.Tensor) or outputs.shape != (batch, 1):
            raise ModelError(f"toy task needs (batch, 1) outputs, got {getattr(outputs, 'shape', type(outputs))}")
        return outputs.float()

    def to_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(outputs.float())

    def _pred(self, preds: Predictions) -> np.ndarray:
        return (preds.probs[:, 0] > 0.5).astype(np.int64)

    def metrics(self, preds: Predictions, rng: np.random.Generator, subgroups: Sequence[str] = ()) -> ToyMetrics:
        return ToyMetrics(preds.n, float((self._pred(preds) == preds.labels).mean()),
                          float(np.abs(preds.probs[:, 0] - preds.labels).mean()))

    def results_sections(self, metrics: Any) -> dict[str, Any]:
        return {"metrics": {"accuracy": metrics.accuracy, "mae": metrics.mae}}

    def report_sections(self, metrics: Any) -> list[ReportSection]:
        rows = [{"name": "accuracy", "value": f"{metrics.accuracy:.3f}"},
                {"name": "mean absolute error", "value": f"{metrics.mae:.3f}"}]
        return [ReportSection("toy-metrics", "Toy metrics", "_table.html.j2", {"rows": rows, "note": "toy"})]

    def headline(self, metrics: Any) -> str:
        return f"toy accuracy {metrics.accuracy:.4f}, MAE {metrics.mae:.4f}"

    def select(self, preds: Predictions, k: int, per_class: int) -> Picks:
        err = np.abs(preds.probs[:, 0] - preds.labels)
        rows = np.argsort(-err, kind="stable")[:k]
        pred = self._pred(preds)
        picks = tuple(Pick(str(preds.ids[r]), "incorrect" if pred[r] != preds.labels[r] else "correct", "overall",
                           int(preds.labels[r]), int(pred[r]), float(preds.probs[r, 0]), float(err[r]),
                           f"error {err[r]:.3f}") for r in rows)
        return Picks(overall={"borderline": picks}, per_class={})

    def outcome(self, preds: Predictions) -> np.ndarray:
        return self._pred(preds) == preds.labels

    def describe(self, preds: Predictions, row: int) -> SampleSummary:
        p = int(self._pred(preds)[row])
        return SampleSummary(self.classes[int(preds.labels[row])], self.classes[p], float(preds.probs[row, 0]),
                             bool(p == preds.labels[row]))

    def targets(self, preds: Predictions, rows: np.ndarray, mode: str) -> np.ndarray:
        return np.zeros(len(rows), dtype=np.int64)  # the one output

    def members(self, preds: Predictions, group: int, by: str) -> np.ndarray:
        return (self._pred(preds) if by == "predicted" else preds.labels) == group

    def decide(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return (scores[:, 0] > 0.5) == (np.asarray(targets) == 1)


# ---- the audit ------------------------------------------------------------------------------------------------


@pytest.fixture()
def toy_setup(tiny_model, make_setup, tmp_path):
    setup = make_setup(tmp_path / "toy", tiny_model)
    torch.manual_seed(0)
    one = DemoCNN(num_classes=1, width=4).eval()
    save_file({k: v.contiguous() for k, v in one.state_dict().items()}, str(setup.weights))
    text = setup.config.read_text().replace("num_classes = 3", "num_classes = 1\ntask = \"toy-threshold\"")
    text = text.replace('classes = ["left", "middle", "right"]', 'classes = ["left", "middle"]')
    setup.config.write_text(text)
    # two classes only: drop the third class's rows
    lines = setup.manifest.read_text().splitlines()
    setup.manifest.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ",right," not in ln]) + "\n")
    pack = tmp_path / "toy.toml"
    pack.write_text('[[rule]]\nid = "mae-ceiling"\nkind = "metric_max"\nmetric = "mae"\nthreshold = 0.99\n')
    return setup, pack


def test_a_test_only_task_gets_a_full_audit(toy_setup, tmp_path):
    setup, pack = toy_setup
    cfg = load_config(setup.config, [f'rules.pack="{pack}"', 'report.formats=["html","json","junit"]'])
    result = run_audit(cfg, tasks={"toy-threshold": ThresholdTask})
    assert result.task.name == "toy-threshold"
    assert result.predictions.probs.shape == (result.predictions.n, 1)
    assert np.all((result.predictions.probs >= 0) & (result.predictions.probs <= 1))  # sigmoid, not softmax
    assert [f.rule for f in result.findings] == ["mae-ceiling", "evidence-complete"] and result.verdict == "pass"
    out = tmp_path / "report"
    write_outputs(result, out, cfg.report.formats)
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["metrics"]) == {"accuracy", "mae"}
    assert "confusion_matrix" not in doc  # the multiclass sections belong to the multiclass task
    gradcam = doc["explainers"][0]
    assert {k: gradcam[k] for k in ("name", "status", "reason", "signed", "n_maps")} == {
        "name": "gradcam", "status": "ok", "reason": "", "signed": False, "n_maps": len(result.picks.all_ids())}
    html = (out / "report.html").read_text()
    assert "Toy metrics" in html and "mean absolute error" in html
    assert "toy accuracy" in (out / "summary.md").read_text()


def test_rule_kind_outside_the_task_is_refused_up_front(toy_setup, tmp_path):
    setup, _ = toy_setup
    pack = tmp_path / "roi.toml"
    pack.write_text('[[rule]]\nid = "roi"\nkind = "roi_attribution"\n')
    cfg = load_config(setup.config, [f'rules.pack="{pack}"'])
    with pytest.raises(ConfigError, match="kind 'roi_attribution' does not apply to task 'toy-threshold'"):
        run_audit(cfg, tasks={"toy-threshold": ThresholdTask})


def test_unknown_task_names_the_known_ones(toy_setup):
    setup, _ = toy_setup
    cfg = load_config(setup.config, ['model.task="nope"'])
    with pytest.raises(ConfigError, match="model.task: unknown task 'nope'; known: .*multiclass"):
        run_audit(cfg)
