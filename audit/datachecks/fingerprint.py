"""The data fingerprint (results.json ``provenance.data.images_sha256``): one hash of the held-out set, computed
from per-image hashes made where each image is decoded, so the set is read once.

Each listed sample gives one line, as before: its image path relative to the data root, the SHA-256 of the image
file, its label (the class index, or the '|'-joined label set) and, when it has one, the SHA-256 of its
segmentation or defect mask, tab-separated. The lines form a multiset, reduced by LtHash (Bellare & Micciancio
1997, in the lthash16 form of Lewi et al. 2019): every line is expanded by SHAKE-256 into 1,024 16-bit lanes
and the lanes are added modulo 2^16. Addition does not care about order or where it happened: workers add their
images' lanes and the driver adds the partial sums. The fingerprint is the SHA-256 of a version tag, the number
of lines and the 2,048 bytes of lanes, hex. Like the sorted-lines hash it replaces, it changes when any image,
path, label or mask changes, is the same for the same set listed in any order, and two different sets collide
only by breaking LtHash (about 200-bit security at these parameters).
"""

from __future__ import annotations

import hashlib

import numpy as np

LANES = 1024
TAG = b"model-audit data fingerprint: lthash16 over (path, image sha256, label, mask sha256) lines, v2\n"


def line(rel_path: str, image_sha256: str, label: str, mask_sha256: str = "") -> bytes:
    mask = f"\t{mask_sha256}" if mask_sha256 else ""
    return f"{rel_path}\t{image_sha256}\t{label}{mask}".encode()


def lanes(text: bytes) -> np.ndarray:
    """The line's 1,024 16-bit lanes (little-endian SHAKE-256 output)."""
    return np.frombuffer(hashlib.shake_256(text).digest(2 * LANES), dtype="<u2")


class Fingerprint:
    """A running LtHash: ``add`` lines or ``merge`` partial sums in any order; ``hexdigest`` at the end."""

    def __init__(self) -> None:
        self.total = np.zeros(LANES, dtype=np.uint64)  # lane sums, reduced modulo 2^16 when read
        self.count = 0

    def add(self, text: bytes) -> None:
        self.total += lanes(text)
        self.count += 1

    def add_sum(self, lane_sum: np.ndarray, count: int) -> None:
        """Partial sums from elsewhere (lanes added as uint64; reduced modulo 2^16 here)."""
        self.total = (self.total + np.asarray(lane_sum, dtype=np.uint64)) & np.uint64(0xFFFF)
        self.count += int(count)

    def state(self) -> tuple[np.ndarray, int]:
        return (self.total & np.uint64(0xFFFF)).astype(np.uint16), self.count

    def hexdigest(self) -> str:
        lanes16, count = self.state()
        return hashlib.sha256(TAG + count.to_bytes(8, "little") + lanes16.astype("<u2").tobytes()).hexdigest()


def fingerprint_of(lines: list[bytes]) -> str:
    """The fingerprint of whole lines at once (what the streamed reduction equals)."""
    fp = Fingerprint()
    for t in lines:
        fp.add(t)
    return fp.hexdigest()
