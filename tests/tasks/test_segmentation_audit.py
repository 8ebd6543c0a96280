"""`audit run` on a segmentation set with hand-built networks: the clean one (it reads each pixel's brightness)
passes every rule; the one that tells squares from discs by the background stripes segments just as well on this
set but fails the context-attribution rule. Metrics are recomputed here from the masks and the model's own
output; bad masks stop the run with exit 2 naming the file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import jaccard_score
from task_helpers import run_audit_cli, seg_config, valid

from audit.demo.segment import HandBuilt


@pytest.fixture(scope="module")
def audits(seg_set, tmp_path_factory):
    out = {}
    for name, context in (("clean", False), ("context", True)):
        root = tmp_path_factory.mktemp(name)
        shutil.copytree(seg_set, root, dirs_exist_ok=True)
        res = run_audit_cli(seg_config(root, context), root / "out", "--set", 'report.formats=["html","json","junit","pdf"]')
        out[name] = (res, json.loads((root / "out" / "results.json").read_text()), root)
    return out


def test_metrics_match_a_recomputation(audits, seg_set):
    _, doc, _ = audits["clean"]
    rows = (seg_set / "manifest.csv").read_text().splitlines()[1:]
    x = torch.from_numpy(np.stack([np.asarray(Image.open(seg_set / r.split(",")[0]), np.float32) / 255 for r in rows]))
    truth = np.stack([np.asarray(Image.open(seg_set / r.split(",")[1])) for r in rows]).ravel()
    with torch.no_grad():
        pred = HandBuilt(False)(x[:, None]).argmax(1).numpy().ravel()
    m = doc["metrics"]
    assert m["mean_iou"] == pytest.approx(jaccard_score(truth, pred, average="macro"), abs=1e-6)
    per = {c["class"]: c for c in m["per_class"]}
    for i, name in enumerate(("background", "disc", "square")):
        assert per[name]["iou"] == pytest.approx(jaccard_score(truth == i, pred == i), abs=1e-6)
        assert per[name]["pixels_true"] == int((truth == i).sum())
    assert doc["confusion_matrix"]["unit"] == "pixels"


def test_clean_passes_and_context_shortcut_fails(audits):
    res, doc, _ = audits["clean"]
    assert res.exit_code == 0, res.output
    status = {r["id"]: r["status"] for r in doc["rules"]}
    assert status["context-attribution"] == status["context-swap"] == "pass"
    res, doc, _ = audits["context"]
    assert doc["metrics"]["mean_iou"] > 0.9  # it segments this set well: only the explanations show the shortcut
    assert res.exit_code == 1, res.output
    rule = next(r for r in doc["rules"] if r["id"] == "context-attribution")
    assert rule["status"] == "fail" and "square" in rule["message"]
    # the context swap: each image keeps its objects and takes the rest from another image; the shortcut model's
    # classes vanish or appear with the context, the clean model's do not (tests that the sample's "object" for a
    # segmentation is its labelled pixels)
    swap = next(r for r in doc["rules"] if r["id"] == "context-swap")
    assert swap["status"] == "fail" and swap["value"] > 0.5 and swap["criterion"]["name"] == "excess flip rate"
    clean = next(r for r in audits["clean"][1]["rules"] if r["id"] == "context-swap")
    assert clean["value"] < 0.1 and "background (everything outside the object's ROI)" in clean["message"]


def test_report_shows_masks_with_a_legend(audits):
    _, _, root = audits["clean"]
    html = (root / "out" / "report.html").read_text()
    assert "Predicted and true masks" in html and "Mean IoU" in html and "boundary f1" in html.lower()
    assert (root / "out" / "report.pdf").read_bytes().startswith(b"%PDF")



def test_results_follow_the_schema(audits):
    for _, doc, _ in audits.values():
        assert valid(doc) == []


def _first_mask(root):
    return (root / "manifest.csv").read_text().splitlines()[1].split(",")[1]


@pytest.mark.parametrize(("how", "words"), [("value", "value 7 is not a class index"), ("rgb", "mode RGB"),
                                             ("size", "is 48x30 but the image is 48x48")])
def test_bad_label_masks_stop_therun_audit_cli(seg_set, tmp_path, how, words):
    shutil.copytree(seg_set, tmp_path, dirs_exist_ok=True)
    name = _first_mask(tmp_path)
    arr = np.zeros((48, 48), np.uint8)
    if how == "value":
        arr[3, 3] = 7
        Image.fromarray(arr).save(tmp_path / name)
    elif how == "rgb":
        Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(tmp_path / name)
    else:
        Image.fromarray(np.zeros((30, 48), np.uint8)).save(tmp_path / name)
    res = run_audit_cli(seg_config(tmp_path, False), tmp_path / "out")
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and name in lines[0] and words in lines[0], res.output


def test_ignored_pixels_are_left_out(seg_set, tmp_path):
    shutil.copytree(seg_set, tmp_path, dirs_exist_ok=True)
    rows = (tmp_path / "manifest.csv").read_text().splitlines()[1:]
    for r in rows:
        p = tmp_path / r.split(",")[1]
        arr = np.asarray(Image.open(p)).copy()
        arr[:, :4] = 255  # an unlabelled band
        Image.fromarray(arr).save(p)
    res = run_audit_cli(seg_config(tmp_path, False), tmp_path / "out", "--set", 'report.formats=["json"]')
    assert res.exit_code in (0, 1), res.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert sum(c["pixels_true"] for c in doc["metrics"]["per_class"]) == len(rows) * 48 * 44


def test_cache_reuses_outputs_and_a_mask_edit_changes_the_fingerprint(seg_set, tmp_path):
    shutil.copytree(seg_set, tmp_path, dirs_exist_ok=True)
    cfg = seg_config(tmp_path, False)
    cfg.write_text(cfg.read_text().replace("[cache]\nenabled = false\n", ""))
    first = run_audit_cli(cfg, tmp_path / "a", "--set", 'report.formats=["json"]')
    again = run_audit_cli(cfg, tmp_path / "b", "--set", 'report.formats=["json"]')
    assert "reused from the cache" in again.output, again.output
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in "ab")
    assert a["metrics"] == b["metrics"] and first.exit_code == again.exit_code
    name = _first_mask(tmp_path)
    arr = np.asarray(Image.open(tmp_path / name)).copy()
    arr[arr == 1] = 0  # the first image's discs unlabelled as background: same file, different truth
    Image.fromarray(arr).save(tmp_path / name)
    edited = run_audit_cli(cfg, tmp_path / "c", "--set", 'report.formats=["json"]')
    c = json.loads((tmp_path / "c" / "results.json").read_text())
    assert "reused from the cache" not in edited.output
    assert c["provenance"]["data"]["images_sha256"] != a["provenance"]["data"]["images_sha256"]
    assert c["metrics"]["mean_iou"] < a["metrics"]["mean_iou"]
