"""`audit run` on an inspection set: the clean detector (its map fires on scratches) passes, the detector that
keys on the fixture mark fails the map-on-defect rule although its image AUROC is perfect on this confounded set;
bad masks stop the run with exit 2 naming the file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score
from task_helpers import parts_config, run_audit_cli, valid


@pytest.fixture(scope="module")
def audits(parts_set, tmp_path_factory):
    out = {}
    for det in ("local", "fixture"):
        root = tmp_path_factory.mktemp(det)
        shutil.copytree(parts_set, root, dirs_exist_ok=True)
        res = run_audit_cli(parts_config(root, det), root / "out")
        out[det] = (res, json.loads((root / "out" / "results.json").read_text()), root)
    return out


def test_clean_detector_passes_with_image_and_pixel_metrics(audits):
    res, doc, _ = audits["local"]
    assert res.exit_code == 0, res.output
    m = doc["metrics"]
    assert m["auroc"] == pytest.approx(1.0) and m["pixel"]["pixel_auroc"] > 0.95 and m["pixel"]["aupro"] > 0.9
    assert m["operating_point"]["source"] == "chosen on the held-out set (f1)"
    assert m["pixel"]["n_regions"] == sum(1 for lab in doc["predictions"]["labels"] if lab == 1)  # one scratch each
    scores = np.array(doc["predictions"]["score"])
    labels = np.array(doc["predictions"]["labels"])
    assert m["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert m["auprc"] == pytest.approx(average_precision_score(labels, scores))
    rules = {r["id"]: r["status"] for r in doc["rules"]}
    assert rules["map-on-defect"] == "pass"
    ex = {e["name"]: e["status"] for e in doc["explainers"]}
    assert ex == {"anomaly_map": "ok", "gradcam": "ok"}


def test_fixture_detector_is_caught(audits):
    res, doc, _ = audits["fixture"]
    assert res.exit_code == 1, res.output
    assert doc["metrics"]["auroc"] > 0.95  # the confounded set hides it from the image metrics
    rule = next(r for r in doc["rules"] if r["id"] == "map-on-defect")
    assert rule["status"] == "fail"
    assert doc["metrics"]["pixel"]["aupro"] < 0.5  # the map is not on the defects


def test_report_shows_scores_and_threshold(audits):
    _, _, root = audits["local"]
    html = (root / "out" / "report.html").read_text()
    assert "Anomaly scores" in html and "AUPRO" in html and "chosen on the held-out set" in html


def test_score_only_model_says_pixel_metrics_are_unavailable(parts_set, tmp_path):
    shutil.copytree(parts_set, tmp_path, dirs_exist_ok=True)
    cfg = parts_config(tmp_path, "local")
    cfg.write_text(cfg.read_text().replace('factory = "audit.demo.inspection:build"',
                                           'factory = "score_only:build"'))
    (tmp_path / "score_only.py").write_text(
        "import torch\nfrom audit.demo.inspection import LocalDeviation\n\n"
        "class ScoreOnly(LocalDeviation):\n    def forward(self, x):\n"
        "        return super().forward(x).amax(dim=(1, 2, 3))\n\n"
        "def build(num_classes=2, detector='local'):\n    return ScoreOnly()\n")
    res = run_audit_cli(cfg, tmp_path / "out", "--set", 'rules.pack="default"')
    assert res.exit_code in (0, 1), res.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    px = doc["metrics"]["pixel"]
    assert px["available"] is False and "map" in px["reason"]
    ex = {e["name"]: e for e in doc["explainers"]}
    assert ex["anomaly_map"]["status"] == "unavailable" and ex["anomaly_map"]["reason"]



def test_results_follow_the_schema(audits):
    for _, doc, _ in audits.values():
        assert valid(doc) == []


def _break_mask(root, how):
    rows = (root / "manifest.csv").read_text().splitlines()
    first = next(r for r in rows[1:] if r.split(",")[2])
    path = root / first.split(",")[2]
    if how == "rgb":
        Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(path)
    elif how == "size":
        Image.fromarray(np.zeros((40, 48), np.uint8)).save(path)
    else:
        path.unlink()
    return first.split(",")[2]


@pytest.mark.parametrize(("how", "words"), [("rgb", "mode RGB"), ("size", "48x40 but the image is 48x48"),
                                             ("missing", "")])
def test_bad_defect_masks_stop_therun_audit_cli(parts_set, tmp_path, how, words):
    shutil.copytree(parts_set, tmp_path, dirs_exist_ok=True)
    name = _break_mask(tmp_path, how)
    res = run_audit_cli(parts_config(tmp_path, "local"), tmp_path / "out")
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and name in lines[0] and words in lines[0], res.output
    assert not (tmp_path / "out").exists()


def test_defect_masks_on_a_classifier_are_refused(parts_set, tmp_path):
    shutil.copytree(parts_set, tmp_path, dirs_exist_ok=True)
    res = run_audit_cli(parts_config(tmp_path, "local"), tmp_path / "out", "--set", 'model.task="binary"')
    assert res.exit_code == 2 and "mask" in res.output, res.output
