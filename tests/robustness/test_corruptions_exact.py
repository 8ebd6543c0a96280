"""Each corruption against ``imagecorruptions`` 1.1.2 with the random draws made equal: the reference's draws are
replayed from NumPy's seeded global generator (in the order it makes them) and handed to our deterministic
part. What is compared is the reference function's float output before ``corrupt()`` truncates it to uint8.

Tolerances: float32 arithmetic with at most ~450-term sums of values <= 1 (the largest kernel is 21 x 21)
stays below 5e-5 (measured ~1e-6); pixelate: Pillow rounds to 8 bits after each axis, <= 1/255; frost:
OpenCV rounds the rescaled texture to 8 bits (<= 0.5/255) before it is weighted by c2 <= 0.75, <= 1/255;
JPEG: the same encoder on the same 8-bit input, bit-identical.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from references import corruptions, frost_files
from skimage import data, transform

from audit.robustness.corruptions import CORRUPTIONS, blur, digital, frost, geometric, spatter, weather

FLOAT_TOL = 5e-5
H, W = 36, 40


def _image(grey: bool) -> np.ndarray:
    src = data.camera() if grey else data.astronaut()
    return (transform.resize(src[:300, 100:440], (H, W), anti_aliasing=True) * 255).astype(np.uint8)


@pytest.fixture(scope="module", params=["rgb", "grey"])
def image(request):
    a = _image(request.param == "grey")
    t = torch.from_numpy(a.astype(np.float32) / 255)
    x = t[None, None] if a.ndim == 2 else t.permute(2, 0, 1)[None]
    return Image.fromarray(a), x, request.param


def _as_hwc(t: torch.Tensor) -> np.ndarray:
    return t.clamp(0, 1)[0].permute(1, 2, 0).double().numpy()


def _ref(out, grey: bool) -> np.ndarray:
    r = np.clip(np.asarray(out, dtype=np.float64) / 255.0, 0, 1)
    if r.ndim == 2:
        r = r[..., None]
    return r[..., :1] if grey else r


def _check(ours: torch.Tensor, ref, grey: bool, clean: torch.Tensor, tol: float = FLOAT_TOL,
           changes: bool = True) -> None:
    o, r = _as_hwc(ours), _ref(ref, grey)
    assert o.shape == r.shape
    assert np.abs(o - r).max() <= tol
    if changes:  # the corruption changed the image: the match is not vacuous
        assert np.abs(r - _as_hwc(clean)).max() > 20 * tol


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_deterministic_corruptions_match_reference(image, severity: int) -> None:
    pil, x, kind = image
    ic, grey = corruptions(), kind == "grey"
    for name in ("brightness", "contrast", "saturate", "defocus_blur", "zoom_blur"):
        identity = grey and name == "saturate"  # the reference returns grey images unchanged
        _check(CORRUPTIONS[name](x, severity), getattr(ic, name)(pil, severity), grey, x, changes=not identity)
    if not grey:  # the reference's gaussian_blur treats a 2-D array's last axis as channels
        _check(CORRUPTIONS["gaussian_blur"](x, severity), ic.gaussian_blur(pil, severity), grey, x)
    _check(CORRUPTIONS["pixelate"](x, severity), ic.pixelate(pil, severity), grey, x, 1 / 255 + FLOAT_TOL)
    _check(CORRUPTIONS["jpeg_compression"](x, severity), ic.jpeg_compression(pil, severity), grey, x, 1e-6)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_random_corruptions_match_reference_given_its_draws(image, severity: int) -> None:
    pil, x, kind = image
    ic, grey = corruptions(), kind == "grey"
    seed = 10 + severity

    if not grey:  # the reference's motion_blur fails on 2-D arrays (IndexError); corrupt() passes RGB
        np.random.seed(seed)
        angle = np.random.uniform(-45, 45)
        r, s = blur.CORRUPTIONS[2].levels[severity - 1]
        np.random.seed(seed)
        _check(blur.motion_blur_at(x, r, s, [angle]), ic.motion_blur(pil, severity), grey, x)

    c = weather.CORRUPTIONS[0].levels[severity - 1]
    np.random.seed(seed)
    layer = np.random.normal(size=(H, W), loc=c[0], scale=c[1])
    angle = np.random.uniform(-135, -45)
    np.random.seed(seed)
    _check(weather.snow_at(x, c, torch.from_numpy(layer)[None, None].float(), [angle]), ic.snow(pil, severity), grey, x)

    c = weather.CORRUPTIONS[1].levels[severity - 1]
    np.random.seed(seed)
    fractal = ic.plasma_fractal(64, c[1])
    np.random.seed(seed)
    _check(weather.fog_at(x, c, torch.from_numpy(fractal)[None]), ic.fog(pil, severity), grey, x)

    c = spatter.CORRUPTIONS[0].levels[severity - 1]
    np.random.seed(seed)
    layer = np.random.normal(size=(H, W), loc=c[0], scale=c[1])
    np.random.seed(seed)
    _check(spatter.spatter_at(x, c, torch.from_numpy(layer)[None, None].float()), ic.spatter(pil, severity), grey, x)

    c = frost.LEVELS[severity - 1]
    textures = frost.load_textures(frost_files())
    np.random.seed(seed)
    t = frost.rescaled(textures[np.random.randint(5)], H, W)
    top, left = np.random.randint(0, t.shape[1] - H), np.random.randint(0, t.shape[2] - W)
    np.random.seed(seed)
    crops = t[None, :, top:top + H, left:left + W]
    _check(frost.frost_blend(x, c, crops), ic.frost(pil, severity), grey, x, 1 / 255)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_glass_and_elastic_match_reference_given_its_draws(severity: int) -> None:
    a = _image(False)
    pil = Image.fromarray(a)
    x = torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1)[None]
    ic = corruptions()
    sigma, delta, iterations = blur.CORRUPTIONS[1].levels[severity - 1]
    np.random.seed(severity)
    steps = blur.glass_steps(H, W, delta)
    offsets = np.stack([np.stack([np.random.randint(-delta, delta, size=(2,)) for _ in range(steps)])
                        for _ in range(iterations)])[:, :, None, :]
    np.random.seed(severity)
    _check(blur.glass_blur_at(x, sigma, delta, offsets), ic.glass_blur(pil, severity), False, x)

    alpha = geometric.CORRUPTIONS[0].levels[severity - 1]
    m = 0.005 * H
    np.random.seed(severity)
    ux, uy = np.random.uniform(-m, m, (H, W)), np.random.uniform(-m, m, (H, W))
    np.random.seed(severity)
    fields = [torch.from_numpy(u)[None].float() for u in (ux, uy)]
    _check(geometric.elastic_warp(x, *fields, alpha), ic.elastic_transform(pil, severity), False, x)


def test_channelwise_corruptions_treat_grey_as_one_channel_of_rgb() -> None:
    """Where the reference has no grey path we check that a grey image is corrupted like each channel of its
    RGB copy (same draws: the same generator seed and a batch of one)."""
    g = torch.from_numpy(_image(True).astype(np.float32) / 255)[None, None]
    rgb = g.expand(1, 3, H, W).contiguous()
    for name in ("gaussian_blur", "defocus_blur", "zoom_blur", "contrast", "pixelate", "motion_blur"):
        one = CORRUPTIONS[name](g, 3, torch.Generator().manual_seed(1))
        three = CORRUPTIONS[name](rgb, 3, torch.Generator().manual_seed(1))
        assert torch.allclose(one, three[:, :1], atol=1e-6)
        assert (one - g).abs().max() > 0.01
    ours = digital.brightness(g, 0.3)
    assert torch.allclose(ours, (g + 0.3))
