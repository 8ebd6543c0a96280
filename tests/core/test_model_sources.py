"""timm and Hugging Face models, built offline from configs, get a full audit (scores, picks, Grad-CAM plus a gradient
and a perturbation explainer, rules, HTML/JSON); their preprocessing fills the data section; a missing optional
package is exit 2 naming the extra."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from audit.cli import app

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")
runner = CliRunner()
METHODS = '["gradcam", "saliency", "occlusion", "attention_rollout"]'


def _config(setup, model_section: str, data_extra: str = "", channels: int = 3) -> None:
    text = setup.config.read_text()
    start = text.index("[model]")
    end = text.index("[data]")
    text = text[:start] + "[model]\n" + model_section + "\n\n" + text[end:]
    text = text.replace("channels = 1", f"channels = {channels}").replace("image_size = [32, 32]\n", data_extra)
    text = text.replace('methods = ["gradcam"]', f"methods = {METHODS}")
    setup.config.write_text(text)


def _audit(setup, out, *extra: str):
    res = runner.invoke(app, ["run", str(setup.config), "--out", str(out), "--set", 'report.formats=["html","json"]',
                              *extra], catch_exceptions=False)
    assert res.exit_code in (0, 1), res.output
    return json.loads((out / "results.json").read_text()), (out / "report.html").read_text()


@pytest.mark.parametrize(("arch", "kw", "vit"), [
    ("resnet18", {}, False),
    ("convnext_atto", {}, False),
    ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2}, True),
])
def test_timm_models_get_a_full_audit(tiny, tmp_path, arch, kw, vit):
    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False, num_classes=3, **kw)
    kwargs = "{ " + ", ".join(f"{k} = {v}" for k, v in kw.items()) + " }" if kw else "{}"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tiny.root / "timm.safetensors"))
    _config(tiny, f'timm = "{arch}"\nmodel_kwargs = {kwargs}\nweights = "timm.safetensors"\nnum_classes = 3',
            "image_size = [32, 32]\n")
    doc, html = _audit(tiny, tmp_path / "out")
    status = {e["name"]: e["status"] for e in doc["explainers"]}
    assert status["gradcam"] == status["saliency"] == status["occlusion"] == "ok", doc["explainers"]
    assert status["attention_rollout"] == ("ok" if vit else "unavailable")
    assert doc["provenance"]["model"]["source"].startswith(f"timm {arch} + timm.safetensors")
    assert doc["metrics"]["accuracy"] is not None and doc["rules"]
    assert "Grad-CAM" in html


def test_timm_fills_the_data_section_from_its_pretrained_config(tiny, tmp_path):
    model = timm.create_model("resnet18", pretrained=False, num_classes=3)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tiny.root / "timm.safetensors"))
    _config(tiny, 'timm = "resnet18"\nweights = "timm.safetensors"\nnum_classes = 3')
    doc, html = _audit(tiny, tmp_path / "out", "--set", 'explainers.methods=["gradcam"]', "--set", "selection.k=1",
                       "--set", "selection.per_class=0")
    data = doc["provenance"]["config"]["data"]
    assert data["image_size"] == [224, 224] and data["mean"] == [0.485, 0.456, 0.406]
    assert "taken from timm's pretrained config of resnet18" in doc["provenance"]["data"]["notes"][0]
    assert "taken from timm&#39;s pretrained config" in html or "taken from timm's pretrained config" in html


@pytest.fixture()
def hf_folder(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, hidden_size=32,
                                 num_attention_heads=2, intermediate_size=64, num_labels=3)
    folder = tmp_path / "hf-vit"
    transformers.ViTForImageClassification(cfg).save_pretrained(str(folder))
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5], "resample": 2, "rescale_factor": 1 / 255, "size": {"height": 32, "width": 32},
        "image_processor_type": "ViTImageProcessor"}))
    return folder


def test_hugging_face_folder_gets_a_full_audit(tiny, tmp_path, hf_folder):
    _config(tiny, f'huggingface = "{hf_folder}"')
    doc, _ = _audit(tiny, tmp_path / "out")
    status = {e["name"]: e["status"] for e in doc["explainers"]}
    assert set(status.values()) == {"ok"}, doc["explainers"]
    prov = doc["provenance"]
    assert prov["model"]["output"] == "'logits' of ImageClassifierOutput"
    assert prov["config"]["data"]["image_size"] == [32, 32] and prov["config"]["data"]["mean"] == [0.5] * 3
    assert "the model's image processor (ViTImageProcessor: resize to 32x32, bilinear" in prov["data"]["notes"][0]
    names = {f["path"].split("/")[-1] for f in prov["model"]["files"]}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names


def test_pickled_hugging_face_weights_need_the_opt_in(tiny, tmp_path, hf_folder):
    (hf_folder / "model.safetensors").unlink()
    torch.save({}, hf_folder / "pytorch_model.bin")
    _config(tiny, f'huggingface = "{hf_folder}"')
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "the weights are pickled (pytorch_model.bin)" in res.output


@pytest.mark.parametrize(("source", "module", "extra"), [
    ('timm = "resnet18"', "timm", "timm"), ('huggingface = "hf"', "transformers", "hf")])
def test_a_missing_optional_package_names_the_extra(tiny, tmp_path, monkeypatch, source, module, extra):
    (tiny.root / "hf").mkdir()
    (tiny.root / "hf" / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    _config(tiny, source, "image_size = [32, 32]\n")
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert f'pip install "model-audit[{extra}]"' in res.output


def test_audit_list_prints_the_layers_of_a_vit(tiny):
    _config(tiny, 'timm = "vit_tiny_patch16_224"\nmodel_kwargs = { img_size = 32, patch_size = 8, depth = 2 }\n'
            "num_classes = 3", "image_size = [32, 32]\n")
    res = runner.invoke(app, ["list", "--model", str(tiny.config)])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if "default target layer" in ln)
    assert line.startswith("blocks.1.norm1") and "17×192" in line and "tokens" in line
