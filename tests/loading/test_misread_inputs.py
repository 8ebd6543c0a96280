"""Inputs that used to be misread: NUL characters in a manifest, a config with a byte-order mark, a segmentation
manifest with a 'label' column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from audit.cli import app
from audit.config import load_config
from audit.errors import DataError
from audit.loading.listing import load_heldout
from audit.rules.pack import load_pack


def _images(root: Path, n: int = 4, size: tuple[int, int] = (16, 16)) -> list[str]:
    (root / "img").mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        Image.fromarray(np.full((size[1], size[0]), 40 * i, dtype=np.uint8)).save(root / f"img/{i}.png")
        names.append(f"img/{i}.png")
    return names


def _config(root: Path, data: str, model: str = "") -> Path:
    cfg = root / "audit.toml"
    cfg.write_text(f'[model]\ntorchvision = "resnet18"\n{model}\n[data]\nmanifest = "manifest.csv"\n'
                   f"image_size = [16, 16]\n{data}\n")
    return cfg


@pytest.mark.parametrize(("cell", "where"), [("path", "row 3: field 'path'"), ("site", "row 2: field 'site'"),
                                              ("label", "row 4: field 'label'")])
def test_a_nul_character_is_refused_naming_the_row_and_field(tmp_path, cell, where):
    names = _images(tmp_path)
    rows = [[n, "a" if i % 2 else "b", "x"] for i, n in enumerate(names)]
    row = {"path": 1, "site": 0, "label": 2}[cell]
    col = ["path", "label", "site"].index(cell)
    rows[row][col] = rows[row][col] + "\x00"
    (tmp_path / "manifest.csv").write_text("path,label,site\n" + "".join(",".join(r) + "\n" for r in rows))
    cfg = load_config(_config(tmp_path, "", ""))
    with pytest.raises(DataError, match=f"manifest.csv {where} contains a NUL character"):
        load_heldout(cfg)
    rows[row][col] = rows[row][col].rstrip("\x00")  # the clean twin lists
    (tmp_path / "manifest.csv").write_text("path,label,site\n" + "".join(",".join(r) + "\n" for r in rows))
    assert len(load_heldout(cfg).records) == 4


def test_a_config_with_a_utf8_byte_order_mark_is_read(tmp_path):
    _images(tmp_path)
    cfg = _config(tmp_path, 'classes = ["a", "b"]')
    cfg.write_bytes(b"\xef\xbb\xbf" + cfg.read_bytes())
    assert load_config(cfg).data.classes == ["a", "b"]


def test_a_rule_pack_with_a_utf8_byte_order_mark_is_read(tmp_path):
    pack = tmp_path / "pack.toml"
    text = '[[rule]]\nid = "acc"\nkind = "metric_min"\nmetric = "accuracy"\nthreshold = 0.5\n'
    pack.write_bytes(b"\xef\xbb\xbf" + text.encode())
    plain = tmp_path / "plain.toml"
    plain.write_text(text)
    assert [r.params for r in load_pack(pack).rules] == [r.params for r in load_pack(plain).rules]


def _seg_set(root: Path) -> None:
    names = _images(root)
    for i, _ in enumerate(names):
        m = np.zeros((16, 16), dtype=np.uint8)
        m[4:12, 4:12] = 1 if i % 2 else 0
        Image.fromarray(m).save(root / f"img/{i}_mask.png")
    (root / "manifest.csv").write_text("path,mask,label\n" + "".join(
        f"{n},img/{i}_mask.png,disc\n" for i, n in enumerate(names)))


@pytest.mark.parametrize("task", ["segmentation", "auto"])
def test_a_segmentation_manifest_with_a_label_column_names_that_column(tmp_path, task):
    _seg_set(tmp_path)
    cfg = load_config(_config(tmp_path, 'classes = ["background", "disc"]', f'task = "{task}"'))
    with pytest.raises(DataError, match="'label'") as e:
        load_heldout(cfg)
    assert "no held-out samples" not in str(e.value) and "drop the 'label' column" in str(e.value)
    text = (tmp_path / "manifest.csv").read_text().replace(",label\n", "\n").replace(",disc\n", "\n")
    (tmp_path / "manifest.csv").write_text(text)  # without it, the same set lists as a segmentation set
    hs = load_heldout(cfg)
    assert hs.masks and [r.label_set for r in hs.records] == [(0,), (0, 1), (0,), (0, 1)]


def _landscape_set(root: Path, n: int = 6, portrait: int = 0) -> None:
    """``n`` images 48 wide and 32 high (``portrait`` of them turned: 32 x 48)."""
    names = _images(root, n - portrait, size=(48, 32))
    for i in range(portrait):
        Image.fromarray(np.zeros((48, 32), dtype=np.uint8)).save(root / f"img/p{i}.png")
        names.append(f"img/p{i}.png")
    (root / "manifest.csv").write_text("path,label\n" + "".join(f"{n},{'ab'[i % 2]}\n" for i, n in enumerate(names)))


def test_a_swapped_image_size_is_refused_naming_the_swap(tmp_path):
    _landscape_set(tmp_path)
    cfg = _config(tmp_path, "")
    cfg.write_text(cfg.read_text().replace("image_size = [16, 16]", "image_size = [48, 32]"))
    res = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert ("data.image_size = [48, 32] is (height, width), but 6 of 6 images have the aspect ratio of [32, 48] "
            "(e.g. 48x32, width x height): the two numbers look swapped") in res.output
    assert not (tmp_path / "out").exists()
    for good in ("[32, 48]", "[32, 50]"):  # as meant (and near it): listed without a word
        hs = load_heldout(load_config(cfg, [f"data.image_size={good}"]))
        assert hs.swapped_size == "" and not any("swapped" in n for n in hs.notes)


def test_a_swap_needs_most_images_and_a_non_square_size(tmp_path):
    _landscape_set(tmp_path, n=6, portrait=3)  # half the images each way: no majority for the swap
    cfg = _config(tmp_path, "")
    assert load_heldout(load_config(cfg, ["data.image_size=[48, 32]"])).swapped_size == ""
    assert load_heldout(load_config(cfg, ["data.image_size=[40, 40]"])).swapped_size == ""  # square: no reading


def test_insisting_on_a_swapped_size_audits_with_the_reason_kept(tmp_path):
    _landscape_set(tmp_path)
    hs = load_heldout(load_config(_config(tmp_path, ""), ["data.image_size=[48, 32]", 'data.swapped_size="finding"']))
    assert hs.swapped_size.startswith("data.image_size = [48, 32] is (height, width)")
    assert any(n.endswith('audited as configured (data.swapped_size = "finding")') for n in hs.notes)


def test_insisting_on_a_swapped_size_gives_a_blocking_finding(tmp_path):
    """Audited as configured, with the swap as an error finding (evidence_complete): never a pass."""
    _landscape_set(tmp_path)
    model = tmp_path / "audit.toml"
    model.write_text('[model]\nfactory = "audit.demo.model:build"\nfactory_kwargs = { width = 4 }\nnum_classes = 2\n'
                     '[data]\nmanifest = "manifest.csv"\nchannels = 1\nimage_size = [48, 32]\n'
                     'swapped_size = "finding"\n[explainers]\nmethods = []\n[views]\nembeddings = []\n'
                     'probe_samples = 0\n[cache]\nenabled = false\n[rules]\npack = "default"\n'
                     '[report]\nformats = ["json"]\n')
    res = CliRunner().invoke(app, ["run", str(model), "--out", str(tmp_path / "out"), "--set",
                                   "rules.pack=" + '"' + str(_lenient_pack(tmp_path)) + '"'])
    assert res.exit_code == 1, res.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    found = next(r for r in doc["rules"] if r["kind"] == "evidence_complete")
    assert found["status"] == "error" and found["severity"] == "error"
    assert "input 'data.image_size': data.image_size = [48, 32] is (height, width)" in found["message"]
    assert doc["verdict"] == "fail" and found["id"] in doc["summary"]["blocking"]
    twin = CliRunner().invoke(app, ["run", str(model), "--out", str(tmp_path / "twin"), "--set",
                                    "rules.pack=" + '"' + str(_lenient_pack(tmp_path)) + '"', "--set",
                                    "data.image_size=[32, 48]"])  # the size as meant: the same audit passes
    assert twin.exit_code == 0, twin.output


def _lenient_pack(root: Path) -> Path:
    """A pack whose only rule always passes, so that the swap alone decides the verdict."""
    pack = root / "pack.toml"
    pack.write_text('[pack]\nname = "lenient"\n\n[[rule]]\nid = "any-accuracy"\nkind = "metric_min"\n'
                    'metric = "accuracy"\nthreshold = 0.0\nseverity = "error"\n')
    return pack
