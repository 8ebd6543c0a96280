"""The model-free pass: one read of every listed file gives the data checks and the data fingerprint. The
fingerprint follows its documented definition (recomputed here from hashlib alone), is the same for any listing
order, decoding workers or choice of checks, and ``data.checks`` chooses which checks run; the rules say what was
not checked, and the product still matches the results.json schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from audit.datachecks import run_pass
from audit.datachecks.fingerprint import LANES, TAG
from audit.loading.decode import DecodeOptions
from audit.loading.records import SampleRecord
from audit.products import Picks, Predictions
from audit.provenance import data_fingerprint
from audit.rules.data_confounder import DataConfounder
from audit.rules.data_duplicates import DataDuplicates
from audit.rules.evidence import Evidence

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "audit" / "schema" / "results.schema.json").read_text())
GROUPS = ("a", "b")


@pytest.fixture(scope="module")
def listing(tmp_path_factory) -> tuple[list[SampleRecord], Path]:
    """14 small PNGs in two classes (one picture filed under both) and one file that is no image."""
    root = tmp_path_factory.mktemp("pass")
    g = np.random.default_rng(0)
    pixels = [g.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(13)]
    pixels.append(pixels[0])  # s13 (class b) is s00 (class a)
    recs = []
    for i, u8 in enumerate(pixels):
        p = root / f"{i:02d}.png"
        Image.fromarray(u8).save(p)
        recs.append(SampleRecord(id=f"s{i:02d}", path=p, label=i % 2))
    bad = root / "bad.png"
    bad.write_bytes(b"not an image")
    recs.append(SampleRecord(id="bad", path=bad, label=0))
    return recs, root


def reference_fingerprint(recs: list[SampleRecord], root: Path) -> str:
    """The definition of fingerprint.py, from hashlib: LtHash (16-bit lanes of SHAKE-256, added modulo 2^16) over
    the lines 'relative path TAB file SHA-256 TAB label', then SHA-256 of the tag, line count and lanes."""
    total = np.zeros(LANES, dtype=np.int64)
    for r in recs:
        line = f"{r.path.relative_to(root).as_posix()}\t{hashlib.sha256(r.path.read_bytes()).hexdigest()}\t{r.label}"
        total += np.frombuffer(hashlib.shake_256(line.encode()).digest(2 * LANES), dtype="<u2")
    lanes = (total % 65536).astype("<u2")
    return hashlib.sha256(TAG + len(recs).to_bytes(8, "little") + lanes.tobytes()).hexdigest()


def test_the_pass_fingerprints_every_listed_file_in_any_order(listing) -> None:
    recs, root = listing
    want = reference_fingerprint(recs, root)
    meta = pd.DataFrame(index=range(len(recs)))
    dc, fp = run_pass(recs, GROUPS, meta, 3, DecodeOptions(), root=str(root.resolve()))
    assert fp == want == data_fingerprint(recs, root)  # the unreadable file is fingerprinted by its bytes
    assert dc is not None and dc.unreadable == ("bad",) and dc.n_images == 14
    _, fp_none = run_pass(recs, GROUPS, meta, 3, DecodeOptions(), checks=(), root=str(root.resolve()))
    _, fp_rev = run_pass(recs[::-1], GROUPS, meta, 3, DecodeOptions(), root=str(root.resolve()), batch_size=4,
                         num_workers=1)
    assert fp_none == fp_rev == want
    relabelled = [*recs[:-2], SampleRecord(id="s13", path=recs[13].path, label=0), recs[-1]]
    assert data_fingerprint(relabelled, root) != want


def _evidence(dc) -> Evidence:
    n = dc.n_images
    preds = Predictions(ids=np.array([f"x{i}" for i in range(n)], dtype=object), labels=np.zeros(n, dtype=np.int64),
                        probs=np.full((n, 2), 0.5), metadata=pd.DataFrame(index=range(n)))
    return Evidence(classes=GROUPS, predictions=preds, metrics=None, picks=Picks({}, {}), probe=None,  # type: ignore[arg-type]
                    data=dc)


def _valid(dc) -> None:
    jsonschema.validate(json.loads(json.dumps(dc.as_dict())), SCHEMA["properties"]["data_checks"])


def test_data_checks_key_chooses_what_runs(listing) -> None:
    recs, root = listing
    meta = pd.DataFrame({"site": ["A", "B"] * 7 + ["A"]})
    full, fp = run_pass(recs, GROUPS, meta, 3, DecodeOptions(), root=str(root.resolve()))
    assert full.n_cross_class_duplicates == 1 and {full.cross_class_duplicates[0].a,
                                                   full.cross_class_duplicates[0].b} == {"s00", "s13"}
    assert {p.source for p in full.properties} == {"image", "file", "metadata"}
    dup, fp_dup = run_pass(recs, GROUPS, meta, 3, DecodeOptions(), checks=("duplicates",), root=str(root.resolve()))
    assert fp_dup == fp and dup.properties == () and dup.n_cross_class_duplicates == 1
    assert "not run (data.checks): properties, metadata, train_overlap" in dup.notes
    f = DataConfounder(DataConfounder.Params(id="dc", kind="data_confounder")).check(_evidence(dup))[0]
    assert f.status == "not_applicable" and "data.checks" in f.message
    _valid(dup)
    meta_only, _ = run_pass(recs, GROUPS, meta, 3, DecodeOptions(), checks=("metadata",), root=str(root.resolve()))
    assert [p.name for p in meta_only.properties] == ["site"] and meta_only.as_dict()["duplicates"] is None
    f = DataDuplicates(DataDuplicates.Params(id="d", kind="data_duplicates")).check(_evidence(meta_only))[0]
    assert f.status == "not_applicable" and "data.checks" in f.message
    _valid(meta_only)
    _valid(full)
    none, _ = run_pass(recs, GROUPS, meta, 3, DecodeOptions(), checks=(), root=str(root.resolve()))
    assert none is None
    assert DataDuplicates(DataDuplicates.Params(id="d", kind="data_duplicates")).check(
        Evidence(classes=GROUPS, predictions=_evidence(full).predictions, metrics=None, picks=Picks({}, {}),  # type: ignore[arg-type]
                 probe=None))[0].status == "not_applicable"
