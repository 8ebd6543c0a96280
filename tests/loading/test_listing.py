"""Listing: hidden files in image folders, duplicate files in manifests, odd labels and ROI numbers (exit 2 with
a one-line message naming row and field, never an internal error), size and aspect notes."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from audit.cli import app
from audit.config import config_from_dict
from audit.errors import DataError
from audit.loading.listing import load_heldout

CLASSES = ["a", "b"]


def _png(path: Path, size: tuple[int, int] = (8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((size[1], size[0]), np.uint8)).save(path)


def _cfg(root: Path, **data):
    base = {"classes": CLASSES, "image_size": [8, 8], "channels": 1}
    return config_from_dict({"model": {"torchvision": "resnet18"}, "data": {**base, **data}}, base_dir=root)


def _manifest(root: Path, rows: list[list[str]], header=("path", "label")) -> Path:
    p = root / "m.csv"
    with p.open("w", newline="") as fh:
        csv.writer(fh).writerows([list(header), *rows])
    return p


def test_hidden_files_and_folders_are_skipped_and_counted(tmp_path):
    root = tmp_path / "set"
    for rel in ("a/1.png", "a/sub/2.png", "b/3.png", "b/4.dcm"):
        _png(root / rel) if rel.endswith(".png") else (root / rel).write_bytes(b"x")
    hidden = ("a/.ipynb_checkpoints/1-checkpoint.png", "a/sub/.hidden/5.png", "b/.6.png", ".cache/a/7.png")
    for rel in hidden:
        _png(root / rel)
    (root / "a/.notes.txt").write_text("not an image: not counted")
    hs = load_heldout(_cfg(tmp_path, image_folder="set"))
    assert sorted(r.id for r in hs.records) == ["a/1.png", "a/sub/2.png", "b/3.png", "b/4.dcm"]
    assert hs.n_hidden_skipped == len(hidden)
    assert any("4 hidden file(s)" in n for n in hs.notes)


def test_a_manifest_row_with_a_hidden_component_is_accepted(tmp_path):
    _png(tmp_path / ".ipynb_checkpoints" / "x.png")
    _png(tmp_path / "y.png")
    _manifest(tmp_path, [[".ipynb_checkpoints/x.png", "a"], ["y.png", "b"]])
    hs = load_heldout(_cfg(tmp_path, manifest="m.csv"))
    assert [r.id for r in hs.records] == [".ipynb_checkpoints/x.png", "y.png"] and hs.n_hidden_skipped == 0


def test_same_file_with_different_labels_is_refused_naming_both_rows(tmp_path):
    _png(tmp_path / "img" / "x.png")
    _png(tmp_path / "img" / "y.png")
    m = _manifest(tmp_path, [["img/x.png", "a", "s1"], ["img/y.png", "b", "s2"], ["img/../img/x.png", "b", "s3"]],
                  header=("path", "label", "id"))
    with pytest.raises(DataError) as e:
        load_heldout(_cfg(tmp_path, manifest="m.csv"))
    assert str(e.value) == (f"{m} row 4: field 'path': 'img/../img/x.png' is the same file as row 2 but with another "
                            f"label (1 here, 0 there)")


def test_same_file_with_the_same_label_under_two_ids_is_refused(tmp_path):
    _png(tmp_path / "x.png")
    _png(tmp_path / "y.png")
    m = _manifest(tmp_path, [["x.png", "a", "one"], ["y.png", "b", "two"], ["./x.png", "a", "three"]],
                  header=("path", "label", "id"))
    with pytest.raises(DataError, match=rf"^{m} row 4: field 'path': './x.png' is the same file as row 2 \(listed "
                                        r"twice, it would be counted twice\)$"):
        load_heldout(_cfg(tmp_path, manifest="m.csv"))


def test_a_linked_file_in_two_class_folders_is_refused(tmp_path):
    _png(tmp_path / "set" / "a" / "x.png")
    _png(tmp_path / "set" / "b" / "y.png")
    (tmp_path / "set" / "b" / "x-link.png").symlink_to(tmp_path / "set" / "a" / "x.png")
    with pytest.raises(DataError, match="is listed in two classes"):
        load_heldout(_cfg(tmp_path, image_folder="set"))


@pytest.mark.parametrize("label", ["²", "--1", "١", "1.0", "½"])
def test_odd_labels_are_data_errors_naming_row_and_field(tmp_path, label):
    _png(tmp_path / "x.png")
    _png(tmp_path / "y.png")
    m = _manifest(tmp_path, [["x.png", "a"], ["y.png", label]])
    with pytest.raises(DataError) as e:
        load_heldout(_cfg(tmp_path, manifest="m.csv"))
    assert str(e.value).startswith(f"{m} row 3: field 'label': {label!r} is not in classes")


@pytest.mark.parametrize("value", ["²", "1_0", "١٢", "0x10", "", "1.2.3"])
def test_odd_roi_numbers_are_data_errors(tmp_path, value):
    _png(tmp_path / "x.png")
    _png(tmp_path / "y.png")
    m = _manifest(tmp_path, [["x.png", "a", "0", "0", "4", "4"], ["y.png", "b", "0", value, "4", "4"]],
                  header=("path", "label", "roi_x0", "roi_y0", "roi_x1", "roi_y1"))
    with pytest.raises(DataError) as e:
        load_heldout(_cfg(tmp_path, manifest="m.csv"))
    assert str(e.value) == f"{m} row 3: field 'roi_y0': {value!r} is not a number"


@pytest.mark.parametrize("value", ["nan", "-inf", "1e400"])
def test_non_finite_roi_numbers_are_refused_as_boxes(tmp_path, value):
    _png(tmp_path / "x.png")
    _png(tmp_path / "y.png")
    m = _manifest(tmp_path, [["x.png", "a", "0", "0", "4", "4"], ["y.png", "b", "0", "0", "4", value]],
                  header=("path", "label", "roi_x0", "roi_y0", "roi_x1", "roi_y1"))
    with pytest.raises(DataError, match=rf"^{m} row 3: ROI box .* is empty, inverted or negative"):
        load_heldout(_cfg(tmp_path, manifest="m.csv"))


def test_superscript_label_exits_2_through_the_cli(tmp_path, tiny):
    """The reported crash: int('²') raised inside listing and the CLI exited 3 (internal error)."""
    rows = list(csv.reader(tiny.manifest.open()))
    rows[5][1] = "²"
    with tiny.manifest.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    res = CliRunner().invoke(app, ["validate", str(tiny.config)])
    assert res.exit_code == 2, res.output
    assert f"{tiny.manifest} row 6: field 'label': '²' is not in classes" in res.output


def test_aspect_and_mixed_sizes_are_noted_and_counted(tmp_path, caplog):
    _png(tmp_path / "set/a/land.png", (16, 8))  # aspect 2.0 against 1.0: stretched
    _png(tmp_path / "set/a/near.png", (21, 20))  # 1.05: within 10 %
    _png(tmp_path / "set/b/sq.png", (8, 8))
    with caplog.at_level(logging.WARNING, logger="audit.loading"):
        hs = load_heldout(_cfg(tmp_path, image_folder="set"))
    assert hs.n_aspect_mismatch == 1 and hs.n_image_sizes == 3
    assert any("1 of 3 image(s) differ in aspect ratio" in n for n in hs.notes)
    assert any("images come in 3 different sizes" in n for n in hs.notes)
    assert "differ in aspect ratio" in caplog.text
    boxed = load_heldout(_cfg(tmp_path, image_folder="set", resize="letterbox"))
    assert boxed.n_aspect_mismatch == 0 and boxed.n_image_sizes == 3
    assert all(r.resize.mode == "letterbox" for r in boxed.records)  # the geometry ROIs and masks follow


def test_the_resolved_config_states_every_loading_key(tmp_path):
    plain = _cfg(tmp_path, image_folder="set").to_jsonable()["data"]
    assert plain["resize"] == "stretch" and plain["value_range"] is None  # what was used is on the record
    set_ = _cfg(tmp_path, image_folder="set", resize="center_crop", value_range=[0, 4095]).to_jsonable()["data"]
    assert set_["resize"] == "center_crop" and set_["value_range"] == [0.0, 4095.0]
