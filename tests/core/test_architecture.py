"""The floors of ARCHITECTURE.md hold: the import-linter contracts in pyproject.toml pass on the package, and a
planted upward import in a copy of the package breaks them (the contracts are read and enforced, not vacuous)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import get_args

import pytest

from audit.rules import registry as rule_registry
from audit.rules.base import Rule, RuleParams

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = ("floors", "report-floors", "no-circles", "rule-kinds", "output-formats", "engines")


def lint(package_parent: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's pyproject.toml on the ``audit`` package found under ``package_parent``."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(REPO / 'pyproject.toml')!r}, no_cache=True, no_logo=True))")
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([sys.executable, "-c", code], cwd=package_parent, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_every_contract_is_declared():
    declared = [c["id"] for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
                ["contracts"]]
    assert declared == list(CONTRACTS)


def test_the_package_keeps_its_contracts_and_a_planted_upward_import_breaks_them(tmp_path):
    res = lint(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count(" KEPT") == len(CONTRACTS), res.stdout
    shutil.copytree(REPO / "audit", tmp_path / "audit", ignore=shutil.ignore_patterns("__pycache__"))
    low = tmp_path / "audit" / "scoring" / "ranking.py"  # the scores' floor reaching up to the report
    low.write_text(low.read_text() + "\nfrom ..report import output  # noqa: E402, F401\n")
    res = lint(tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Floors: a package imports only the floors below it BROKEN" in res.stdout
    assert "audit.scoring.ranking -> audit.report.output" in res.stdout


def test_a_rule_kind_without_a_criterion_cannot_be_used():
    class NoCriterion(Rule[RuleParams]):
        kind = "no_criterion"
        title = "a kind that states no criterion"

        def check(self, evidence):
            return []

    with pytest.raises(TypeError, match="'no_criterion': NoCriterion declares no criterion"):
        NoCriterion(RuleParams(id="x", kind="no_criterion"))


def generic_params(cls: type) -> type | None:
    """The parameters class named in ``Rule[XParams]`` by the class or its nearest generic base."""
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            args = [a for a in get_args(base) if isinstance(a, type) and issubclass(a, RuleParams)]
            if args:
                return args[0]
    return None


def test_rule_params_come_from_the_generic_argument():
    from audit.rules.metric import MetricMin, MetricParams

    assert MetricMin.Params is MetricParams
    for cls in rule_registry().values():
        assert cls.Params is generic_params(cls), cls.kind
