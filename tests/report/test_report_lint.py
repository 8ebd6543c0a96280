"""The report lint (tests/report/lint.py) over every report the demos make: the clean multiclass twin, the gate (the
confounded model against it), the multi-label, segmentation and anomaly demos: subjects named everywhere, exports
valid, flags on the cover and in summary.md, picks named by the task, every chart drawn in the PDF, no overflow
and no text under 11 px (screen) or 8 pt (print), axe-core without serious or critical violations. Each demo report
is built once per session (tests/conftest.py ``demo_report``, shared with tests/demo); one headless Chromium serves
every page.

Screenshots at 1400 and 420 px go to reports/browser/lint-<demo>-<width>.png (git-ignored; kept as CI artifacts).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import Browser, require_browser
from lint import (
    A4_TEXT_WIDTH_PX,
    axe_serious,
    chart_problems,
    detail_problems,
    export_problems,
    flag_problems,
    layout_problems,
    measure,
    pick_problems,
    subject_problems,
)

DEMOS = ("clean", "gate", "multilabel", "segmentation", "anomaly")
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "browser"


@pytest.fixture(scope="module")
def browser():
    with Browser(require_browser()) as b:
        yield b


@pytest.fixture(scope="module", params=DEMOS)
def demo(request, demo_report) -> Path:
    run = demo_report(request.param)
    assert run.exit_code in (0, 1), run.output  # a verdict, not an input or internal error
    return run.folder


#: each check of tests/report/lint.py that reads the report folder alone; every one returns its problems
FOLDER_CHECKS = {
    "subjects": subject_problems,  # every blocking finding names what it judged, in every output
    "exports": export_problems,  # results.json, JUnit, the model card against their formats
    "flags": flag_problems,  # summary.md and the cover carry every flag
    "picks": pick_problems,  # picks named by the task
    "charts": chart_problems,  # every chart drawn in the PDF
    "details": detail_problems,  # the class filter's order, the flips caption
}


@pytest.mark.parametrize("check", FOLDER_CHECKS)
def test_report_folder_passes_the_lint(demo, check):
    assert FOLDER_CHECKS[check](demo) == []


@pytest.mark.parametrize(("width", "media"), [(1400, "screen"), (420, "screen"), (A4_TEXT_WIDTH_PX, "print")],
                         ids=["1400px", "420px", "A4-print"])
def test_fits_and_text_is_large_enough(browser, demo, width, media):
    m = measure(browser, demo / "report.html", width, media)
    assert m["n_text"] > 50 and m["n_svg_text"] > 5, m  # the measure saw the page and its charts
    assert layout_problems(m) == []
    if media == "screen":
        path = browser.screenshot(SHOTS / f"lint-{demo.name}-{width}.png")
        print(f"screenshot: {path}")


def test_no_serious_accessibility_violation(browser, demo):
    assert axe_serious(browser, demo / "report.html") == []
