"""[robustness] and [slices] on every other task (binary, multi-label, segmentation, inspection), on the rule
contract's small sets (tests/plugins/audit_sets.py): every part either measures or says why it does not apply, the
corruption metric is the task's own key metric, every robustness and slice rule kind whose needs the task meets
returns a result that is not a crash, and results.json validates against the schema. (The multiclass case is
tests/robustness/test_robustness_stage.py and tests/slices/test_stage.py.) Nets without a final nn.Linear are sliced on
their last convolution, pooled."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from audit.config import load_config
from audit.report.output import write_outputs
from audit.rules import registry as rule_registry
from audit.runner import run_audit
from audit.tasks import registry as task_registry

sys.path.insert(0, str(Path(__file__).parents[1] / "plugins"))
from audit_sets import example_set, squares_set  # the rule contract's sets (a module, not a conftest)

EXTRA = """
[robustness.corruptions]
names = ["contrast"]
severities = [3]
subset = 0
examples = 0
[robustness.adversarial]
eps = [0.03]
steps = 3
subset = 16
check_subset = 8
examples = 0
[robustness.ood]
detectors = ["msp", "energy"]
far_ood = ["blank"]
n_ood = 10
[slices]
min_size = 4
n_components = 3
"""
RULES = {"corruption_metric_min": {"threshold": 0.0}, "robust_accuracy_min": {"threshold": 0.0},
         "ood_auroc_min": {"threshold": 0.0}, "slice_gap_max": {"max_gap": 1.0}}
SCHEMA = json.loads((Path(__file__).parents[2] / "audit" / "schema" / "results.schema.json").read_text())


@pytest.mark.parametrize("task", ["binary", "multilabel", "segmentation", "anomaly"])
def test_robustness_and_slices_on_every_task(task, tmp_path, module_one_thread) -> None:
    s = squares_set(tmp_path / "set", task) if task in ("binary", "multilabel") else example_set(tmp_path / "set", task)
    provides = task_registry()[task].provides
    kinds = [k for k in RULES if rule_registry()[k].needs <= provides]
    pack = tmp_path / "pack.toml"
    pack.write_text('[pack]\nname = "t"\n' + "".join(
        f'[[rule]]\nid = "{k}"\nkind = "{k}"\n' + "".join(f"{p} = {v}\n" for p, v in RULES[k].items())
        for k in kinds))
    extra = EXTRA + ('label = "top"\n' if task == "multilabel" else "")
    s.config.write_text(s.config.read_text() + extra)
    result = run_audit(load_config(s.config, ["cache.enabled=false", f'rules.pack="{pack}"']))
    rob = result.robustness
    assert rob is not None and rob.corruptions is not None
    assert rob.corruptions.metric == result.task.key_metric
    for part in (rob.adversarial, rob.ood):
        assert part.status in ("measured", "not_measurable", "not_applicable")
        if part.status == "not_applicable":
            assert part.reason
    sl = result.slices
    assert sl is not None and (sl.status == "measured" or sl.reason)
    assert sl.status == "measured", sl.reason
    assert sl.metric == ("Dice" if task == "segmentation" else "accuracy")
    assert sl.label == ("top" if task == "multilabel" else None)
    if task in ("segmentation", "anomaly"):  # the example nets end in a convolution: its output, pooled
        assert sl.embedding.endswith("averaged over space") and sl.n + sl.left_out == result.scored.predictions.n
        stage = next(s for s in result.timings.stages if s.name == "slices")
        assert stage.passes >= 1  # the one extra pass over the held-out set
    else:
        assert sl.embedding == "the input of the model's last nn.Linear"
    if task == "anomaly":  # an anomaly map per image: no class scores for the OOD detectors
        assert rob.ood.status == "not_applicable" and "not one score per class" in rob.ood.reason
    found = {f.rule: f for f in result.findings}
    for k in kinds:
        assert not found[k].message.startswith("rule could not be evaluated"), found[k].message
    write_outputs(result, tmp_path / "report", ["json", "html"])  # summary.md too: every writer reads the parts
    jsonschema.validate(json.loads((tmp_path / "report" / "results.json").read_text()), SCHEMA)
    html = (tmp_path / "report" / "report.html").read_text()
    assert 'id="robustness"' in html and 'id="slices"' in html
