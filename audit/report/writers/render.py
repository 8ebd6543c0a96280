"""HTML through Jinja2 (autoescaped, StrictUndefined) and PDF through WeasyPrint, from one context."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from pathlib import Path
from typing import Any, ClassVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from markupsafe import Markup

from ...errors import RenderError
from ...resources import templates_dir
from .base import OutputFormat, Report, utf8_text


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(context: dict[str, Any], template: str = "report.html.j2", mode: str = "html") -> str:
    """``mode`` "html": the interactive report (one file: inline styles, images and script; a Content-Security-
    Policy allows no network request and no script but ours, by hash); "pdf": the static document WeasyPrint
    paginates (no script, composed overlays)."""
    tdir = templates_dir()
    try:
        # our own style sheets and script are trusted; everything else in the context is autoescaped
        css = Markup((tdir / "report.css").read_text(encoding="utf-8"))
        print_css = Markup((tdir / "print.css").read_text(encoding="utf-8"))
        script = (tdir / "report.js").read_text(encoding="utf-8")
        if "</script" in script.lower():
            raise OSError("report.js must not contain '</script'")
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
        return environment().get_template(template).render(
            **context, css=css, print_css=print_css, mode=mode, script=Markup(script),
            script_hash=f"sha256-{digest}")
    except (TemplateError, OSError) as e:
        raise RenderError(f"cannot render {template}: {e}") from None


_DATA_IMAGE = re.compile(r'src="data:(image/(?:png|jpeg|svg\+xml));base64,([A-Za-z0-9+/=]+)"')  # SVG: the charts


def externalise_images(html: str) -> tuple[str, dict[str, tuple[str, bytes]]]:
    """Replace inline base64 images by short ``audit-img:N`` URLs (identical images share one) and return the
    images. WeasyPrint's pure-Python HTML parser spends seconds on megabytes of base64; the PDF gets the same
    bytes through ``_MemoryFetcher``."""
    store: dict[str, tuple[str, bytes]] = {}
    by_payload: dict[str, str] = {}

    def swap(m: re.Match[str]) -> str:
        url = by_payload.get(m.group(2))
        if url is None:
            url = f"audit-img:{len(by_payload)}"
            by_payload[m.group(2)] = url
            store[url] = (m.group(1), base64.b64decode(m.group(2)))
        return f'src="{url}"'

    return _DATA_IMAGE.sub(swap, html), store


_DATA_URL = re.compile(r"data:(image/(?:png|jpeg));base64,([A-Za-z0-9+/=\s]+)")


def _served(images: dict[str, tuple[str, bytes]], url: str) -> tuple[str, bytes]:
    """The report's own image for ``url``: one the HTML named (``audit-img:N``) or a base64 PNG/JPEG data URL
    (the raster a chart's SVG embeds, e.g. a confusion matrix's cells); any other URL is refused."""
    if url in images:
        return images[url]
    m = _DATA_URL.fullmatch(url)
    if m is None:
        raise ValueError(f"external resource not fetched: {url[:80]}")
    return m.group(1), base64.b64decode(m.group(2))


def _memory_fetcher(images: dict[str, tuple[str, bytes]]) -> Any:
    """A URL fetcher that serves the report's own images and refuses every other URL (no file or network
    access while the PDF renders)."""
    try:
        from weasyprint.urls import URLFetcher, URLFetcherResponse
    except ImportError:  # WeasyPrint < 66: function fetchers returning dicts
        def fetch(url: str) -> dict[str, Any]:
            mime, data = _served(images, url)
            return {"string": data, "mime_type": mime}

        return fetch

    class _MemoryFetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            mime, data = _served(images, url)
            return URLFetcherResponse(url, body=data, headers={"Content-Type": mime})

    return _MemoryFetcher()


def render_pdf(html: str, path: Path, variant: str | None = None) -> None:
    """Write ``html`` (rendered with ``mode="pdf"``) as a tagged PDF (structure tree, language from
    ``<html lang>``; print CSS applies). Title, author and subject come from the HTML head; ``variant`` asks
    WeasyPrint for an archival flavour such as "pdf/a-3b" (sRGB output intent, XMP metadata)."""
    from weasyprint import DEFAULT_OPTIONS, HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    try:
        light, images = externalise_images(html)
        HTML(string=light, base_url=str(templates_dir()), url_fetcher=_memory_fetcher(images)).write_pdf(
            str(path), pdf_variant=variant, **({"pdf_tags": True} if "pdf_tags" in DEFAULT_OPTIONS else {}))
    except Exception as e:  # noqa: BLE001 - WeasyPrint raises many kinds
        raise RenderError(f"{path}: cannot write PDF: {e}") from None


def check_html(p: Path) -> None:
    if "</html>" not in utf8_text(p):
        raise ValueError("no closing </html>")


def check_pdf(p: Path) -> None:
    with p.open("rb") as fh:
        head = fh.read(5)
        fh.seek(max(0, p.stat().st_size - 1024))
        tail = fh.read()
    if head != b"%PDF-" or not tail.rstrip().endswith(b"%%EOF"):
        raise ValueError("does not start with %PDF- and end with %%EOF")


class HtmlOutput(OutputFormat):
    name = "html"
    title = "interactive HTML report"
    files: ClassVar = {"html": "report.html"}
    parsers: ClassVar = {"report.html": check_html}

    def write(self, report: Report, folder: Path) -> None:
        (folder / "report.html").write_text(render_html(report.context, mode="html"), encoding="utf-8")


class PdfOutput(OutputFormat):
    name = "pdf"
    title = "PDF report"
    files: ClassVar = {"pdf": "report.pdf"}
    parsers: ClassVar = {"report.pdf": check_pdf}

    def write(self, report: Report, folder: Path) -> None:
        render_pdf(render_html(report.context, mode="pdf"), folder / "report.pdf",
                   report.result.config.report.pdf_variant)
