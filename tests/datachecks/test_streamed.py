"""The data checks reduced from streamed statistics give exactly the per-image answers: property-alone AUCs (against
scikit-learn's roc_auc_score and the per-image DeLong on per-image out-of-fold scores), the multi-index hashing
near-duplicate search and the duplicate counts (against brute force over all pairs, 10^4 hashes), and the
order-independent data fingerprint."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from audit.datachecks.duplicates import same_pictures
from audit.datachecks.fingerprint import Fingerprint, fingerprint_of, lanes
from audit.datachecks.near import near_pairs
from audit.datachecks.pairs import MAX_PAIRS, heldout_pairs, in_other
from audit.datachecks.predictive import delong
from audit.datachecks.stats import PSEUDO, Cells, folds_of, property_aucs, quantile_edges, quantise

# ---- property AUCs --------------------------------------------------------------------------------------------

def per_image_scores(values: np.ndarray, categorical: bool, folds: np.ndarray, targets: np.ndarray,
                     bins: int = 10) -> np.ndarray:
    """Out-of-fold lookup-table scores computed image by image (the reference): quantile edges of the training
    folds' values (the smallest value whose empirical CDF reaches i / n_bins), bin 0 for missing values."""
    n, K = targets.shape
    if categorical:
        cats = sorted({v for v in values if v != ""})
        key = np.array([cats.index(v) + 1 if v != "" else 0 for v in values])
    else:
        key = quantise(values)
    out = np.zeros((n, K))
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        if categorical:
            b = key
        else:
            ok = ~np.isnan(key)
            a = np.sort(key[tr & ok])
            nb = int(min(bins, max(3, round(math.sqrt(tr.sum())))))
            edges = np.unique([a[-(-i * len(a) // nb) - 1] for i in range(1, nb)]) if len(a) else np.zeros(0)
            b = np.zeros(n, dtype=np.int64)
            b[ok] = np.searchsorted(edges, key[ok], side="right") + 1
        prior = targets[tr].mean(0)
        for k in range(K):
            for v in np.unique(b[te]):
                m = tr & (b == v)
                out[te & (b == v), k] = (targets[m, k].sum() + PSEUDO * prior[k]) / (m.sum() + PSEUDO)
    return out


def streamed(values: np.ndarray, categorical: bool, folds: np.ndarray, targets: np.ndarray, seed: int) -> Cells:
    """Cells filled in shuffled batches by two accumulators, then merged."""
    order = np.random.default_rng(seed).permutation(len(values))
    a, b = Cells(targets.shape[1], categorical), Cells(targets.shape[1], categorical)
    for s in range(0, len(order), 37):
        r = order[s:s + 37]
        (a if s % 2 else b).add(values[r], folds[r], targets[r])
    a.merge(b)
    return a


@pytest.mark.parametrize("kind", ["numeric", "categorical", "multilabel"])
def test_streamed_auc_equals_the_per_image_auc(kind: str) -> None:
    g = np.random.default_rng(1)
    n, K = 900, 3
    lab = g.integers(0, K, n)
    targets = np.eye(K, dtype=np.int64)[lab]
    if kind == "multilabel":
        targets = (g.random((n, K)) < np.array([0.2, 0.5, 0.3])).astype(np.int64)
        lab = targets[:, 0]
    if kind == "categorical":
        values = np.array(["PNG", "JPEG", "TIFF", ""])[np.where(g.random(n) < 0.6, lab % 3, g.integers(0, 4, n))]
    else:  # continuous, with ties, missing values and a class in the middle (not monotone)
        values = np.where(lab == 1, 0.0, np.where(g.random(n) < 0.5, -2.0, 2.0)) + g.normal(0, 0.4, n)
        values[g.random(n) < 0.05] = np.nan
        values[:40] = 1.5
    ids = [f"img/{i:05d}.png" for i in range(n)]
    folds = folds_of(ids, seed=3)
    res = property_aucs(streamed(values, kind == "categorical", folds, targets, seed=2))
    ref = per_image_scores(values, kind == "categorical", folds, targets)
    for k in range(K):
        y = targets[:, k] > 0
        assert res[k]["auc"] == pytest.approx(roc_auc_score(y, ref[:, k]), abs=1e-12)
        auc, se = delong(ref[:, k], y)
        assert res[k]["ci95"][0] == pytest.approx(max(0.0, auc - 1.96 * se), abs=1e-12)
        assert res[k]["n_positive"] == int(y.sum())
    if kind == "numeric":
        assert res[1]["auc"] > 0.9  # the middle class is found (a lookup table, not a correlation)


def test_quantisation_and_edges() -> None:
    g = np.random.default_rng(0)
    v = np.concatenate([g.normal(0, 1, 2000) * 10.0 ** g.integers(-6, 6, 2000), [0.0, np.nan, np.inf, -np.inf]])
    q = quantise(v)
    fin = np.isfinite(v)
    assert np.isnan(q[~fin]).all() and (q == quantise(q))[fin].all()  # missing stays missing; idempotent
    assert (np.abs(q[fin] - v[fin]) <= np.abs(v[fin]) * 2.0 ** -8 * (1 + 1e-12)).all()  # 8 significant bits
    assert len(np.unique(q[fin])) < len(np.unique(v[fin]))
    # edges from counts equal the order statistics of the expanded sample
    vals = np.array([0.1, 0.2, 0.5, 0.7, 1.0])
    counts = np.array([3, 1, 4, 1, 5])
    a = np.repeat(vals, counts)
    for nb in (2, 3, 7, 10):
        want = np.unique([a[-(-i * len(a) // nb) - 1] for i in range(1, nb)])
        assert np.array_equal(vals[quantile_edges(counts, nb)], want)


def test_folds_are_seeded_and_independent_of_order() -> None:
    ids = [f"x{i}" for i in range(5000)]
    f = folds_of(ids, 0)
    assert np.array_equal(folds_of(ids[::-1], 0), f[::-1]) and not np.array_equal(folds_of(ids, 1), f)
    assert np.bincount(f, minlength=5).min() > 900  # about a fifth each


# ---- near duplicates --------------------------------------------------------------------------------------------

def brute_pairs(h: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out_i, out_j, out_d = [], [], []
    for s in range(0, len(h), 1000):
        d = np.bitwise_count(h[s:s + 1000, None] ^ h[None, :])  # uint8 distances
        ii, jj = np.nonzero(d <= radius)
        keep = s + ii < jj
        out_i.append(s + ii[keep])
        out_j.append(jj[keep])
        out_d.append(d[ii[keep], jj[keep]].astype(np.int64))
    i, j, d = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)
    o = np.lexsort((j, i))
    return i[o], j[o], d[o]


def planted_hashes(n: int, seed: int) -> np.ndarray:
    """Uniform 64-bit hashes with planted copies 0 to 7 bits away and a few repeated hashes."""
    g = np.random.default_rng(seed)
    h = g.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + g.integers(0, 2, n, dtype=np.uint64)
    for _ in range(n // 20):
        i, j, d = g.integers(n), g.integers(n), g.integers(0, 8)
        flip = np.uint64(sum(1 << int(b) for b in g.choice(64, d, replace=False)))
        h[j] = h[i] ^ flip
    h[:12] = h[500]
    return h


@pytest.fixture(scope="module")
def hashes() -> np.ndarray:
    return planted_hashes(10_000, 0)


@pytest.fixture(scope="module")
def within6(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return brute_pairs(hashes, 6)


@pytest.mark.parametrize("radius", [0, 2, 4, 6])
def test_multi_index_search_equals_brute_force(hashes: np.ndarray, within6, radius: int) -> None:
    keep = within6[2] <= radius
    want = tuple(a[keep] for a in within6)
    assert len(want[0]) > 100
    for blocks in (None, radius + 1, radius + 3):
        got = near_pairs(hashes, radius, blocks)
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)), blocks


def test_duplicate_counts_and_examples_equal_brute_force(hashes: np.ndarray) -> None:
    """Exact clusters, near pairs confirmed on thumbnails, labels: counts and the first examples as the all-pairs
    search of earlier versions gives them."""
    g = np.random.default_rng(5)
    n = 3000
    ph = hashes[:n].copy()
    exact = g.integers(0, 2**62, (n, 2), dtype=np.uint64)
    thumbs = g.integers(0, 256, (n, 1024), dtype=np.uint8)
    for _ in range(150):  # exact copies (same pixels: same digest, hash and thumbnail)
        i, j = g.integers(n, size=2)
        exact[j], ph[j], thumbs[j] = exact[i], ph[i], thumbs[i]
    near = brute_pairs(ph, 4)
    for i, j in zip(*near[:2], strict=True):  # most near hashes are re-encodings: thumbnails a little off
        if g.random() < 0.7:
            thumbs[j] = np.clip(thumbs[i].astype(int) + g.integers(-2, 3, 1024), 0, 255)
    keys = g.integers(0, 3, n)
    found = heldout_pairs(ph, exact, thumbs, np.arange(n), keys, 4)
    # brute force over all pairs: equal digests, or hashes within 4 bits
    ei, ej = [], []
    for s in range(0, n, 500):
        a, b = np.nonzero((exact[s:s + 500, None] == exact[None]).all(-1))
        ei.append(s + a[s + a < b])
        ej.append(b[s + a < b])
    i, j, _ = brute_pairs(ph, 4)
    pairs = np.unique(np.stack([np.concatenate([i, *ei]), np.concatenate([j, *ej])], 1), axis=0)
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.bitwise_count(ph[i] ^ ph[j]).astype(np.int64)
    same_digest = (exact[i] == exact[j]).all(1)
    is_pair = same_digest | ((d <= 4) & same_pictures(thumbs[i], thumbs[j]))
    i, j, d, same_digest = i[is_pair], j[is_pair], d[is_pair], same_digest[is_pair]
    cross = keys[i] != keys[j]
    assert (found.n_cross, found.n_same) == (int(cross.sum()), int((~cross).sum()))
    assert found.n_cross > 50 and same_digest.sum() > 50 and (~same_digest).sum() > 50
    want = [(int(a), int(b), 0 if s else int(x), "exact" if s else "near")
            for a, b, x, s in zip(i[cross], j[cross], d[cross], same_digest[cross], strict=True)][:MAX_PAIRS]
    assert list(found.examples) == want


def test_digest_membership() -> None:
    a = np.array([[1, 2], [3, 4], [1, 2], [9, 9]], dtype=np.uint64)
    b = np.array([[3, 4], [1, 3]], dtype=np.uint64)
    assert in_other(a, b).tolist() == [False, True, False, False]


# ---- the fingerprint ----------------------------------------------------------------------------------------------

def test_fingerprint_is_an_order_independent_multiset_hash() -> None:
    lines = [f"img/{i}.png\t{i:064x}\t{i % 3}".encode() for i in range(200)]
    whole = fingerprint_of(lines)
    assert fingerprint_of(lines[::-1]) == whole
    parts = [Fingerprint() for _ in range(3)]
    for k, t in enumerate(lines):
        parts[k % 3].add(t)
    total = Fingerprint()
    for p in parts:  # partial sums added elsewhere (workers) and merged
        lane_sum, count = p.state()
        total.add_sum(lane_sum, count)
    assert total.hexdigest() == whole
    summed = Fingerprint()
    summed.add_sum(np.sum([lanes(t) for t in lines], axis=0, dtype=np.uint64), len(lines))
    assert summed.hexdigest() == whole
    changed = [*lines[:-1], lines[-1][:-1] + b"0"]  # the last line has label 1
    assert fingerprint_of(changed) != whole  # a label changed
    assert fingerprint_of([*lines, lines[0]]) != whole  # a line twice is another set
    assert fingerprint_of(lines[1:]) != whole
