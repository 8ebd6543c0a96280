"""Duplicate pairs from the collected hashes, without comparing all pairs.

Held-out set: images with the same exact digest form a cluster (one sort); every pair inside a cluster is an exact
duplicate, counted from the cluster's label counts (s(s-1)/2 pairs, of which the same-label ones are the sum of
c(c-1)/2 over its labels) without listing them. Near duplicates are searched between one representative per
cluster (``near.near_pairs``, multi-index hashing), confirmed on the two thumbnails, and count every member pair
of the two clusters (members of a cluster have the same pixels, so the same hash and thumbnail). The pairs are
those of the all-pairs search of earlier versions: exact-digest pairs, and pairs whose perceptual hashes are
within ``max_hamming`` bits and whose thumbnails agree. The examples kept are the first ``MAX_PAIRS``
cross-class pairs in listing order.

Training overlap: held-out images whose digest is in the training listing (one sort of both), and held-out /
training pairs within the radius whose thumbnails agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .duplicates import same_pictures
from .near import cross_pairs, near_pairs

MAX_PAIRS = 200  # duplicate pairs kept in the product (all are counted)
CONFIRM_CHUNK = 2048  # candidate pairs whose thumbnails are compared at a time (2 x 2048 x 1024 float64: 32 MB)
FULL_PRODUCT = 40_000  # member pairs of two clusters listed in full; beyond, the first MAX_PAIRS members of each


@dataclass(frozen=True)
class PairCounts:
    n_cross: int
    n_same: int
    examples: tuple[tuple[int, int, int, str], ...]  # (a, b, distance, kind): positions a < b in the rows given


def _confirm(thumbs: np.ndarray, a: np.ndarray, b: np.ndarray, thumbs_b: np.ndarray | None = None) -> np.ndarray:
    """Whether thumbs[a[k]] and (thumbs_b or thumbs)[b[k]] show the same picture, read a chunk at a time."""
    other = thumbs if thumbs_b is None else thumbs_b
    out = np.zeros(len(a), dtype=bool)
    for s in range(0, len(a), CONFIRM_CHUNK):
        out[s:s + CONFIRM_CHUNK] = same_pictures(thumbs[a[s:s + CONFIRM_CHUNK]], other[b[s:s + CONFIRM_CHUNK]])
    return out


def clusters(exact: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact-digest clusters of (n, 2) digests: (members in cluster order, start of each cluster, sizes); members
    of a cluster are in ascending position, clusters ordered by digest."""
    order = np.lexsort((exact[:, 1], exact[:, 0]))
    e = exact[order]
    new = np.ones(len(e), dtype=bool)
    if len(e) > 1:
        new[1:] = (e[1:] != e[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(e)))
    return order, starts, sizes


def _same_label_pairs(keys_a: np.ndarray, keys_b: np.ndarray | None) -> int:
    """Same-label pairs within one member list (b None) or across two."""
    la, ca = np.unique(keys_a, return_counts=True)
    if keys_b is None:
        return int((ca * (ca - 1) // 2).sum())
    lb, cb = np.unique(keys_b, return_counts=True)
    _, ia, ib = np.intersect1d(la, lb, assume_unique=True, return_indices=True)
    return int((ca[ia] * cb[ib]).sum())


def _cross_examples(ma: np.ndarray, mb: np.ndarray | None, keys: np.ndarray, d: int, kind: str
                    ) -> list[tuple[int, int, int, str]]:
    """The first MAX_PAIRS cross-label member pairs (a < b) within ``ma`` (mb None) or across ``ma`` x ``mb``."""
    if mb is None:
        ma = ma[:MAX_PAIRS + 1] if len(ma) * len(ma) > FULL_PRODUCT else ma
        a, b = np.triu_indices(len(ma), 1)
        a, b = ma[a], ma[b]
    else:
        if len(ma) * len(mb) > FULL_PRODUCT:
            ma, mb = ma[:MAX_PAIRS], mb[:MAX_PAIRS]
        a, b = np.repeat(ma, len(mb)), np.tile(mb, len(ma))
        a, b = np.minimum(a, b), np.maximum(a, b)
    keep = keys[a] != keys[b]
    a, b = a[keep], b[keep]
    o = np.lexsort((b, a))[:MAX_PAIRS]
    return [(int(x), int(y), d, kind) for x, y in zip(a[o], b[o], strict=True)]


def heldout_pairs(phash: np.ndarray, exact: np.ndarray, thumbs: np.ndarray, rows: np.ndarray, keys: np.ndarray,
                  radius: int) -> PairCounts:
    """Duplicate pairs among n images: ``phash`` (n,) uint64, ``exact`` (n, 2), ``keys`` (n,) label of each (equal
    keys = the same label or label set); image k's thumbnail is ``thumbs[rows[k]]`` (uint8, may be a mapped file)."""
    order, starts, sizes = clusters(exact)
    n_cross = n_same = 0
    examples: list[tuple[int, int, int, str]] = []
    for c in np.flatnonzero(sizes > 1):  # exact clusters
        members = order[starts[c]:starts[c] + sizes[c]]
        same = _same_label_pairs(keys[members], None)
        total = int(sizes[c]) * (int(sizes[c]) - 1) // 2
        n_same += same
        n_cross += total - same
        if total > same:
            examples += _cross_examples(members, None, keys, 0, "exact")
    reps = order[starts]  # the first member of each cluster
    i, j, d = near_pairs(phash[reps], radius)
    ok = _confirm(thumbs, rows[reps[i]], rows[reps[j]]) if len(i) else np.zeros(0, dtype=bool)
    i, j, d = i[ok], j[ok], d[ok]
    single = (sizes[i] == 1) & (sizes[j] == 1)
    differ = keys[reps[i]] != keys[reps[j]]
    n_cross += int((single & differ).sum())
    n_same += int((single & ~differ).sum())
    for x, y, dist in zip(i[single & differ], j[single & differ], d[single & differ], strict=True):
        a, b = sorted((int(reps[x]), int(reps[y])))
        examples.append((a, b, int(dist), "near"))
    for x, y, dist in zip(i[~single], j[~single], d[~single], strict=True):
        ma = order[starts[x]:starts[x] + sizes[x]]
        mb = order[starts[y]:starts[y] + sizes[y]]
        same = _same_label_pairs(keys[ma], keys[mb])
        total = len(ma) * len(mb)
        n_same += same
        n_cross += total - same
        if total > same:
            examples += _cross_examples(ma, mb, keys, int(dist), "near")
    examples.sort(key=lambda t: (t[0], t[1]))
    return PairCounts(n_cross, n_same, tuple(examples[:MAX_PAIRS]))


def in_other(exact_a: np.ndarray, exact_b: np.ndarray) -> np.ndarray:
    """(len(a),) bool: whether each digest of ``exact_a`` also occurs in ``exact_b``."""
    both = np.concatenate([exact_a, exact_b])
    side = np.concatenate([np.zeros(len(exact_a), dtype=bool), np.ones(len(exact_b), dtype=bool)])
    order, starts, sizes = clusters(both)
    has_b = np.logical_or.reduceat(side[order], starts) if len(starts) else np.zeros(0, dtype=bool)
    cluster_of = np.repeat(np.arange(len(starts)), sizes)
    hit = np.zeros(len(both), dtype=bool)
    hit[order] = has_b[cluster_of]
    return hit[:len(exact_a)]


def overlap(h_phash: np.ndarray, h_exact: np.ndarray, h_thumbs: np.ndarray, h_rows: np.ndarray,
            t_phash: np.ndarray, t_exact: np.ndarray, t_thumbs: np.ndarray, t_rows: np.ndarray, radius: int
            ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Held-out images also in training (thumbnails at ``h_thumbs[h_rows[k]]``, ``t_thumbs[t_rows[k]]``): (exact
    hit per held-out image, overlapping held-out positions (sorted), confirmed near pairs (held-out position,
    training position, distance) sorted)."""
    exact_hit = in_other(h_exact, t_exact)
    i, j, d = cross_pairs(h_phash, t_phash, radius)
    ok = _confirm(h_thumbs, h_rows[i], t_rows[j], t_thumbs) if len(i) else np.zeros(0, dtype=bool)
    i, j, d = i[ok], j[ok], d[ok]
    hit = np.union1d(i, np.flatnonzero(exact_hit))
    return exact_hit, hit, (i, j, d)
