"""Data-level confounder checks: properties against hand-made images with known answers, the property-alone AUC
with its interval, duplicates and train/held-out overlap, the two rule kinds, and the stage in `audit run`."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from audit.cli import app
from audit.datachecks import run_datachecks
from audit.datachecks.duplicates import exact_hash, phash, same_picture, thumbnail
from audit.datachecks.predictive import delong, property_aucs
from audit.datachecks.properties import image_properties, jpeg_table_quality, pixel_properties
from audit.loading.decode import DecodeOptions
from audit.loading.records import SampleRecord
from audit.products import Picks, Predictions
from audit.rules.data_confounder import DataConfounder
from audit.rules.data_duplicates import DataDuplicates
from audit.rules.evidence import Evidence

RNG = np.random.default_rng(0)


def noisy(sigma: float, size: int = 64, base: float = 0.5, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    return np.clip(base + g.normal(0, sigma, (size, size, 3)), 0, 1)


def test_pixel_properties_known_answers() -> None:
    flat = np.full((40, 60, 3), 0.25)
    p = pixel_properties(flat)
    assert p["brightness"] == pytest.approx(0.25) and p["contrast"] == pytest.approx(0.0, abs=1e-12)
    assert p["colour_red_blue"] == pytest.approx(0.0) and p["border_darkness"] == pytest.approx(0.0)
    # Immerkær's estimate recovers the noise sigma (grey noise: the same in every channel)
    g = np.random.default_rng(1).normal(0, 0.05, (128, 128))
    grey = np.repeat(np.clip(0.5 + g, 0, 1)[..., None], 3, axis=2)
    assert pixel_properties(grey)["noise"] == pytest.approx(0.05, rel=0.1)
    # blur lowers sharpness and noise; a letterbox darkens the border; a tint moves the red-blue balance
    img = noisy(0.08)
    blurred = gaussian_filter(img, (1.5, 1.5, 0))
    assert pixel_properties(blurred)["sharpness"] < pixel_properties(img)["sharpness"] - 1
    assert pixel_properties(blurred)["noise"] < 0.5 * pixel_properties(img)["noise"]
    boxed = img.copy()
    boxed[:6] = 0
    boxed[-6:] = 0
    assert pixel_properties(boxed)["border_darkness"] > 0.2
    tinted = img.copy()
    tinted[..., 0] += 0.1
    assert pixel_properties(tinted)["colour_red_blue"] == pytest.approx(pixel_properties(img)["colour_red_blue"]
                                                                        + 0.1, abs=0.01)
    # a context mask: the object (a bright square) does not count
    obj = np.full((64, 64, 3), 0.3)
    obj[20:44, 20:44] = 0.9
    ctx = np.ones((64, 64), dtype=bool)
    ctx[16:48, 16:48] = False
    assert pixel_properties(obj, ctx)["brightness"] == pytest.approx(0.3)


@pytest.mark.parametrize("quality", [10, 35, 75, 95])
def test_jpeg_quality_and_blockiness(tmp_path, quality: int) -> None:
    u8 = (noisy(0.1, 96, seed=quality) * 255).astype(np.uint8)
    path = tmp_path / f"q{quality}.jpg"
    Image.fromarray(u8).save(path, quality=quality)
    props, _ = image_properties(path, 3, DecodeOptions())
    assert props["file_format"] == "JPEG" and props["bit_depth"] == "8"
    assert abs(props["jpeg_quality"] - quality) <= 3
    png = tmp_path / "same.png"
    Image.fromarray(u8).save(png)
    p_png, _ = image_properties(png, 3, DecodeOptions())
    assert math.isnan(p_png["jpeg_quality"]) and p_png["file_format"] == "PNG"
    if quality <= 35:
        assert props["blockiness"] > p_png["blockiness"] + 0.1
    assert jpeg_table_quality(np.full(64, 1)) == 100.0


def test_delong_matches_sklearn_and_covers_chance() -> None:
    g = np.random.default_rng(3)
    y = g.random(400) < 0.3
    s = g.normal(0, 1, 400) + y * 1.0
    auc, se = delong(s, y)
    assert auc == pytest.approx(roc_auc_score(y, s)) and 0.01 < se < 0.05
    # a property with no information: AUC about 0.5 (out-of-fold estimates lean slightly below), never flagged
    values = g.normal(0, 1, 600)
    targets = np.eye(3)[g.integers(0, 3, 600)]
    for r in property_aucs(values, targets, categorical=False, seed=0):
        assert 0.4 < r["auc"] < 0.6 and r["ci95"][0] < 0.55
    # a property that separates one class, not monotonically (that class sits in the middle)
    lab = g.integers(0, 3, 600)
    v = np.where(lab == 1, 0.0, np.where(g.random(600) < 0.5, -2.0, 2.0)) + g.normal(0, 0.2, 600)
    res = property_aucs(v, np.eye(3)[lab], categorical=False, seed=0)
    assert res[1]["auc"] > 0.95 and res[1]["ci95"][0] > 0.9


def picture(seed: int, size: int = 48) -> np.ndarray:
    """A structured picture: a smooth random field, a bright disc at a random place, mild noise."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    field = 0.4 + 0.2 * np.sin(2 * np.pi * (g.random() * xx + g.random() * yy + g.random()))
    cy, cx = g.uniform(0.25, 0.75, 2)
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < 0.03
    img = field + 0.35 * disc + g.normal(0, 0.02, (size, size))
    return np.repeat(np.clip(img, 0, 1)[..., None], 3, axis=2)


def test_duplicates_exact_near_and_distinct() -> None:
    a = picture(1)
    buf = io.BytesIO()
    Image.fromarray((a * 255).astype(np.uint8)).save(buf, format="JPEG", quality=80)
    a_jpeg = np.asarray(Image.open(buf), dtype=np.float64) / 255
    b = picture(2)
    assert exact_hash(a) == exact_hash(a.copy()) != exact_hash(a_jpeg)
    dist = lambda x, y: int(np.unpackbits(phash(x) ^ phash(y)).sum())
    assert dist(a, a_jpeg) <= 4 and same_picture(thumbnail(a), thumbnail(a_jpeg))
    assert not same_picture(thumbnail(a), thumbnail(b))


def _write(tmp_path, images: list[np.ndarray], labels: list[int], folder: str = "img") -> list[SampleRecord]:
    (tmp_path / folder).mkdir(exist_ok=True)
    recs = []
    for i, (im, lab) in enumerate(zip(images, labels, strict=True)):
        p = tmp_path / folder / f"{i:03d}.png"
        Image.fromarray((np.clip(im, 0, 1) * 255).astype(np.uint8)).save(p)
        recs.append(SampleRecord(id=f"{folder}/{i:03d}", path=p, label=lab))
    return recs


@pytest.fixture(scope="module")
def confounded_set(tmp_path_factory):
    """60 images, 3 classes; class 2 is brighter (a site-like shift) and one picture is filed under two labels."""
    tmp = tmp_path_factory.mktemp("dc")
    labels = [i % 3 for i in range(60)]
    images = [noisy(0.05, 32, base=0.65 if lab == 2 else 0.45, seed=i) for i, lab in enumerate(labels)]
    images[59] = images[0].copy()  # labels[59] == 2, labels[0] == 0
    meta = pd.DataFrame({"site": ["A" if (lab == 1) == (i % 10 != 0) else "B" for i, lab in enumerate(labels)],
                         "patient": [f"p{i}" for i in range(60)]})
    recs = _write(tmp, images, labels)
    train = _write(tmp, [images[5], noisy(0.05, 32, seed=999)], [2, 0], folder="train")
    return recs, meta, train


def test_stage_flags_property_metadata_and_duplicates(confounded_set) -> None:
    recs, meta, train = confounded_set
    dc = run_datachecks(recs, ("a", "b", "c"), meta, 3, DecodeOptions(), seed=0, train_records=train)
    best = {p.name: p.best() for p in dc.properties}
    assert best["brightness"]["group"] == "c" and best["brightness"]["ci95"][0] > 0.8
    assert best["site"]["group"] == "b" and best["site"]["auc"] > 0.8
    assert dc.property("patient").note.startswith("60 distinct values")  # an identifier is not tested
    assert dc.n_cross_class_duplicates == 1 and dc.cross_class_duplicates[0].kind == "exact"
    assert {dc.cross_class_duplicates[0].a, dc.cross_class_duplicates[0].b} == {"img/000", "img/059"}
    assert dc.train["n_heldout_overlapping"] == 1 and dc.train["examples"][0]["heldout"] == "img/005"
    json.dumps(dc.as_dict())


def _evidence(dc) -> Evidence:
    n = dc.n_images
    preds = Predictions(ids=np.array([f"x{i}" for i in range(n)], dtype=object), labels=np.zeros(n, dtype=np.int64),
                        probs=np.full((n, 3), 1 / 3), metadata=pd.DataFrame(index=range(n)))
    return Evidence(classes=("a", "b", "c"), predictions=preds, metrics=None, picks=Picks({}, {}), probe=None,  # type: ignore[arg-type]
                    data=dc)


def test_rules_judge_the_product(confounded_set) -> None:
    recs, meta, _train = confounded_set
    dc = run_datachecks(recs, ("a", "b", "c"), meta, 3, DecodeOptions(), seed=0)
    ev = _evidence(dc)
    f = DataConfounder(DataConfounder.Params(id="dc", kind="data_confounder")).check(ev)[0]
    assert f.status == "warn" and f.severity == "warning" and f.details["criterion"]["direction"] == "above"
    assert f.message.startswith("property AUC (lower end of the 95 % interval) ")
    assert {(x["property"], x["group"]) for x in f.details["flagged"]} >= {("brightness", "c"), ("site", "b")}
    f = DataConfounder(DataConfounder.Params(id="dc", kind="data_confounder", exclude=["site", "brightness",
                                                                                      "contrast"])).check(ev)[0]
    assert all(x["property"] not in ("site", "brightness") for x in f.details["flagged"])
    dup = DataDuplicates(DataDuplicates.Params(id="d", kind="data_duplicates")).check(ev)[0]
    assert dup.status == "fail" and dup.value == 1 and "img/059" in dup.sample_ids
    leak = DataDuplicates(DataDuplicates.Params(id="l", kind="data_duplicates", check="train_overlap")).check(ev)[0]
    assert leak.status == "not_applicable" and not leak.blocking and "train_manifest" in leak.message
    assert DataConfounder(DataConfounder.Params(id="x", kind="data_confounder")).check(
        Evidence(classes=("a",), predictions=ev.predictions, metrics=None, picks=Picks({}, {}),  # type: ignore[arg-type]
                 probe=None))[0].status == "not_applicable"


def test_audit_run_reports_the_data_checks(tmp_path, tiny_model, make_setup) -> None:
    """The stage runs inside `audit run` (before the model), and results.json and the report show it."""
    setup = make_setup(tmp_path / "tiny", tiny_model, pack="shortcuts",
                       extra="")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(setup.config), "--out", str(out), "--set", "cache.enabled=false",
                                   "--set", 'report.formats=["html","json","junit"]'])
    assert res.exit_code in (0, 1), res.output
    doc = json.loads((out / "results.json").read_text())
    dcs = doc["data_checks"]
    assert dcs["n_images"] == 45 and {p["name"] for p in dcs["properties"]} >= {"brightness", "sharpness", "site"}
    rules = {r["id"]: r for r in doc["rules"]}
    assert rules["train-heldout-overlap"]["status"] == "not_applicable"
    assert doc["summary"]["rules"]["not_applicable"] >= 1
    assert "train-heldout-overlap" not in doc["summary"]["blocking"]
    html = (out / "report.html").read_text()
    assert 'id="datachecks"' in html and "Does an image property or a metadata column alone predict" in html
    assert "sanity-curves" in html
