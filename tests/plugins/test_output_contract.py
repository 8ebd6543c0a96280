"""The common check of every output format: each file its writer puts into a report reads back with the format's
own parser, and a damaged copy of it does not (so a report whose file is broken is never moved into place)."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_sets import toys_registered

from audit.config import load_config
from audit.report.output import PARSE_ERRORS, write_outputs
from audit.report.writers import registry as output_registry
from audit.runner import run_audit

with toys_registered():
    FORMATS = tuple(output_registry())  # the built-in formats and the test-only toy_findings_csv


@pytest.fixture(scope="module")
def report(make_setup, tiny_model, tmp_path_factory) -> Path:
    """The tiny audit written in every selectable format (and those always written)."""
    setup = make_setup(tmp_path_factory.mktemp("outputs") / "tiny", tiny_model)
    result = run_audit(load_config(setup.config, ["cache.enabled=false", 'rules.pack="demo"']))
    out = setup.root.parent / "report"
    with toys_registered():
        selectable = [n for n, cls in output_registry().items() if cls.selectable]
        written = write_outputs(result, out, selectable)
    assert {p.name for p in written.values()} == {p.name for p in out.iterdir()}
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_file_of_a_format_reads_back_and_a_damaged_copy_does_not(fmt, report, toy_plugins, tmp_path):
    cls = output_registry()[fmt]
    assert cls.files and set(cls.parsers) == set(cls.files.values())
    for name in cls.files.values():
        path = report / name
        assert path.is_file(), f"{fmt} wrote no {name}"
        cls.parsers[name](path)
        data = path.read_bytes()
        damaged = tmp_path / name
        damaged.write_bytes(b"\xff" + data[: len(data) // 2])  # not UTF-8, cut short, wrong magic bytes
        with pytest.raises(PARSE_ERRORS):
            cls.parsers[name](damaged)
