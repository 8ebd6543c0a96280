"""data.on_bad_image = "skip": unreadable images are left out, listed in results.json and the report, and the
default pack's `unreadable-images` rule (skipped_max, threshold 0) fails the audit, so a report with skipped
images never reads as a pass by default."""

from __future__ import annotations

import json

import pytest
from badinput_helpers import FAST, drop_sections, forged_bomb_png, invoke, leftovers, truncate

BAD = {3: "zero bytes", 10: "truncated", 20: "decompression bomb"}


@pytest.fixture(scope="module")
def skip_run(make_setup, tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("skip")
    s = make_setup(root / "tiny", tiny_model)
    text = drop_sections(s.config.read_text(), ("views", "cache", "report")) + FAST
    text = text.replace('formats = ["json"]', 'formats = ["html", "json", "junit"]')
    s.config.write_text(text.replace("channels = 1", 'channels = 1\non_bad_image = "skip"'))
    img = s.root / "img"
    (img / "003.png").write_bytes(b"")
    truncate(img / "010.png", 0.6)
    forged_bomb_png(img / "020.png")
    out = root / "report"
    return invoke("run", s.config, "--out", out), out, s


def test_skipped_images_fail_the_default_pack(skip_run):
    res, out, _ = skip_run
    assert res.exit_code == 1, res.output
    assert "FAIL unreadable-images: 3 of 45 listed images skipped" in res.output
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"] == "fail"
    assert results["summary"]["blocking"] == ["unreadable-images"]  # the only reason: the model itself is fine
    rule = next(r for r in results["rules"] if r["id"] == "unreadable-images")
    assert rule["status"] == "fail" and rule["value"] == pytest.approx(3 / 45, rel=1e-4) and rule["threshold"] == 0
    assert results["summary"]["n_samples"] == 42
    assert results["provenance"]["data"]["n_skipped"] == 3
    assert not leftovers(out)[1:]


def test_skipped_images_are_listed_with_reasons(skip_run):
    _, out, _ = skip_run
    skipped = json.loads((out / "results.json").read_text())["skipped"]
    by_name = {entry["path"].rsplit("/", 1)[-1]: entry["reason"] for entry in skipped}
    assert set(by_name) == {"003.png", "010.png", "020.png"}
    assert "not a readable image" in by_name["003.png"]
    assert "truncated" in by_name["010.png"]
    assert "decompression bomb" in by_name["020.png"]
    for i, reason in zip((3, 10, 20), (by_name["003.png"], by_name["010.png"], by_name["020.png"]), strict=True):
        assert f"manifest.csv row {i + 2}" in reason  # the reason names the manifest row
    ids = json.loads((out / "results.json").read_text())["predictions"]["ids"]
    assert not {"img/003.png", "img/010.png", "img/020.png"} & set(ids)


def test_skipped_images_are_in_the_report_and_junit(skip_run):
    _, out, s = skip_run
    html = (out / "report.html").read_text()
    assert "Skipped images" in html and "3 listed image(s) were skipped" in html
    for name in ("003.png", "010.png", "020.png"):
        assert str(s.root / "img" / name) in html
    junit = (out / "report.junit.xml").read_text()
    assert "unreadable-images" in junit and "<failure" in junit
