"""Binary and multi-label tasks: ranking metrics against scikit-learn, operating points against hand computation,
picks relative to the threshold, one-logit explanations, task detection, and full audits of both kinds."""

from __future__ import annotations

import csv
import json
from importlib.resources import files

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score
from typer.testing import CliRunner

from audit.cli import app
from audit.demo.model import DemoCNN
from audit.explainers import build_explainer
from audit.products import Predictions
from audit.scoring.multilabel import multilabel_metrics
from audit.scoring.ranking import choose_threshold, weighted_auroc, weighted_average_precision, wilson
from audit.tasks.base import TaskOptions
from audit.tasks.binary import BinaryTask
from audit.tasks.multilabel import MultilabelTask

runner = CliRunner()
RNG = np.random.default_rng(0)


def scores_with_ties(n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (RNG.random(n) < 0.35).astype(np.int64)
    s = np.round(RNG.normal(y * 0.8, 1.0), 1)  # rounding makes ties
    return y, s


def test_ranking_metrics_equal_scikit_learn_also_weighted():
    y, s = scores_with_ties(300)
    w = RNG.integers(0, 4, size=(5, 300)).astype(float)
    assert weighted_auroc(y, s, np.ones((1, 300)))[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert weighted_average_precision(y, s, np.ones((1, 300)))[0] == pytest.approx(average_precision_score(y, s),
                                                                                     abs=1e-12)
    for r in range(5):  # a bootstrap resample is a weighting: scikit-learn's sample_weight is the reference
        assert weighted_auroc(y, s, w[r:r + 1])[0] == pytest.approx(roc_auc_score(y, s, sample_weight=w[r]), abs=1e-12)
        assert weighted_average_precision(y, s, w[r:r + 1])[0] == pytest.approx(
            average_precision_score(y, s, sample_weight=w[r]), abs=1e-12)


def test_wilson_interval_known_values():
    lo, hi = wilson(8, 10)  # textbook: 8/10 -> 0.4902, 0.9433
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert wilson(25, 25)[1] == pytest.approx(1.0) and round(wilson(25, 25)[0], 4) == 0.8668


def test_operating_points_by_hand():
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
    s = np.array([.1, .2, .3, .4, .45, .5, .6, .7, .8, .9])
    # sensitivity >= 0.8: the highest threshold catching 4 of 5 positives is 0.6 (0.45 is missed)
    assert choose_threshold(y, s, "sensitivity>=0.8") == 0.6
    assert choose_threshold(y, s, "sensitivity>=1.0") == 0.45  # all five: down to 0.45
    # specificity >= 0.8: the lowest threshold with at most one of five negatives at or above it: at 0.45 only the
    # negative at 0.5 is above (4/5); at 0.4 two are (3/5)
    assert choose_threshold(y, s, "specificity>=0.8") == 0.45
    assert choose_threshold(y, s, "precision>=1.0") == 0.6  # 0.5 admits the negative at 0.5
    assert choose_threshold(y, s, "youden") == 0.6  # sens 0.8 + spec 1.0 - 1 = 0.8, the maximum


def _binary_preds(p: np.ndarray, y: np.ndarray) -> Predictions:
    return Predictions(ids=np.array([f"s{i}" for i in range(len(y))], dtype=object), labels=y,
                       probs=np.stack([1 - p, p], axis=1), metadata=pd.DataFrame(index=range(len(y))))


def test_binary_metrics_at_a_chosen_threshold_match_scikit_learn():
    y, s = scores_with_ties(400)
    p = 1 / (1 + np.exp(-s))
    task, preds = BinaryTask(("neg", "pos"), TaskOptions(operating_point="sensitivity>=0.9")).fit(_binary_preds(p, y))
    assert task.threshold == choose_threshold(y, p, "sensitivity>=0.9")
    m = task.metrics(preds, np.random.default_rng(0))
    tn, fp, fn, tp = confusion_matrix(y, p >= task.threshold).ravel()
    assert (m.positive.op.tp, m.positive.op.fp, m.positive.op.tn, m.positive.op.fn) == (tp, fp, tn, fn)
    assert m.scalar("sensitivity") == pytest.approx(tp / (tp + fn)) and m.scalar("sensitivity") >= 0.9
    assert m.scalar("auroc") == pytest.approx(roc_auc_score(y, p))
    assert m.scalar("accuracy") == pytest.approx(((p >= task.threshold) == y).mean())  # at the threshold, not argmax
    lo, hi = m.interval("auroc")
    assert lo < m.scalar("auroc") < hi
    assert "chosen on the held-out set" in m.positive.threshold_source


def test_binary_picks_put_missed_positives_first():
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.1, 0.45, 0.9, 0.2, 0.8, 0.55])
    picks = BinaryTask(("neg", "pos")).select(_binary_preds(p, y), k=3, per_class=0)
    wrong = [(x.sample_id, x.label_name, x.predicted_name) for x in picks.overall["incorrect"]]
    assert wrong == [("s0", "pos", "neg"), ("s1", "pos", "neg"), ("s2", "neg", "pos")]
    assert [x.sample_id for x in picks.overall["borderline"]][:2] == ["s1", "s5"]


def test_multilabel_metrics_per_label_and_averages_match_scikit_learn():
    n, k = 300, 3
    y = (RNG.random((n, k)) < [0.2, 0.4, 0.6]).astype(np.int64)
    s = 1 / (1 + np.exp(-RNG.normal(y * 1.5, 1.0)))
    m = multilabel_metrics(["a", "b", "c"], y, s, [0.5, 0.3, 0.7], ["t"] * 3, seed=0)
    for j, name in enumerate("abc"):
        assert m.scalar(f"auroc:{name}") == pytest.approx(roc_auc_score(y[:, j], s[:, j]))
        assert m.scalar(f"auprc:{name}") == pytest.approx(average_precision_score(y[:, j], s[:, j]))
    assert m.scalar("auroc") == pytest.approx(roc_auc_score(y, s, average="macro"))
    assert m.micro_auroc == pytest.approx(roc_auc_score(y, s, average="micro"))
    assert m.scalar("min_auroc") == pytest.approx(min(roc_auc_score(y[:, j], s[:, j]) for j in range(k)))
    decided = s >= np.array([0.5, 0.3, 0.7])
    assert m.subset_accuracy == pytest.approx((decided == y.astype(bool)).all(axis=1).mean())
    assert np.array_equal(m.cooccurrence, y.T @ y)
    lo, hi = m.interval("auroc")
    assert lo < m.scalar("auroc") < hi


def test_one_logit_model_explains_both_sides_of_its_log_odds():
    torch.manual_seed(0)
    model = DemoCNN(num_classes=1, width=4).eval()
    x = torch.randn(2, 1, 32, 32)
    task = BinaryTask(("neg", "pos"))
    ex = build_explainer("saliency")
    with task.explaining(model) as m:
        pos = ex.explain(m, x, torch.tensor([1, 1]))
        neg = ex.explain(m, x, torch.tensor([0, 0]))
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xg).sum(), xg)
    torch.testing.assert_close(pos, g.abs().amax(dim=1))  # target 1 explains z itself
    torch.testing.assert_close(neg, pos)  # |d(-z)/dx| = |dz/dx|
    assert not model._forward_hooks  # the reading hook is gone afterwards


# ---- full audits ---------------------------------------------------------------------------------------------

def _write_set(root, imgs, rows, header, cfg_model: str, classes: str, extra: str = "") -> None:
    (root / "img").mkdir(parents=True, exist_ok=True)
    with (root / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i, row in enumerate(rows):
            Image.fromarray(imgs[i], mode="L").save(root / f"img/{i:03d}.png")
            w.writerow([f"img/{i:03d}.png", *row])
    (root / "audit.toml").write_text(f"""
name = "t"
[model]
factory = "audit.demo.model:build"
weights = "w.safetensors"
factory_kwargs = {{ width = 4 }}
{cfg_model}
[data]
manifest = "manifest.csv"
classes = {classes}
image_size = [32, 32]
channels = 1
[explainers]
methods = ["gradcam", "saliency"]
[views]
embeddings = ["pca"]
probe_samples = 0
[cache]
enabled = false
[report]
formats = ["html", "json", "junit"]
{extra}
""")


def _train(imgs: np.ndarray, y: np.ndarray, outputs: int) -> DemoCNN:
    torch.manual_seed(0)
    m = DemoCNN(num_classes=outputs, width=4)
    x = torch.from_numpy(imgs.astype(np.float32) / 255).unsqueeze(1)
    t = torch.from_numpy(y)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(12):
        for s in range(0, len(x), 32):
            opt.zero_grad()
            out = m(x[s:s + 32])
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(out.squeeze(1) if outputs == 1 else out,
                                                                         t[s:s + 32].float())
                    if t.ndim == 2 or outputs == 1 else torch.nn.functional.cross_entropy(out, t[s:s + 32]))
            loss.backward()
            opt.step()
    return m.eval()


def _squares(n: int, labels: np.ndarray) -> np.ndarray:
    """Dark noisy canvases with a bright 8x8 square per positive label, at a place of its own."""
    rng = np.random.default_rng(1)
    imgs = np.clip(rng.normal(0.2, 0.08, (n, 32, 32)), 0, 1)
    spots = [(4, 4), (20, 4), (12, 20)]
    for i in range(n):
        for j, on in enumerate(np.atleast_1d(labels[i])):
            if on:
                y0, x0 = spots[j]
                imgs[i, y0:y0 + 8, x0:x0 + 8] = 0.9
    return (imgs * 255).astype(np.uint8)


@pytest.mark.parametrize("outputs", [1, 2])
def test_binary_audit_one_logit_or_two(tmp_path, outputs):
    y = np.arange(120) % 2
    imgs = _squares(120, y[:, None])
    model = _train(imgs[:80], y[:80], outputs)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    _write_set(tmp_path, imgs[80:], [[["absent", "present"][v]] for v in y[80:]], ["path", "label"],
               f"num_classes = {outputs}",
               '["absent", "present"]', '[rules]\npack = "default"\n')
    res = runner.invoke(app, ["run", str(tmp_path / "audit.toml"), "--out", str(tmp_path / "out")])
    assert res.exit_code in (0, 1), res.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["provenance"]["model"]["task"] == "binary"  # two classes: detected
    assert doc["metrics"]["auroc"] > 0.9 and doc["metrics"]["operating_point"]["source"] == "default 0.5"
    assert [e["status"] for e in doc["explainers"]] == ["ok", "ok"]
    assert all(p["explains"] == "present" for p in doc["samples"]["correct"])
    assert "AUROC" in (tmp_path / "out" / "summary.md").read_text()
    pred = doc["predictions"]  # the positive class's probability per sample: the score the threshold judges
    p = np.array(pred["p_positive"])
    assert len(p) == len(pred["ids"]) == 40 and ((p >= 0) & (p <= 1)).all()
    assert pred["predicted"] == [int(v) for v in p >= 0.5]  # class indices: 1 = "present"
    np.testing.assert_allclose(pred["confidence"], np.maximum(p, 1 - p), atol=1e-6)
    schema = json.loads(files("audit").joinpath("schema/results.schema.json").read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_multilabel_audit_from_a_labels_column(tmp_path):
    y = (np.random.default_rng(2).random((160, 3)) < 0.45).astype(np.int64)
    imgs = _squares(160, y)
    model = _train(imgs[:110], y[:110], 3)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    names = ["top", "bottom", "centre"]
    rows = [["|".join(n for n, on in zip(names, r, strict=True) if on)] for r in y[110:]]
    (tmp_path / "pack.toml").write_text('[[rule]]\nid = "worst-auroc"\nkind = "metric_min"\nmetric = "min_auroc"\n'
                                        'threshold = 0.8\n[[rule]]\nid = "top-sens"\nkind = "metric_min"\n'
                                        'metric = "sensitivity:top"\nthreshold = 0.5\n')
    _write_set(tmp_path, imgs[110:], rows, ["path", "labels"], "num_classes = 3", str(names).replace("'", '"'),
               '[rules]\npack = "pack.toml"\n')
    res = runner.invoke(app, ["run", str(tmp_path / "audit.toml"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["provenance"]["model"]["task"] == "multilabel"
    truth = np.array(doc["predictions"]["labels"])
    assert np.array_equal(truth, y[110:])
    per = {p["label"]: p for p in doc["metrics"]["per_label"]}
    scores = np.array(doc["predictions"]["scores"])
    for j, n in enumerate(names):
        assert per[n]["auroc"] == pytest.approx(roc_auc_score(y[110:, j], scores[:, j]), abs=1e-5)
    assert {r["id"]: r["status"] for r in doc["rules"]} == {"worst-auroc": "pass", "top-sens": "pass",
                                                            "evidence-complete": "pass"}
    explained = {p["explains"] for cat in doc["samples"]["per_class"].values() for ps in cat.values() for p in ps}
    assert explained == set(names)  # every label's picks explain that label
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Label co-occurrence" in html
    again = runner.invoke(app, ["run", str(tmp_path / "audit.toml"), "--out", str(tmp_path / "again"),
                                "--baseline", str(tmp_path / "out"), "--set", 'report.formats=["json"]'])
    assert again.exit_code == 0, again.output
    comp = json.loads((tmp_path / "again" / "results.json").read_text())["comparison"]
    assert comp["paired"] and comp["flips"]["to_wrong"] == comp["flips"]["to_right"] == 0
    assert comp["metrics"]["macro_auroc"]["delta"] == 0 and comp["metrics"]["macro_auroc"]["delta_ci95"] == [0, 0]


def test_label_plus_per_class_columns_needs_the_task_named(tmp_path):
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    imgs = _squares(4, y)
    save_file({k: v.contiguous() for k, v in DemoCNN(num_classes=2, width=4).state_dict().items()},
              str(tmp_path / "w.safetensors"))
    _write_set(tmp_path, imgs, [["top", *r] for r in y], ["path", "label", "top", "bottom"], "num_classes = 2",
               '["top", "bottom"]')
    res = runner.invoke(app, ["run", str(tmp_path / "audit.toml"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and 'set model.task = "multilabel"' in res.output
    res = runner.invoke(app, ["run", str(tmp_path / "audit.toml"), "--out", str(tmp_path / "out"),
                              "--set", 'model.task="multilabel"', "--set", 'rules.pack="ci-gate"'])
    assert res.exit_code == 2 and "does not apply to task 'multilabel'" in res.output  # class_recall_min
    res = runner.invoke(app, ["run", str(tmp_path / "audit.toml"), "--out", str(tmp_path / "out"),  # the task's own
                              "--set", 'model.task="multilabel"', "--set", 'rules.pack="default"',
                              "--set", 'model.output_kind="logits"', "--set", 'report.formats=["json"]'])
    assert res.exit_code in (0, 1), res.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["provenance"]["rule_pack"]["name"] == "default-multilabel"
    assert "single_label" not in MultilabelTask.provides
