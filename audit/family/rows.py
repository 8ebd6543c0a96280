"""Which held-out rows each member is judged on.

A member that names ``out_of_fold`` rows was trained on the other rows of its cross-validation data; rows in no
member's fold are rows no member was trained on (a shared test set, or every row of a family of seeds). So a member
is judged on its fold plus the shared rows (every row when it names no fold), two members are compared on the rows
neither was trained on, and the out-of-fold predictions pool each fold's rows, predicted by the member that did not
train on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import FamilyMemberConfig, OutOfFoldColumn
from ..errors import ConfigError
from ..products import Predictions


@dataclass(frozen=True)
class Folds:
    """Prediction rows (of the released model's table) per member: its fold (None: it names none) and the rows it
    is judged on; ``shared``: the rows in no member's fold."""

    folds: dict[str, np.ndarray | None]
    shared: np.ndarray
    n: int
    notes: tuple[str, ...] = ()

    def judged(self, name: str) -> np.ndarray:
        """The rows ``name`` was not trained on: its fold and the shared rows (every row without a fold)."""
        fold = self.folds[name]
        return np.arange(self.n) if fold is None else np.union1d(fold, self.shared)

    def common(self, a: str, b: str) -> np.ndarray:
        """Rows neither member was trained on."""
        return np.intersect1d(self.judged(a), self.judged(b))

    @property
    def untrained(self) -> np.ndarray:
        """Rows no member was trained on (what the ensemble of all members is judged on)."""
        return self.shared if any(f is not None for f in self.folds.values()) else np.arange(self.n)

    @property
    def declared(self) -> list[str]:
        return [m for m, f in self.folds.items() if f is not None]


def _fold(spec: list[str] | OutOfFoldColumn, preds: Predictions, listed: set[str], name: str
          ) -> tuple[np.ndarray, str]:
    where = f"family member {name!r}: out_of_fold"
    if isinstance(spec, OutOfFoldColumn):
        if spec.column not in preds.metadata.columns:
            cols = ", ".join(map(str, preds.metadata.columns)) or "none"
            raise ConfigError(f"{where}: the manifest has no column {spec.column!r} (metadata columns: {cols})")
        values = preds.metadata[spec.column].astype(str).to_numpy()
        rows = np.flatnonzero(np.isin(values, [str(v) for v in spec.values]))
        if not len(rows):
            raise ConfigError(f"{where}: no scored sample has {spec.column} in {[str(v) for v in spec.values]}")
        return rows, ""
    scored = {str(s): i for i, s in enumerate(preds.ids.tolist())}
    unknown = [s for s in spec if s not in scored and s not in listed]
    if unknown:
        raise ConfigError(f"{where}: {len(unknown)} id(s) are not held-out samples, e.g. {unknown[0]!r}")
    rows = np.array(sorted({scored[s] for s in spec if s in scored}), dtype=np.int64)
    dropped = sum(1 for s in set(spec) if s not in scored)
    return rows, f"{name}: {dropped} out-of-fold sample(s) were not scored (skipped images)" if dropped else ""


def resolve_folds(members: Sequence[tuple[str, FamilyMemberConfig | None]], preds: Predictions,
                  listed: Sequence[str]) -> Folds:
    """The folds of ``members`` ((name, entry); None: the released model without an entry) on the released
    model's prediction table; ConfigError naming the member for unknown ids or columns, or for overlapping folds
    (pooled out-of-fold predictions need each row predicted once)."""
    known = set(map(str, listed))
    folds: dict[str, np.ndarray | None] = {}
    notes = []
    for name, entry in members:
        if entry is None or entry.out_of_fold is None:
            folds[name] = None
            continue
        rows, note = _fold(entry.out_of_fold, preds, known, name)
        folds[name] = rows
        if note:
            notes.append(note)
    owner = np.full(preds.n, -1)
    names = list(folds)
    for i, name in enumerate(names):
        rows = folds[name]
        if rows is None:
            continue
        taken = rows[owner[rows] >= 0]
        if len(taken):
            other = names[int(owner[taken[0]])]
            raise ConfigError(f"family members {other!r} and {name!r}: out-of-fold rows overlap ({len(taken)} "
                              f"sample(s), e.g. {preds.ids[taken[0]]!r}); each row can be out of fold for one member")
        owner[rows] = i
    return Folds(folds=folds, shared=np.flatnonzero(owner < 0), n=preds.n, notes=tuple(notes))
