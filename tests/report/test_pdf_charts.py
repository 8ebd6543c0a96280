"""Charts reach the PDF: an SVG chart (text as text) and the raster a chart's SVG embeds (a confusion matrix's
cells) are drawn by WeasyPrint through the report's own image fetcher, never replaced by their alt text; any other
URL stays refused. (Regression: SVG charts and their embedded rasters printed as alt text only.)"""

from __future__ import annotations

import numpy as np
from pypdf import PdfReader

from audit.drawing.charts import confusion_figure
from audit.report.writers.render import render_pdf

ALT = "ALT-TEXT-OF-THE-CHART"


def _html(src: str) -> str:
    return (f'<!doctype html><html lang="en"><head><title>t</title></head><body><p>before</p>'
            f'<img src="{src}" alt="{ALT}"></body></html>')


def test_an_svg_chart_and_its_embedded_raster_are_drawn(tmp_path):
    cm = np.array([[30, 2], [5, 41]])
    uri = confusion_figure(cm, cm / cm.sum(axis=1, keepdims=True), ("cat", "dog"))
    assert uri.startswith("data:image/svg+xml;base64,")
    pdf = tmp_path / "c.pdf"
    render_pdf(_html(uri), pdf)
    page = PdfReader(pdf).pages[0]
    text = " ".join(page.extract_text().split())
    assert ALT not in text  # drawn, not replaced by its alt text
    # the chart's own text, as text (pypdf joins an SVG's words: compare without spaces)
    assert "predictedclass" in text.replace(" ", "") and "41" in text.split()
    assert len(page.images) >= 1  # the cells: a raster inside the SVG


def test_other_urls_are_still_refused(tmp_path):
    pdf = tmp_path / "x.pdf"
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n")
    render_pdf(_html(secret.as_uri()), pdf)
    assert ALT in PdfReader(pdf).pages[0].extract_text()  # not fetched: the alt text stands in
