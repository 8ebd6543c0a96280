"""The model's own preprocessing, exactly: a Hugging Face folder is scored as ``model(**processor(images))`` scores
it (ViT, DeiT, ConvNeXt, Swin and BEiT processors, built from config objects and saved with save_pretrained),
timm's eval data config as ``create_transform(**resolve_data_config(...))`` applies it; steps the audit cannot
reproduce are refused, never approximated."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import binary_dilation
from typer.testing import CliRunner

from audit.cli import app
from audit.config import load_config
from audit.errors import ConfigError, ModelError
from audit.inputs import with_model_defaults
from audit.loading.decode import decode_image
from audit.loading.geometry import Geometry, box_to_mask, plan_fit
from audit.loading.model import load_model
from audit.loading.preprocess import make_preprocess

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")

# (width, height): odd sizes, both orientations, and 33x70, whose centre-crop offset 27.5 separates torchvision's
# rounding (28) from Hugging Face's (27)
SIZES = [(53, 37), (48, 64), (50, 50), (90, 41), (33, 70), (41, 41)]
# inputs agree to float32 rounding of values of magnitude <= ~4 (a few ulps: 4 * 2**-23 * 4 < 2e-6); the
# probabilities of a model fed them, far closer than 1e-4
MAX_DX, MAX_DP = 2e-6, 1e-4


def _tiny(kind: str) -> tuple[object, object]:
    """(model, image processor) of one kind, small enough to build in milliseconds."""
    t = transformers
    vit = {"image_size": 32, "patch_size": 8, "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
           "intermediate_size": 64, "num_labels": 2}
    if kind == "vit":
        return t.ViTForImageClassification(t.ViTConfig(**vit)), t.ViTImageProcessor(size={"height": 32, "width": 32})
    if kind == "deit":
        return (t.DeiTForImageClassification(t.DeiTConfig(**vit)),
                t.DeiTImageProcessor(size={"height": 36, "width": 36}, crop_size={"height": 32, "width": 32}))
    if kind == "convnext":  # the issue's processor: shortest edge 40, crop_pct 0.875, bicubic
        return (t.ConvNextForImageClassification(t.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1],
                                                                  num_labels=2)),
                t.ConvNextImageProcessor(size={"shortest_edge": 40}, crop_pct=0.875))
    if kind == "swin":
        return (t.SwinForImageClassification(t.SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1, 1],
                                                          num_heads=[1, 2], window_size=4, num_labels=2)),
                t.ViTImageProcessor(size={"height": 32, "width": 32}, resample=3, image_mean=[0.485, 0.456, 0.406],
                                    image_std=[0.229, 0.224, 0.225]))
    assert kind == "beit"
    return (t.BeitForImageClassification(t.BeitConfig(**vit, use_mean_pooling=True)),
            t.BeitImageProcessor(size={"height": 40, "width": 40}, do_center_crop=True,
                                 crop_size={"height": 32, "width": 32}))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("hfpre")
    rng = np.random.default_rng(0)
    (root / "img").mkdir()
    paths = []
    for i, (w, h) in enumerate(SIZES):
        a = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        a[h // 4:h // 2, w // 3:w // 2] = 255  # some structure for the crop to keep or cut
        paths.append(root / f"img/{i}.png")
        Image.fromarray(a).save(paths[-1])
    (root / "manifest.csv").write_text("path,label\n" + "".join(f"img/{i}.png,{'ab'[i % 2]}\n"
                                                                 for i in range(len(paths))))
    return root, paths


def _folder(root: Path, kind: str, processor: object | None = None) -> Path:
    torch.manual_seed(0)
    model, proc = _tiny(kind)
    folder = root / kind
    model.save_pretrained(str(folder))
    (processor or proc).save_pretrained(str(folder))
    return folder


def _cfg(root: Path, model: str, data: str = "") -> Path:
    path = root / "audit.toml"
    path.write_text(f'[model]\n{model}\n[data]\nmanifest = "manifest.csv"\n{data}\n')
    return path


def _audit_inputs(cfg_path: Path, paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(inputs, probabilities, notes) as the audit computes them: model defaults, preprocessing, loaded model."""
    cfg, notes = with_model_defaults(load_config(cfg_path))
    pre = make_preprocess(cfg.data)
    x = torch.stack([pre(decode_image(p, cfg.data.channels, pre.decode)) for p in paths])
    with torch.no_grad():
        probs = load_model(cfg, 2).module(x).softmax(-1)
    return x, probs, notes


@pytest.mark.parametrize("kind", ["vit", "deit", "convnext", "swin", "beit"])
def test_hugging_face_folders_are_scored_as_their_processor_scores_them(images, kind):
    root, paths = images
    folder = _folder(root, kind)
    x, probs, notes = _audit_inputs(_cfg(root, f'huggingface = "{kind}"'), paths)
    proc = transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModelForImageClassification.from_pretrained(str(folder), local_files_only=True).eval()
    pil = [Image.open(p).convert("RGB") for p in paths]
    with torch.no_grad():
        ref_x = torch.cat([proc(images=im, return_tensors="pt")["pixel_values"] for im in pil])
        ref = model(pixel_values=ref_x).logits.softmax(-1)
    assert float((x - ref_x).abs().max()) < MAX_DX
    assert float((probs - ref).abs().max()) < MAX_DP
    assert f"the model's image processor ({type(proc).__name__}:" in notes[0]


def test_the_issues_convnext_claim_is_now_true(images):
    root, _ = images
    _folder(root, "convnext")
    cfg, notes = with_model_defaults(load_config(_cfg(root, 'huggingface = "convnext"')))
    d = cfg.data
    assert (d.image_size, d.resize, d.resize_to, d.interpolation, d.resampler, d.crop_rounding) == \
        ((40, 40), "center_crop", 45, "bicubic", "torch", "floor")  # int(40 / 0.875) = 45
    assert "ConvNextImageProcessor: shortest edge to 45, centre crop 40x40, bicubic, resampled by torchvision" \
        in notes[0]


@pytest.mark.parametrize("kind", ["deit", "convnext"])
def test_the_pillow_resampler_reproduces_the_pil_backend(images, kind):
    root, paths = images
    folder = _folder(root, kind)
    cfg, _ = with_model_defaults(load_config(_cfg(root, f'huggingface = "{kind}"')))
    pre = dataclasses.replace(make_preprocess(cfg.data), resampler="pillow")
    proc = transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True, backend="pil")
    for p in paths:
        ref = torch.as_tensor(proc(images=Image.open(p).convert("RGB"), return_tensors="pt")["pixel_values"][0])
        assert float((pre(decode_image(p, 3)) - ref).abs().max()) < MAX_DX


def test_settings_that_change_the_answer_are_told_apart(images):
    """The check is not blind: the processor's resampler, crop rounding or filter changed, or the earlier plain
    bilinear resize, moves the inputs well beyond the tolerance."""
    root, paths = images
    folder = _folder(root, "convnext")
    cfg, _ = with_model_defaults(load_config(_cfg(root, 'huggingface = "convnext"')))
    proc = transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    ref = torch.cat([proc(images=Image.open(p).convert("RGB"), return_tensors="pt")["pixel_values"] for p in paths])
    base = make_preprocess(cfg.data)
    for other in (dataclasses.replace(base, resampler="pillow"), dataclasses.replace(base, interpolation="bilinear"),
                  dataclasses.replace(base, resize=dataclasses.replace(base.resize, crop_rounding="round")),
                  dataclasses.replace(base, resize="stretch", resampler="pillow", interpolation="bilinear")):
        x = torch.stack([other(decode_image(p, 3)) for p in paths])
        assert float((x - ref).abs().max()) > 100 * MAX_DX


def test_steps_that_cannot_be_reproduced_are_refused(images):
    root, _ = images
    cfg = _cfg(root, 'huggingface = "odd"')
    for proc, step in [
        (transformers.MobileViTImageProcessor(), "MobileViTImageProcessor's own preprocessing"),
        (transformers.CLIPImageProcessor(size={"shortest_edge": 40}, do_center_crop=False),
         "resize of the shortest edge to 40 without a crop"),
        (transformers.DeiTImageProcessor(size={"height": 30, "width": 30}, crop_size={"height": 32, "width": 32}),
         "centre crop 32x32 of a 30x30 image (padding)"),
    ]:
        _folder(root, "vit", proc)
        (root / "vit").rename(root / "odd")
        with pytest.raises(ModelError, match=f"preprocessor_config.json: .*{re.escape(step)}.* is not reproduced by the audit"):
            with_model_defaults(load_config(cfg))
        assert with_model_defaults(load_config(cfg, ['data.preprocessing="config"']))[1] == ()  # the way out
        for f in (root / "odd").iterdir():
            f.unlink()
        (root / "odd").rmdir()


def test_a_data_key_that_contradicts_the_processor_is_refused(images):
    root, _ = images
    _folder(root, "vit")
    with pytest.raises(ConfigError, match=r"data.mean = \[0.485, 0.456, 0.406\] differs from the model's image "
                                          r"processor .*: \[0.5, 0.5, 0.5\]"):
        with_model_defaults(load_config(_cfg(root, 'huggingface = "vit"', "mean = [0.485, 0.456, 0.406]")))
    same = _cfg(root, 'huggingface = "vit"', "mean = [0.5]\nimage_size = [32, 32]")  # agreeing keys are fine
    assert with_model_defaults(load_config(same))[0].data.resampler == "torch"


@pytest.mark.parametrize("arch", ["resnet18", "convnext_atto"])
def test_timm_data_config_on_request_equals_timms_transform(images, arch):
    root, paths = images
    cfg_path = _cfg(root, f'timm = "{arch}"\nnum_classes = 2', 'preprocessing = "model"')
    cfg, notes = with_model_defaults(load_config(cfg_path))
    pre = make_preprocess(cfg.data)
    data_cfg = timm.data.resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(arch).to_dict())
    tf = timm.data.create_transform(**data_cfg)
    for p in paths:
        assert float((pre(decode_image(p, 3)) - tf(Image.open(p).convert("RGB"))).abs().max()) < MAX_DX
    assert f"crop_pct {data_cfg['crop_pct']}" in notes[0] and cfg.data.interpolation == data_cfg["interpolation"]
    plain, plain_notes = with_model_defaults(load_config(_cfg(root, f'timm = "{arch}"')))  # "auto": as before
    assert plain.data.resize == "stretch" and "data.preprocessing = \"model\" applies it" in plain_notes[0]


def test_roi_boxes_follow_the_two_step_crop(tmp_path):
    """A box on a 70 x 33 image lands on the input pixels its own bright patch lands on after resize + crop."""
    a = np.zeros((33, 70), dtype=np.uint8)
    a[10:20, 30:44] = 255
    Image.fromarray(a).save(tmp_path / "x.png")
    for geometry in (Geometry("center_crop", resize_to=45, crop_rounding="floor"), Geometry("center_crop",
                                                                                            crop_pct=0.875)):
        fit = plan_fit(70, 33, (40, 40), geometry)
        pre = dataclasses.replace(make_preprocess(load_config(_cfg(tmp_path, 'torchvision = "resnet18"',
                                                                   "image_size = 40\nchannels = 1")).data),
                                  resize=geometry, interpolation="nearest")
        bright = pre(decode_image(tmp_path / "x.png", 1))[0].numpy() > 0.5
        mask = box_to_mask((30, 10, 44, 20), fit)  # every input pixel the box touches (outward rounding)
        near = binary_dilation(bright, np.ones((3, 3)))  # nearest keeps the pixels whose centres fall inside
        assert bright.sum() > 100 and (bright <= mask).all() and (mask <= near).all()


def test_a_full_audit_records_the_processor_it_used(images, tmp_path):
    root, _ = images
    _folder(root, "convnext")
    doc_path = tmp_path / "out" / "results.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(app, ["run", str(_cfg(root, 'huggingface = "convnext"', "")), "--out",
                                       str(tmp_path / "out"), "--set", 'report.formats=["json"]', "--set",
                                       "explainers.methods=[]", "--set", "views.embeddings=[]", "--set",
                                       "views.probe_samples=0", "--set", "cache.enabled=false"])
    assert res.exit_code in (0, 1), res.output
    prov = json.loads(doc_path.read_text())["provenance"]
    assert prov["config"]["data"]["interpolation"] == "bicubic" and prov["config"]["data"]["resize_to"] == 45
    assert any("ConvNextImageProcessor: shortest edge to 45" in n for n in prov["data"]["notes"])
