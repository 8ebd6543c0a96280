"""The directions of confounder_region's cells and the looks that measure them, many cells per model pass.

A cell is one (edit, region, group); a donor edit measures it in two directions (removal: the group's images get
the region from other groups' images, test, or from the group's own, control; insertion: other groups' images get
it from the group's, test, or from a third group's, control). Each direction samples in a seeded order and is
looked at after 20, 40, … samples (``sequential``): it stops once its interval clears the limit, or when its
samples are spent. The cell needs its insertion only while its removal is not clearly below the limit (the
smaller excess is judged, so one direction clearly below decides the cell), and ``run`` measures every pending
direction of every cell in one batched pass per look.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ...engine.probe import ModelProbe
from ...tasks.base import Task
from .._shortcuts import rnd
from .edits import Edit, Masks, Request, score_requests
from .regions import Region
from .sequential import Look, look, looks
from .swap import DonorPool, ImageSource

# the degradation parameters of a level edit for (rows of the source, donor pool indices)
ParamsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Direction:
    """One direction of one cell: its samples in sampling order, their test and control donors, what was measured."""

    region: Region
    edit: Edit
    group: int
    direction: str  # "removal" | "insertion"
    rows: np.ndarray  # rows of the image source, in sampling order
    test: np.ndarray  # donor of each row's test edit (pool index)
    ctrl: np.ndarray  # donor of each row's control edit
    n_unmatched: int = 0
    waits_for: Direction | None = None  # the removal this insertion follows
    params: ParamsFn | None = None  # level edits
    state: Look | None = None
    skipped: bool = False
    single_look: bool = False  # every sample at once (``sequential = false``)
    eff_t: list[np.ndarray] = field(default_factory=list)
    eff_c: list[np.ndarray] = field(default_factory=list)
    flip_t: list[np.ndarray] = field(default_factory=list)
    flip_c: list[np.ndarray] = field(default_factory=list)

    @property
    def schedule(self) -> tuple[int, ...]:
        return (len(self.rows),) if self.single_look else looks(len(self.rows))

    @property
    def n(self) -> int:
        return 0 if self.state is None else self.state.n

    @property
    def done(self) -> bool:
        return self.skipped or len(self.rows) == 0 or (self.state is not None and self.state.done)

    def ready(self) -> bool:
        """Pending now: not done, and (an insertion) its removal is done and not clearly below the limit."""
        w = self.waits_for
        if w is not None and w.done and w.state is not None and w.state.decided == "below":
            self.skipped = True
        return not self.done and (w is None or w.done)

    def requests(self) -> list[Request]:
        k = 0 if self.state is None else self.schedule.index(self.state.n) + 1
        sl = slice(self.n, self.schedule[k])
        rows = self.rows[sl]
        if self.params is not None:
            return [Request(self.edit, self.region, rows, params=self.params(rows, self.test[sl])),
                    Request(self.edit, self.region, rows, params=self.params(rows, self.ctrl[sl]))]
        return [Request(self.edit, self.region, rows, donors=self.test[sl]),
                Request(self.edit, self.region, rows, donors=self.ctrl[sl])]

    def update(self, task: Task, orig: np.ndarray, test: np.ndarray, ctrl: np.ndarray, limit: float,
               criterion: str) -> None:
        rows = self.rows[self.n:self.n + len(test)]
        tgt = np.full(len(rows), self.group)
        s0 = task.target_scores(orig[rows], tgt)
        d0 = task.decide(orig[rows], tgt)
        sign = 1.0 if self.direction == "removal" else -1.0  # removal: a drop of g's score; insertion: a rise
        self.eff_t.append(sign * (s0 - task.target_scores(test, tgt)))
        self.eff_c.append(sign * (s0 - task.target_scores(ctrl, tgt)))
        dt, dc = task.decide(test, tgt), task.decide(ctrl, tgt)
        rm = self.direction == "removal"
        self.flip_t.append(((d0 & ~dt) if rm else (~d0 & dt)).astype(float))
        self.flip_c.append(((d0 & ~dc) if rm else (~d0 & dc)).astype(float))
        a = self.per_sample(criterion)
        k = self.schedule.index(len(a))
        self.state = look(a, limit, self.schedule, k, unit=1.0 if criterion == "flip_rate" else 0.0)

    def per_sample(self, criterion: str) -> np.ndarray:
        if criterion == "prob_drop":
            return np.concatenate(self.eff_t) - np.concatenate(self.eff_c)
        return np.concatenate(self.flip_t) - np.concatenate(self.flip_c)

    def summary(self, criterion: str) -> dict | None:
        """The measured figures (None before any look), in the form messages and details read."""
        if self.state is None:
            return None
        s = self.state
        return {"direction": self.direction, "rows": self.rows[:s.n], "n": s.n, "n_available": len(self.rows),
                "n_unmatched": self.n_unmatched, "est": s.est, "lo": s.lo, "hi": s.hi, "decided": s.decided,
                "inconclusive": s.inconclusive, "effect": np.concatenate(self.eff_t),
                "flip": np.concatenate(self.flip_t), "per_sample": self.per_sample(criterion),
                "control": float(np.concatenate(self.eff_c).mean()),
                "control_flip": float(np.concatenate(self.flip_c).mean())}


def run(directions: Sequence[Direction], probe: ModelProbe, src: ImageSource, pool: DonorPool | None, masks: Masks,
        orig: np.ndarray, limit: float, criterion: str, generator: torch.Generator | None = None) -> int:
    """Measure every direction look by look, all pending directions of a look in one batched pass; returns the
    number of edited images scored (model passes)."""
    passes = 0
    while True:
        pending = [d for d in directions if d.ready()]
        if not pending:
            return passes
        reqs = [r for d in pending for r in d.requests()]
        scores = score_requests(probe, src, pool, masks, reqs, generator)
        passes += sum(len(r.rows) for r in reqs)
        for i, d in enumerate(pending):
            d.update(probe.task, orig, scores[2 * i], scores[2 * i + 1], limit, criterion)


def judged_direction(dirs: list[dict]) -> tuple[dict, float]:
    """The direction a donor-edit cell is judged on, and the floor its failing needs above 0. A cue the model
    uses moves its score both ways, while an edit that is only out of distribution for one kind of image shows
    one way: the weaker direction (smaller excess) is judged, and the floor is the lowest interval end of all
    measured directions (one direction alone where only one could be measured)."""
    return min(dirs, key=lambda d: d["est"]), min(d["lo"] for d in dirs)


def brief(d: dict | None) -> dict | None:
    """A direction's figures for results.json (None: not measured)."""
    if d is None:
        return None
    extra = {"n_unmatched": d["n_unmatched"]} if d["n_unmatched"] else {}  # left out: no close enough donor
    return {"n": d["n"], "n_available": d["n_available"], **extra, "excess": rnd(d["est"]),
            "ci95": [rnd(d["lo"]), rnd(d["hi"])], "decided": d["decided"], "inconclusive": d["inconclusive"],
            "effect": rnd(float(d["effect"].mean())), "control": rnd(d["control"]),
            "flip_rate": rnd(float(d["flip"].mean())), "control_flip_rate": rnd(d["control_flip"])}
