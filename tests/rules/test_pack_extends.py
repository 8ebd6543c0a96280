"""Rule packs that extend another: inherited rules first, same id replaces, cycles refused."""

import pytest

from audit.errors import ConfigError
from audit.resources import rules_dir
from audit.rules.pack import find_pack, load_pack


def test_bundled_demo_gate_extends_demo():
    demo = load_pack(find_pack("demo", rules_dir()))
    gate = load_pack(find_pack("demo-gate", rules_dir()))
    ids = [r.params.id for r in gate.rules]
    assert ids[:len(demo.rules)] == [r.params.id for r in demo.rules]
    assert "no-new-failures" in ids and len(ids) == len(set(ids))
    assert [f.name for f in gate.files] == ["demo-gate.toml", "demo.toml"]


def test_same_id_replaces_the_inherited_rule(tmp_path):
    (tmp_path / "base.toml").write_text('[[rule]]\nid = "acc"\nkind = "metric_min"\nmetric = "accuracy"\n'
                                        'threshold = 0.9\n[[rule]]\nid = "f1"\nkind = "metric_min"\n'
                                        'metric = "macro_f1"\nthreshold = 0.5\n')
    (tmp_path / "mine.toml").write_text('[pack]\nextends = "base.toml"\n[[rule]]\nid = "acc"\nkind = "metric_min"\n'
                                        'metric = "accuracy"\nthreshold = 0.95\n[[rule]]\nid = "ece"\n'
                                        'kind = "metric_max"\nmetric = "ece"\nthreshold = 0.1\n')
    pack = load_pack(tmp_path / "mine.toml")
    assert [(r.params.id, r.params.threshold) for r in pack.rules] == [("acc", 0.95), ("f1", 0.5), ("ece", 0.1)]


def test_extends_cycle_and_missing_parent_are_named(tmp_path):
    (tmp_path / "a.toml").write_text('[pack]\nextends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('[pack]\nextends = "a.toml"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_pack(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text('[pack]\nextends = "nope"\n')
    with pytest.raises(ConfigError, match="no bundled pack 'nope'"):
        load_pack(tmp_path / "c.toml")
