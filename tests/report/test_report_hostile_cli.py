"""End to end through the CLI: a class name with a control character, a Markdown image and an <img> tag (and
sample ids and model metadata holding the same) gives a JUnit file that parses and validates and a summary.md
that renders inert."""

from __future__ import annotations

import csv
import json

from report_helpers import IMG_TAG, MD_IMAGE, check_inert, check_junit
from typer.testing import CliRunner

from audit.cli import app
from audit.report.writers.text import md_text, visible

HOSTILE_CLASS = f"bad\x1b{MD_IMAGE}{IMG_TAG}"
PACK = """
[pack]
name = "hostile"
[[rule]]
id = "class-recall-floor"
kind = "class_recall_min"
threshold = 0.8
[[rule]]
id = "class-recall-soft"
kind = "class_recall_min"
threshold = 0.8
severity = "warning"
[[rule]]
id = "accuracy-floor"
kind = "metric_min"
metric = "accuracy"
threshold = 0.5
"""


def test_hostile_class_name_through_the_cli(tiny, tmp_path):
    q = json.dumps  # a JSON string is a valid TOML basic string
    text = tiny.config.read_text().replace('"left", "middle", "right"', f'{q(HOSTILE_CLASS)}, "middle", "right"')
    text = text.replace("[model]\n", f"[model]\nname = {q(IMG_TAG)}\nversion = {q(MD_IMAGE)}\n")
    tiny.config.write_text(text)
    with tiny.manifest.open(newline="") as fh:
        header, *rows = list(csv.reader(fh))
    swap = {"left": "middle", "middle": HOSTILE_CLASS}  # the model now gets both classes wrong: the rules fail
    with tiny.manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*header, "id"])
        w.writerows([[r[0], swap.get(r[1], r[1]), *r[2:], f"{i:03d}{HOSTILE_CLASS}"] for i, r in enumerate(rows)])
    pack = tmp_path / "hostile.toml"
    pack.write_text(PACK)
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["run", str(tiny.config), "--out", str(out), "--rules", str(pack),
                                   "--set", 'report.formats=["json","junit"]', "--set", "cache.enabled=false"])
    assert res.exit_code in (0, 1), res.output
    assert "Traceback" not in res.output
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["classes"][0] == HOSTILE_CLASS
    statuses = {r["id"]: r["status"] for r in results["rules"]}
    assert statuses["class-recall-floor"] == "fail" and statuses["class-recall-soft"] == "warn"

    xml = (out / "report.junit.xml").read_bytes().decode("utf-8")
    root = check_junit(xml, results)
    failure = root.find(".//testcase[@name='class-recall-floor']/failure")
    assert visible(HOSTILE_CLASS) in failure.get("message")  # shown, control character made visible
    assert "\x1b" not in xml
    warned = root.find(".//testcase[@name='class-recall-soft']/system-err")  # a warning passes, said in system-err
    assert warned.text.startswith("WARNING (does not block the release): ") and visible(HOSTILE_CLASS) in warned.text
    assert "model.name" in {p.get("name") for p in root.iter("property")}

    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "\x1b" not in summary
    assert md_text(HOSTILE_CLASS) in summary  # the hostile name reached the summary, escaped
    assert md_text(IMG_TAG) in summary  # model name
    pages = check_inert(summary)
    assert all("bad\\x1b![x](http" in page for page in pages)  # rendered as text
