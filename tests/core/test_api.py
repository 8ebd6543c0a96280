"""The Python API: the README example runs as written; a config file, a dict, an in-memory model and a DataFrame
manifest give the same audit as the CLI; tables come back as DataFrames; the caller's model is left alone."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import audit
from audit.cli import app
from audit.errors import DataError

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- README-EXAMPLE: tests/core/test_api.py runs this block -->\n```python\n(.*?)```", text, re.DOTALL)
    assert m, "README lost its runnable API example"
    return m.group(1)


def test_the_readme_example_runs(tiny, tmp_path, capsys):
    ns = {"DATA_FOLDER": tiny.root, "OUT_FOLDER": tmp_path / "out"}
    exec(compile(readme_example(), "README.md", "exec"), ns)  # noqa: S102 - the documented example, verbatim
    result = ns["result"]
    assert isinstance(result, audit.Audit) and result.verdict in ("pass", "fail")
    assert list(result.metrics.columns) == ["metric", "value", "ci95_low", "ci95_high"]
    assert "accuracy" in set(result.metrics["metric"])
    assert {"rule", "status", "blocking"} <= set(result.findings.columns)
    assert len(result.predictions) == 3 and {"score_left", "score_right"} <= set(result.predictions.columns)
    assert (tmp_path / "out" / "results.json").is_file() and (tmp_path / "out" / "report.html").is_file()
    assert "<Audit 'audit'" in capsys.readouterr().out


def test_a_config_file_gives_the_cli_audit(tiny, tmp_path):
    res = CliRunner().invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "cli"),
                                   "--set", "cache.enabled=false"])
    assert res.exit_code == 0, res.output
    result = audit.run(tiny.config, overrides=["cache.enabled=false"], out=tmp_path / "api")
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("cli", "api"))
    for doc in (a, b):
        doc["provenance"].pop("started"), doc["provenance"].pop("finished")
    assert a == b
    accuracy = result.metrics.set_index("metric").loc["accuracy"]
    assert accuracy["value"] == pytest.approx(a["metrics"]["accuracy"])
    assert [accuracy["ci95_low"], accuracy["ci95_high"]] == pytest.approx(a["metrics"]["accuracy_ci95"])
    assert result.findings["status"].tolist() == [r["status"] for r in a["rules"]]
    html = result._repr_html_()
    assert "PASS" in html and "accuracy-floor" in html


def test_in_memory_model_and_data_frame(tiny, tiny_model):
    frame = pd.read_csv(tiny.manifest)
    cfg = {"data": {"classes": ["left", "middle", "right"], "image_size": [32, 32], "channels": 1,
                    "subgroups": ["site"]},
           "views": {"embeddings": ["pca"], "probe_samples": 0}, "cache": {"enabled": False}}
    model = copy.deepcopy(tiny_model)  # the session's model stays in eval mode for the other tests
    hooks_before = dict(model._forward_hooks)
    model.train()
    result = audit.run(cfg, model=model, data=frame, base_dir=tiny.root)
    assert model.training and dict(model._forward_hooks) == hooks_before  # the caller's module untouched
    assert result.passed
    assert result.result.model.source == "in-memory DemoCNN"
    assert result.result.provenance.data["source"] == "data frame (45 rows)"
    from_file = audit.run(tiny.config, overrides=["cache.enabled=false"])
    pd.testing.assert_frame_equal(result.predictions, from_file.predictions)


def test_a_bad_data_frame_names_the_row_and_field(tiny, tiny_model):
    frame = pd.read_csv(tiny.manifest)
    frame.loc[4, "label"] = "sideways"
    cfg = {"data": {"classes": ["left", "middle", "right"], "image_size": [32, 32], "channels": 1}}
    with pytest.raises(DataError, match=r"data frame row 4: field 'label': 'sideways' is not in classes"):
        audit.run(cfg, model=tiny_model, data=frame, base_dir=tiny.root)


def test_a_config_naming_python_without_a_model_is_refused(tiny):
    from audit.errors import ModelError

    cfg = {"model": {"python": "Net"}, "data": {"manifest": "manifest.csv", "image_size": [32, 32], "channels": 1,
                                                "classes": ["left", "middle", "right"]}}
    with pytest.raises(ModelError, match="model.python is set by audit.run"):
        audit.run(cfg, base_dir=tiny.root)


def test_a_tuple_returning_model_is_read_through_the_adapter(tiny, tiny_model):
    class WithFeatures(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.inner(x), x.mean(dim=(1, 2, 3))

    cfg = {"data": {"manifest": "manifest.csv", "classes": ["left", "middle", "right"], "image_size": [32, 32],
                    "channels": 1},
           "views": {"embeddings": ["pca"], "probe_samples": 0}, "cache": {"enabled": False}}
    result = audit.run(cfg, model=WithFeatures(tiny_model), base_dir=tiny.root)
    assert result.result.model.output == "element 0 of the tuple forward returns"
    assert result.result.provenance.model["output"] == "element 0 of the tuple forward returns"
    assert result.passed
