"""Timings (audit.timing, timings.json, the report's table, ``--profile``): model passes counted exactly, against a
counter of the test's own on the model; the run's record kept out of results.json."""

from __future__ import annotations

import contextlib
import io
import json
import pickle

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import audit
from audit.cli import _print_profile, app
from audit.demo.model import DemoCNN
from audit.engine.compute import Compute
from audit.engine.local import LocalEngine
from audit.engine.ray_engine import RayEngine
from audit.explainers import build_explainer
from audit.explainers.layers import LayerMemo
from audit.tasks.multiclass import MulticlassTask
from audit.timing import Meter, Span, Timings, format_rows


class Counter:
    """The test's own reference: forward calls and rows of a module, by a pre-hook (a copy of the module shares it)."""

    def __init__(self, module: nn.Module) -> None:
        self.calls = self.rows = 0

        def count(_m: nn.Module, args: tuple) -> None:  # a function: deepcopy shares it (an object it would copy)
            self.calls += 1
            self.rows += args[0].shape[0]

        module.register_forward_pre_hook(count)


@pytest.fixture()
def engine() -> tuple[LocalEngine, Counter]:
    torch.manual_seed(0)
    model = DemoCNN(num_classes=3, width=4).eval()
    counter = Counter(model)
    return LocalEngine(model, MulticlassTask(("a", "b", "c")), Compute(torch.device("cpu")), batch_size=4,
                       explain_batch_size=4), counter


def test_engine_passes_are_counted_exactly(engine):
    eng, ref = engine
    x = torch.randn(10, 1, 32, 32)
    eng.outputs(x)  # 3 batches: 4 + 4 + 2
    eng.map_over_perturbations(x, lambda b: b * 0.5)
    ig = build_explainer("integrated_gradients", {"n_steps": 8, "internal_batch_size": 4})
    eng.explain(ig, x[:6], np.zeros(6, dtype=np.int64))  # captum runs its path points in internal batches
    t = eng.meter.timings()
    assert (t.total.passes, t.total.images) == (ref.calls, ref.rows)
    assert ref.calls > 3 + 3 + 2 and ref.rows >= 10 + 10 + 6 * 8  # batches, perturbed batches, IG path points
    (ex,) = t.explainers
    assert ex.name == "integrated_gradients" and ex.images >= 6 * 8  # every path point of every image is a row
    assert 0 < t.total.model_s <= t.total.wall_s


def test_gradcam_finds_its_default_layer_once_per_model(engine):
    """The default target layer takes a one-image forward to find: once per model, not per batch."""
    eng, ref = engine
    gc = build_explainer("gradcam")
    x = torch.randn(8, 1, 32, 32)
    eng.explain(gc, x, np.zeros(8, dtype=np.int64))  # two batches of 4
    assert (ref.calls, ref.rows) == (1 + 2, 1 + 8)
    eng.explain(gc, x[:4], np.zeros(4, dtype=np.int64))
    assert (ref.calls, ref.rows) == (4, 13)
    # an explainer travels to a Ray worker with an empty memo (a weak dictionary does not pickle)
    assert isinstance(pickle.loads(pickle.dumps(gc))._layers, LayerMemo)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_is_counted_per_engine_call_and_says_so():
    model = torch.jit.script(DemoCNN(num_classes=3, width=4).eval())  # a traced module takes hooks; a scripted one not
    eng = LocalEngine(model, MulticlassTask(("a", "b", "c")), Compute(torch.device("cpu")), batch_size=4)
    eng.outputs(torch.randn(10, 1, 32, 32))
    t = eng.meter.timings()
    assert (t.total.passes, t.total.images) == (3, 10)
    assert t.counted != "hooks" and "TorchScript" in t.counted


def test_spans_nest_in_stages_and_time_what_runs_inside():
    m = Meter()
    m.stage("a")
    with m.span("r1"):
        m._add(2, 8, 0.0)
    m.stage("b")
    m._add(1, 1, 0.0)
    t = m.close()
    assert [s.name for s in t.stages] == ["a", "b"] and [(r.name, r.stage) for r in t.rules] == [("r1", "a")]
    assert (t.stages[0].passes, t.stages[1].passes, t.total.passes) == (2, 1, 3)
    assert t.total.wall_s >= t.stages[0].wall_s + t.stages[1].wall_s
    labels = [r["label"] for r in t.rows()]
    assert labels == ["whole audit", "a", "rule r1", "b"]
    assert format_rows(t.rows()).splitlines()[2].startswith("a ")


def test_other_time_is_wall_minus_model_time():
    s = Span("stage", "x", wall_s=2.0, cpu_s=1.0, passes=1, images=1, model_s=1.5)
    assert s.other_s == 0.5 and s.as_json()["other_s"] == 0.5
    t = Timings((s,), (), (), s, "hooks")
    assert t.rows()[1]["other"] == "25 %"


def test_audit_counts_every_pass_and_writes_timings_beside_results(tmp_path, make_setup, tiny_model):
    """The whole audit (demo pack: region sweep, randomised copies, faithfulness curves, views) through the API with
    an in-memory model: the audit's copy carries the test's counter, so every forward anywhere is seen."""
    model = DemoCNN(num_classes=3, width=4)
    model.load_state_dict(tiny_model.state_dict())
    ref = Counter(model.eval())
    setup = make_setup(tmp_path / "tiny", model, pack="demo")
    res = audit.run(setup.config, model=model, overrides=["cache.enabled=false", 'report.formats=["json","html"]'],
                    out=tmp_path / "r")
    t = res.result.timings
    # all but the loader's one-image forward that reads the output's structure (before the audit holds the model)
    assert (t.total.passes, t.total.images) == (ref.calls - 1, ref.rows - 1) and t.counted == "hooks"
    assert sum(s.passes for s in t.stages) == t.total.passes  # every pass falls in one stage
    rules = {r.name: r for r in t.rules}
    assert rules["region-sweep"].passes > 0 and rules["accuracy-floor"].passes == 0
    assert {"scoring", "explain", "rules", "views"} <= {s.name for s in t.stages}
    doc = json.loads((tmp_path / "r" / "timings.json").read_text())
    results_text = (tmp_path / "r" / "results.json").read_text()
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert doc["document_id"] == manifest["document_id"] and "timings.json" in manifest["files"]
    assert doc["total"]["passes"] == ref.calls - 1 and doc["stages"][0]["name"] == "inputs"
    assert "wall_s" not in results_text and "timings" not in json.loads(results_text)["provenance"]
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Where the time went" in html and "rule region-sweep" in html


def test_profile_prints_the_table(tiny, tmp_path):
    res = CliRunner().invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "r"), "--profile",
                                   "--set", "cache.enabled=false"])
    assert res.exit_code in (0, 1), res.output
    lines = res.output.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("stage") and "passes" in ln)
    assert lines[head + 1].startswith("whole audit") and any(ln.startswith("scoring") for ln in lines[head:])
    assert lines[-1].startswith("writing the report")


def test_a_watched_model_pickles_without_its_meter():
    """A model shipped to an engine's workers (pickled) carries no-op hooks, not the meter; a local copy counts."""
    import copy

    model = DemoCNN(num_classes=3, width=4).eval()
    m = Meter()
    m.watch(model)
    shipped = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        shipped(torch.zeros(2, 1, 32, 32))
        copy.deepcopy(model)(torch.zeros(3, 1, 32, 32))
    t = m.close()
    assert (t.total.passes, t.total.images) == (1, 3)
    with torch.no_grad():
        model(torch.zeros(1, 1, 32, 32))  # closed: the hooks are gone from the model
    assert m.timings().total.passes == 1


def test_a_stage_draws_a_bar_naming_the_rule_it_runs(capsys):
    m = Meter(progress=True)
    m.stage("rules", total=2, unit="rule")
    with m.span("region-sweep"):
        m._add(3, 12, 0.0)
    with m.span("faithfulness"):
        pass
    m.stage("views", bar=False)  # a stage that draws its own bar (or none)
    m.close()
    err = capsys.readouterr().err
    assert "rules: region-sweep" in err and "rules: faithfulness" in err and "1/2" in err  # one rule done
    assert "views" not in err


def test_a_forward_stopped_early_is_counted_and_timed():
    """Concept activations stop the forward once the layers they need have run (an exception from a layer hook):
    that partial pass still counts, with its time."""
    from audit.explainers._common import capture

    model = DemoCNN(num_classes=3, width=4).eval()
    m = Meter()
    m.watch(model)
    layer = dict(model.named_modules())["features.0"]
    with torch.no_grad():
        logits, acts = capture(model, {"features.0": layer}, torch.zeros(5, 1, 32, 32), stop_early=True)
    assert logits is None and acts["features.0"].shape[0] == 5
    t = m.close()
    assert (t.total.passes, t.total.images) == (1, 5) and t.total.model_s > 0


def test_an_engine_whose_workers_run_the_model_says_its_passes_are_not_counted():
    assert LocalEngine.counts_passes and not RayEngine.counts_passes  # the runner reads it (runner._stages)
    m = Meter()
    m.uncounted("the ray engine's workers run the model: passes and model seconds are not counted")
    t = m.close()
    assert t.counted.startswith("the ray engine's workers") and "passes counted" in _profile_lines(t)


def _profile_lines(t: Timings) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        _print_profile(t, 0.5)
    return err.getvalue()
