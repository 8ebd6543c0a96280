"""manifest.json lists only files that parse: each written file gets a cheap check first (JSON, XML, UTF-8,
closing </html>, %PDF-…%%EOF, an .npz whose keys list); one that fails is a RenderError naming it, and nothing is
moved into place."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from badinput_helpers import invoke
from safety_helpers import earlier_report, siblings, snapshot

import audit.report.writers.junit
from audit.errors import RenderError
from audit.report.folder import MANIFEST
from audit.report.output import check_parses
from audit.report.writers import parsers, report_files


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


GOOD_NPZ = _npz(meta=np.array("{}"), x=np.zeros(3))
CASES = {  # name -> (parses, does not parse)
    "results.json": (b'{"verdict": "pass"}\n', b'{"verdict": "pa'),
    "summary.md": ("# verdict: PASS \u2713\n".encode(), b"# verdict \xff\xfe\n"),
    "report.junit.xml": (b'<?xml version="1.0"?>\n<testsuite name="x"/>\n', b"<testsuite><testcase></testsuite>"),
    "report.html": (b"<!doctype html><html><body>ok</body></html>\n", b"<!doctype html><html><body>half"),
    "report.pdf": (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n\n", b"%PDF-1.7\n% half a PDF"),
    "maps.npz": (GOOD_NPZ, GOOD_NPZ[: len(GOOD_NPZ) // 2]),
    "model_card.md": (b"---\nmodel: x\n---\n# Model card\n", b"# Model card without front matter\n"),
    "model_card.json": (b'{"model": "x"}', b'{"model": '),
    "annex_iv.md": (b"# Annex IV\n", b"Annex IV without a title\n"),
    "annex_iv.json": (b'{"sections": []}', b"[1, 2"),
    "timings.json": (b'{"total": {}, "stages": [], "rules": [], "explainers": []}', b'{"total": {}, "rules": []}'),
}


def test_every_report_file_has_a_check():
    assert set(parsers()) == set(CASES) == report_files()
    assert MANIFEST not in parsers()


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_accepts_good_and_names_a_broken_file(tmp_path, name):
    good, bad = CASES[name]
    (tmp_path / name).write_bytes(good)
    check_parses(tmp_path, [name], tmp_path / "out")
    (tmp_path / name).write_bytes(bad)
    with pytest.raises(RenderError, match=f"cannot write the report: {name} does not parse"):
        check_parses(tmp_path, [name], tmp_path / "out")


@pytest.mark.parametrize("bad", [b"", b"\x93NUMPY\x01\x00", b"PK\x03\x04 not a zip"], ids=["empty", "npy", "fake-zip"])
def test_npz_that_is_not_an_archive(tmp_path, bad):
    (tmp_path / "maps.npz").write_bytes(bad)
    with pytest.raises(RenderError, match="maps.npz does not parse"):
        check_parses(tmp_path, ["maps.npz"], tmp_path / "out")


@pytest.mark.parametrize("earlier", [False, True], ids=["no-earlier-report", "earlier-report-kept"])
def test_broken_junit_is_never_listed(fast, tmp_path, replay, monkeypatch, earlier):
    monkeypatch.setattr(audit.report.writers.junit, "build_junit", lambda results: "<testsuites><testsuite name='x'>")
    out = tmp_path / "report"
    before = earlier_report(out) if earlier else None
    res = invoke("run", fast.config, "--out", out, "--set", 'report.formats=["json", "junit"]')
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert lines[0].startswith(f"error: {out}: cannot write the report: report.junit.xml does not parse"), lines[0]
    if earlier:
        assert snapshot(out) == before
    else:
        assert not out.exists()
    assert not siblings(out)


def test_a_written_report_lists_exactly_its_files(fast, tmp_path, replay):
    out = tmp_path / "report"
    res = invoke("run", fast.config, "--out", out, "--set", 'report.formats=["json", "junit", "html"]')
    assert res.exit_code in (0, 1), res.output
    listed = set(json.loads((out / MANIFEST).read_text())["files"])
    assert listed == {p.name for p in out.iterdir()} - {MANIFEST}
    check_parses(out, listed, out)
