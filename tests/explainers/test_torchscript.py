"""TorchScript models take no hooks: `audit list --model` reads their layers from the graph (the same names, types
and shapes as the eager twin), and every explainer that needs hooks says so instead of a wrong reason or, worse,
a silently different map (guided backprop without its ReLU hooks is the plain gradient)."""

from __future__ import annotations

import warnings

import pytest
import torch
from typer.testing import CliRunner

from audit.cli import app
from audit.demo.model import DemoCNN
from audit.errors import ExplainerError
from audit.explainers import build_explainer
from audit.explainers.layers import HOOKLESS, candidate_layers

NEEDS_HOOKS = ("gradcam", "gradcam_pp", "guided_gradcam", "cam", "guided_backprop", "deconvnet", "lrp",
               "layer_activations", "feature_inversion", "attention_rollout")
HOOK_FREE = ("saliency", "integrated_gradients", "occlusion")


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """(eager, traced, scripted) twins; the TorchScript ones saved and loaded, as the audit reads them."""
    torch.manual_seed(0)
    eager = DemoCNN(num_classes=3, width=4).eval()
    root = tmp_path_factory.mktemp("ts")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, but models ship as TorchScript
        torch.jit.save(torch.jit.trace(eager, torch.zeros(1, 1, 32, 32)), str(root / "traced.ts"))
        torch.jit.save(torch.jit.script(eager), str(root / "scripted.ts"))
    return eager, torch.jit.load(str(root / "traced.ts")), torch.jit.load(str(root / "scripted.ts")), root


@pytest.mark.parametrize("kind", ["traced", "scripted"])
def test_layers_of_a_torchscript_module_come_from_its_graph(nets, kind):
    eager, traced, scripted, _ = nets
    x = torch.zeros(1, 1, 48, 40)  # not the traced size: the shapes are those of this input
    assert candidate_layers(traced if kind == "traced" else scripted, x) == candidate_layers(eager, x)


def test_audit_list_of_a_torchscript_config(nets, tiny):
    text = tiny.config.read_text()
    start, end = text.index("[model]"), text.index("[data]")
    tiny.config.write_text(text[:start] + f'[model]\ntorchscript = "{nets[3] / "traced.ts"}"\n' + text[end:])
    res = CliRunner().invoke(app, ["list", "--model", str(tiny.config)])
    assert res.exit_code == 0, res.output
    rows = [ln.split() for ln in res.output.splitlines()[1:] if ln.startswith("features")]
    assert ["features.12", "Conv2d", "8×4×4", "nchw"] in rows and len(rows) == 16
    assert f"no default target layer: {HOOKLESS}" in res.output


@pytest.mark.parametrize("name", NEEDS_HOOKS)
def test_explainers_that_need_hooks_name_the_true_reason(nets, name):
    _, traced, _, _ = nets
    ex = build_explainer(name)
    with pytest.raises(ExplainerError, match="TorchScript modules do not support hooks; give the eager model"):
        ex.check(traced)
        ex.explain(traced, torch.rand(2, 1, 32, 32), torch.tensor([0, 2]))


@pytest.mark.parametrize("name", HOOK_FREE)
def test_hook_free_explainers_give_the_eager_twins_maps(nets, name):
    eager, traced, _, _ = nets
    x, t = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 2])
    ex = build_explainer(name)
    ex.check(traced)
    torch.testing.assert_close(ex.explain(traced, x, t), ex.explain(eager, x, t), rtol=1e-4, atol=1e-6)
