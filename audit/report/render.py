"""HTML through Jinja2 (autoescaped, StrictUndefined) and PDF through WeasyPrint, from one context."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from markupsafe import Markup

from ..errors import RenderError
from ..resources import templates_dir


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(context: dict[str, Any], template: str = "report.html.j2") -> str:
    tdir = templates_dir()
    try:
        # our own style sheets are trusted; everything else in the context is autoescaped
        css = Markup((tdir / "report.css").read_text(encoding="utf-8"))
        print_css = Markup((tdir / "print.css").read_text(encoding="utf-8"))
        return environment().get_template(template).render(**context, css=css, print_css=print_css)
    except (TemplateError, OSError) as e:
        raise RenderError(f"cannot render {template}: {e}") from None


def render_pdf(html: str, path: Path, variant: str | None = None) -> None:
    """Write ``html`` as a PDF (print CSS applies). Title, author and subject come from the HTML head;
    ``variant`` asks WeasyPrint for an archival flavour such as "pdf/a-3b" (sRGB output intent, XMP metadata)."""
    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    try:
        HTML(string=html, base_url=str(templates_dir())).write_pdf(str(path), pdf_variant=variant)
    except Exception as e:  # noqa: BLE001 - WeasyPrint raises many kinds
        raise RenderError(f"{path}: cannot write PDF: {e}") from None
