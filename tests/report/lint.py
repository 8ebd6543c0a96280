"""The report lint: what every report folder must satisfy, as functions the tests run over the demo reports.

- every blocking finding names what it judged (class, label, region, column) in results.json, report.html, the
  PDF, summary.md, JUnit and the MLflow tags, from the one headline results.json states;
- the HTML fits the screen and the A4 text width: no element past the page's right edge, no scroll box that
  scrolls, every text at least 11 px on screen and 8 pt in print (CSS text by its computed size, text inside SVG
  charts by its font size times the chart's rendered scale), measured in headless Chromium at 1400 and 420 px and
  with print media at the A4 text width;
- axe-core (vendored, tests/report/vendor/axe-core) finds no serious or critical violation;
- the exports pass the validators of their formats: results.json its schema, model_card.json the Model Card
  Toolkit 0.0.2 schema, model_card.md every section of the Hugging Face template huggingface_hub ships and front
  matter ModelCardData reads, JUnit the Jenkins junit-10.xsd and this project's stricter junit.xsd, and no
  invisible or escaping character in text a person copies.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import xmlschema
from markdown_it import MarkdownIt
from pypdf import PdfReader

VENDOR = Path(__file__).with_name("vendor")
AXE = VENDOR / "axe-core" / "axe.min.js"
MCT_SCHEMA = VENDOR / "model-card-toolkit" / "model_card.schema.json"
JUNIT_PUBLISHED = VENDOR / "jenkins-xunit" / "junit-10.xsd"
JUNIT_STRICT = Path(__file__).with_name("junit.xsd")

SCREEN_MIN_PX = 11.0
PRINT_MIN_PT = 8.0
A4_TEXT_WIDTH_PX = round((210 - 26) / 25.4 * 96)  # A4 less print.css's 13 mm side margins, in CSS px (695)

# ---- measuring the page (runs in the report's page) ----------------------------------------------------------

MEASURE = r"""
((minPx) => {
  const W = document.documentElement.clientWidth;
  const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\s+/).join('.') : '');
  const where = e => { const s = e.closest('section'); const h = s && s.querySelector('h2');
    return (h ? h.textContent.trim().slice(0, 40) : 'cover') + ' > ' + name(e); };
  const shown = e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden' &&
    !e.closest('.sr-only, details:not([open]) > :not(summary), dialog:not([open])');
  const out = {width: [document.documentElement.scrollWidth, W], wide: [], scrolls: [], small: [], svg: [],
               n_text: 0, n_svg_text: 0};
  for (const e of document.querySelectorAll('body *')) {
    if (!shown(e)) continue;
    const r = e.getBoundingClientRect();
    if (r.width && r.right > W + 1) out.wide.push(where(e) + ` ${Math.round(r.left)}..${Math.round(r.right)}`);
    const cs = getComputedStyle(e);
    if (/(auto|scroll)/.test(cs.overflowX) && e.scrollWidth > e.clientWidth + 1)
      out.scrolls.push(where(e) + ` ${e.scrollWidth} > ${e.clientWidth}`);
    const own = Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    const pseudo = getComputedStyle(e, '::before').content;
    if (own || (pseudo && pseudo !== 'none' && pseudo !== 'normal' && pseudo !== '""')) {
      out.n_text++;
      const px = parseFloat(cs.fontSize);
      if (px < minPx - 0.01) out.small.push(where(e) + ` ${px.toFixed(2)}px “${e.textContent.trim().slice(0, 30)}”`);
    }
  }
  for (const img of document.images) {
    if (!img.src.startsWith('data:image/svg+xml') || !shown(img)) continue;
    const svg = new DOMParser().parseFromString(atob(img.src.split(',')[1]), 'image/svg+xml').documentElement;
    const vb = (svg.getAttribute('viewBox') || '').split(/[\s,]+/).map(Number);
    const scale = img.getBoundingClientRect().width / (vb[2] || parseFloat(svg.getAttribute('width')));
    for (const t of svg.querySelectorAll('text')) {
      if (!t.textContent.trim()) continue;
      out.n_svg_text++;
      const style = (t.getAttribute('style') || '') + ';' + (t.parentNode.getAttribute && t.parentNode.getAttribute('style') || '');
      const m = style.match(/font(?:-size)?:\s*(?:[a-z-]+\s+)*([\d.]+)px/);
      const size = m ? parseFloat(m[1]) : parseFloat(t.getAttribute('font-size') || '0');
      if (size * scale < minPx - 0.01)
        out.svg.push(where(img) + ` “${t.textContent.trim().slice(0, 30)}” ${(size * scale).toFixed(2)}px (font ${size}, scale ${scale.toFixed(3)})`);
    }
  }
  return out;
})
"""


def measure(browser: Any, report: Path, width: int, media: str = "screen") -> dict[str, Any]:
    """Load ``report`` at ``width`` CSS px with ``media`` ("screen", or "print" at the A4 text width) and measure
    it. Text sizes are in CSS px (print: 8 pt = 10.67 px)."""
    browser.call("Emulation.setEmulatedMedia", media=media)
    browser.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                 mobile=width < 600)
    browser.width, browser.height = width, 900
    browser.open(report.as_uri())
    min_px = SCREEN_MIN_PX if media == "screen" else PRINT_MIN_PT * 96 / 72
    got = browser.eval(f"({MEASURE})({min_px})")
    browser.call("Emulation.setEmulatedMedia", media="")
    return got


def layout_problems(m: dict[str, Any]) -> list[str]:
    sw, w = m["width"]
    out = [f"page is {sw} px wide in a {w} px window"] if sw > w + 1 else []
    out += [f"past the right edge: {x}" for x in m["wide"][:8]]
    out += [f"scrolls sideways: {x}" for x in m["scrolls"][:8]]
    out += [f"text too small: {x}" for x in m["small"][:8]]
    out += [f"chart text too small: {x}" for x in m["svg"][:8]]
    return out


def axe_serious(browser: Any, report: Path) -> list[str]:
    """axe-core's serious and critical violations of the page (screen, 1400 px)."""
    browser.call("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)
    browser.open(report.as_uri())
    browser.eval(AXE.read_text(encoding="utf-8") + "\n;0")
    res = browser.eval("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => "
                       "({id: v.id, impact: v.impact, n: v.nodes.length, "
                       "target: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))")
    return [f"{v['id']} ({v['impact']}, {v['n']} node(s): {v['target']})" for v in res
            if v["impact"] in ("serious", "critical")]


# ---- what each output says about the blocking findings ------------------------------------------------------

def rendered_text(markdown: str) -> str:
    """The text a Markdown document renders to (GFM-like), tags dropped, entities decoded."""
    html = MarkdownIt("gfm-like").render(markdown)
    import html as html_lib

    return html_lib.unescape(re.sub(r"<[^>]*>", " ", html))


@cache  # read once per report: several checks read the same PDF
def pdf_text(path: Path) -> str:
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(path).pages).split())


def html_text(path: Path) -> str:
    import html as html_lib

    body = path.read_text(encoding="utf-8")
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.DOTALL)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]*>", " ", body)).split())


def subject_problems(folder: Path) -> list[str]:
    """For every blocking rule result that judged a named class, label, region or column: each name appears in
    the result's headline in results.json and wherever the result is shown."""
    from audit.report.mlflow_log import run_contents

    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    blocking = set(results["summary"]["blocking"])
    outputs: dict[str, str] = {"summary.md": rendered_text((folder / "summary.md").read_text(encoding="utf-8"))}
    if (folder / "report.html").exists():
        outputs["report.html"] = html_text(folder / "report.html")
    if (folder / "report.pdf").exists():
        outputs["report.pdf"] = pdf_text(folder / "report.pdf")
    junit = (folder / "report.junit.xml").read_text(encoding="utf-8") if (folder / "report.junit.xml").exists() else ""
    _, _, tags = run_contents(results, "doc", "audit-report")
    problems = []
    for r in results["rules"]:
        if r["id"] not in blocking:
            continue
        names = (r.get("subject") or {}).get("names") or []
        if r["status"] == "fail" and r.get("criterion", {}).get("source") == "rule" and not r.get("subject") \
                and r["kind"] not in WHOLE_SET_KINDS:
            problems.append(f"{r['id']} ({r['kind']}): results.json names no subject")
        for name in names:
            if name not in r["headline"]:
                problems.append(f"{r['id']}: results.json headline lacks {name!r}")
            for where, text in outputs.items():
                compact = " ".join(text.split())
                if r["headline"] not in compact and not (r["id"] in compact and name in compact):
                    problems.append(f"{r['id']}: {where} lacks its headline naming {name!r}")
            if junit and name not in _junit_message(junit, r["id"]):
                problems.append(f"{r['id']}: JUnit failure message lacks {name!r}")
            if name not in tags.get(f"rule.{r['id']}.criterion", ""):
                problems.append(f"{r['id']}: MLflow tag rule.{r['id']}.criterion lacks {name!r}")
    return problems


#: rule kinds whose failing result is about the audit as a whole (a metric of the whole set, missing evidence)
WHOLE_SET_KINDS = {"metric_min", "metric_max", "evidence_complete", "skipped_max", "new_failures", "flips",
                   "metric_drop", "data_duplicates", "coverage"}


def _junit_message(xml: str, rule_id: str) -> str:
    import xml.etree.ElementTree as ET

    for case in ET.fromstring(xml.encode("utf-8")).iter("testcase"):
        if case.get("name") == rule_id:
            return " ".join((el.get("message") or "") for el in case if el.tag in ("failure", "error"))
    return ""


# ---- exports against their formats ----------------------------------------------------------------------------

@cache
def results_schema() -> dict[str, Any]:
    return json.loads(files("audit").joinpath("schema/results.schema.json").read_text(encoding="utf-8"))


def export_problems(folder: Path) -> list[str]:
    """Every export in ``folder`` against its format's validator."""
    out: list[str] = []
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    out += [f"results.json: {e.message} at {list(e.absolute_path)}"
            for e in jsonschema.Draft202012Validator(results_schema()).iter_errors(results)][:5]
    if (folder / "report.junit.xml").exists():
        xml = (folder / "report.junit.xml").read_text(encoding="utf-8")
        for xsd in (JUNIT_PUBLISHED, JUNIT_STRICT):
            out += [f"report.junit.xml against {xsd.name}: {e.reason}" for e in _xsd(str(xsd)).iter_errors(xml)][:3]
    if (folder / "model_card.json").exists():
        out += model_card_json_problems(json.loads((folder / "model_card.json").read_text(encoding="utf-8")))
    if (folder / "model_card.md").exists():
        out += model_card_md_problems((folder / "model_card.md").read_text(encoding="utf-8"))
    for name in ("model_card.md", "annex_iv.md", "summary.md"):
        if (folder / name).exists():
            out += [f"{name}: {p}" for p in copy_problems((folder / name).read_text(encoding="utf-8"),
                                                          strict=name != "summary.md")]
    return out


@cache
def _xsd(path: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(path)


@cache
def _mct_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(MCT_SCHEMA.read_text(encoding="utf-8")),
                                      format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def model_card_json_problems(doc: dict[str, Any]) -> list[str]:
    """Against the Model Card Toolkit 0.0.2 schema (formats checked; ``uri`` by hand: jsonschema checks it only
    with an optional package)."""
    from urllib.parse import urlparse

    out = [f"model_card.json: {e.message} at {list(e.absolute_path)}" for e in _mct_validator().iter_errors(doc)]
    refs = [r.get("reference", "") for r in (doc.get("model_details") or {}).get("references") or ()]
    refs += [d["link"] for d in (doc.get("model_parameters") or {}).get("data") or () if "link" in d]
    out += [f"model_card.json: {ref!r} is not a URI" for ref in refs
            if not (urlparse(ref).scheme and (urlparse(ref).netloc or urlparse(ref).path))]
    return out


@cache
def hf_template_sections() -> list[tuple[int, str]]:
    """(level, heading) of every section of the model-card template huggingface_hub ships, "[optional]" dropped."""
    import huggingface_hub

    text = (Path(huggingface_hub.__file__).parent / "templates" / "modelcard_template.md").read_text(encoding="utf-8")
    body = text.split("\n---\n", 1)[1]
    out = []
    for line in body.splitlines():
        m = re.match(r"(#{2,4}) (.+)", line)
        if m:
            out.append((len(m.group(1)), m.group(2).replace("[optional]", "").strip()))
    return out


def model_card_md_problems(md: str) -> list[str]:
    """Every section of the Hugging Face template, in its order and at its level; front matter ModelCard parses,
    with the model-index as eval results."""
    from huggingface_hub import ModelCard

    have = [(len(m.group(1)), m.group(2).strip()) for m in re.finditer(r"^(#{2,4}) (.+)$", md, flags=re.MULTILINE)]
    out = []
    pos = 0
    for level, heading in hf_template_sections():
        try:
            pos = have.index((level, heading), pos) + 1
        except ValueError:
            out.append(f"model_card.md: no section {'#' * level} {heading} (in the template's order)")
    try:
        card = ModelCard(md, ignore_metadata_errors=False)
    except Exception as e:  # noqa: BLE001 - huggingface_hub raises several kinds
        return [*out, f"model_card.md: ModelCard cannot read it: {type(e).__name__}: {e}"]
    if not card.data.eval_results:
        out.append("model_card.md: the front matter holds no eval results (model-index)")
    return out


_INVISIBLE = {"Cf", "Co", "Cs", "Cc"}


def copy_problems(md: str, strict: bool = True) -> list[str]:
    """Invisible or format characters (U+2060, bidi controls, zero-width spaces …; tab and newline allowed) in the
    file; ``strict``: a document a person copies from (model card, Annex IV), where none may appear."""
    bad = sorted({f"U+{ord(c):04X}" for c in md if unicodedata.category(c) in _INVISIBLE and c not in "\t\n"})
    return [f"invisible characters {', '.join(bad)}"] if bad and strict else []


# ---- what the PDF draws, the flags, the picks -----------------------------------------------------------------

def _svg_texts(html: str) -> list[list[str]]:
    """The texts of every SVG chart in a report's HTML, chart by chart."""
    import base64

    out = []
    for payload in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html):
        svg = base64.b64decode(payload).decode("utf-8")
        out.append([t for t in (re.sub(r"<[^>]*>", "", x).strip() for x in re.findall(r"<text\b.*?</text>", svg,
                                                                                        flags=re.DOTALL)) if t])
    return out


def chart_problems(folder: Path) -> list[str]:
    """Every SVG chart of report.html is drawn in report.pdf (its longest text is in the PDF's text; pypdf joins a
    chart's words, so spaces are left out of the comparison), never replaced by its alt text."""
    import html as html_lib

    if not (folder / "report.pdf").exists():
        return []
    pdf = re.sub(r"\s", "", pdf_text(folder / "report.pdf"))
    out = []
    for i, texts in enumerate(_svg_texts((folder / "report.html").read_text(encoding="utf-8"))):
        words = [re.sub(r"\s", "", html_lib.unescape(t)) for t in texts if re.search(r"[A-Za-z]{4}", t)]
        if words and max(words, key=len) not in pdf:
            out.append(f"chart {i + 1} ({texts[0][:40]!r}…) is not drawn in report.pdf")
    return out


def flag_problems(folder: Path) -> list[str]:
    """Every flag of results.json (``summary.flags``) is on the report's cover and in summary.md."""
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    summary = " ".join(rendered_text((folder / "summary.md").read_text(encoding="utf-8")).replace("\u2060", "").split())
    cover = ""
    if (folder / "report.html").exists():
        page = (folder / "report.html").read_text(encoding="utf-8")
        cover = " ".join(html_text_of(page.split("</header>", 1)[0]).split())
    out = []
    for flag in results["summary"].get("flags") or ():
        text = " ".join(flag["text"].split())
        if text[:200] not in summary:
            out.append(f"summary.md lacks the {flag['kind']} flag {text[:60]!r}")
        if cover and text[:200] not in cover:
            out.append(f"the report's cover lacks the {flag['kind']} flag {text[:60]!r}")
    return out


def html_text_of(body: str) -> str:
    import html as html_lib

    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.DOTALL)
    return html_lib.unescape(re.sub(r"<[^>]*>", " ", body))


def pick_problems(folder: Path) -> list[str]:
    """Picks as the task names them: a task without right or wrong answers (segmentation) files no
    correct / incorrect list, colours no answer as right or wrong, and no image is both first best and first
    worst."""
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    samples = results["samples"]
    lists = samples.get("lists") or {}
    out = []
    if set(lists) != {k for k in samples if k not in ("per_class", "lists")}:
        out.append(f"samples holds lists {sorted(samples)} but names {sorted(lists)}")
    if "worst" in lists:  # ranked by a metric
        if {"correct", "incorrect"} & set(samples):
            out.append("a task ranked by its metric files picks as correct / incorrect")
        best, worst = samples.get("best") or [], samples.get("worst") or []
        if best and worst and best[0]["id"] == worst[0]["id"]:
            out.append(f"{best[0]['id']} is both the first best and the first worst")
        page = (folder / "report.html").read_text(encoding="utf-8") if (folder / "report.html").exists() else ""
        if re.search(r'predicted <b class="(ok|bad)"', page):
            out.append("report.html colours a prediction right or wrong for a task without right answers")
    return out


def detail_problems(folder: Path) -> list[str]:
    """The small ones: the picks' class filter lists classes in the task's order (not alphabetical); the flips
    table says how many of how many flips it shows."""
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    if not (folder / "report.html").exists():
        return []
    page = (folder / "report.html").read_text(encoding="utf-8")
    out = []
    m = re.search(r'<select id="pick-class">(.*?)</select>', page, flags=re.DOTALL)
    if m:
        import html as html_lib

        shown = [html_lib.unescape(x) for x in re.findall(r'<option value="([^"]+)">', m.group(1))]
        order = {c: i for i, c in enumerate(results["classes"])}
        if [order.get(c, len(order)) for c in shown] != sorted(order.get(c, len(order)) for c in shown):
            out.append(f"the class filter is not in class order: {shown}")
    flips = (results.get("comparison") or {}).get("flips")
    if flips and flips.get("to_wrong_examples"):
        want = f"of the {flips['to_wrong']} right → wrong flips"
        if want not in html_text_of(page):
            out.append(f"the flips table does not say {want!r}")
    return out
