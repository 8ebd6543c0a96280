"""Fixtures of the common checks: one tiny audit set per built-in task, each audited once (lazily, shared by every
check of its task) with every rule kind that applies to the task, against a baseline report of itself; and the
test-only plugins of ``toys/``, registered through their entry points only while a test asks for them."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

import pytest
from audit_sets import (
    TOYS,
    AuditSet,
    ContractAudit,
    audit_with_every_kind,
    example_set,
    squares_set,
    with_concepts,
)


@pytest.fixture()
def toy_plugins(monkeypatch):
    """The folder of the test-only plugins on sys.path: its toy_plugins dist-info registers them as entry points
    (one line each in entry_points.txt), so the registries find them as they find a third party's."""
    monkeypatch.syspath_prepend(str(TOYS))
    importlib.invalidate_caches()
    yield TOYS
    for name in [m for m in sys.modules if m.startswith("toy_")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture(scope="session")
def contract_sets(tmp_path_factory, make_setup, tiny_model) -> Callable[[str], AuditSet]:
    """task -> its audit set, built on first use."""
    built: dict[str, AuditSet] = {}

    def get(task: str) -> AuditSet:
        if task not in built:
            root = tmp_path_factory.mktemp(f"contract-{task}") / "set"
            if task == "multiclass":
                s = make_setup(root, tiny_model)
                s = AuditSet(task, root, s.config)
                s.config.write_text(s.config.read_text().replace('formats = ["html", "json", "junit"]',
                                                                 'formats = ["json"]'))
            elif task in ("binary", "multilabel"):
                s = squares_set(root, task)
            else:
                s = example_set(root, task)
            # concept tests read one answer per image: a segmentation's [concepts] is refused up front
            built[task] = with_concepts(s, min(root.rglob("*.png"))) if task != "segmentation" else s
        return built[task]

    return get


@pytest.fixture(scope="session")
def contract_audit(contract_sets, tmp_path_factory) -> Callable[[str], ContractAudit]:
    """task -> its audit with every applicable rule kind (each of its examples once) and a baseline."""
    done: dict[str, ContractAudit] = {}

    def get(task: str) -> ContractAudit:
        if task not in done:
            done[task] = audit_with_every_kind(contract_sets(task), tmp_path_factory.mktemp(f"contract-{task}-run"))
        return done[task]

    return get
