"""Transformer LRP against its reference implementation (``lxt``, Achtibat et al. 2024) and against the identity
CP-LRP satisfies (relevance conserved: with no bias after the tokens, their relevances add up to the logit), on
torchvision, timm and Hugging Face ViTs and the zoo's tiny ViT with a convolutional stem."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import VisionTransformer

from audit.errors import ExplainerError
from audit.explainers import build_explainer
from audit.explainers.transformer_lrp import TransformerLRP, TransformerLRPParams

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
T = torch.tensor([0, 2])
ROOT = Path(__file__).resolve().parents[2]


def lxt_efficient(*names: str) -> list[types.ModuleType]:
    """Modules of ``lxt.efficient`` (the reference). Its package __init__ imports lxt's patches for every language
    model it supports, one of which imports a helper transformers 5 removed; the modules used here need none of
    them, so they are loaded under a bare package when the plain import fails."""
    lxt = pytest.importorskip("lxt")
    try:
        importlib.import_module("lxt.efficient")
    except ImportError:
        for sub in ("efficient", "efficient.models"):
            pkg = types.ModuleType(f"lxt.{sub}")
            pkg.__path__ = [str(Path(lxt.__file__).parent.joinpath(*sub.split(".")))]
            sys.modules[f"lxt.{sub}"] = pkg
    return [importlib.import_module(f"lxt.efficient.{n}") for n in names]


@contextmanager
def restored(*classes: type) -> Iterator[None]:
    """lxt patches classes, not instances: their ``forward`` and ``original_forward`` put back on exit."""
    saved = [(cls, {k: cls.__dict__[k] for k in ("forward", "original_forward") if k in cls.__dict__})
             for cls in classes]
    try:
        yield
    finally:
        for cls, attrs in saved:
            for k in ("forward", "original_forward"):
                if k in cls.__dict__:
                    delattr(cls, k)
            for k, v in attrs.items():
                setattr(cls, k, v)


def grad_x_input(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    out = model(x)
    out = out.logits if hasattr(out, "logits") else out
    out.gather(1, t.view(-1, 1)).sum().backward()
    return (x * x.grad).detach()


def mine(model: nn.Module, attention: str, level: str = "input") -> torch.Tensor:
    return TransformerLRP(TransformerLRPParams(attention=attention, level=level)).relevance(model, X, T)[0]


def torchvision_vit() -> VisionTransformer:
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                              num_classes=3).eval()
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision starts its head at zero
    return model


def hf_vit() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, hidden_size=16,
                                 num_attention_heads=2, intermediate_size=32, num_labels=3,
                                 attn_implementation="eager")
    model = transformers.ViTForImageClassification(cfg).eval()
    with torch.no_grad():  # Hugging Face initialises biases to zero: give them values, so they matter
        for n, p in model.named_parameters():
            if n.endswith("bias"):
                p.uniform_(-0.1, 0.1)
    return model


def logits_only(model: nn.Module) -> nn.Module:
    model.register_forward_hook(lambda _m, _a, out: out.logits)  # what audit's output adapter does
    return model


def test_cp_lrp_matches_lxt_on_a_torchvision_vit() -> None:
    """lxt's own patch map for torchvision's ViT (CP-LRP in the attention, identity rule on GELU and LayerNorm)."""
    patches, vit_torch = lxt_efficient("patches", "models.vit_torch")
    model = torchvision_vit()
    got = mine(model, "cp")
    with restored(*vit_torch.cp_LRP):
        for cls, patch in vit_torch.cp_LRP.items():
            assert patch(cls)  # lxt's own patching
        ref = grad_x_input(model, X, T)
    assert nn.LayerNorm.forward is not patches.layer_norm_forward  # put back
    assert ref.abs().sum() > 0 and not torch.equal(ref, grad_x_input(model, X, T))  # the rules change the map
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)


def test_attnlrp_matches_lxt_on_a_hugging_face_vit() -> None:
    """lxt's AttnLRP attention wrapper (uniform rule: gradient into queries and keys / 4, values / 2) around the
    eager attention of Hugging Face's ViT, with lxt's LayerNorm and activation patches."""
    (patches,) = lxt_efficient("patches")
    modeling = importlib.import_module("transformers.models.vit.modeling_vit")
    model = hf_vit()
    act = type(next(m for m in model.modules() if "GELU" in type(m).__name__))
    got = mine(logits_only(hf_vit()), "attnlrp")
    eager = modeling.eager_attention_forward
    with restored(nn.LayerNorm, act):
        assert patches.patch_method(patches.layer_norm_forward, nn.LayerNorm)
        assert patches.patch_method(patches.non_linear_forward, act, keep_original=True)
        modeling.eager_attention_forward = patches.wrap_attention_forward(eager)
        try:
            ref = grad_x_input(model, X, T)
        finally:
            modeling.eager_attention_forward = eager
    assert not torch.equal(ref, grad_x_input(model, X, T))
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)


def zoo_vit() -> nn.Module:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from zoo_models import TinyViT  # the zoo's ViT: convolutional stem, timm blocks, mean pooling
    finally:
        sys.path.remove(str(ROOT / "bench"))
    torch.manual_seed(0)
    return TinyViT(num_classes=3).eval()


def timm_vit() -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2,
                             num_classes=3).eval()


@pytest.mark.parametrize("build", [timm_vit, zoo_vit, lambda: logits_only(hf_vit()), torchvision_vit])
def test_cp_lrp_conserves_the_logit_over_the_tokens(build) -> None:
    """With every bias after the token entry zero, CP-LRP is exact: Σ token relevance = target logit."""
    model = build()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("bias") and p.dim() == 1:
                p.zero_()
    rel, logit = TransformerLRP(TransformerLRPParams(attention="cp")).relevance(model, X, T)
    assert rel.dim() == 2 and logit.abs().min() > 1e-3
    torch.testing.assert_close(rel.double().sum(1), logit.double(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("build", [timm_vit, zoo_vit, lambda: logits_only(hf_vit())])
def test_maps_on_the_input_grid(build) -> None:
    model = build()
    ex = build_explainer("transformer_lrp")
    ex.check(model)
    maps = ex.explain(model, X, T)
    assert maps.shape == (2, 32, 32) and torch.isfinite(maps).all() and (maps > 0).any()
    rel, _ = TransformerLRP().relevance(model, X, T)
    prefix = rel.shape[1] - (16 if build is not zoo_vit else 64)
    # spread over its patches, the map keeps the patch tokens' total (bilinear upsampling of a density)
    torch.testing.assert_close(maps.sum((1, 2)), rel[:, prefix:].sum(1), rtol=0.05, atol=1e-4)


def test_a_convnet_is_refused_with_the_reason() -> None:
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with pytest.raises(ExplainerError, match="no attention block"):
        build_explainer("transformer_lrp").check(cnn)
