"""Independent writers for the loading tests: raw PNG bytes (any bit depth / colour type, no filtering), DICOM
files through pydicom, 8-bit TIFF/JPEG with an orientation tag through Pillow."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: Path, arr: np.ndarray, bit_depth: int = 16) -> None:
    """(H, W) grey, (H, W, 2) grey+alpha, (H, W, 3) RGB or (H, W, 4) RGBA samples as a PNG (filter 0 rows)."""
    a = arr if arr.ndim == 3 else arr[:, :, None]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[a.shape[2]]
    h, w = a.shape[:2]
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = b"".join(b"\x00" + a[y].astype(dtype).tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows))
                     + _chunk(b"IEND", b""))


def write_dicom(path: Path, stored: np.ndarray, *, photometric: str = "MONOCHROME2", bits_stored: int = 12,
                signed: bool = False, slope: float | None = None, intercept: float | None = None,
                center: float | list[float] | None = None, width: float | list[float] | None = None,
                frames: int = 1, transfer_syntax: str | None = None, voi_function: str | None = None) -> Path:
    """A minimal single- or multi-frame DICOM file (Secondary Capture) with the given stored values."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax or ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    colour = stored.ndim == (4 if frames > 1 else 3)
    ds.Rows, ds.Columns = stored.shape[-3:-1] if colour else stored.shape[-2:]
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if stored.dtype.itemsize == 1 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    if center is not None:
        ds.WindowCenter = center
        ds.WindowWidth = width
    if voi_function is not None:
        ds.VOILUTFunction = voi_function
    if transfer_syntax is None:
        ds.PixelData = np.ascontiguousarray(stored).astype(stored.dtype.newbyteorder("<")).tobytes()
    else:  # encapsulated (compressed) syntax: one fragment of made-up bytes
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([b"\xff\xd8\xff\xee" + b"\x00" * 60])
        ds["PixelData"].VR = "OB"
    try:
        ds.save_as(path, enforce_file_format=True)  # pydicom >= 3
    except TypeError:
        ds.save_as(path, write_like_original=False)  # pydicom 2.x
    return path


def with_orientation(img: Image.Image, path: Path, orientation: int, **save: object) -> Path:
    """Save ``img`` (as stored) with EXIF/TIFF Orientation = ``orientation``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, exif=exif, **save)
    return path
