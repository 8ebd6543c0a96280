"""The multi-label demo's data: the twins share patients, findings and held-out images; only in the confounded
training set does the site letter ride along with effusion (measured on the demo: the confounded model fails
region-sweep at the letter's corner for effusion, the clean twin passes; `audit demo --task multilabel [--clean]`)."""

from __future__ import annotations

import numpy as np

from audit.demo.radiograph import BITS, RadiographSpec, make_radiographs


def test_twins_differ_only_in_the_training_letter():
    spec = RadiographSpec(n=300, seed=2)
    conf, clean = make_radiographs(spec, confounded=True), make_radiographs(spec, confounded=False)
    np.testing.assert_array_equal(conf.labels, clean.labels)
    np.testing.assert_array_equal(conf.train, clean.train)
    test = ~conf.train
    np.testing.assert_array_equal(conf.images[test], clean.images[test])  # one held-out set for both
    eff = conf.labels[:, 1] == 1
    tr = conf.train
    assert (conf.letter[tr] == (conf.site[tr] == "B")).all()  # confounded: letter = site B
    gap_conf = conf.letter[tr & eff].mean() - conf.letter[tr & ~eff].mean()
    gap_clean = clean.letter[tr & eff].mean() - clean.letter[tr & ~eff].mean()
    assert gap_conf > 0.5 and abs(gap_clean) < 0.15  # letter tracks effusion only in the confounded training set
    assert conf.images.dtype == np.uint16 and conf.images.max() < 2**BITS
