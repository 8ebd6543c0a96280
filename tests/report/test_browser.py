"""The HTML report in a real browser (headless Debian Chromium over the DevTools protocol, tests/report/browser.py):
it loads from a file:// URL with no console error, no broken image, no request other than the file itself and its
data: images, no horizontal overflow at 1400 and 420 px; the tables filter and sort; the picked samples switch
explainer, opacity, category and class and enlarge on click; keyboard and screen-reader basics hold.

Screenshots are written to reports/browser/ (git-ignored; kept as CI artifacts) and their paths printed.
Without Chromium these tests fail, unless AUDIT_BROWSER=skip is set outside CI (see browser.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from browser import Browser, require_browser
from typer.testing import CliRunner

from audit.cli import app

SHOTS = Path(__file__).resolve().parents[2] / "reports" / "browser"
PACK = """
[pack]
name = "browser-test"
description = "One failing, one warning and passing rules, for the report's filters."
[[rule]]
id = "accuracy-floor"
kind = "metric_min"
metric = "accuracy"
threshold = 0.5
[[rule]]
id = "impossible-accuracy"
kind = "metric_min"
metric = "accuracy"
threshold = 1.01
[[rule]]
id = "soft-calibration"
kind = "metric_max"
metric = "ece"
threshold = 0.0
severity = "warning"
[[rule]]
id = "roi-share"
kind = "roi_attribution"
explainer = "gradcam"
"""


@pytest.fixture(scope="module")
def report(tiny_model, make_setup, tmp_path_factory) -> Path:
    """report.html of one tiny audit: two explainers, a failing, a warning and passing rules, ROIs."""
    root = tmp_path_factory.mktemp("browser")
    setup = make_setup(root / "tiny", tiny_model)
    pack = root / "pack.toml"
    pack.write_text(PACK)
    out = root / "report"
    res = CliRunner().invoke(app, ["run", str(setup.config), "--out", str(out), "--rules", str(pack),
                                   "--set", 'explainers.methods=["gradcam","integrated_gradients"]',
                                   "--set", 'report.formats=["html","json","pdf"]'], catch_exceptions=False)
    assert res.exit_code == 1, res.output  # impossible-accuracy blocks
    return out / "report.html"


@pytest.fixture(scope="module")
def browser():
    with Browser(require_browser()) as b:
        yield b


def _load(b: Browser, report: Path, width: int, mobile: bool = False) -> None:
    b.events.clear()
    b.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=mobile)
    b.width, b.height = width, 900
    b.open(report.as_uri())
    assert b.eval("document.documentElement.getAttribute('data-ready')") == "true", "report.js did not start"


def _shot(b: Browser, name: str) -> None:
    path = b.screenshot(SHOTS / f"{name}.png")
    print(f"screenshot: {path}")


@pytest.mark.parametrize(("width", "mobile"), [(1400, False), (420, False), (420, True)])
def test_loads_clean_offline_and_fits_the_screen(browser, report, width, mobile):
    _load(browser, report, width, mobile)
    assert browser.console_errors() == []
    broken = browser.eval("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                          ".map(i => i.alt)")
    assert broken == []
    foreign = [u for u in browser.requests() if not (u.startswith("data:") or u == report.as_uri())]
    assert foreign == []
    sw, iw = browser.eval("[document.documentElement.scrollWidth, window.innerWidth]")
    assert sw <= iw, f"page is {sw} px wide in a {iw} px window"
    wide = browser.eval("""Array.from(document.querySelectorAll('body *')).filter(e => !e.closest('.scroll, dialog')
        && e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className)""")
    assert wide == [], f"elements past the right edge: {wide[:5]}"
    _shot(browser, f"report-{width}{'-mobile' if mobile else ''}")


def test_network_is_refused_by_the_page_policy(browser, report):
    """Even script injected into the page cannot fetch anything: the Content-Security-Policy allows no request."""
    _load(browser, report, 1400)
    got = browser.eval("fetch('https://example.invalid/x').then(() => 'fetched', () => 'blocked')")
    assert got == "blocked"
    assert not [u for u in browser.requests() if u.startswith("http")]


def test_findings_table_filters_and_sorts(browser, report):
    _load(browser, report, 1400)
    rows = "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
    visible = f"{rows}.filter(r => !r.hidden).map(r => r.cells[0].textContent.trim().split(/\\s/)[0])"
    assert len(browser.eval(visible)) == 5  # the pack's four rules and evidence-complete
    browser.eval("""(() => { const i = document.querySelector('.tablefilter input[type=search]');
        i.value = 'impossible'; i.dispatchEvent(new Event('input')); })()""")
    assert browser.eval(visible) == ["impossible-accuracy"]
    browser.eval("""(() => { const i = document.querySelector('.tablefilter input[type=search]');
        i.value = ''; i.dispatchEvent(new Event('input')); })()""")
    browser.eval("""document.querySelector('.tablefilter input[type=checkbox][value=pass]').click()""")
    statuses = browser.eval(f"{rows}.filter(r => !r.hidden).map(r => r.dataset.status)")
    assert statuses and "pass" not in statuses and set(statuses) <= {"fail", "warn", "error"}
    assert f"{len(statuses)} of 5 shown" in browser.eval("document.querySelector('.tablefilter').textContent")
    browser.eval("document.querySelector('.tablefilter input[type=checkbox][value=pass]').click()")
    browser.eval("document.querySelector('#findings-table thead th button.sort').click()")
    ids = browser.eval(visible)
    assert ids == sorted(ids)
    assert browser.eval("document.querySelector('#findings-table thead th').getAttribute('aria-sort')") == "ascending"
    browser.eval("document.querySelector('#findings-table thead th button.sort').click()")
    assert browser.eval(visible) == sorted(ids, reverse=True)
    # the per-class metrics table sorts numerically
    browser.eval("document.querySelectorAll('table.per-class thead th button.sort')[2].click()")
    recall = browser.eval("Array.from(document.querySelectorAll('table.per-class tbody tr'))"
                          ".map(r => parseFloat(r.cells[2].textContent))")
    assert recall == sorted(recall)


def test_picks_switch_explainer_opacity_and_filter(browser, report):
    _load(browser, report, 1400)
    n_rows = browser.eval("document.querySelectorAll('#picks tbody tr').length")
    assert n_rows > 0
    bases = browser.eval("Array.from(document.querySelectorAll('#picks button.stack'))"
                         ".map(b => getComputedStyle(b).backgroundImage.slice(0, 26))")
    assert bases and all(b.startswith('url("data:image/png') for b in bases), "map cells lost their input image"
    cols = "Array.from(document.querySelectorAll('#picks thead th[data-explainer]')).filter(e => !e.hidden)" \
           ".map(e => e.dataset.explainer)"
    assert browser.eval(cols) == ["gradcam", "integrated_gradients"]
    browser.eval("""(() => { const s = document.getElementById('pick-explainer'); s.value = 'integrated_gradients';
        s.dispatchEvent(new Event('change')); })()""")
    assert browser.eval(cols) == ["integrated_gradients"]
    hidden_cells = browser.eval("document.querySelectorAll('#picks tbody td[data-explainer=gradcam][hidden]').length")
    assert hidden_cells == n_rows
    browser.eval("""(() => { const s = document.getElementById('pick-opacity'); s.value = 20;
        s.dispatchEvent(new Event('input')); })()""")
    op = browser.eval("getComputedStyle(document.querySelector('#picks img.heat')).opacity")
    assert float(op) == pytest.approx(0.2)
    browser.eval("""(() => { const s = document.getElementById('pick-category'); s.value = 'incorrect';
        s.dispatchEvent(new Event('change')); })()""")
    cats = browser.eval("Array.from(document.querySelectorAll('#picks tbody tr')).filter(r => !r.hidden)"
                        ".map(r => r.dataset.categories)")
    assert all("incorrect" in c.split() for c in cats)
    assert browser.eval("document.getElementById('pick-count').textContent") == f"{len(cats)} of {n_rows} shown"
    browser.eval("""(() => { const s = document.getElementById('pick-category'); s.value = '';
        s.dispatchEvent(new Event('change')); const k = document.getElementById('pick-class');
        k.value = k.options[1].value; k.dispatchEvent(new Event('change')); })()""")
    labels = browser.eval("Array.from(document.querySelectorAll('#picks tbody tr')).filter(r => !r.hidden)"
                          ".map(r => r.dataset.label)")
    assert labels and len(set(labels)) == 1
    _shot(browser, "picks-filtered-1400")


def test_click_to_zoom_opens_and_closes_by_keyboard(browser, report):
    _load(browser, report, 1400)
    browser.eval("document.querySelector('#picks tbody tr button.zoom.stack').click()")
    assert browser.eval("document.getElementById('zoom').open") is True
    figs = browser.eval("Array.from(document.querySelectorAll('#zoom-body figure > div:not(.cbar) > img')).map(i => [i.alt, i.naturalWidth])")
    assert len(figs) == 3 and all(w > 0 for _, w in figs)  # the input and both explainers' maps
    assert browser.eval("document.activeElement.id") == "zoom-close"
    _shot(browser, "zoom-1400")
    browser.key("Escape", "Escape", 27)
    assert browser.eval("document.getElementById('zoom').open") is False
    # focus returns to the opener in the dialog's "close" event, a task queued after the key: wait for it
    deadline = time.monotonic() + 5
    while not browser.eval("document.activeElement.classList.contains('zoom')") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert browser.eval("document.activeElement.classList.contains('zoom')") is True


def test_keyboard_and_screen_reader_basics(browser, report):
    _load(browser, report, 1400)
    browser.key("Tab", "Tab", 9)
    assert browser.eval("document.activeElement.className") == "skip"
    assert browser.eval("Array.from(document.images).filter(i => !i.alt || !i.alt.trim()).length") == 0
    unlabelled = browser.eval("""Array.from(document.querySelectorAll('input, select, button')).filter(e =>
        !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.outerHTML)""")
    assert unlabelled == []
    assert browser.eval("document.documentElement.lang") == "en"
    low = browser.eval("""(() => {
      const lum = c => { const v = c.match(/[\\d.]+/g).slice(0, 3).map(x => x / 255)
        .map(x => x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
        return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
      const bg = e => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
        if (!c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
      return Array.from(document.querySelectorAll('.status, .muted, .verdict p, .tag, th, td, a, .warnlabel'))
        .filter(e => e.offsetParent !== null && e.textContent.trim())
        .map(e => { const a = lum(getComputedStyle(e).color), b = lum(bg(e));
          return [e.className || e.tagName, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; })
        .filter(x => x[1] < 4.5).slice(0, 5); })()""")
    assert low == [], f"text below WCAG AA contrast: {low}"


def test_results_json_names_what_each_number_is(report):
    results = json.loads(report.with_name("results.json").read_text())
    assert results["$schema"].endswith(f"results-{results['schema_version']}.json")
    crit = {r["id"]: r["criterion"] for r in results["rules"]}
    acc = crit["impossible-accuracy"]  # stated by the rule (details.criterion) or inferred from its kind
    assert acc["name"] in ("accuracy", "top-1 accuracy") and acc["direction"] == "min" and acc["unit"]
    assert results["summary"]["reason"].startswith("FAIL because impossible-accuracy failed: accuracy ")
    gradcam = next(e for e in results["explainers"] if e["name"] == "gradcam")
    assert gradcam["parameters"]["layer"] and gradcam["parameters"]["layer_source"].startswith("default")


def test_pdf_is_tagged_and_its_cover_identifies_model_and_data(report):
    from pypdf import PdfReader

    pdf = PdfReader(report.with_name("report.pdf"))
    root = pdf.trailer["/Root"]
    assert "/StructTreeRoot" in root, "the PDF has no structure tree (untagged)"
    assert root.get("/Lang") == "en"
    assert bool(root["/MarkInfo"]["/Marked"])
    results = json.loads(report.with_name("results.json").read_text())
    cover = pdf.pages[0].extract_text().replace("\n", " ")
    assert "Verdict: FAIL" in cover and "blocking: impossible-accuracy" in cover
    assert "FAIL because impossible-accuracy failed: accuracy" in cover
    prov = results["provenance"]
    for digest in (prov["model"]["sha256"], prov["data"]["manifest_sha256"], prov["data"]["images_sha256"]):
        assert digest in cover.replace(" ", "")
    assert "Prepared by" in cover and "Approved by" in cover
    assert "/tmp" not in cover and "pytest-of" not in cover  # paths relative to the config's folder
