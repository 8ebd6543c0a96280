"""`audit run` end to end on the tiny set re-encoded as 12-bit data in 16-bit PNG/TIFF and as DICOM: the whole
pipeline runs (results.json written) and the model sees the same intensities as from the 8-bit originals: every
sample's confidence matches the audit of the 8-bit set (data decoded too dark, clipped or inverted would not)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from loading_helpers import write_dicom
from PIL import Image
from typer.testing import CliRunner

from audit.cli import app

FAST = """
[views]
embeddings = ["pca"]
probe_samples = 0
[cache]
enabled = false
[report]
formats = ["json"]
"""


def _fast(config: Path, data_lines: str = "") -> None:
    """The cheap settings (no t-SNE, no probe, no cache, JSON only) plus ``data_lines`` in [data]."""
    out, skipping = [], False
    for line in config.read_text().splitlines():
        if line.startswith("["):
            skipping = line.strip("[] ") in ("views", "cache", "report")
        if not skipping:
            out.append(line)
            if line == "[data]":
                out.append(data_lines.rstrip("\n"))
    config.write_text("\n".join(out) + "\n" + FAST)


def _rewrite_paths(manifest: Path, new_path) -> None:
    rows = list(csv.reader(manifest.open()))
    for i, row in enumerate(rows[1:]):
        row[0] = new_path(i, row[0])
    with manifest.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def _run(tiny, tmp_path: Path) -> dict:
    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["run", str(tiny.config), "--out", str(out)])
    assert res.exit_code in (0, 1), res.output
    results = json.loads((out / "results.json").read_text())
    assert results["summary"]["n_samples"] == 45 and results["skipped"] == []
    return results


@pytest.fixture(scope="module")
def reference(make_setup, tiny_model, tmp_path_factory) -> dict[str, float]:
    """Confidence per sample position from the audit of the 8-bit originals."""
    root = tmp_path_factory.mktemp("ref")
    setup = make_setup(root / "tiny", tiny_model)
    _fast(setup.config)
    p = _run(setup, root)["predictions"]
    return dict(zip([Path(i).stem[:3] for i in p["ids"]], p["confidence"], strict=True))


def _same_confidences(results: dict, reference: dict[str, float]) -> None:
    p = results["predictions"]
    got = {Path(i).stem[-3:] if Path(i).stem.startswith("IM") else Path(i).stem[:3]: c
           for i, c in zip(p["ids"], p["confidence"], strict=True)}
    assert got.keys() == reference.keys()
    assert all(abs(got[k] - reference[k]) < 1e-4 for k in got), "the model saw other intensities than the 8-bit set"


def test_audit_of_a_12bit_set_in_16bit_png_and_tiff(tiny, tmp_path, reference):
    def encode(i: int, rel: str) -> str:
        a = np.asarray(Image.open(tiny.root / rel)).astype(np.uint16) * 16  # 12-bit data, max 4080, unscaled
        if i % 3 == 0:
            tifffile.imwrite(tiny.root / f"img/{i:03d}.tif", a)
            return f"img/{i:03d}.tif"
        Image.fromarray(a).save(tiny.root / f"img/{i:03d}_16.png")
        return f"img/{i:03d}_16.png"

    _rewrite_paths(tiny.manifest, encode)
    _fast(tiny.config, "value_range = [0, 4080]\n")
    results = _run(tiny, tmp_path)
    _same_confidences(results, reference)
    assert results["provenance"]["config"]["data"]["value_range"] == [0.0, 4080.0]


def test_audit_of_a_dicom_set(tiny, tmp_path, reference):
    pytest.importorskip("pydicom")

    def encode(i: int, rel: str) -> str:
        a = np.asarray(Image.open(tiny.root / rel)).astype(np.uint16)
        # HU = stored - 1024; window (c -513.5, w 1021) maps HU 4a - 1024 back to a / 255
        if i % 4 == 1:  # MONOCHROME1 stores the inverted image
            stored, photometric = (255 - a) * 4, "MONOCHROME1"
        else:
            stored, photometric = a * 4, "MONOCHROME2"
        name = f"img/{i:03d}.dcm" if i % 5 else f"img/IM{i:03d}"  # some without extension: found by "DICM"
        write_dicom(tiny.root / name, stored, photometric=photometric, slope=1, intercept=-1024,
                    center=-513.5, width=1021)
        return name

    _rewrite_paths(tiny.manifest, encode)
    _fast(tiny.config)
    _same_confidences(_run(tiny, tmp_path), reference)
