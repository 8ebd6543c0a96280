"""The common check of every rule kind (as scikit-learn's estimator checks): on every built-in task whose
capabilities meet the kind's needs, each of the kind's examples, audited on a tiny set with everything a rule may
read (ROIs, metadata, concepts, a baseline), returns a result with a reason and never crashes (evaluate turns a
rule that raises into "rule could not be evaluated: <exception>"), and every measured result states its criterion.
An error the rule itself states (what these data do not allow it to judge, e.g. a blur baseline that keeps an
anomaly detector's score) is a result, never a pass. On a task that lacks what the kind needs, a pack asking for it
is refused before the model runs."""

from __future__ import annotations

import pytest
from audit_sets import TASKS, filled, pack_toml

from audit.config import load_config
from audit.errors import ConfigError
from audit.inputs import prepare_inputs
from audit.rules import registry as rule_registry
from audit.tasks import registry as task_registry

KINDS = tuple(rule_registry())
CRASHED = ("rule could not be evaluated:", "rule produced no result")  # how evaluate words a rule that raised


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("task", TASKS)
def test_rule_kind_on_task(task, kind, contract_sets, contract_audit, tmp_path):
    cls, task_cls = rule_registry()[kind], task_registry()[task]
    if not cls.needs <= task_cls.provides:
        pack = tmp_path / "one.toml"
        fields = filled(cls.examples[0], {"metric": "accuracy", "class0": "a", "class1": "b"})
        pack.write_text(pack_toml([("one", kind, fields)]))
        cfg = load_config(contract_sets(task).config, [f'rules.pack="{pack}"'])
        with pytest.raises(ConfigError, match=f"kind '{kind}' does not apply to task '{task}' \\(it needs "):
            prepare_inputs(cfg)
        return
    audit = contract_audit(task)
    ids = {f"{kind}-{i}" for i in range(len(cls.examples))}
    findings = [f for f in audit.result.findings if f.rule in ids]
    assert {f.rule for f in findings} == ids, f"an example of {kind} left no finding"
    for f in findings:
        assert f.status in ("pass", "warn", "fail", "not_applicable", "error"), f.status
        assert not f.message.startswith(CRASHED), f"{f.rule} on {task}: {f.message}"
        assert f.message.strip()
        if f.status == "not_applicable":
            assert f.details.get("not_applicable") is True
        elif f.status != "error":
            crit = f.details.get("criterion")
            assert isinstance(crit, dict) and crit["name"] and crit["direction"] in ("above", "below"), f.rule


def test_a_segmentation_with_marked_concepts_is_refused_naming_why(contract_sets, tmp_path):
    s = contract_sets("segmentation")
    config = s.root / "with-concepts.toml"
    config.write_text(s.config.read_text() + '\n[concepts]\n[concepts.sets.x]\nfolder = "."\nforbidden = true\n')
    with pytest.raises(ConfigError, match=r"rule 'concept-reliance' \(Added automatically: \[concepts\] marks 'x' "
                                          r"forbidden.*does not apply to task 'segmentation'"):
        prepare_inputs(load_config(config))
