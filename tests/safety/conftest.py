"""Fixtures for the output-safety tests: the cheap ``fast`` set-up of tests/bad_inputs (its helpers are imported
from there) and one finished audit per session, replayed instead of auditing again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "bad_inputs"))
from badinput_helpers import FAST, drop_sections

import audit.api
import audit.runner


def cheap(config: Path) -> None:
    """The tiny config with the cheap settings of badinput_helpers.FAST (JSON only, no cache, no probe)."""
    config.write_text(drop_sections(config.read_text(), ("views", "cache", "report")) + FAST)


@pytest.fixture()
def fast(tiny):
    """The tiny set-up of tests/conftest.py (config, manifest, 45 images, weights) with the cheap settings."""
    cheap(tiny.config)
    return tiny


@pytest.fixture(scope="session")
def finished(make_setup, tiny_model, tmp_path_factory):
    """One real audit of a cheap tiny set-up, captured for replays."""
    from typer.testing import CliRunner

    from audit.cli import app

    root = tmp_path_factory.mktemp("finished")
    s = make_setup(root / "tiny", tiny_model)
    cheap(s.config)
    captured = {}
    real = audit.api.run_audit

    def capture(*a, **k):
        captured["result"] = real(*a, **k)
        return captured["result"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(audit.api, "run_audit", capture)
        res = CliRunner().invoke(app, ["run", str(s.config), "--out", str(root / "report")])
    assert res.exit_code in (0, 1), res.output
    return captured["result"]


@pytest.fixture()
def replay(finished, monkeypatch):
    """`audit run` gets the finished AuditResult instead of auditing again (the model never runs)."""
    monkeypatch.setattr(audit.api, "run_audit", lambda *a, **k: finished)
    return finished


@pytest.fixture(scope="session")
def property_template(make_setup, tiny_model, tmp_path_factory):
    """Images, weights and a cheap config (JSON, JUnit, summary; no cache) that the property test copies per draw."""
    s = make_setup(tmp_path_factory.mktemp("property") / "tiny", tiny_model, n=9)
    s.config.write_text(drop_sections(s.config.read_text(), ("views", "cache", "report"))
                        + FAST.replace('formats = ["json"]', 'formats = ["json", "junit"]'))
    return s.root
