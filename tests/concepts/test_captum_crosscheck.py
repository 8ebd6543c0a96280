"""Our TCAV against captum's (``captum.concept.TCAV``) on the same network, concept and random sets, with the same
CAV classifier (ours is a captum ``Classifier``): the same sign-count scores, concept by concept and run by run.
What captum does not do, and we add: the random CAVs of the null distribution, the t-test and Bonferroni."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.concept import TCAV, Concept
from tiny_concepts import CornerNet, noise, with_square
from torch.utils.data import DataLoader

from audit.concepts.cav import LinearCAVClassifier
from audit.concepts.stage import draw_sets
from audit.concepts.tcav import _seed, run_tcav

N_RUNS, SET = 4, 20


class SeededInOrder(LinearCAVClassifier):
    """Our classifier with the seed run_tcav gives CAV (r, i), in the order captum trains the experimental sets."""

    def __init__(self, seeds: list[int]) -> None:
        super().__init__("logistic", 0)
        self.seeds = list(seeds)

    def train_and_eval(self, dataloader, **kwargs):
        self.seed = self.seeds.pop(0)
        xs, ys = [], []
        for x, y in dataloader:
            xs.append(x.detach().float().numpy().reshape(len(x), -1))
            ys.append(y.numpy())
        x, y = np.concatenate(xs), np.concatenate(ys)
        concept_id = int(y[0])  # captum lists the experimental set's first concept first
        order = np.concatenate([np.flatnonzero(y != concept_id), np.flatnonzero(y == concept_id)])
        self.concept_id = concept_id
        acc = self.fit(x[order], (y[order] == concept_id).astype(np.int64))  # run_tcav's order: counter, concept
        self._classes = np.array(sorted(set(y.tolist())))
        return {"accs": torch.tensor(acc)}

    def weights(self):
        w = super().weights()[1]  # towards the concept
        return torch.stack([w, -w]) if self.concept_id == self._classes[0] else torch.stack([-w, w])


def loader(x: torch.Tensor) -> DataLoader:
    return DataLoader(list(x), batch_size=len(x))  # one batch: captum stores activations batch by batch


def test_scores_equal_captums(tmp_path):
    model = CornerNet().eval()
    concept_x = with_square(noise(SET, 1), "tl")
    pool = noise(N_RUNS * SET, 3)
    sets, _ = draw_sets(len(pool), N_RUNS, SET, np.random.default_rng(0))
    inputs = noise(30, 4)
    ours = run_tcav(model, ["feat.0"], {"tl": concept_x}, pool, sets, {0: inputs}, classifier="logistic", seed=7)

    concept = Concept(0, "tl", loader(concept_x))
    randoms = [Concept(1 + i, f"random{i}", loader(pool[torch.as_tensor(s)])) for i, s in enumerate(sets)]
    experiments = [[concept, randoms[i]] for i in range(N_RUNS)]
    experiments += [[randoms[(i + 1) % N_RUNS], randoms[i]] for i in range(N_RUNS)]  # our null CAVs
    seeds = [_seed(7, 0, i) for i in range(N_RUNS)] + [_seed(7, 1, i) for i in range(N_RUNS)]
    tcav = TCAV(model, ["feat.0"], classifier=SeededInOrder(seeds), save_path=str(tmp_path / "cav"))
    got = tcav.interpret(inputs, experiments, target=0)
    theirs = np.array([[float(got["-".join(str(c.id) for c in e)]["feat.0"]["sign_count"][0]) for e in experiments]])
    theirs = theirs.reshape(2, N_RUNS)
    layer = ours.layers[0]
    n = len(inputs)
    np.testing.assert_array_equal(np.round(layer.scores[0] * n), np.round(theirs * n))  # counts of S > 0
    assert layer.scores[0][0].min() == pytest.approx(1.0)  # the related concept, by both
