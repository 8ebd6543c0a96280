"""Inputs that used to be misread: NUL characters in a manifest, a config with a byte-order mark, a segmentation
manifest with a 'label' column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from audit.config import load_config
from audit.errors import DataError
from audit.loading.listing import load_heldout


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
