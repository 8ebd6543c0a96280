"""DICOM decoding against hand-computed values: rescale, VOI window (tags or data.window), MONOCHROME1, RGB,
refusals (multi-frame, compressed without a decoder, unsupported photometric), detection, missing pydicom."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from loading_helpers import write_dicom

from audit.config import DataConfig
from audit.errors import DataError
from audit.loading.decode import DecodeOptions, decode_image, image_size_of
from audit.loading.survey import survey

pytest.importorskip("pydicom")

STORED = np.array([[0, 400, 500], [520, 540, 700], [900, 1000, 4095]], dtype=np.uint16)


def _linear(x: np.ndarray, c: float, w: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 LINEAR to [0, 1], written out case by case."""
    out = np.empty_like(x, dtype=np.float64)
    for i, v in np.ndenumerate(x):
        if v <= c - 0.5 - (w - 1) / 2:
            out[i] = 0.0
        elif v > c - 0.5 + (w - 1) / 2:
            out[i] = 1.0
        else:
            out[i] = ((v - (c - 0.5)) / (w - 1) + 0.5)
    return out


def test_rescale_and_window_from_tags(tmp_path):
    path = write_dicom(tmp_path / "ct.dcm", STORED, slope=2, intercept=-1024, center=[40, 400], width=[400, 1500])
    hu = STORED * 2.0 - 1024  # [-1024, -224, -24, 16, 56, 376, 776, 976, 7166]
    want = _linear(hu, 40, 400)  # first window of the two
    assert want[1, 0] == pytest.approx((16 - 39.5) / 399 + 0.5)  # a value inside the window, by hand: 0.441103
    got = decode_image(path, channels=1).array[:, :, 0]
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert got[0, 0] == 0.0 and got[2, 2] == 1.0


def test_config_window_wins_over_the_tags(tmp_path):
    path = write_dicom(tmp_path / "ct.dcm", STORED, slope=2, intercept=-1024, center=40, width=400)
    got = decode_image(path, 1, DecodeOptions(window=(-500.0, 1000.0))).array[:, :, 0]
    np.testing.assert_allclose(got, _linear(STORED * 2.0 - 1024, -500, 1000), atol=1e-7)


def test_without_a_window_the_stored_bit_range_is_used(tmp_path):
    path = write_dicom(tmp_path / "nw.dcm", STORED, bits_stored=12, slope=1, intercept=0)
    np.testing.assert_allclose(decode_image(path, 1).array[:, :, 0], STORED / 4095.0, atol=1e-7)


def test_monochrome1_is_inverted(tmp_path):
    m2 = write_dicom(tmp_path / "m2.dcm", STORED, center=2048, width=4096)
    m1 = write_dicom(tmp_path / "m1.dcm", STORED, center=2048, width=4096, photometric="MONOCHROME1")
    a2, a1 = decode_image(m2, 1).array, decode_image(m1, 1).array
    np.testing.assert_allclose(a1, 1.0 - a2, atol=1e-7)
    assert a1[2, 2, 0] == pytest.approx(1 - ((4095 - 2047.5) / 4095 + 0.5), abs=1e-7)


def test_other_voi_functions(tmp_path):
    path = write_dicom(tmp_path / "s.dcm", STORED, center=500, width=200, voi_function="SIGMOID")
    got = decode_image(path, 1).array[:, :, 0]
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-4 * (STORED - 500.0) / 200)), atol=1e-6)
    path = write_dicom(tmp_path / "e.dcm", STORED, center=500, width=200, voi_function="LINEAR_EXACT")
    np.testing.assert_allclose(decode_image(path, 1).array[:, :, 0], np.clip((STORED - 500.0) / 200 + 0.5, 0, 1),
                               atol=1e-7)


def test_rgb_dicom(tmp_path):
    rgb = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3) * 20
    path = write_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB", bits_stored=8)
    np.testing.assert_allclose(decode_image(path, 3).array, rgb / 255.0, atol=1e-7)
    grey = decode_image(path, 1).array[:, :, 0]
    np.testing.assert_allclose(grey, (rgb / 255.0) @ np.array([0.299, 0.587, 0.114]), atol=1e-6)


def test_grey_dicom_for_a_three_channel_model_replicates(tmp_path):
    path = write_dicom(tmp_path / "g.dcm", STORED, center=2048, width=4096)
    a = decode_image(path, 3).array
    assert a.shape == (3, 3, 3) and (a[..., 0] == a[..., 2]).all()


def test_multi_frame_is_refused(tmp_path):
    path = write_dicom(tmp_path / "mf.dcm", np.stack([STORED, STORED]), frames=2)
    with pytest.raises(DataError, match=r"mf\.dcm: multi-frame DICOM \(2 frames\) is not supported"):
        decode_image(path, 1)


def test_compressed_without_a_decoder_is_refused_clearly(tmp_path):
    from pydicom.uid import JPEG2000Lossless

    path = write_dicom(tmp_path / "j2k.dcm", STORED, transfer_syntax=JPEG2000Lossless)
    with pytest.raises(DataError) as e:
        decode_image(path, 1)
    msg = str(e.value)
    assert msg.startswith(f"{path}: DICOM transfer syntax 'JPEG 2000 Image Compression (Lossless Only)'")
    assert "compressed" in msg and "pylibjpeg" in msg and "\n" not in msg


def test_unsupported_photometric_is_refused(tmp_path):
    path = write_dicom(tmp_path / "p.dcm", STORED.astype(np.uint8), photometric="PALETTE COLOR", bits_stored=8)
    with pytest.raises(DataError, match="photometric interpretation 'PALETTE COLOR' is not supported"):
        decode_image(path, 1)


def test_recognised_by_preamble_without_extension_and_sized_from_the_header(tmp_path):
    src = write_dicom(tmp_path / "a.dcm", np.zeros((3, 5), np.uint16), center=0, width=10)
    plain = tmp_path / "IM0001"
    plain.write_bytes(src.read_bytes())
    assert image_size_of(plain) == (5, 3)
    assert decode_image(plain, 1).array.shape == (3, 5, 1)


def test_not_dicom_with_a_dcm_extension(tmp_path):
    (tmp_path / "x.dcm").write_bytes(b"hello")
    with pytest.raises(DataError, match=r"x\.dcm: not a readable DICOM file"):
        decode_image(tmp_path / "x.dcm", 1)


def test_missing_pydicom_names_the_extra(tmp_path, monkeypatch):
    path = write_dicom(tmp_path / "a.dcm", STORED, center=0, width=10)
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(DataError, match=r"a\.dcm: reading DICOM needs pydicom: pip install model-audit\[dicom\]"):
        decode_image(path, 1)


def test_window_source_is_stated(tmp_path, caplog):
    tagged = write_dicom(tmp_path / "t.dcm", STORED, center=40, width=400)
    bare = write_dicom(tmp_path / "b.dcm", STORED)
    from audit.loading.listing import SampleRecord

    recs = [SampleRecord(id=p.name, path=p, label=0) for p in (tagged, bare)]
    notes = survey(recs, (3, 3), "stretch", None).notes
    assert any("1 DICOM image(s) windowed by their own WindowCenter/WindowWidth tags" in n for n in notes)
    assert any("1 DICOM image(s) have no window" in n for n in notes)
    notes = survey(recs, (3, 3), "stretch", (10.0, 100.0)).notes
    assert any("2 DICOM image(s) windowed by data.window (center 10, width 100); it overrides the window tags of 1"
               in n for n in notes)


def test_window_config_is_validated():
    with pytest.raises(ValueError, match="width >= 1"):
        DataConfig(manifest="m.csv", window=[40, 0.5])


def test_unusable_window_tags_are_refused_naming_the_file(tmp_path):
    path = write_dicom(tmp_path / "w.dcm", STORED, center=40, width=0.5)
    with pytest.raises(DataError, match=r"w\.dcm: unusable VOI window from tags: center 40.0, width 0.5"):
        decode_image(path, 1)
    assert decode_image(path, 1, DecodeOptions(window=(40.0, 400.0))).array.shape == (3, 3, 1)  # config wins
