"""Property test over hostile inputs: whatever the manifest, labels, class names and config values, `audit run` ends
with exit 0, 1 or 2, prints no traceback, writes JUnit that validates, JSON that parses and Markdown that renders
inert, and touches no file outside --out."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))
from report_helpers import HOSTILE, check_inert, check_junit

from audit.cli import app

N = 9  # images in each generated set (three per class when the labels are the classes)

# text a user's data can hold: hostile samples, odd unicode, digits of other scripts, whitespace, near-numbers
odd_text = st.one_of(
    st.sampled_from([*HOSTILE, "²", "٣", "1_0", " ", "", "nan", "-1", "3", "0x1", "1e3", "ﬁ", "A\u0301"]),
    st.text(min_size=0, max_size=12),
)
class_name = st.one_of(st.sampled_from(["left", "middle", "right"]), odd_text)
toml_value = st.one_of(st.integers(-5, 70000), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                       st.text(max_size=6), st.lists(st.integers(-2, 300), max_size=3))


def _toml_str(s: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped, everything else literal UTF-8."""
    esc = "".join("\\\\" if c == "\\" else '\\"' if c == '"' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F
                  else c for c in s)
    return f'"{esc}"'


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if math.isnan(v) else repr(v))
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return str(v)


def _clean(s: str) -> str:
    return s.strip()


def _utf8(s: str) -> bool:
    try:
        s.encode("utf-8")  # a lone surrogate cannot be written to a TOML or CSV file at all
        return True
    except UnicodeEncodeError:
        return False


@st.composite
def audits(draw: st.DrawFn) -> dict:
    """Half the draws are audits that should run (hostile strings only where any string is allowed: class names,
    ids, metadata); the other half also break labels, ROI numbers and config values."""
    valid = draw(st.booleans())
    name = class_name.map(_clean).filter(bool).filter(_utf8) if valid else class_name.filter(_utf8)
    classes = draw(st.lists(name, min_size=3, max_size=3, unique=True))  # the tiny model has three outputs
    labels = [classes[i % len(classes)] for i in range(N)]
    if not valid:
        labels = [draw(st.one_of(st.sampled_from(classes), odd_text)) if draw(st.booleans()) else lab
                  for lab in labels]
    ids = draw(st.one_of(st.none(), st.lists(odd_text.map(_clean).filter(bool).filter(_utf8), min_size=N, max_size=N,
                                             unique=True) if valid else st.lists(odd_text, min_size=N, max_size=N)))
    site = draw(st.lists(odd_text, min_size=N, max_size=N))
    numbers = ["0", "2", "8", "31"] if valid else ["0", "2", "8", "31", "40", "-1", "x", "nan"]
    box = st.tuples(*[st.sampled_from(numbers)] * 4).map(list)
    if valid:
        box = st.tuples(st.integers(0, 10), st.integers(0, 10), st.integers(12, 32), st.integers(12, 32)).map(
            lambda b: [str(v) for v in b])
    roi = draw(st.one_of(st.none(), st.lists(box, min_size=N, max_size=N)))
    key = draw(st.sampled_from(["data.batch_size", "data.image_size", "seed", "selection.k", "data.mean",
                                "explainers.batch_size", "data.on_bad_image", "name", "data.subgroups"]))
    override = f"{key}={_toml(draw(toml_value))}" if not valid and draw(st.booleans()) else None
    return {"classes": classes, "labels": labels, "ids": ids, "site": site, "roi": roi, "override": override}


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _write(root: Path, template: Path, a: dict) -> Path:
    shutil.copytree(template / "img", root / "img")
    shutil.copy(template / "weights.safetensors", root)
    header = ["path", "label", "site"] + (["id"] if a["ids"] is not None else []) + (
        ["roi_x0", "roi_y0", "roi_x1", "roi_y1"] if a["roi"] is not None else [])
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8", errors="surrogatepass") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(N):
            row = [f"img/{i:03d}.png", a["labels"][i], a["site"][i]]
            row += [a["ids"][i]] if a["ids"] is not None else []
            row += a["roi"][i] if a["roi"] is not None else []
            w.writerow(row)
    text = (template / "audit.toml").read_text().replace(
        'classes = ["left", "middle", "right"]', "classes = [" + ", ".join(_toml_str(c) for c in a["classes"]) + "]")
    (root / "audit.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
    return root / "audit.toml"


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(a=audits())
@example(a={"classes": ["left", "middle", "a\x1bb\x00c\x7f"], "labels": ["left", "middle", "a\x1bb\x00c\x7f"] * 3,
            "ids": None, "site": ["a\x1bb\x00c\x7f"] * 8 + ["\x00"], "roi": None, "override": None})  # a NUL subgroup
def test_any_input_ends_cleanly(a, property_template):
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        inputs = tmp_path / "inputs"
        inputs.mkdir()
        config = _write(inputs, property_template, a)
        before = _snapshot(tmp_path)
        out = tmp_path / "out"
        args = ["run", str(config), "--out", str(out)] + (["--set", a["override"]] if a["override"] else [])
        res = CliRunner().invoke(app, args)
        assert res.exit_code in (0, 1, 2), (res.exit_code, res.output, a)
        event(f"exit {res.exit_code}")
        assert "Traceback" not in res.output and "internal error" not in res.output, (res.output, a)
        if res.exit_code == 2:
            lines = [ln for ln in res.output.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("error: "), res.output
            assert not out.exists()
        else:
            results = json.loads((out / "results.json").read_text(encoding="utf-8"))
            check_junit((out / "report.junit.xml").read_text(encoding="utf-8"), results)
            check_inert((out / "summary.md").read_text(encoding="utf-8"))
        after = _snapshot(tmp_path)
        assert {k: v for k, v in after.items() if not k.startswith("out")} == before, "a file outside --out changed"


def test_the_property_test_reaches_both_outcomes(property_template, tmp_path):
    """A clean draw audits (exit 0/1) and a hostile label is refused (exit 2): the property is not vacuous."""
    good = {"classes": ["left", "middle", "right"], "labels": ["left", "middle", "right"] * 3, "ids": None,
            "site": ["a", "b", "c"] * 3, "roi": None, "override": None}
    for name, a, codes in (("good", good, (0, 1)), ("bad", {**good, "labels": ["²"] * N}, (2,))):
        (tmp_path / name).mkdir()
        res = CliRunner().invoke(app, ["run", str(_write(tmp_path / name, property_template, a)), "--out",
                                       str(tmp_path / name / "out")])
        assert res.exit_code in codes, res.output
