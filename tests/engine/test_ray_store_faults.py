"""The Ray scoring run's files checked on every read, at the store level (no cluster: the driver's own functions,
``RunStore.open_run``, ``Fold`` and ``read_in_order``, over files written as the scoring actors write them).

A run killed part way leaves batch files, input sums, the fold checkpoint and run.json; one of them damaged
(truncated, a flipped byte, random bytes, zero length, another format version, the unsealed layout) is discarded
and noted, the batches it held are scored again, and the gathered result is bit for bit the clean run's. A file
that fails its check while the run reads it is discarded the same way: ``RayScoring.score`` then continues the run
once, and names the storage (exit 2) when it happens again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fault_injection import FAULTS, damage

from audit.engine.base import PredictOutput, ScoringOptions
from audit.engine.ray_gather import Fold, read_in_order
from audit.engine.ray_scoring import RayScoring
from audit.engine.ray_store import FOLD_FILE, RESCORED, RUN_FILE, RunStore, batch_name, sum_name
from audit.engine.sealed import Damaged
from audit.errors import ConfigError
from audit.products import Predictions

N, BS = 22, 4  # 6 batches, the last one short
BATCHES = -(-N // BS)
PLAN = {"rows": N, "batch_size": BS, "batches": BATCHES, "features": True, "skip_bad": True}
KILLED_AFTER = 4  # the killed run wrote batches 0-3 and folded them; batch 4's sum was written, not its batch file


def write(store: RunStore, b: int) -> None:
    """Batch ``b`` as a scoring actor writes it (deterministic contents; row 9 an unreadable image)."""
    rng = np.random.default_rng(b)
    rows = np.array([r for r in range(b * BS, min(N, b * BS + BS)) if r != 9], dtype=np.int64)
    errors = [(9, "img/009.png: not a readable image")] if b * BS <= 9 < b * BS + BS else []
    store.write_batch(b, rows, rng.dirichlet(np.ones(3), len(rows)), rng.normal(size=(len(rows), 5)).astype(np.float32),
                      errors, rng.normal(size=(1, 4, 4)))


def finish(store: RunStore) -> tuple[set[int], dict[str, np.ndarray]]:
    """What ``RayScoring.score`` does with a run's folder: open it, score the missing batches, fold the input sums
    in order, read the batches back in order. (The batches it scored, the gathered arrays.)"""
    done = store.open_run(PLAN)
    todo = set(range(BATCHES)) - done
    fold = Fold(store, BATCHES, every_s=0)
    fold.advance(done)
    for b in sorted(todo):
        write(store, b)
        done.add(b)
        fold.advance(done)
    fold.advance(done, final=True)
    parts = list(read_in_order(store, BATCHES))
    return todo, {"rows": np.concatenate([p.rows for p in parts]), "probs": np.concatenate([p.probs for p in parts]),
                  "features": np.concatenate([p.features for p in parts]),
                  "errors": np.array([e for p in parts for e in p.errors], dtype=object), "sum": fold.total}


def killed_run(root: Path) -> RunStore:
    """The folder a driver killed after batch ``KILLED_AFTER - 1`` leaves behind."""
    store = RunStore(str(root / "scoring-key"))
    store.open_run(PLAN)
    fold = Fold(store, BATCHES, every_s=0)
    for b in range(KILLED_AFTER):
        write(store, b)
        fold.advance(set(range(b + 1)))
    write(store, KILLED_AFTER)  # batch 4: its actor wrote the sum, then the run was killed
    store.delete(batch_name(KILLED_AFTER))
    return store


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, np.ndarray]:
    todo, out = finish(RunStore(str(tmp_path_factory.mktemp("clean") / "scoring-key")))
    assert todo == set(range(BATCHES))
    return out


def assert_same(got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    assert got.keys() == ref.keys()
    for k, v in ref.items():
        assert np.array_equal(got[k], v), k


def test_a_killed_run_resumes_with_only_the_missing_batches(tmp_path, clean):
    killed_run(tmp_path)
    store = RunStore(str(tmp_path / "scoring-key"))
    todo, got = finish(store)
    assert todo == {KILLED_AFTER, KILLED_AFTER + 1}
    assert_same(got, clean)
    assert store.notes == ()


#: the damaged file -> the batches that must be scored again besides the two the killed run never finished
DAMAGED = {
    batch_name(1): {1},  # a folded batch: scored again, its new sum ignored (the fold holds it)
    FOLD_FILE: {0, 1, 2, 3},  # the fold checkpoint: the sums it held are gone, so those batches are scored again
    RUN_FILE: {0, 1, 2, 3},  # the run's plan: the whole folder is emptied
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", [*DAMAGED, sum_name(KILLED_AFTER)])
def test_a_damaged_file_of_a_killed_run_is_discarded_noted_and_scored_again(tmp_path, clean, name, fault):
    killed = killed_run(tmp_path)
    if name == sum_name(KILLED_AFTER):  # an unfolded batch whose batch file was written, its sum file damaged
        write(killed, KILLED_AFTER)
    assert (tmp_path / "scoring-key" / name).is_file()
    damage(tmp_path / "scoring-key" / name, fault)
    store = RunStore(str(tmp_path / "scoring-key"))
    todo, got = finish(store)
    assert todo == DAMAGED.get(name, set()) | {KILLED_AFTER, KILLED_AFTER + 1}
    assert_same(got, clean)
    first = store.notes[0]
    assert first.store == "Ray scoring run" and first.entry == f"scoring-key/{name}"
    assert FAULTS[fault][1] in first.problem and "scored again" in first.action
    if name == FOLD_FILE:  # then each batch whose sum went with it is named too
        assert [n.entry for n in store.notes[1:]] == [f"scoring-key/{batch_name(b)}" for b in range(4)]
    else:
        assert len(store.notes) == 1


def test_a_batch_whose_rows_disagree_with_the_plan_is_scored_again(tmp_path, clean):
    killed = killed_run(tmp_path)
    rows = np.arange(8, 12, dtype=np.int64)  # batch 3's file holding batch 2's rows
    killed.write_batch(3, rows, np.full((4, 3), 1 / 3), np.zeros((4, 5), np.float32), [], np.zeros((1, 4, 4)))
    store = RunStore(killed.uri)
    todo, got = finish(store)
    assert 3 in todo
    assert_same(got, clean)
    assert "inconsistent: rows outside batch 3" in store.notes[0].problem


@pytest.mark.parametrize("fault", ["truncated", "flipped payload byte", "zero length"])
def test_a_batch_damaged_while_the_run_reads_it_is_discarded_and_scored_again(tmp_path, clean, fault):
    store = RunStore(str(tmp_path / "scoring-key"))
    finish(store)
    damage(tmp_path / "scoring-key" / batch_name(2), fault)
    with pytest.raises(Damaged) as err:
        list(read_in_order(store, BATCHES))
    assert err.value.entry == batch_name(2)
    store.discard_damaged(err.value)  # what RayScoring.score does before it continues the run once
    todo, got = finish(store)
    assert todo == {2}
    assert_same(got, clean)
    assert [n.entry for n in store.notes] == [f"scoring-key/{batch_name(2)}"]


class _Scoring(RayScoring):
    """The Ray engine's scoring wrapper over a run that finds ``fails`` damaged files as it reads them."""

    def __init__(self, storage: str, fails: int) -> None:
        self.storage, self.spec, self.fails, self.runs = storage, object(), fails, 0

    def _score_run(self, store, heldout, preprocess, options):
        self.runs += 1
        if self.fails:
            self.fails -= 1
            raise Damaged("SHA-256 of the payload differs from its trailer", batch_name(2))
        preds = Predictions(ids=np.array([], dtype=object), labels=np.zeros(0, int), probs=np.zeros((0, 3)),
                            metadata=pd.DataFrame())
        return PredictOutput(preds, (), np.zeros(0, int), None)


def test_the_engine_continues_once_after_a_file_fails_its_check_and_names_the_storage_the_second_time(tmp_path):
    once = _Scoring(str(tmp_path), fails=1)
    out = once.score(None, None, ScoringOptions(key="k"))  # type: ignore[arg-type]
    assert once.runs == 2
    assert [(n.entry, n.action) for n in out.cache_notes] == [(f"scoring-k/{batch_name(2)}", RESCORED)]
    twice = _Scoring(str(tmp_path), fails=2)
    with pytest.raises(ConfigError, match=r"compute.storage: files of the Ray scoring run under .* fail their checks"):
        twice.score(None, None, ScoringOptions(key="k"))  # type: ignore[arg-type]
