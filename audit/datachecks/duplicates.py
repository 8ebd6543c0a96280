"""Exact and near-duplicate images: within the held-out set across classes (the same picture under two labels),
and between a training manifest and the held-out set (leakage that inflates every metric).

Exact: the SHA-1 of the decoded pixels (8-bit rounded) and the image shape, so a PNG and a JPEG re-save of the
same pixels differ, while the same pixels in two files do not. Near: a 64-bit perceptual hash (DCT of the
32×32 greyscale thumbnail, the 8×8 lowest frequencies without the DC term against their median; Zauner 2010)
within ``max_hamming`` bits, confirmed on the two 32×32 greyscale thumbnails with their means removed: a mean
absolute difference of at most ``MAX_THUMB_DIFF`` (intensities 0–1). Small or synthetic images with similar
smooth backgrounds, or with the same letterbox bars, can share a hash by chance; a re-encoded, resized or
re-exposed copy of one picture stays within a few hundredths.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image
from scipy.fft import dctn

_POP = np.array([(i).bit_count() for i in range(256)], dtype=np.uint8)


def exact_hash(a: np.ndarray) -> str:
    u8 = np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)
    return hashlib.sha1(str(u8.shape).encode() + u8.tobytes()).hexdigest()


def phash(a: np.ndarray) -> np.ndarray:
    """8 bytes (uint8) of the perceptual hash of an image (H, W, C) in [0, 1]."""
    y = a.mean(axis=2) if a.ndim == 3 else a
    im = Image.fromarray(np.rint(np.clip(y, 0, 1) * 255).astype(np.uint8)).resize((32, 32), Image.BILINEAR)
    d = dctn(np.asarray(im, dtype=np.float64), norm="ortho")[:8, :8].ravel()
    bits = d > np.median(d[1:])
    bits[0] = False
    return np.packbits(bits)


MAX_THUMB_DIFF = 0.02


def thumbnail(a: np.ndarray) -> np.ndarray:
    """The 32×32 greyscale thumbnail (intensities 0–1), flattened, its mean removed."""
    y = a.mean(axis=2) if a.ndim == 3 else a
    im = Image.fromarray(np.rint(np.clip(y, 0, 1) * 255).astype(np.uint8)).resize((32, 32), Image.BILINEAR)
    t = np.asarray(im, dtype=np.float64).ravel() / 255.0
    return t - t.mean()


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).mean()) <= MAX_THUMB_DIFF


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit distances between hashes a (n, 8) and b (m, 8): (n, m) uint8."""
    return _POP[a[:, None, :] ^ b[None, :, :]].sum(-1, dtype=np.int32)


def near_pairs(a: np.ndarray, b: np.ndarray | None, max_hamming: int, chunk: int = 512
               ) -> list[tuple[int, int, int]]:
    """(i, j, distance) with distance <= max_hamming; within ``a`` (i < j) when ``b`` is None."""
    out: list[tuple[int, int, int]] = []
    other = a if b is None else b
    for s in range(0, len(a), chunk):
        d = hamming(a[s:s + chunk], other)
        ii, jj = np.nonzero(d <= max_hamming)
        for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
            if b is None and s + i >= j:
                continue
            out.append((s + i, j, int(d[i, j])))
    return out
