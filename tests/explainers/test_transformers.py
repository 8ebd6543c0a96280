"""Vision transformers (timm, Hugging Face, torchvision) and other modern layouts: the default target layer, tokens
placed on the patch grid, Grad-CAM against pytorch-grad-cam with its reshape transform, attention rollout against
the models' own attention probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audit.explainers import build_explainer
from audit.explainers.attention_rollout import rollout
from audit.explainers.layers import block_layers, last_conv
from audit.explainers.spatial import layout_of, to_spatial

timm = pytest.importorskip("timm")
pgc = pytest.importorskip("pytorch_grad_cam")

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
T = torch.tensor([0, 2])


def timm_vit(distilled: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    name = "deit_tiny_distilled_patch16_224" if distilled else "vit_tiny_patch16_224"
    return timm.create_model(name, pretrained=False, img_size=32, patch_size=8, depth=2, num_classes=3).eval()


def timm_swin() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=32, patch_size=4,
                             window_size=4, embed_dim=24, depths=(1, 1), num_heads=(1, 1), num_classes=3).eval()


def hf_vit() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, hidden_size=32,
                                 num_attention_heads=2, intermediate_size=64, num_labels=3,
                                 attn_implementation="eager")
    return transformers.ViTForImageClassification(cfg).eval()


def logits_only(model: torch.nn.Module) -> torch.nn.Module:
    model.register_forward_hook(lambda _m, _a, out: out.logits)  # what audit's output adapter does
    return model


def minmax(m: np.ndarray) -> np.ndarray:
    return (m - m.min()) / max(float(m.max() - m.min()), 1e-12)


@pytest.mark.parametrize(("shape", "layout", "prefix", "grid"), [
    ((2, 197, 64), "tokens", 1, (14, 14)),  # ViT-B/16 at 224: class token + 14x14
    ((2, 198, 64), "tokens", 2, (14, 14)),  # DeiT distilled: class + distillation token
    ((2, 201, 64), "tokens", 5, (14, 14)),  # class + 4 registers
    ((2, 196, 64), "tokens", 0, (14, 14)),  # no class token (global pooling)
    ((2, 7, 7, 768), "nhwc", 0, (7, 7)),  # Swin stage output
    ((2, 512, 7, 7), "nchw", 0, (7, 7)),
])
def test_layouts_at_224(shape, layout, prefix, grid):
    assert layout_of(torch.zeros(shape), (224, 224)) == (layout, prefix, grid)


def test_tokens_on_a_non_square_input():
    a = torch.arange(2 * (1 + 4 * 8) * 3, dtype=torch.float32).reshape(2, 33, 3)  # 64x128 input, 16 px patches
    s = to_spatial(a, (64, 128))
    assert s.shape == (2, 3, 4, 8)
    assert torch.equal(s[:, :, 1, 2], a[:, 1 + 1 * 8 + 2, :])  # token (row 1, column 2) after the class token


def test_a_pooled_map_is_refused():
    from audit.errors import ExplainerError

    with pytest.raises(ExplainerError, match="cannot be laid out"):
        to_spatial(torch.zeros(2, 320, 1, 1), (32, 32))


@pytest.mark.parametrize(("build", "expected"), [
    (timm_vit, "blocks.1.norm1"),
    (lambda: timm_vit(True), "blocks.1.norm1"),
    (timm_swin, "layers.1.blocks.0.norm1"),
    (lambda: logits_only(hf_vit()), "vit.layers.1.layernorm_before"),
])
def test_default_layer_of_transformers_feeds_the_last_attention_block(build, expected):
    model = build()
    assert last_conv(model, X)[0] == expected
    assert block_layers(model, X)[-1] == expected


def test_default_layer_of_a_convnet_has_a_spatial_map():
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=3).eval()
    name, _ = last_conv(model, X)  # on 32 px, stage 3 is 1x1: the last map larger than that is in stage 2
    assert name.startswith("stages.2.")


def _vit_reshape(h: int, w: int, prefix: int):
    def reshape(t: torch.Tensor) -> torch.Tensor:  # pytorch-grad-cam's documented ViT transform
        return t[:, prefix:, :].reshape(t.size(0), h, w, t.size(2)).transpose(2, 3).transpose(1, 2)
    return reshape


@pytest.mark.parametrize(("build", "layer", "reshape"), [
    (timm_vit, "blocks.1.norm1", _vit_reshape(4, 4, 1)),
    (lambda: timm_vit(True), "blocks.0.norm1", _vit_reshape(4, 4, 2)),
    (timm_swin, "layers.1.blocks.0.norm1", lambda t: t.permute(0, 3, 1, 2)),
    (lambda: logits_only(hf_vit()), "vit.layers.1.layernorm_before", _vit_reshape(4, 4, 1)),
])
def test_gradcam_on_transformers_matches_pytorch_grad_cam(build, layer, reshape):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = build()
    mine = build_explainer("gradcam", {"layer": layer}).explain(model, X, T).numpy()
    with pgc.GradCAM(model=model, target_layers=[dict(model.named_modules())[layer]],
                     reshape_transform=reshape) as cam:
        ref = cam(input_tensor=X, targets=[ClassifierOutputTarget(int(t)) for t in T])
    for i in range(len(T)):
        a, b = minmax(mine[i]), minmax(ref[i])
        assert a.std() > 0 and b.std() > 0
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.999


def test_rollout_of_hugging_face_vit_matches_its_own_attentions():
    model = hf_vit()
    with torch.no_grad():
        attns = model(X, output_attentions=True).attentions  # the library's own probabilities
    roll = rollout(list(attns))[:, 0, 1:].reshape(-1, 1, 4, 4).float()
    expected = F.interpolate(roll, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    got = build_explainer("attention_rollout").explain(logits_only(model), X, T)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_rollout_of_timm_vit_matches_a_manual_attention_forward():
    model = timm_vit()
    with torch.no_grad():
        h = model.patch_embed(X)
        h = model._pos_embed(h)
        h = model.norm_pre(h)
        attns = []
        for blk in model.blocks:
            y = blk.norm1(h)
            B, N, C = y.shape
            qkv = blk.attn.qkv(y).reshape(B, N, 3, blk.attn.num_heads, C // blk.attn.num_heads).permute(2, 0, 3, 1, 4)
            q, k, _ = qkv.unbind(0)
            attns.append(torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1))
            h = blk(h)
    roll = rollout(attns)[:, 0, 1:].reshape(-1, 1, 4, 4).float()
    expected = F.interpolate(roll, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    got = build_explainer("attention_rollout").explain(model, X, T)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    assert all(m.fused_attn for m in model.modules() if hasattr(m, "fused_attn"))  # restored after the rollout


def test_rollout_refuses_windowed_attention():
    from audit.errors import ExplainerError

    with pytest.raises(ExplainerError, match="within windows"):
        build_explainer("attention_rollout").explain(timm_swin(), X, T)
