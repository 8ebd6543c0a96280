"""One decoding rule per kind of sample, checked against values computed by hand from files built with numpy,
Pillow, tifffile and raw PNG bytes (no decoder code is re-used to compute the expectations)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tifffile
from loading_helpers import write_png
from PIL import Image

from audit.errors import DataError
from audit.loading.decode import DecodeOptions, decode_image, open_image
from audit.loading.preprocess import Preprocess


def _pre(size=(32, 32), channels=1, **kw) -> Preprocess:
    return Preprocess(size=size, channels=channels, mean=(0.0,) * channels, std=(1.0,) * channels, **kw)


def test_12bit_data_in_a_16bit_png_keeps_every_grey_level(tmp_path):
    """The reported case: 272 distinct levels of 12-bit data in a 1-channel 16-bit PNG (8-bit conversion left 3)."""
    levels = np.arange(272, dtype=np.uint16) * 15  # 0 … 4065, 12-bit values stored unscaled
    a = np.resize(levels, (16, 17))
    Image.fromarray(a).save(tmp_path / "g.png")  # Pillow writes I;16 as a 16-bit grey PNG
    d = decode_image(tmp_path / "g.png", channels=1)
    assert d.pil is None and d.array.dtype == np.float32 and d.array.shape == (16, 17, 1)
    assert len(np.unique(d.array)) == 272
    np.testing.assert_array_equal(d.array[:, :, 0], (a / 65535.0).astype(np.float32))
    ranged = decode_image(tmp_path / "g.png", 1, DecodeOptions(value_range=(0, 4095)))
    np.testing.assert_array_equal(ranged.array[:, :, 0], (a / 4095.0).astype(np.float32))


def test_16bit_levels_survive_resizing(tmp_path):
    """Resizing runs in float: a 12-bit ramp shrunk to the model input keeps far more than 256 levels."""
    a = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "ramp.png")
    x = _pre()(decode_image(tmp_path / "ramp.png", 1, DecodeOptions(value_range=(0, 4095))))
    assert x.shape == (1, 32, 32)
    assert len(np.unique(x.numpy())) > 256


def test_float_tiff_in_unit_range_is_kept(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((9, 11)).astype(np.float32)
    a[0, 0], a[0, 1] = 0.0, 1.0
    tifffile.imwrite(tmp_path / "f.tif", a)
    d = decode_image(tmp_path / "f.tif", channels=1)
    np.testing.assert_array_equal(d.array[:, :, 0], a)
    tifffile.imwrite(tmp_path / "f64.tif", a.astype(np.float64))  # Pillow cannot open float64 TIFF
    np.testing.assert_array_equal(decode_image(tmp_path / "f64.tif", 1).array[:, :, 0], a)


@pytest.mark.parametrize("lo,hi", [(-0.25, 0.5), (0.0, 1.5), (0.0, 255.0)])
def test_float_tiff_outside_unit_range_is_refused_naming_the_file(tmp_path, lo, hi):
    a = np.linspace(lo, hi, 20, dtype=np.float32).reshape(4, 5)
    path = tmp_path / "odd.tif"
    tifffile.imwrite(path, a)
    with pytest.raises(DataError) as e:
        decode_image(path, 1)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "data.value_range" in msg and "\n" not in msg
    d = decode_image(path, 1, DecodeOptions(value_range=(lo, hi)))
    np.testing.assert_allclose(d.array[:, :, 0], (a.astype(np.float64) - lo) / (hi - lo), atol=1e-7)


def test_float_tiff_with_nan_is_refused(tmp_path):
    a = np.full((4, 4), 0.5, dtype=np.float32)
    a[1, 2] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", a)
    with pytest.raises(DataError, match=r"nan\.tif: float image has NaN or infinite values"):
        decode_image(tmp_path / "nan.tif", 1)


def test_32bit_integer_tiff(tmp_path):
    ok = np.array([[0, 1000], [40000, 65535]], dtype=np.int32)
    tifffile.imwrite(tmp_path / "ok.tif", ok)
    np.testing.assert_array_equal(decode_image(tmp_path / "ok.tif", 1).array[:, :, 0],
                                  (ok / 65535.0).astype(np.float32))
    big = np.array([[0, 1000], [40000, 70000]], dtype=np.int32)
    tifffile.imwrite(tmp_path / "big.tif", big)
    with pytest.raises(DataError, match=r"big\.tif: int32 image with values in \[0, 70000\] fits no rule"):
        decode_image(tmp_path / "big.tif", 1)
    d = decode_image(tmp_path / "big.tif", 1, DecodeOptions(value_range=(0, 70000)))
    np.testing.assert_allclose(d.array[:, :, 0], big / 70000.0, atol=1e-7)
    neg = np.array([[-5, 0], [5, 10]], dtype=np.int16)
    tifffile.imwrite(tmp_path / "neg.tif", neg)
    with pytest.raises(DataError, match="fits no rule"):
        decode_image(tmp_path / "neg.tif", 1)


def test_16bit_rgb_tiff_keeps_16_bits_and_converts_like_pillow(tmp_path):
    rgb = np.zeros((3, 4, 3), dtype=np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 65535, 257, 1  # low bytes matter: 8 bits would make 1 -> 0
    rgb[1, 1] = (1000, 2000, 3000)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb, photometric="rgb")
    d = decode_image(tmp_path / "rgb16.tif", channels=3)
    np.testing.assert_array_equal(d.array, (rgb / 65535.0).astype(np.float32))
    grey = decode_image(tmp_path / "rgb16.tif", channels=1).array[:, :, 0]
    r, g, b = (rgb[..., i] / 65535.0 for i in range(3))
    np.testing.assert_allclose(grey, r * 0.299 + g * 0.587 + b * 0.114, atol=1e-7)


def test_16bit_colour_png(tmp_path):
    pytest.importorskip("cv2")
    rgb = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3) * 3001
    write_png(tmp_path / "rgb16.png", rgb)
    assert Image.open(tmp_path / "rgb16.png").mode == "RGB"  # what Pillow makes of it: 8 bits per channel
    np.testing.assert_array_equal(decode_image(tmp_path / "rgb16.png", 3).array, (rgb / 65535.0).astype(np.float32))
    rgba = np.dstack([rgb, np.full((2, 3), 65535, np.uint16)])
    rgba[0, 0, 3] = 0  # transparent: composited over black
    write_png(tmp_path / "rgba16.png", rgba)
    want = (rgb / 65535.0) * (rgba[..., 3:] / 65535.0)
    np.testing.assert_allclose(decode_image(tmp_path / "rgba16.png", 3).array, want, atol=1e-7)
    grey_alpha = np.dstack([rgb[..., 0], np.full((2, 3), 65535, np.uint16)])
    write_png(tmp_path / "ga16.png", grey_alpha)
    np.testing.assert_allclose(decode_image(tmp_path / "ga16.png", 1).array[..., 0], rgb[..., 0] / 65535.0, atol=1e-7)


def test_16bit_colour_png_without_opencv_is_refused_not_clipped(tmp_path, monkeypatch):
    write_png(tmp_path / "rgb16.png", np.ones((2, 2, 3), np.uint16))
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(DataError, match=r"rgb16\.png: a 16-bit colour PNG needs OpenCV .* model-audit\[png16\]"):
        decode_image(tmp_path / "rgb16.png", 3)


def test_16bit_ppm_divides_by_maxval(tmp_path):
    rgb = np.array([[[0, 1000, 4095], [4095, 1, 2]]], dtype=np.uint16)
    (tmp_path / "c.ppm").write_bytes(b"P6\n# comment\n2 1\n4095\n" + rgb.astype(">u2").tobytes())
    np.testing.assert_allclose(decode_image(tmp_path / "c.ppm", 3).array, rgb / 4095.0, atol=1e-7)


def test_ordinary_8bit_png_is_bit_identical_to_the_earlier_pipeline(tmp_path):
    """Earlier: Image.open -> convert -> Image.resize(BILINEAR) -> /255 in float32."""
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (30, 41), dtype=np.uint8)
    rgb = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(rgb).save(tmp_path / "c.png")
    for name, channels, mode in (("g.png", 1, "L"), ("c.png", 3, "RGB"), ("c.png", 1, "L"), ("g.png", 3, "RGB")):
        for size in ((32, 32), (30, 41)):
            ref = Image.open(tmp_path / name).convert(mode)
            if (ref.height, ref.width) != size:
                ref = ref.resize((size[1], size[0]), Image.BILINEAR)
            want = np.asarray(ref, dtype=np.float32) / 255.0
            want = want[:, :, None] if want.ndim == 2 else want
            got = _pre(size, channels)(decode_image(tmp_path / name, channels)).numpy().transpose(1, 2, 0)
            assert got.dtype == np.float32 and np.array_equal(got, want), (name, channels, size)


def test_rgb_to_grey_uses_pillows_rule_and_grey_to_rgb_replicates(tmp_path):
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 30]]], dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    grey = np.asarray(decode_image(tmp_path / "c.png", 1).pil)
    assert grey.tolist() == [[76, 150, 29, 124]]  # L = R*299/1000 + G*587/1000 + B*114/1000, rounded
    Image.fromarray(rgb[:, :, 1]).save(tmp_path / "g.png")
    rep = np.asarray(decode_image(tmp_path / "g.png", 3).pil)
    assert rep.shape == (1, 4, 3) and (rep == rgb[:, :, 1:2]).all()


def test_value_range_applies_to_8bit_images_too(tmp_path):
    Image.fromarray(np.array([[0, 100, 200]], dtype=np.uint8)).save(tmp_path / "g.png")
    d = decode_image(tmp_path / "g.png", 1, DecodeOptions(value_range=(100, 200)))
    np.testing.assert_allclose(d.array[0, :, 0], [0.0, 0.0, 1.0])


def test_open_image_is_an_8bit_view_of_16bit_data(tmp_path):
    a = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "g.png")
    assert np.asarray(open_image(tmp_path / "g.png", 1)).tolist() == [[0, 100, 255]]
    assert np.asarray(open_image(tmp_path / "g.png", 3)).shape == (1, 3, 3)
