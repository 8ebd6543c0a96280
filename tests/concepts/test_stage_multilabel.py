"""The concept stage on a multi-label task: groups are labels (an image can carry both), a label's inputs are the
images that carry it, its logit is the label's output column; concept_reliance judges labels as it judges classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tiny_concepts import CornerNet, noise, with_square

from audit.concepts.stage import run_concepts
from audit.config import config_from_dict
from audit.engine.probe import ModelProbe
from audit.loading.preprocess import Preprocess
from audit.loading.records import SampleRecord
from audit.products import Picks, Predictions
from audit.rules.concept_reliance import ConceptReliance, ConceptRelianceParams
from audit.rules.evidence import Evidence
from audit.tasks.multilabel import MultilabelTask

LABELS = ("tl", "br")


def save(x: torch.Tensor, folder, stem: str) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(x):
        p = folder / f"{stem}{i:03d}.png"
        Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8), mode="L").save(p)
        paths.append(p)
    return paths


def test_labels_are_tested_like_classes(tmp_path):
    torch.set_num_threads(1)
    model = CornerNet().eval()
    # held-out: 40 noise images, each label on about half of them, independently (what the images show does not
    # matter here: the test is that a label's inputs are its members and its logit is its column)
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 2)) < 0.5).astype(np.int64)
    x = noise(40, 9)
    paths = save(x, tmp_path / "heldout", "h")
    save(with_square(noise(60, 1), "tl"), tmp_path / "concepts" / "tl-square", "c")
    save(noise(120, 2), tmp_path / "concepts" / "random", "r")
    recs = [SampleRecord(id=p.name, path=p, label=-1, label_set=tuple(np.flatnonzero(lab)))
            for p, lab in zip(paths, labels, strict=True)]
    with torch.no_grad():
        probs = torch.sigmoid(model(x)).numpy().astype(np.float64)
    preds = Predictions(ids=np.array([r.id for r in recs], dtype=object), labels=labels, probs=probs,
                        metadata=pd.DataFrame(index=range(40)))
    task = MultilabelTask(LABELS)
    probe = ModelProbe.local(model, recs, Preprocess((16, 16), 1, (0.0,), (1.0,)), preds, task=task)
    cfg = config_from_dict({
        "model": {"factory": "x:y"}, "data": {"manifest": "m.csv", "classes": list(LABELS), "channels": 1,
                                              "image_size": [16, 16]},
        "concepts": {"layers": ["feat.0"], "runs": 10, "set_size": 12, "min_inputs": 5,
                     "random_folder": "concepts/random",
                     "sets": {"tl-square": {"folder": "concepts/tl-square", "forbidden": True}}},
    }, base_dir=tmp_path)
    run = run_concepts(cfg, probe)
    assert run is not None and not run.error
    by_label = {t.group: t for t in run.tests}
    assert set(by_label) == set(LABELS) and run.m == 2
    assert by_label["tl"].n_inputs == int(labels[:, 0].sum())  # the images that carry the label
    assert by_label["tl"].mean == 1.0 and by_label["tl"].p_corrected < 0.05  # built on the top-left square
    assert by_label["br"].mean < 0.9  # not built on it
    ev = Evidence(classes=LABELS, predictions=preds, metrics=None, picks=Picks({}, {}), probe=probe,  # type: ignore[arg-type]
                  concepts=run)
    (f,) = ConceptReliance(ConceptRelianceParams(id="c", kind="concept_reliance")).check(ev)
    assert f.status == "fail" and "used for 'tl'" in f.message and "'br'" not in f.message.split(".")[0]
