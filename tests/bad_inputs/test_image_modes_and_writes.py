"""Odd but valid images are converted and scored (not refused, not skipped); a report that cannot be written —
disk full, Ctrl-C while the PDF renders, a failing final move — leaves no report, no temporary folder, and an
earlier report at the same place untouched.

One real audit runs (module fixture ``converted``); the write-failure tests reuse its result instead of
auditing again."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from badinput_helpers import FAST, drop_sections, edit_manifest, invoke, leftovers
from PIL import Image

import audit.api
import audit.runner
from audit.loading.decode import open_image
from audit.report.output import write_manifest

ORIGINAL = {}  # file name -> original 8-bit grayscale pixels, filled by _convert


def _save_variants(img_dir: Path) -> dict[int, str]:
    """Re-save images 0…6 in other modes and formats; returns row -> new relative path."""
    paths = {}

    def gray(i: int) -> np.ndarray:
        return np.asarray(Image.open(img_dir / f"{i:03d}.png"))

    a = gray(0)  # 16-bit grayscale PNG (mode I;16): values scaled by 257
    Image.fromarray(a.astype(np.uint16) * 257).save(img_dir / "000_16bit.png")
    paths[0] = "img/000_16bit.png"
    a = gray(1)  # CMYK JPEG
    Image.fromarray(a).convert("CMYK").save(img_dir / "001_cmyk.jpg", quality=98)
    paths[1] = "img/001_cmyk.jpg"
    a = gray(2)  # palette PNG (adaptive palette: exact for ≤ 256 grey levels)
    Image.fromarray(a).convert("RGB").quantize(256).save(img_dir / "002_palette.png")
    paths[2] = "img/002_palette.png"
    a = gray(3)  # RGBA PNG, opaque
    rgba = np.dstack([a, a, a, np.full_like(a, 255)])
    Image.fromarray(rgba, mode="RGBA").save(img_dir / "003_rgba.png")
    paths[3] = "img/003_rgba.png"
    a = gray(4)  # grey + alpha
    Image.fromarray(np.dstack([a, np.full_like(a, 255)]), mode="LA").save(img_dir / "004_la.png")
    paths[4] = "img/004_la.png"
    a = gray(5)  # RGB TIFF
    Image.fromarray(a).convert("RGB").save(img_dir / "005_rgb.tif")
    paths[5] = "img/005_rgb.tif"
    a = gray(6)  # larger than the model input: resized
    Image.fromarray(a).resize((96, 64), Image.NEAREST).save(img_dir / "006_large.bmp")
    paths[6] = "img/006_large.bmp"
    for i, rel in paths.items():
        ORIGINAL[Path(rel).name] = gray(i)
    return paths


@pytest.fixture(scope="module")
def converted(make_setup, tiny_model, tmp_path_factory):
    """One audit of the tiny set with seven images in odd modes; captures the AuditResult for reuse."""
    root = tmp_path_factory.mktemp("converted")
    s = make_setup(root / "tiny", tiny_model)
    s.config.write_text(drop_sections(s.config.read_text(), ("views", "cache", "report")) + FAST)
    s.config.write_text(s.config.read_text().replace('formats = ["json"]', 'formats = ["json", "junit"]'))
    paths = _save_variants(s.root / "img")

    def fn(header, rows):
        for i, p in paths.items():
            rows[i][0] = p
        # the ROI of the enlarged image: scale its box with it
        x0, y0, x1, y1 = (int(v) for v in rows[6][2:6])
        rows[6][2:6] = [str(x0 * 3), str(y0 * 2), str(x1 * 3), str(y1 * 2)]

    edit_manifest(s.manifest, fn)
    captured = {}
    real = audit.api.run_audit

    def capture(*a, **k):
        captured["result"] = real(*a, **k)
        return captured["result"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(audit.api, "run_audit", capture)
        res = invoke("run", s.config, "--out", root / "report")
    return res, root / "report", captured.get("result"), s


def test_odd_image_modes_are_converted_and_scored(converted):
    res, out, _, _ = converted
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert results["skipped"] == []
    assert results["summary"]["n_samples"] == 45
    ids = results["predictions"]["ids"]
    for name in ("000_16bit.png", "001_cmyk.jpg", "002_palette.png", "003_rgba.png", "004_la.png", "005_rgb.tif",
                 "006_large.bmp"):
        assert f"img/{name}" in ids


@pytest.mark.parametrize("name", ["000_16bit.png", "001_cmyk.jpg", "002_palette.png", "003_rgba.png",
                                  "004_la.png", "005_rgb.tif"])
def test_conversion_keeps_the_grey_levels(converted, name):
    _, _, _, s = converted
    got = np.asarray(open_image(s.root / "img" / name, channels=1), dtype=float)
    tol = 3.0 if name.endswith(".jpg") else 0.0
    assert got.shape == (32, 32)
    assert np.abs(got - ORIGINAL[name]).mean() <= tol
    rgb = np.asarray(open_image(s.root / "img" / name, channels=3))
    assert rgb.shape == (32, 32, 3)


# ---- writing the report fails --------------------------------------------------------------------------------

@pytest.fixture()
def replay(converted, monkeypatch):
    """`audit run` on the converted set-up, reusing the finished AuditResult instead of auditing again."""
    _, _, result, s = converted
    assert result is not None
    monkeypatch.setattr(audit.api, "run_audit", lambda *a, **k: result)
    return s


def _earlier_report(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True)
    (out / "results.json").write_text('{"verdict": "pass", "earlier": true}\n')
    (out / "report.html").write_text("<p>earlier report</p>\n")
    write_manifest(out, ["results.json", "report.html"])  # a genuine earlier report: only those are replaced
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _disk_full_on(name: str, monkeypatch):
    real = Path.write_text

    def write_text(self, *a, **k):
        if self.name == name and ".partial-" in str(self.parent):
            real(self, "partial conten", **{x: v for x, v in k.items() if x in ("encoding", "errors")})
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", write_text)


@pytest.mark.parametrize("earlier", [False, True], ids=["no-earlier-report", "earlier-report-kept"])
def test_disk_full_leaves_nothing_and_keeps_an_earlier_report(replay, tmp_path, monkeypatch, earlier):
    out = tmp_path / "report"
    before = _earlier_report(out) if earlier else None
    _disk_full_on("summary.md", monkeypatch)
    res = invoke("run", replay.config, "--out", out)
    assert res.exit_code == 2, res.output
    assert f"{out}: cannot write the report: No space left on device" in res.output
    assert "Traceback" not in res.output
    if earlier:
        assert _snapshot(out) == before
        assert leftovers(out) == [out]
    else:
        assert not leftovers(out)


@pytest.mark.parametrize("earlier", [False, True], ids=["no-earlier-report", "earlier-report-kept"])
def test_ctrl_c_while_the_pdf_renders(replay, tmp_path, monkeypatch, earlier):
    """KeyboardInterrupt in the middle of writing: exit 130, no half-written report, no temporary folder."""
    import audit.report.output
    import audit.report.writers.render

    def render_pdf(html, path, variant=None):
        Path(path).write_bytes(b"%PDF-1.7\n% half a PDF")
        raise KeyboardInterrupt

    monkeypatch.setattr(audit.report.writers.render, "render_pdf", render_pdf)
    out = tmp_path / "report"
    before = _earlier_report(out) if earlier else None
    res = invoke("run", replay.config, "--out", out, "--set", 'report.formats=["html", "pdf", "json"]')
    assert res.exit_code == 130, res.output
    assert "interrupted: no report was written" in res.output and "Traceback" not in res.output
    if earlier:
        assert _snapshot(out) == before and leftovers(out) == [out]
    else:
        assert not leftovers(out)


def test_ctrl_c_while_scoring(fast, tmp_path, monkeypatch):
    def predict(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(audit.runner, "predict", predict)
    out = tmp_path / "report"
    res = invoke("run", fast.config, "--out", out)
    assert res.exit_code == 130, res.output
    assert "interrupted" in res.output and "Traceback" not in res.output
    assert not leftovers(out)


def test_failed_final_move_restores_the_earlier_report(replay, tmp_path, monkeypatch):
    out = tmp_path / "report"
    before = _earlier_report(out)
    real = os.replace

    def replace(src, dst):
        if ".partial-" in str(src):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    res = invoke("run", replay.config, "--out", out)
    assert res.exit_code == 2, res.output
    assert f"{out}: cannot write the report" in res.output and "Traceback" not in res.output
    assert _snapshot(out) == before
    assert leftovers(out) == [out]


def test_replayed_write_succeeds(replay, tmp_path):
    """Control: the same replay without a fault writes a complete report."""
    out = tmp_path / "report"
    res = invoke("run", replay.config, "--out", out)
    assert res.exit_code == 0, res.output
    assert {"results.json", "summary.md", "manifest.json"} <= {p.name for p in out.iterdir()}
    assert leftovers(out) == [out]
