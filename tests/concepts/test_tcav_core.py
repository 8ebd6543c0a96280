"""TCAV on a network whose logits are by construction functions of one concept's presence: TCAV ~ 1 for that
concept, scores spread around 0.5 for the unrelated one, and the t-test against random CAVs tells them apart."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_concepts import CornerNet, noise, with_square

from audit.concepts.cav import RowSpace, train_cav, unit
from audit.concepts.stage import draw_sets
from audit.concepts.stats import ttest
from audit.concepts.tcav import run_tcav

N_RUNS, SET, FOLDER = 10, 30, 300


@pytest.fixture(scope="module")
def raw():
    """Concept folders of 300 images, a subset of 30 per run (so the spread includes which images were drawn), 10
    disjoint random sets of 30, 40 noise inputs per class."""
    model = CornerNet().eval()
    rng = np.random.default_rng(0)
    concepts = {"tl-square": with_square(noise(FOLDER, 1), "tl"), "br-square": with_square(noise(FOLDER, 2), "br")}
    concept_sets = {c: [np.sort(rng.choice(FOLDER, SET, replace=False)) for _ in range(N_RUNS)] for c in concepts}
    pool = noise(N_RUNS * SET, 3)
    sets, disjoint = draw_sets(len(pool), N_RUNS, SET, rng)
    assert disjoint
    inputs = {0: noise(40, 4), 1: noise(40, 5)}
    return run_tcav(model, ["feat.0"], concepts, pool, sets, inputs, concept_sets=concept_sets, seed=0)


def test_the_concept_the_logit_is_built_on_scores_one(raw):
    layer = raw.layers[0]
    assert layer.accuracy[:2].mean(axis=1).min() > 0.95  # both squares separate from noise
    assert 0.3 < layer.accuracy[2].mean() < 0.7  # random against random: chance
    tl, br = raw.concepts.index("tl-square"), raw.concepts.index("br-square")
    for group, concept in ((0, tl), (1, br)):
        assert layer.scores[group][concept].min() == 1.0  # every run, every input: the logit rises along the CAV
        assert ttest(layer.scores[group][concept], layer.scores[group][-1]).p < 1e-3


def test_an_unrelated_concept_spreads_around_one_half(raw):
    layer = raw.layers[0]
    tl, br = raw.concepts.index("tl-square"), raw.concepts.index("br-square")
    for group, concept in ((0, br), (1, tl)):
        unrelated = layer.scores[group][concept]  # e.g. the bottom-right square against logit "tl"
        assert 0.3 < unrelated.mean() < 0.7, unrelated
        assert unrelated.std(ddof=1) > 0.1  # it varies from run to run, unlike the related concept
        assert ttest(unrelated, layer.scores[group][-1]).p > 0.05
        assert 0.3 < layer.scores[group][-1].mean() < 0.7  # the random CAVs' scores too


def test_bookkeeping(raw):
    layer = raw.layers[0]
    assert layer.dim == 256 and layer.scores[0].shape == (3, N_RUNS) and layer.mean_derivative[0].shape == (3, 40)
    assert raw.passes == {"forward_images": 2 * FOLDER + N_RUNS * SET, "forward_backward_images": 80}
    assert not layer.null_directions.any()
    tl = raw.concepts.index("tl-square")
    assert (layer.mean_derivative[0][tl] > 0).all()  # the ranking of inputs along the CAV: all rise


@pytest.mark.parametrize("kind", ["sgd", "logistic"])
def test_row_space_gives_the_same_classifier(kind):
    """Wide activations (D >> n): the classifier trained on row-space coordinates, lifted back, is the classifier
    trained on the activations themselves (up to float32 rounding of the Gram matrix)."""
    rng = np.random.default_rng(0)
    concept = rng.normal(0, 1, (30, 4000)).astype(np.float32)
    concept[:, :50] += 0.8
    counter = rng.normal(0, 1, (40, 4000)).astype(np.float32)
    direct = train_cav(concept, counter, kind, seed=3)
    space = RowSpace(np.concatenate([concept, counter]))
    coords = train_cav(space.coords[:30], space.coords[30:], kind, seed=3)
    assert coords.accuracy == direct.accuracy
    a, b = unit(direct.weights)[0], unit(space.lift(coords.weights))[0]
    assert float(a @ b) > 0.999


def test_random_sets_overlap_only_when_the_pool_is_small():
    sets, disjoint = draw_sets(100, 5, 20, np.random.default_rng(0))
    assert disjoint and len(np.unique(np.concatenate(sets))) == 100
    sets, disjoint = draw_sets(60, 5, 20, np.random.default_rng(0))
    assert not disjoint and all(len(np.unique(s)) == 20 for s in sets)
