"""Where an audit's time goes: wall and CPU seconds, model passes, images and model seconds per stage, per rule and
per explainer (timings.json, the report's provenance section, ``audit run --profile``), and a progress bar per long
stage.

Counting. Every model pass an engine runs is wrapped in ``Meter.model_call``: its wall time is model time, and a
forward pre-hook on the module that runs counts each forward call (one pass) and its batch rows (images) exactly,
whatever an explainer does inside (integrated gradients' path points, occlusion's windows). A TorchScript module
takes no hooks: its calls are then counted one pass per engine call (``Timings.counted`` says so). Forwards outside
the engine (the engine's own start-up checks, views, concepts) are counted and timed by ``Meter.watch``'s hooks, set
on the model as soon as it is loaded; the loader's one forward of a single blank image, which reads the structure of
the model's output before the audit holds the model, is the one pass not counted.

Timings depend on the machine and its load, so they are kept out of results.json (whose promise is: same inputs and
seed, same file) and written to timings.json, which manifest.json lists.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm.auto import tqdm

TIMINGS_FILE = "timings.json"


@dataclass(frozen=True)
class Span:
    """One timed piece of an audit. ``model_s``: seconds inside model passes (forward, and the backward passes an
    explainer or batch function takes inside its engine call); ``other_s``: the rest of the wall time."""

    kind: str  # "stage" | "rule" | "explainer" | "total"
    name: str
    wall_s: float
    cpu_s: float  # process CPU time (every thread: torch's intra-op pool included)
    passes: int  # forward calls of the model (or a variant of it)
    images: int  # rows through those calls
    model_s: float
    stage: str = ""  # the stage a rule ran in

    @property
    def other_s(self) -> float:
        return max(0.0, self.wall_s - self.model_s)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("wall_s", "cpu_s", "model_s"):
            out[k] = round(out[k], 4)
        out["other_s"] = round(self.other_s, 4)
        return out


@dataclass(frozen=True)
class Timings:
    """The timings of one audit: stages in order, then rules and explainers, and the whole run."""

    stages: tuple[Span, ...]
    rules: tuple[Span, ...]
    explainers: tuple[Span, ...]
    total: Span
    counted: str  # how passes were counted: "hooks" (exact) or a note on what was counted per engine call
    ended: float = 0.0  # time.perf_counter() when the audit ended (the report is written after)

    def rows(self) -> list[dict[str, str]]:
        """The table the report and ``--profile`` show: the run, each stage that did something, each rule (under its
        stage) and each explainer, with seconds to 0.1 s and the share of wall time spent outside model passes."""
        def row(label: str, s: Span) -> dict[str, str]:
            other = f"{100 * s.other_s / s.wall_s:.0f} %" if s.wall_s >= 0.05 else "—"
            return {"label": label, "kind": s.kind, "wall": f"{s.wall_s:.1f}", "cpu": f"{s.cpu_s:.1f}",
                    "model": f"{s.model_s:.1f}", "other": other, "passes": f"{s.passes:,}", "images": f"{s.images:,}"}

        out = [row("whole audit", self.total)]
        for st in self.stages:
            rules = [row(f"rule {r.name}", r) for r in self.rules if r.stage == st.name]
            if rules or st.passes or st.wall_s >= 0.05:  # a stage with nothing to do (not configured) is left out
                out += [row(st.name, st), *rules]
        out += [row(f"explainer {e.name}", e) for e in self.explainers]
        return out

    def as_json(self) -> dict[str, Any]:
        return {"counted": self.counted, "total": self.total.as_json(),
                "stages": [s.as_json() for s in self.stages], "rules": [s.as_json() for s in self.rules],
                "explainers": [s.as_json() for s in self.explainers]}


@dataclass
class _Open:
    kind: str
    name: str
    wall0: float
    cpu0: float
    passes: int = 0
    images: int = 0
    model_s: float = 0.0
    bar: Any = None
    stage: str = ""

    def close(self) -> Span:
        return Span(self.kind, self.name, time.perf_counter() - self.wall0, time.process_time() - self.cpu0,
                    self.passes, self.images, self.model_s, self.stage)


@dataclass
class _Acc:
    passes: int = 0
    images: int = 0
    model_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0


@dataclass
class Meter:
    """Collects the spans of one audit (mutable; one per run, handed to the engine as ``engine.meter``).
    ``progress``: draw a tqdm bar per stage on stderr."""

    progress: bool = False
    _run: _Open = field(default_factory=lambda: _Open("total", "audit", time.perf_counter(), time.process_time()))
    _open: list[_Open] = field(default_factory=list)
    _done: list[Span] = field(default_factory=list)
    _explainers: dict[str, _Acc] = field(default_factory=dict)
    _in_call: int = 0
    _hookless: bool = False
    _handles: list[Any] = field(default_factory=list)
    _uncounted: str = ""

    # ---- spans --------------------------------------------------------------------------------------
    def stage(self, name: str, total: int | None = None, unit: str = "step", bar: bool = True) -> None:
        """End the stage running (if any) and start stage ``name``: the stages of an audit run one after another.
        With progress shown and ``bar``, the stage draws a bar (``total`` steps, one per inner span, each
        naming itself on it); a stage that draws its own bar (scoring) passes ``bar=False``."""
        self.end()
        entry = _Open("stage", name, time.perf_counter(), time.process_time())
        if self.progress and bar:
            entry.bar = tqdm(total=total, desc=name, unit=unit, leave=False, dynamic_ncols=True)
        self._open.append(entry)

    def end(self) -> None:
        """End every span still open (the last stage)."""
        while self._open:
            self._close(self._open[-1])

    def _close(self, entry: _Open) -> None:
        self._open.remove(entry)
        self._done.append(entry.close())
        if entry.bar is not None:
            entry.bar.close()

    @contextmanager
    def span(self, name: str, kind: str = "rule") -> Iterator[None]:
        """Time what runs inside as one ``kind`` span within the running stage (one step of its bar)."""
        parent = self._open[-1] if self._open else None
        bar = parent.bar if parent is not None else None
        if bar is not None:
            bar.set_description_str(f"{parent.name}: {name}")
        entry = _Open(kind, name, time.perf_counter(), time.process_time(), stage=parent.name if parent else "")
        self._open.append(entry)
        try:
            yield
        finally:
            self._close(entry)
            if bar is not None:
                bar.update(1)

    def _add(self, passes: int, images: int, model_s: float) -> None:
        for o in (self._run, *self._open):
            o.passes += passes
            o.images += images
            o.model_s += model_s
        bar = self._open[0].bar if self._open else None
        if bar is not None and passes:
            bar.set_postfix_str(f"{self._open[0].passes} passes, {self._open[0].images} images", refresh=False)
            bar.update(0)

    # ---- model passes -------------------------------------------------------------------------------
    @contextmanager
    def model_call(self, module: Any, rows: int, explainer: str | None = None) -> Iterator[None]:
        """One engine call of ``module`` on ``rows`` inputs: its wall time is model time; its forward calls are
        counted by a hook on ``module`` (a TorchScript module, which takes none: one pass of ``rows`` images)."""
        seen = [0, 0]

        def pre(_m: Any, args: tuple) -> None:
            seen[0] += 1
            seen[1] += _rows(args)

        handle = _hook(module, pre)
        if handle is None:
            self._hookless = True
        self._in_call += 1
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self._in_call -= 1
            dt = time.perf_counter() - wall0
            if handle is not None:
                handle.remove()
            passes, images = (seen[0], seen[1]) if handle is not None else (1, rows)
            self._add(passes, images, dt)
            if explainer is not None:
                acc = self._explainers.setdefault(explainer, _Acc())
                acc.passes += passes
                acc.images += images
                acc.model_s += dt
                acc.wall_s += dt
                acc.cpu_s += time.process_time() - cpu0

    def watch(self, module: Any) -> None:
        """Count and time the forward calls of ``module`` made outside the engine (stages that call the model
        directly) until ``close``; calls inside an engine call are the engine's to count."""
        started: list[float] = []

        def pre(_m: Any, args: tuple) -> None:
            started.append(time.perf_counter())

        def post(_m: Any, args: tuple, _out: Any) -> None:
            t0 = started.pop() if started else time.perf_counter()
            if self._in_call == 0:
                self._add(1, _rows(args), time.perf_counter() - t0)

        pre_h = _hook(module, _Local(pre))
        if pre_h is None:
            self._hookless = True
        else:
            # always_call: a forward stopped by an exception (one that ends after the layers it needs) counts too
            self._handles += [pre_h, module.register_forward_hook(_Local(post), always_call=True)]

    def uncounted(self, reason: str) -> None:
        """Say that model passes run where the hooks cannot see them (an engine's remote workers): ``reason``
        replaces the counting note, and the stages' model seconds and passes then cover this process only."""
        self._uncounted = reason

    def close(self) -> Timings:
        """End the last stage, remove the hooks ``watch`` set; the timings of the run."""
        self.end()
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return self.timings()

    # ---- the result ---------------------------------------------------------------------------------
    def timings(self) -> Timings:
        """The spans closed so far and the run up to now."""
        stages = tuple(s for s in self._done if s.kind == "stage")
        rules = tuple(s for s in self._done if s.kind == "rule")
        explainers = tuple(Span("explainer", n, a.wall_s, a.cpu_s, a.passes, a.images, a.model_s)
                           for n, a in self._explainers.items())
        counted = self._uncounted or ("engine calls: one pass per call, and passes outside the engine not counted (a "
                                      "TorchScript module takes no hooks to count its forward calls)"
                                      if self._hookless else "hooks")
        return Timings(stages, rules, explainers, self._run.close(), counted, time.perf_counter())


def _rows(args: tuple) -> int:
    """Batch rows of a forward call's first tensor argument (0 when it has none)."""
    shape = getattr(args[0], "shape", None) if args else None
    return int(shape[0]) if shape else 0


class _Local:
    """A hook that counts in this process: a copy of the model made here (``copy.deepcopy``: a randomised copy)
    shares it, one pickled to run elsewhere (an engine's workers) carries a no-op instead of the meter."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> None:
        self.fn(*args)

    def __deepcopy__(self, memo: dict) -> _Local:
        return self

    def __reduce__(self) -> tuple:
        return (_Local, (_noop,))


def _noop(*_args: Any) -> None:
    """What a pickled ``_Local`` hook runs elsewhere."""


def _hook(module: Any, fn: Any) -> Any:
    """A forward pre-hook on ``module``, or None when it takes none (TorchScript)."""
    try:
        return module.register_forward_pre_hook(fn)
    except RuntimeError:
        return None


def format_rows(rows: list[dict[str, str]]) -> str:
    """``Timings.rows`` as a fixed-width text table (``audit run --profile``)."""
    head = {"label": "stage", "wall": "wall s", "cpu": "CPU s", "model": "model s", "other": "other",
            "passes": "passes", "images": "images"}
    width = max(len(r["label"]) + (2 if r.get("kind") == "rule" else 0) for r in [head, *rows])
    lines = []
    for r in [head, *rows]:
        label = ("  " if r.get("kind") == "rule" else "") + r["label"]
        lines.append(f"{label:<{width}}  {r['wall']:>8}  {r['cpu']:>8}  {r['model']:>8}  {r['other']:>6}  "
                     f"{r['passes']:>8}  {r['images']:>9}")
    return "\n".join(lines)
