"""The [[family]] entries and [family_audit]: what a member inherits from [model], and one-line errors naming the
entry and field for what cannot be audited (before any model runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.config import ModelConfig, config_from_dict, load_config, member_model
from audit.errors import ConfigError
from audit.inputs import prepare_inputs

MODEL = {"factory": "family_nets:build", "factory_kwargs": {"num_classes": 2}, "num_classes": 2,
         "weights": "w0.safetensors", "output_kind": "logits", "name": "released"}


def config(family, family_audit=None, model=MODEL):
    tree = {"model": model, "data": {"image_folder": "."}, "family": family}
    if family_audit is not None:
        tree["family_audit"] = family_audit
    return config_from_dict(tree, Path("."))


def test_member_inherits_the_architecture_and_how_outputs_are_read():
    m = config([{"name": "seed-1", "weights": "w1.safetensors"},
                {"name": "tv", "torchvision": "resnet18"}])
    one = member_model(m.model, m.family[0])
    assert (one.factory, one.factory_kwargs, one.weights, one.output_kind, one.name) == (
        "family_nets:build", {"num_classes": 2}, Path("w1.safetensors"), "logits", "seed-1")
    other = member_model(m.model, m.family[1])
    assert (other.torchvision, other.factory, other.factory_kwargs, other.output_kind) == ("resnet18", None, {},
                                                                                          "logits")
    assert isinstance(other, ModelConfig)


@pytest.mark.parametrize(("family", "message"), [
    ([{"name": "a", "weights": "x"}, {"name": "A", "weights": "y"}], "member name 'A' is used twice"),
    ([{"name": "a", "released": True}, {"name": "b", "released": True}], "only one member can be the released"),
    ([{"name": "Ensemble", "weights": "x"}], "the name 'ensemble' is the family's mean ensemble"),
    ([{"name": "a", "released": True, "weights": "x"}], "the released member is the \\[model\\] section itself"),
    ([{"name": "a"}], "name the member's 'weights'"),
    ([{"name": "a", "timm": "resnet18", "torchvision": "resnet18"}], "at most one source per member"),
    ([{"name": "a", "weights": "x", "out_of_fold": {"column": "fold", "values": []}}], "at least one value"),
    ([{"name": "bad/name", "weights": "x"}], "family.0.name"),
])
def test_bad_entries_are_refused_naming_the_field(family, message):
    with pytest.raises(ConfigError, match=message):
        config(family)


def test_family_audit_needs_members_and_an_inheritable_model():
    with pytest.raises(ConfigError, match="family_audit.*needs \\[\\[family\\]\\] entries"):
        config([], {"ensemble": False})
    with pytest.raises(ConfigError, match="a family needs a \\[model\\] named by a file or a factory"):
        config([{"name": "a", "weights": "x"}], model={"python": "MyNet"})


def test_rules_counted_per_member_must_be_evaluated_on_them(family_config):
    pack = ('[pack]\nname = "p"\n[[rule]]\nid = "floor"\nkind = "metric_min"\nmetric = "accuracy"\nthreshold = 0.5\n'
            '[[rule]]\nid = "count"\nkind = "family_members_fail_max"\nrule = "other"\n')
    members = '\n[[family]]\nname = "seed-1"\nweights = "../members/seed-1.safetensors"\n'
    counted = family_config("counted", pack, members)
    with pytest.raises(ConfigError, match="rule 'count': rule 'other' is not evaluated on the members"):
        prepare_inputs(load_config(counted))
    res = CliRunner().invoke(app, ["validate", str(counted)])  # `audit validate` refuses it too, exit 2
    assert res.exit_code == 2 and "rule 'other' is not evaluated on the members" in res.output
    listed = load_config(family_config("listed", pack, members + '\n[family_audit]\nrules = ["nope"]\n'))
    with pytest.raises(ConfigError, match="family_audit.rules: 'nope' is not a main-phase rule of the pack"):
        prepare_inputs(listed)
