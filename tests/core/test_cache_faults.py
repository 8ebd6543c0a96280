"""Caches checked on every read: a damaged entry of the prediction cache, its scoring checkpoint or the attribution
store (truncated, a flipped byte, random bytes, zero length, another format version, the unsealed layout) is
discarded, recomputed and noted; the audit's results.json is the clean run's except for that note, the exit code is
the clean run's, and every explainer keeps its maps. A damaged maps.npz of a report is a one-line DataError."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch
from fault_injection import FAULTS, damage, flip
from typer.testing import CliRunner

from audit.cli import app
from audit.engine import cache
from audit.engine.attribution_store import AttributionStore
from audit.engine.base import PredictOutput, ScoringProgress
from audit.engine.sealed import CacheLog, Damaged, seal, unseal
from audit.errors import DataError
from audit.maps.store import StoredMaps, load_maps, save_maps
from audit.products import Predictions, SkippedSample

runner = CliRunner()
SCHEMA = json.loads(files("audit").joinpath("schema/results.schema.json").read_text())
ARGS = ["--set", "explainers.batch_size=2", "--set", 'explainers.methods=["gradcam", "saliency"]']


# ---- the entries themselves -----------------------------------------------------------------------------


def test_a_sealed_entry_reads_back_and_names_what_it_is():
    data = seal(b"payload", "kind", "key")
    assert unseal(data, "kind", "key") == b"payload"
    with pytest.raises(Damaged, match="filed as kind 'other'"):
        unseal(data, "kind", "other")  # an entry copied under another key is not that key's entry
    for fn, words in FAULTS.values():
        with pytest.raises(Damaged, match=words):
            unseal(fn(seal(bytes(range(256)) * 8, "k", "x")), "k", "x")


def _output(n: int = 6) -> PredictOutput:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), n)
    preds = Predictions(ids=np.array([f"s{i}" for i in range(n)], dtype=object), labels=np.arange(n) % 3,
                        probs=probs, metadata=pd.DataFrame({"site": ["A", "B"] * (n // 2)}),
                        features=rng.normal(size=(n, 4)).astype(np.float32))
    return PredictOutput(preds, (SkippedSample("x.png", "unreadable"),), np.arange(n),
                         torch.from_numpy(rng.normal(size=(1, 4, 4))))


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_prediction_entry_is_discarded_and_noted(tmp_path, fault):
    cache.save(tmp_path, "k1", _output())
    assert cache.load(tmp_path, "k1") is not None
    entry = tmp_path / "predictions-k1.npz"
    damage(entry, fault)
    log = CacheLog()
    assert cache.load(tmp_path, "k1", log) is None
    assert not entry.exists()  # discarded: the next save writes a whole entry
    [note] = log.notes
    assert note.store == "prediction cache" and note.entry == "predictions-k1.npz"
    assert FAULTS[fault][1] in note.problem and "scored again" in note.action


def test_an_entry_whose_arrays_disagree_is_discarded(tmp_path):
    out = _output()
    short = PredictOutput(out.predictions, out.skipped, out.kept_rows[:4], out.input_sum)  # 4 rows for 6 samples
    cache.save(tmp_path, "k1", short)
    log = CacheLog()
    assert cache.load(tmp_path, "k1", log) is None
    assert "inconsistent: kept_rows has 4 rows, the entry 6 samples" in log.notes[0].problem


def test_an_entry_filed_under_another_key_is_not_used(tmp_path):
    cache.save(tmp_path, "k1", _output())
    (tmp_path / "predictions-k1.npz").rename(tmp_path / "predictions-k2.npz")
    log = CacheLog()
    assert cache.load(tmp_path, "k2", log) is None
    assert "filed as predictions 'k2'" in log.notes[0].problem


@pytest.mark.parametrize("fault", ["truncated", "flipped payload byte", "other format version"])
def test_a_damaged_scoring_checkpoint_restarts_scoring_and_is_noted(tmp_path, fault):
    p = ScoringProgress(next_row=4, probs=np.full((4, 3), 1 / 3), features=None, rows=np.arange(4), skipped=(),
                        input_sum=torch.zeros(1, 4, 4))
    cache.save_progress(tmp_path, "k1", p)
    assert cache.load_progress(tmp_path, "k1").next_row == 4
    damage(tmp_path / "predictions-k1.partial.npz", fault)
    log = CacheLog()
    assert cache.load_progress(tmp_path, "k1", log) is None
    assert "from the first sample" in log.notes[0].action


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_attribution_chunk_yields_nothing_and_is_noted(tmp_path, fault):
    maps = np.random.default_rng(2).normal(size=(2, 8, 8)).astype(np.float32)
    AttributionStore(tmp_path, "key", "gradcam").put(["a", "b"], np.array([0, 1]), maps)
    fresh = AttributionStore(tmp_path, "key", "gradcam")
    got = fresh.get([("a", 0), ("b", 1)])
    assert np.array_equal(got[("b", 1)], maps[1])
    [chunk] = (tmp_path / "attributions-key").glob("chunk-*.npz")
    damage(chunk, fault)
    log = CacheLog()
    assert AttributionStore(tmp_path, "key", "gradcam", log).get([("a", 0), ("b", 1)]) == {}
    assert not chunk.exists()
    [note] = log.notes
    assert note.store == "attribution cache (gradcam)" and note.entry == f"attributions-key/{chunk.name}"
    assert FAULTS[fault][1] in note.problem
    # damaged after the index was read: the lookup checks the file again
    fresh.put(["a", "b"], np.array([0, 1]), maps)
    damage(chunk, fault)
    log2 = CacheLog()
    fresh.log = log2
    assert fresh.get([("a", 0)]) == {} and len(log2.notes) == 1


def test_a_chunk_whose_arrays_disagree_is_discarded(tmp_path):
    maps = np.zeros((3, 8, 8), np.float32)  # three maps for two ids: not what put() is given by the probe
    log = CacheLog()
    store = AttributionStore(tmp_path, "key", "gradcam", log)
    store.put(["a", "b"], np.array([0, 1]), maps)
    assert store.get([("a", 0)]) == {}
    assert not list((tmp_path / "attributions-key").glob("chunk-*"))
    assert "inconsistent: 2 ids, 2 targets, 3 maps" in log.notes[0].problem


MAPS_FAULTS: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda b: b[: len(b) // 2], "flipped byte": lambda b: flip(b, len(b) // 2),
    "random bytes": lambda b: np.random.default_rng(0).bytes(len(b)), "zero length": lambda b: b"",
}


@pytest.mark.parametrize("fault", MAPS_FAULTS)
def test_a_damaged_maps_file_is_a_one_line_data_error(tmp_path, fault):
    path = tmp_path / "maps.npz"
    m = np.random.default_rng(3).normal(size=(2, 8, 8)).astype(np.float32)
    save_maps(path, {"gradcam": StoredMaps("gradcam", ("a", "b"), np.array([0, 1]), np.array([0, 1]), m,
                                           np.array([0.5, np.nan]), False)})
    assert load_maps(path)["gradcam"].ids == ("a", "b")
    path.write_bytes(MAPS_FAULTS[fault](path.read_bytes()))
    with pytest.raises(DataError, match="not a readable model-audit maps file"):
        load_maps(path)


# ---- whole audits ----------------------------------------------------------------------------------------


def comparable(out: Path) -> dict[str, Any]:
    """results.json without run times, cache notes and the formats asked for (echoed in provenance.config)."""
    doc = json.loads((out / "results.json").read_text())
    for k in ("started", "finished", "cache_notes"):
        doc["provenance"].pop(k, None)
    doc["provenance"]["config"]["report"].pop("formats")
    return doc


def maps_of(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "maps.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def cached(make_setup, tiny_model, tmp_path_factory) -> tuple[Any, Path, int]:
    """The tiny set audited once with the cache on (the clean run); its report."""
    setup = make_setup(tmp_path_factory.mktemp("faults") / "tiny", tiny_model)
    out = setup.root.parent / "clean"
    res = runner.invoke(app, ["run", str(setup.config), "--out", str(out), *ARGS])
    assert res.exit_code in (0, 1), res.output
    assert "cache_notes" not in json.loads((out / "results.json").read_text())["provenance"]
    return setup, out, res.exit_code


def _entry(setup: Any, store: str) -> Path:
    folder = setup.root / ".audit-cache"
    found = sorted(folder.glob("predictions-*.npz") if store == "predictions"
                   else folder.glob("attributions-*/chunk-*.npz"))
    assert found, store
    return found[len(found) // 2]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("store", ["predictions", "attributions"])
def test_an_audit_over_a_damaged_entry_gives_the_clean_results_and_notes_it(cached, tmp_path, store, fault):
    setup, clean, code = cached
    entry = _entry(setup, store)
    damage(entry, fault)
    out = tmp_path / "report"
    html = fault == "truncated"  # the HTML report once per store (the slow part of a cached audit)
    formats = '["html", "json"]' if html else '["json"]'
    res = runner.invoke(app, ["run", str(setup.config), "--out", str(out), *ARGS, "--set", f"report.formats={formats}"])
    assert res.exit_code == code, res.output
    assert comparable(out) == comparable(clean)
    got, ref = maps_of(out), maps_of(clean)
    assert got.keys() == ref.keys() and all(np.array_equal(got[k], ref[k]) for k in ref)
    doc = json.loads((out / "results.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert [e["status"] for e in doc["explainers"]] == ["ok", "ok"]
    [note] = doc["provenance"]["cache_notes"]
    assert note["entry"] == entry.relative_to(setup.root / ".audit-cache").as_posix()
    assert FAULTS[fault][1] in note["problem"]
    assert f"cache: {note['store']} {note['entry']}" in res.output
    if html:
        assert note["entry"] in (out / "report.html").read_text()
    # recomputed and written again, whole: the next run reads it without a note
    if store == "predictions":
        assert cache.load(entry.parent, entry.stem.removeprefix("predictions-")) is not None
    else:
        unseal(entry.read_bytes(), "attribution chunk", f"{entry.parent.name.removeprefix('attributions-')}/{entry.name}")
