"""EXIF orientation and data.resize: pixels, ROI boxes and ROI masks land on the same model-input pixels; the
positions are computed by hand for each case."""

from __future__ import annotations

import numpy as np
import pytest
from loading_helpers import with_orientation
from PIL import Image

from audit.loading.decode import decode_image, image_size_of
from audit.loading.listing import SampleRecord
from audit.loading.preprocess import Preprocess
from audit.loading.roi import roi_mask


def _pre(size, resize="stretch", pad=0.0, channels=1) -> Preprocess:
    return Preprocess(size=size, channels=channels, mean=(0.0,) * channels, std=(1.0,) * channels, resize=resize,
                      pad_value=pad)


def _stored_with_block() -> np.ndarray:
    """A 20 (wide) x 40 (tall) stored image, dark, with a bright block at stored rows 4…11, columns 2…7."""
    a = np.full((40, 20), 20, np.uint8)
    a[4:12, 2:8] = 230
    return a


@pytest.mark.parametrize("fmt", ["tif", "jpg"])
def test_orientation_6_rotates_pixels_and_a_displayed_box_lands_on_them(tmp_path, fmt):
    """Orientation 6: the stored image is shown rotated 90° clockwise, so the displayed image is 40 wide x 20 tall
    and stored (row r, column c) is displayed at (row c, column 39 - r)."""
    stored = _stored_with_block()
    path = with_orientation(Image.fromarray(stored), tmp_path / f"o6.{fmt}", 6,
                            **({"quality": 100, "subsampling": 0} if fmt == "jpg" else {}))
    assert image_size_of(path) == (40, 20)
    shown = np.rint(decode_image(path, 1).to_array()[:, :, 0] * 255)
    assert shown.shape == (20, 40)
    want = np.rot90(stored, k=-1)  # clockwise
    if fmt == "tif":
        np.testing.assert_array_equal(shown, want)
    else:
        assert np.abs(shown.astype(int) - want).mean() < 3
    # the block as displayed: rows 2…7, columns 39-11 … 39-4 = 28…35 -> box x0=28, y0=2, x1=36, y1=8
    box = (28.0, 2.0, 36.0, 8.0)
    rec = SampleRecord(id="o6", path=path, label=0, roi_box=box)
    m = roi_mask(rec, (20, 40))
    x = _pre((20, 40))(decode_image(path, 1)).numpy()[0]
    assert m.sum() == 48 and (x[m] > 0.8).all() and (x[~m] < 0.2).all()


def test_orientation_of_16bit_tiff(tmp_path):
    import tifffile

    stored = _stored_with_block().astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "o8.tif", np.dstack([stored] * 3), photometric="rgb",
                     extratags=[(274, "H", 1, 8, True)])
    assert image_size_of(tmp_path / "o8.tif") == (40, 20)
    a = decode_image(tmp_path / "o8.tif", 1).array[:, :, 0]
    np.testing.assert_allclose(a, np.rot90(stored, k=1) / 65535.0, atol=1e-6)  # 8: rotated 90° counter-clockwise


def _portrait(tmp_path) -> tuple:
    """20 wide x 40 tall, dark, bright block at x 5…9, y 10…19 (box (5, 10, 10, 20))."""
    a = np.full((40, 20), 0, np.uint8)
    a[10:20, 5:10] = 255
    Image.fromarray(a).save(tmp_path / "p.png")
    return tmp_path / "p.png", (5.0, 10.0, 10.0, 20.0)


def test_letterbox_on_a_portrait_image(tmp_path):
    """Scale min(32/20, 32/40) = 0.8 -> 16 x 32 placed at x = 8; box -> x 8+4 … 8+8, y 8 … 16."""
    path, box = _portrait(tmp_path)
    x = _pre((32, 32), "letterbox", pad=0.5)(decode_image(path, 1)).numpy()[0]
    assert (x[:, :8] == 0.5).all() and (x[:, 24:] == 0.5).all()  # the pad value in the borders
    assert (x[:, 8:24] != 0.5).all()
    m = roi_mask(SampleRecord(id="p", path=path, label=0, roi_box=box, resize="letterbox"), (32, 32))
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (8, 15, 12, 15)
    inside = np.zeros_like(m)
    inside[:, 8:24] = True
    assert (x[inside & (x > 0.5)] > 0).all() and m[inside & (x > 0.6)].all()  # every bright pixel is in the ROI
    assert x[m].mean() > 0.75


def test_center_crop_on_a_portrait_image(tmp_path):
    """Scale max(32/20, 32/40) = 1.6; the centred 20 x 20 crop starts at y = 10; box -> x 8 … 16, y 0 … 16."""
    path, box = _portrait(tmp_path)
    x = _pre((32, 32), "center_crop")(decode_image(path, 1)).numpy()[0]
    m = roi_mask(SampleRecord(id="p", path=path, label=0, roi_box=box, resize="center_crop"), (32, 32))
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (0, 15, 8, 15)
    assert m[x > 0.5].all() and x[m].mean() > 0.75  # every bright pixel is in the ROI, which is mostly bright
    gone = SampleRecord(id="p", path=path, label=0, roi_box=(0.0, 0.0, 20.0, 5.0), resize="center_crop")
    assert roi_mask(gone, (32, 32)) is None  # cut away: no ROI the model can see


def test_masks_follow_the_same_geometry(tmp_path):
    path, box = _portrait(tmp_path)
    mask = np.zeros((40, 20), np.uint8)
    mask[10:20, 5:10] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    for mode in ("stretch", "letterbox", "center_crop"):
        by_box = roi_mask(SampleRecord(id="p", path=path, label=0, roi_box=box, resize=mode), (32, 32))
        by_mask = roi_mask(SampleRecord(id="p", path=path, label=0, roi_mask=tmp_path / "m.png", resize=mode), (32, 32))
        assert (by_box == by_mask).all(), mode


def test_stretch_maps_boxes_as_before(tmp_path):
    """The earlier rule: columns floor(x0*W/w) … ceil(x1*W/w), rows likewise."""
    path, box = _portrait(tmp_path)
    m = roi_mask(SampleRecord(id="p", path=path, label=0, roi_box=box), (32, 32))
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (8, 16, 8, 16)


def test_letterbox_of_float_data(tmp_path):
    import tifffile

    a = np.full((40, 20), 0.25, np.float32)
    tifffile.imwrite(tmp_path / "f.tif", a)
    x = _pre((32, 32), "letterbox", pad=1.0, channels=3)(decode_image(tmp_path / "f.tif", 3)).numpy()
    assert x.shape == (3, 32, 32)
    assert (x[:, :, :8] == 1.0).all() and np.allclose(x[:, :, 8:24], 0.25)
