"""The corruption registry's contract (every entry, grey and RGB, odd sizes, seeding, errors) and the MRI
artefacts against TorchIO 1.2.1's deterministic transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchio as tio
from skimage import data, transform

from audit.errors import ConfigError, DataError
from audit.robustness.corruptions import (
    CORRUPTIONS,
    IMAGENET_C,
    IMAGENET_C_EXTRA,
    Corruption,
    corrupt,
    frost,
    get,
    medical,
    registry,
)


def test_registry_holds_the_imagenet_c_sets_and_the_others() -> None:
    assert len(IMAGENET_C) == 15 and len(IMAGENET_C_EXTRA) == 4
    others = {"underexposure", "overexposure", "gamma_dark", "gamma_bright", "low_resolution",
              "low_resolution_nearest", "jpeg_quality", "bias_field", "ghosting", "mri_motion", "spike"}
    assert set(CORRUPTIONS) == set(IMAGENET_C) | set(IMAGENET_C_EXTRA) | others
    assert all(len(c.levels) == 5 for c in CORRUPTIONS.values())


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 33, 47), (1, 3, 7, 9), (1, 1, 1, 1)])
def test_every_corruption_keeps_shape_range_and_is_seeded(shape: tuple[int, ...]) -> None:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    for name, c in CORRUPTIONS.items():
        y = c(x, 5, torch.Generator().manual_seed(3))
        assert y.shape == x.shape and y.dtype == x.dtype, name
        assert torch.isfinite(y).all() and float(y.min()) >= 0 and float(y.max()) <= 1, name
        if shape[-1] >= 32:
            if c.stochastic:
                assert torch.equal(y, c(x, 5, torch.Generator().manual_seed(3))), name
            if name != "saturate" or shape[1] == 3:  # saturate leaves grey images alone, as the reference
                assert (y - x).abs().max() > 0.02, name  # it does something


def test_half_precision_batches_come_back_in_their_dtype() -> None:
    x = torch.rand(1, 3, 16, 16).half()
    assert corrupt(x, "gaussian_blur", 2).dtype == torch.float16


def test_bad_inputs_and_names_are_refused() -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ConfigError, match="unknown corruption"):
        get("fog_of_war")
    with pytest.raises(ConfigError, match="severity"):
        corrupt(x, "contrast", 6)
    with pytest.raises(ValueError, match="Generator"):
        corrupt(x, "gaussian_noise", 1)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        corrupt(x * 255, "contrast", 1)
    with pytest.raises(DataError, match="channels"):
        corrupt(torch.rand(1, 4, 8, 8), "brightness", 1)
    with pytest.raises(ConfigError, match=r"robustness.corruptions.names: unknown corruption 'fog_of_war'"):
        corrupt(x, "fog_of_war", 1)
    with pytest.raises(TypeError):
        CORRUPTIONS["fog"] = CORRUPTIONS["contrast"]  # type: ignore[index]  # no global state to change


def test_a_new_corruption_is_one_entry() -> None:
    c = Corruption("invert_for_test", "test", lambda x, lv, g=None: 1 - x * lv, (1.0,) * 5, False, "test")
    own = {c.name: c}
    assert torch.allclose(corrupt(torch.zeros(1, 1, 2, 2), "invert_for_test", 3, extra=own), torch.ones(1, 1, 2, 2))
    assert "invert_for_test" in registry(own) and "invert_for_test" not in registry()


def test_jpeg_at_a_stated_quality_and_the_frost_textures() -> None:
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    q90, q10 = (CORRUPTIONS["jpeg_quality"].at(x, q) for q in (90, 10))
    assert (q90 - x).abs().mean() < (q10 - x).abs().mean()
    for tex, (_, mean, std) in zip(frost.synthetic_textures(), frost.REFERENCE_STATS, strict=True):
        assert torch.allclose(tex.mean((1, 2)), torch.tensor(mean), atol=0.01)
        assert torch.allclose(tex.std(dim=(1, 2)), torch.tensor(std), atol=0.01)


# ------------------------------------------------------------------------------------------- TorchIO

@pytest.fixture(scope="module")
def mri() -> torch.Tensor:
    img = transform.resize(data.camera(), (40, 48), anti_aliasing=True).astype(np.float32)
    return torch.from_numpy(img)[None, None]


def _tio(t: tio.Transform, vol: torch.Tensor) -> torch.Tensor:
    return t(tio.ScalarImage(tensor=vol)).data


def test_bias_field_ghosting_and_spike_match_torchio(mri: torch.Tensor) -> None:
    vol = mri[0][..., None]  # TorchIO (C, H, W, 1): its first spatial axis is our H
    terms3 = [(i, j, k) for i in range(4) for j in range(4 - i) for k in range(4 - i - j)]
    coef = np.random.default_rng(0).uniform(-0.5, 0.5, len(terms3))
    ours = medical.bias_field_at(mri, torch.tensor([[coef[n] for n, t in enumerate(terms3) if t[2] == 0]]))
    ref = _tio(tio.BiasField(coefficients=coef.tolist(), order=3), vol)[..., 0]
    assert torch.allclose(ours[0], ref, atol=1e-5) and (ref - mri[0]).abs().max() > 0.5
    for axis in (0, 1):
        ref = _tio(tio.Ghosting(num_ghosts=5, axis=axis, intensity=0.7, restore=None), vol)[..., 0]
        assert torch.allclose(medical.ghosting_at(mri, [5], [axis], [0.7])[0], ref, atol=1e-5)
        assert (ref - mri[0]).abs().max() > 0.05
    pos = np.array([[0.3, 0.7, 0.2], [0.55, 0.1, 0.9]])
    ref = _tio(tio.Spike(spikes_positions=pos, intensity=1.5), vol)[..., 0]
    assert torch.allclose(medical.spike_at(mri, torch.tensor(pos[None, :, :2]), torch.tensor([1.5]))[0], ref,
                          atol=1e-5)


def test_motion_matches_torchio_about_its_rotation_centre(mri: torch.Tensor) -> None:
    """TorchIO's k-space segments run along its last axis, so the 2-D image goes in as (1, H, 1, W) and turns
    about TorchIO's second axis. TorchIO 1.2.1 rotates about the corner voxel (its transform loses the centre
    it set), hence centre=(0, 0) here; its LPS orientation flips the first axis: our shift is (-t0, +t2)."""
    degs = np.array([[0, 7.0, 0], [0, -4.0, 0]])
    trans = np.array([[2.5, 0, -1.5], [-1.0, 0, 3.0]])
    times = np.array([0.3, 0.7])
    ref = _tio(tio.Motion(degrees=degs, translation=trans, times=times, image_interpolation="linear"),
               mri[0][:, :, None, :])[:, :, 0, :]
    ours = medical.mri_motion_at(mri, list(degs[:, 1]), [(-t[0], t[2]) for t in trans], list(times), (0.0, 0.0))
    assert torch.allclose(ours[0], ref, atol=1e-5) and (ref - mri[0]).abs().max() > 0.1
    centred = medical.mri_motion_at(mri, list(degs[:, 1]), [(-t[0], t[2]) for t in trans], list(times))
    assert (centred[0] - ref).abs().max() > 0.05  # the documented difference: we turn about the centre
