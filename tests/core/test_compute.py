"""Inference settings: channels-last and autocast change scoring only as documented; explainers stay float32."""

import json

import numpy as np
import torch
from torch import nn
from typer.testing import CliRunner

from audit.cli import app
from audit.demo.model import DemoCNN
from audit.engine.compute import resolve_compute
from audit.maps.store import load_maps

runner = CliRunner()


def _run(tiny, out, *sets):
    args = ["run", str(tiny.config), "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    res = runner.invoke(app, args)
    assert res.exit_code in (0, 1), res.output
    return json.loads((out / "results.json").read_text()), res.output


def test_channels_last_gives_the_same_probabilities(tiny, tmp_path):
    ref, _ = _run(tiny, tmp_path / "a", "cache.enabled=false", 'compute.channels_last="off"')
    cl, _ = _run(tiny, tmp_path / "b", "cache.enabled=false")  # "auto": on for this conv net
    assert cl["provenance"]["compute"]["channels_last"] is True
    assert ref["provenance"]["compute"] == {"device": "cpu", "autocast": "off", "channels_last": False}
    np.testing.assert_allclose(cl["predictions"]["confidence"], ref["predictions"]["confidence"], atol=1e-5)
    assert cl["predictions"]["predicted"] == ref["predictions"]["predicted"]


def test_autocast_changes_scoring_only_and_is_not_served_from_the_fp32_cache(tiny, tmp_path):
    ref, _ = _run(tiny, tmp_path / "a")
    bf, out = _run(tiny, tmp_path / "b", 'compute.autocast="bf16"')
    assert "reused from the cache" not in out  # a different compute setting is a different cache entry
    assert bf["provenance"]["compute"]["autocast"] == "bfloat16"
    diff = np.abs(np.array(bf["predictions"]["confidence"]) - np.array(ref["predictions"]["confidence"]))
    assert 0 < diff.max() < 0.05  # bf16 rounding: visible, small
    # explainers never run under autocast: maps of the same (sample, class) are the float32 maps
    a, b = load_maps(tmp_path / "a" / "maps.npz")["gradcam"], load_maps(tmp_path / "b" / "maps.npz")["gradcam"]
    ia, ib = a.index(), b.index()
    shared = set(ia) & set(ib)
    assert shared
    for k in shared:
        np.testing.assert_array_equal(a.maps[ia[k]], b.maps[ib[k]])


def test_fp16_autocast_on_cpu_is_refused(tiny, tmp_path):
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "x"), "--set",
                              'compute.autocast="fp16"'])
    assert res.exit_code == 2 and "compute.autocast" in res.output


class ViewNet(nn.Module):
    """Flattens conv features with .view, which fails on a channels-last tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.conv(x))
        return self.fc(f.view(f.shape[0], -1))


def test_auto_channels_last_falls_back_for_a_model_it_would_break():
    cpu = torch.device("cpu")
    net = ViewNet().eval()
    x = torch.randn(3, 1, 8, 8)
    before = net(x)
    comp = resolve_compute(cpu, "off", "auto", net, (1, 8, 8))
    assert comp.channels_last is False
    assert net.conv.weight.is_contiguous()
    torch.testing.assert_close(net(x), before)  # the audited model is unchanged and still runs
    assert resolve_compute(cpu, "off", "auto", DemoCNN(num_classes=3, width=4).eval(), (1, 32, 32)).channels_last
