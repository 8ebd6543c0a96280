"""Donor matching (audit/rules/region/match.py): each description ignores the cue its edit moves and sees the others;
and which direction of a donor edit is judged (region/effects.judged_direction)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.rules._shortcuts import gaussian_blur
from audit.rules.region.cells import judged_direction
from audit.rules.region.match import Matcher, acquisition, colour, layout, matcher_for, tolerance
from audit.rules.region.regions import Region

NORM = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def scenes(n: int, seed: int, bars: bool = False) -> torch.Tensor:
    """Raw (0..1) RGB images: a textured background and a bright square at a random place; optional black
    letterbox bars of 4 px at the top and the bottom."""
    g = torch.Generator().manual_seed(seed)
    x = 0.45 + 0.08 * torch.rand((n, 3, 32, 32), generator=g)
    for i in range(n):
        y0, x0 = (int(v) for v in torch.randint(4, 18, (2,), generator=g))
        x[i, :, y0:y0 + 10, x0:x0 + 10] = 0.85
    if bars:
        x[:, :, :4] = 0.0
        x[:, :, -4:] = 0.0
    return x


def normed(raw: torch.Tensor) -> torch.Tensor:
    return (raw - 0.5) / 0.25


def test_layout_ignores_brightness_contrast_and_tint_but_sees_bars() -> None:
    x = scenes(6, 0)
    shifted = (0.6 * x + 0.2) * torch.tensor([1.1, 1.0, 0.9]).view(1, 3, 1, 1)
    np.testing.assert_allclose(layout(shifted), layout(x), atol=0.05)
    barred = x.clone()
    barred[:, :, :4] = 0.0
    barred[:, :, -4:] = 0.0
    assert np.abs(layout(barred) - layout(x)).mean() > 0.3


def test_acquisition_ignores_brightness_and_contrast_and_falls_with_blur() -> None:
    x = scenes(6, 1)
    np.testing.assert_allclose(acquisition(0.5 * x + 0.3, 0.5), acquisition(x, 0.5), atol=1e-4)
    assert (acquisition(gaussian_blur(x, 1.2), 0.5) < acquisition(x, 0.5) - 1.0).all()


def test_colour_follows_a_tint_and_ignores_fine_blur() -> None:
    x = scenes(6, 2)
    tinted = x + torch.tensor([0.1, 0.0, -0.1]).view(1, 3, 1, 1)
    np.testing.assert_allclose(colour(tinted)[:, :3] - colour(x)[:, :3], np.tile([0.1, 0.0, -0.1], (6, 1)),
                               atol=1e-5)
    np.testing.assert_allclose(colour(gaussian_blur(x, 1.2)), colour(x), atol=0.02)


@pytest.mark.parametrize("how", ["colour", "spectrum"])
def test_a_bar_free_sample_is_matched_with_bar_free_donors(how: str) -> None:
    """A letterboxed data set: half the donors carry bars. A colour or spectrum edit of a bar-free sample must
    draw its nearest donors among the bar-free ones (else the bars' darkness travels as a 'colour cast')."""
    donors = torch.cat([normed(scenes(20, 3, bars=True)), normed(scenes(20, 4))])
    has_bars = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    m = matcher_for(Region("full", "the whole image", np.ones((32, 32), bool)), how, 2, NORM, 0.5)
    assert isinstance(m, Matcher) and m.ring is None
    fitted, d = m.fitted(donors)
    s = fitted.describe(normed(scenes(8, 5)))
    nearest = np.argsort(((d[None] - s[:, None]) ** 2).sum(-1), axis=1)[:, :5]
    assert not has_bars[nearest].any()


def test_a_colour_edit_still_sees_a_tint_among_matched_donors() -> None:
    """Matching must not hide the cue the edit tests: tinted and untinted donors are equally near."""
    plain = normed(scenes(20, 6))
    tinted = normed(scenes(20, 6) + torch.tensor([0.1, 0.0, -0.1]).view(1, 3, 1, 1))
    m = matcher_for(Region("full", "the whole image", np.ones((32, 32), bool)), "colour", 2, NORM, 0.5)
    _, d = m.fitted(torch.cat([plain, tinted]))
    np.testing.assert_allclose(d[:20], d[20:], atol=0.1)


def test_a_swapped_corner_is_matched_on_its_ring_and_a_background_swap_on_nothing() -> None:
    mask = np.zeros((32, 32), bool)
    mask[:8, :8] = True
    m = matcher_for(Region("top_left", "the top-left corner", mask), "swap", 2, NORM, 0.5)
    assert m is not None and m.ring is not None
    assert m.ring[:10, :10].sum() == m.ring.sum() >= 2 * 8 * 2  # two pixels along both inner edges
    assert not (m.ring & mask).any()
    bg = Region("outside_roi", "the background", np.ones((32, 32), bool), per_sample=True)
    assert matcher_for(bg, "swap", 2, NORM, 0.5) is None


def test_a_one_way_effect_is_judged_on_the_weaker_direction() -> None:
    """A blurred image given a sharp spectrum turns noisy (removal strong) while the insertion shows nothing:
    out of distribution, not a cue. The judged figure is the weaker direction and its floor is not above 0."""
    removal = {"direction": "removal", "est": 0.28, "lo": 0.24, "hi": 0.32}
    insertion = {"direction": "insertion", "est": 0.01, "lo": -0.01, "hi": 0.03}
    weak, floor = judged_direction([removal, insertion])
    assert weak is insertion and floor == -0.01
    cue_in = {"direction": "insertion", "est": 0.22, "lo": 0.17, "hi": 0.28}
    weak, floor = judged_direction([removal, cue_in])
    assert weak is cue_in and floor == 0.17  # both ways: judged at 0.22 > 0.1, both intervals above 0
    assert judged_direction([removal]) == (removal, 0.24)  # only one direction measured: judged alone


def test_a_group_alone_in_its_layout_has_no_donor_of_another_group_close_enough() -> None:
    """Letterboxed images of group A only: a new letterboxed sample has A donors within the tolerance (the pool's
    95th percentile nearest same-group distance) and no B donor, so its colour edit is left out, not run with a
    bar-free donor whose brightness would travel as a 'colour cast'; bar-free samples mostly have B donors in reach."""
    donors = torch.cat([normed(scenes(20, 3, bars=True)), normed(scenes(20, 4))])
    member_of = np.zeros((40, 2), bool)
    member_of[:20, 0] = member_of[20:, 1] = True
    m = matcher_for(Region("full", "the whole image", np.ones((32, 32), bool)), "colour", 2, NORM, 0.5)
    fitted, d = m.fitted(donors)
    tol = tolerance(d, member_of, 0.95)
    nn = np.sqrt([np.min([((d[i] - d[j]) ** 2).sum() for j in range(40) if j != i and member_of[j] @ member_of[i]])
                  for i in range(40)])
    assert tol == pytest.approx(np.quantile(nn ** 2, 0.95) ** 0.5)
    dist = np.sqrt(((d[None] - fitted.describe(normed(scenes(8, 5, bars=True)))[:, None]) ** 2).sum(-1))
    assert (dist[:, 20:] > tol).all() and (dist[:, :20] <= tol).any(1).all()
    dist = np.sqrt(((d[None] - fitted.describe(normed(scenes(20, 6)))[:, None]) ** 2).sum(-1))
    assert (dist[:, 20:] <= tol).any(1).mean() >= 0.8  # a 95th percentile leaves about one typical sample in 20 out
    assert tolerance(d, np.eye(40, 2, dtype=bool), 0.95) == float("inf")  # nobody shares a group with anyone
    assert tolerance(d, member_of, 0.95, budget_values=500) == tol  # chunked rows: the same answer
