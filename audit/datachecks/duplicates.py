"""Exact and near-duplicate images: within the held-out set across classes (the same picture under two labels),
and between a training manifest and the held-out set (leakage that inflates every metric).

Everything is computed from the decoded pixels rounded to 8 bits (``u8``). Exact: a 128-bit digest (SHA-256,
first 16 bytes) of those pixels and the image shape, so a PNG and a JPEG re-save of the same pixels differ,
while the same pixels in two files do not. Near: a 64-bit perceptual hash (DCT of the 32×32 greyscale thumbnail,
the 8×8 lowest frequencies without the DC term against their median; Zauner 2010) within ``max_hamming`` bits,
confirmed on the two 32×32 greyscale thumbnails with their means removed: a mean absolute difference of at most
``MAX_THUMB_DIFF`` (intensities 0–1). The thumbnail is the grey image (the channels' mean, rounded to 8 bits)
resized bilinearly; the hash and the confirmation read the same thumbnail, so two images with the same 8-bit
pixels have the same digest, hash and thumbnail. Small or synthetic images with similar smooth backgrounds, or
with the same letterbox bars, can share a hash by chance; a re-encoded, resized or re-exposed copy of one picture
stays within a few hundredths.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image
from scipy.fft import dctn

MAX_THUMB_DIFF = 0.02
THUMB = 32


def to_u8(a: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)


def grey_thumbnail(u8: np.ndarray) -> np.ndarray:
    """The 32×32 greyscale thumbnail (uint8) of 8-bit pixels (H, W) or (H, W, C)."""
    y = np.rint(u8.mean(axis=2)).astype(np.uint8) if u8.ndim == 3 else u8
    return np.asarray(Image.fromarray(y).resize((THUMB, THUMB), Image.BILINEAR), dtype=np.uint8)


def phash_of(thumb: np.ndarray) -> int:
    """The 64-bit perceptual hash of a 32×32 uint8 thumbnail, as an int (bit 63 = the first coefficient)."""
    d = dctn(np.asarray(thumb, dtype=np.float64), norm="ortho")[:8, :8].ravel()
    bits = d > np.median(d[1:])
    bits[0] = False
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def exact_digest(u8: np.ndarray) -> bytes:
    """16 bytes: SHA-256 of the 8-bit pixels and their shape."""
    return hashlib.sha256(str(u8.shape).encode() + np.ascontiguousarray(u8).tobytes()).digest()[:16]


def image_hashes(a: np.ndarray) -> tuple[int, bytes, np.ndarray]:
    """(perceptual hash, exact digest, thumbnail 32×32 uint8) of an image (H, W, C) in [0, 1]."""
    u8 = to_u8(a)
    thumb = grey_thumbnail(u8)
    return phash_of(thumb), exact_digest(u8), thumb


def centred(thumbs: np.ndarray) -> np.ndarray:
    """Thumbnails (n, 32, 32) or (n, 1024) uint8 -> (n, 1024) float64 intensities 0–1 with their means removed."""
    t = np.asarray(thumbs, dtype=np.float64).reshape(len(thumbs), -1) / 255.0
    return t - t.mean(axis=1, keepdims=True)


def same_pictures(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) bool: whether thumbnails a[k] and b[k] (uint8) show the same picture (see the module docstring)."""
    return np.abs(centred(a) - centred(b)).mean(axis=1) <= MAX_THUMB_DIFF


# ---- single images (tests and callers that hold pixels) -------------------------------------------------

def exact_hash(a: np.ndarray) -> str:
    return exact_digest(to_u8(a)).hex()


def phash(a: np.ndarray) -> np.ndarray:
    """8 bytes (uint8) of the perceptual hash of an image (H, W, C) in [0, 1]."""
    return np.frombuffer(phash_of(grey_thumbnail(to_u8(a))).to_bytes(8, "big"), dtype=np.uint8).copy()


def thumbnail(a: np.ndarray) -> np.ndarray:
    """The 32×32 greyscale thumbnail (intensities 0–1), flattened, its mean removed."""
    return centred(grey_thumbnail(to_u8(a))[None])[0]


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """Two centred thumbnails (``thumbnail``) show the same picture."""
    return float(np.abs(a - b).mean()) <= MAX_THUMB_DIFF
