"""Models read as they are: weight dtypes, outputs that are already probabilities, layers that never run, named
layers that do not exist, and the default Grad-CAM layer of a vision transformer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from audit.cli import app
from audit.explainers.layers import last_conv

runner = CliRunner()

PROBS_FACTORY = '''
import torch
from torch import nn
from audit.demo.model import DemoCNN


class Softmaxed(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.net = DemoCNN(num_classes=num_classes, width=4)

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


def build(num_classes=3):
    return Softmaxed(num_classes)
'''


def _run(cfg, out, *extra):
    return runner.invoke(app, ["run", str(cfg), "--out", str(out), *extra], catch_exceptions=False)


def test_half_precision_weights_are_converted_with_a_note(tiny, tiny_model, tmp_path):
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tiny_model.state_dict().items()},
              str(tiny.weights))
    res = _run(tiny.config, tmp_path / "o", "--set", 'report.formats=["html","json"]')
    assert res.exit_code in (0, 1), res.output
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    notes = doc["provenance"]["model"]["notes"]
    assert len(notes) == 1 and "converted from float16 to the model's float32" in notes[0]
    assert "converted from float16" in (tmp_path / "o" / "report.html").read_text()


def test_integer_weights_into_a_float_model_are_refused(tiny, tiny_model, tmp_path):
    sd = {k: v.contiguous() for k, v in tiny_model.state_dict().items()}
    sd["fc.weight"] = (sd["fc.weight"] * 100).to(torch.int8)
    save_file(sd, str(tiny.weights))
    res = _run(tiny.config, tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert "fc.weight (int8 into float32)" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


@pytest.fixture()
def probs_setup(tiny, tiny_model):
    (tiny.root / "softmaxed.py").write_text(PROBS_FACTORY)
    save_file({f"net.{k}": v.contiguous() for k, v in tiny_model.state_dict().items()}, str(tiny.weights))
    text = tiny.config.read_text().replace('factory = "audit.demo.model:build"', 'factory = "softmaxed:build"')
    tiny.config.write_text(text.replace("factory_kwargs = { width = 4 }\n", ""))
    return tiny


def test_probability_outputs_are_not_softmaxed_twice(probs_setup, tiny_model, tmp_path):
    res = _run(probs_setup.config, tmp_path / "refused")
    assert res.exit_code == 2, res.output
    assert 'model.output_kind = "probabilities"' in res.output
    res = _run(probs_setup.config, tmp_path / "o", "--set", 'model.output_kind="probabilities"',
               "--set", 'report.formats=["json"]')
    assert res.exit_code in (0, 1), res.output
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    from PIL import Image

    files = [probs_setup.root / f"img/{i:03d}.png" for i in range(45)]  # the tiny set, in manifest order
    imgs = np.stack([np.asarray(Image.open(f), dtype=np.float32) / 255.0 for f in files])
    with torch.no_grad():
        own = torch.softmax(tiny_model(torch.from_numpy(imgs).unsqueeze(1)), 1)
    np.testing.assert_allclose(doc["predictions"]["confidence"], own.max(1).values.numpy(), atol=1e-5)


def test_logits_claimed_as_probabilities_are_refused(tiny, tmp_path):
    res = _run(tiny.config, tmp_path / "o", "--set", 'model.output_kind="probabilities"')
    assert res.exit_code == 2 and "are not probabilities" in res.output, res.output


def test_auxiliary_heads_that_never_run_are_not_the_gradcam_layer(tmp_path):
    from torchvision.models import googlenet

    model = googlenet(weights=None, num_classes=3, aux_logits=True, init_weights=False).eval()
    name, _ = last_conv(model, torch.zeros(1, 3, 64, 64))
    assert name.startswith("inception5b.")  # registration order would give 'aux2.conv.conv', which never runs


def test_audit_of_a_googlenet_explains_instead_of_crashing(tiny, tmp_path):
    text = tiny.config.read_text().replace(
        'factory = "audit.demo.model:build"\nweights = "weights.safetensors"\nnum_classes = 3\n'
        'factory_kwargs = { width = 4 }',
        'torchvision = "googlenet"\nnum_classes = 3\narchitecture_kwargs = { aux_logits = true, init_weights = false }')
    tiny.config.write_text(text.replace("channels = 1", "channels = 3"))
    res = _run(tiny.config, tmp_path / "o", "--set", 'explainers.methods=["gradcam","layer_activations"]',
               "--set", 'report.formats=["json"]')
    assert res.exit_code in (0, 1), res.output
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [e["status"] for e in doc["explainers"]] == ["ok", "ok"]


def test_a_named_layer_that_does_not_exist_is_exit_2(tiny, tmp_path):
    res = _run(tiny.config, tmp_path / "o", "--set", 'explainers.options.gradcam.layer="features.99"')
    assert res.exit_code == 2, res.output
    assert "explainers.options.gradcam.layer: layer 'features.99' not found" in res.output
    assert "did you mean" in res.output and not (tmp_path / "o").exists()


def test_vit_default_layer_is_not_the_patch_embedding():
    from torchvision.models import VisionTransformer

    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                            num_classes=3).eval()
    name, _ = last_conv(vit, torch.zeros(1, 3, 32, 32))
    assert name == "encoder.layers.encoder_layer_1.ln_1"  # not 'conv_proj', the only Conv2d (at the input)
