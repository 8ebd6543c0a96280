"""Every pair of 64-bit hashes within a Hamming radius, without comparing all pairs (multi-index hashing).

The 64 bits are cut into ``b`` blocks (``b`` > radius r). Two hashes that differ in at most r bits differ in at
most r blocks, so they agree exactly on at least b - r blocks (pigeonhole): on every (b - r)-subset of those.
One table per (b - r)-subset of the blocks: the hashes sorted by their bits in the subset, and every pair inside a
run of equal keys is a candidate. A candidate is kept when its full distance is at most r, and only by the table
of the first (b - r) blocks it agrees on (so each pair comes out once). Nothing within the radius is missed: the
answer is the brute-force answer (tested at 10^4 hashes).

Cost: one sort per table (``_sorted_keys``), C(b, b - r) tables, plus the candidates. ``b`` is chosen from the count: with k key
bits per table, two unrelated (uniform) hashes collide with probability 2^-k, so the candidates are about
C(b, b - r) N^2 / 2^(k + 1); ``b`` minimises tables x N log N + ``CANDIDATE_COST`` x candidates (radius 4: b = 5
below about 1.6 x 10^4 hashes, b = 6 (21-bit keys, 15 tables) to about 6 x 10^6, b = 7 (27-bit keys, 35 tables)
beyond). Hashes that are truly close (a set with
many near copies) add their own pairs: the work is output-sensitive, never all pairs of unrelated images.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

U64 = np.uint64
# the work of one candidate pair against one hash's share of a table's sort (log2 n + 4 units): measured on this
# machine's CPU time (bench/growth.py --what near: 1.1e-7 s per candidate, 1.5e-7 s per hash and table at
# 3 x 10^6), rounded up for the candidates' memory (their index arrays are made per table)
CANDIDATE_COST = 32


def _block_masks(b: int) -> list[int]:
    """``b`` contiguous masks covering the 64 bits, sizes differing by at most one."""
    bounds = [round(i * 64 / b) for i in range(b + 1)]
    return [((1 << (bounds[i + 1] - bounds[i])) - 1) << bounds[i] for i in range(b)]


def choose_blocks(n: int, radius: int) -> int:
    """The block count with the least estimated work for ``n`` hashes (see the module docstring)."""
    best, best_cost = radius + 1, math.inf
    for b in range(radius + 1, min(64, radius + 12) + 1):
        s = b - radius
        tables = math.comb(b, s)
        key_bits = 64 * s / b
        cost = tables * n * (math.log2(max(n, 2)) + 4) + tables * n * n / 2.0 ** (key_bits + 1) * CANDIDATE_COST
        if cost < best_cost:
            best, best_cost = b, cost
    return best


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x).astype(np.int64)


def _run_pairs(order: np.ndarray, keys_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (earlier, later) pair of positions in ``order`` inside a run of equal sorted keys."""
    n = len(keys_sorted)
    if n < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(keys_sorted[1:], keys_sorted[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    run_end = np.repeat(ends, ends - starts)  # for each position, the end of its run
    pos = np.flatnonzero(run_end - np.arange(n) > 1)  # positions with a later member in the run
    a_parts, b_parts = [], []
    d = 1
    while len(pos):
        a_parts.append(order[pos])
        b_parts.append(order[pos + d])
        d += 1
        pos = pos[run_end[pos] - pos > d]
    if not a_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(a_parts), np.concatenate(b_parts)


def _sorted_keys(h: np.ndarray, mask: np.uint64, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions of ``h`` in the order of their bits under ``mask``, and those keys in that order. When the
    key's bits and a position fit one 64-bit word, the key is compacted above the position and the words sorted
    (a plain sort: much faster than an indirect one); else an indirect sort. Any order inside a run of equal keys
    gives the same pairs."""
    key_bits = int(mask).bit_count()
    pos_bits = max(1, (n - 1).bit_length())
    if key_bits + pos_bits > 64:
        keys = h & mask
        order = np.argsort(keys)
        return order, keys[order]
    compact = np.zeros(n, dtype=U64)
    width = 0
    m = int(mask)
    while m:  # each contiguous run of set bits of the mask, lowest first
        lo = (m & -m).bit_length() - 1
        run = ((m >> lo) + 1) & ~(m >> lo)  # the lowest unset bit above the run, shifted down
        w = run.bit_length() - 1
        compact |= ((h >> U64(lo)) & U64((1 << w) - 1)) << U64(width)
        width += w
        m &= ~(((1 << w) - 1) << lo)
    words = np.sort((compact << U64(pos_bits)) | np.arange(n, dtype=U64))
    return (words & U64((1 << pos_bits) - 1)).astype(np.int64), words >> U64(pos_bits)


def near_pairs(hashes: np.ndarray, radius: int, blocks: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of every pair i < j of ``hashes`` (n,) uint64 with Hamming distance <= ``radius``,
    sorted by (i, j)."""
    h = np.ascontiguousarray(hashes, dtype=U64)
    n = len(h)
    empty = np.zeros(0, dtype=np.int64)
    if n < 2:
        return empty, empty, empty
    if radius < 0:
        return empty, empty, empty
    b = blocks or choose_blocks(n, radius)
    if b <= radius:
        raise ValueError(f"{b} blocks cannot find pairs {radius} bits apart (need more than {radius})")
    masks = [U64(m) for m in _block_masks(b)]
    s = b - radius
    out_i, out_j, out_d = [], [], []
    for subset in itertools.combinations(range(b), s):
        mask = U64(0)
        for k in subset:
            mask |= masks[k]
        order, keys_sorted = _sorted_keys(h, mask, n)
        ia, ib = _run_pairs(order, keys_sorted)
        if not len(ia):
            continue
        dist = _popcount(h[ia] ^ h[ib])
        keep = dist <= radius
        ia, ib, dist = ia[keep], ib[keep], dist[keep]
        # the pair belongs to the first s blocks it agrees on; report it from that table only
        x = h[ia] ^ h[ib]
        agree = np.stack([(x & m) == 0 for m in masks], axis=1)  # (pairs, b)
        rank = np.cumsum(agree, axis=1)
        first = np.all([agree[:, k] & (rank[:, k] == r + 1) for r, k in enumerate(subset)], axis=0)
        ia, ib, dist = ia[first], ib[first], dist[first]
        out_i.append(np.minimum(ia, ib))
        out_j.append(np.maximum(ia, ib))
        out_d.append(dist)
    if not out_i:
        return empty, empty, empty
    i, j, d = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)
    o = np.lexsort((j, i))
    return i[o].astype(np.int64), j[o].astype(np.int64), d[o]


def cross_pairs(a: np.ndarray, b: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i into ``a``, j into ``b``, distance) of every pair across the two sets within ``radius``, sorted."""
    both = np.concatenate([np.asarray(a, dtype=U64), np.asarray(b, dtype=U64)])
    i, j, d = near_pairs(both, radius)
    na = len(a)
    keep = (i < na) & (j >= na)
    i, j, d = i[keep], j[keep] - na, d[keep]
    o = np.lexsort((j, i))
    return i[o], j[o], d[o]
