"""Archival PDF: report.pdf_variant asks WeasyPrint for PDF/A; the file declares it and keeps the report text."""

from pypdf import PdfReader
from typer.testing import CliRunner

from audit.cli import app

runner = CliRunner()


def test_pdf_a3b_report_declares_its_conformance(tiny, tmp_path):
    out = tmp_path / "r"
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(out), "--set", 'report.formats=["pdf","json"]',
                              "--set", 'report.pdf_variant="pdf/a-3b"'])
    assert res.exit_code == 0, res.output
    reader = PdfReader(out / "report.pdf")
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data()
    assert b"pdfaid:part" in xmp and b"3" in xmp.split(b"pdfaid:part")[1][:8]
    assert "/OutputIntents" in root  # sRGB output intent, required by PDF/A
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Verdict: PASS" in text


def test_unknown_pdf_variant_is_a_config_error(tiny, tmp_path):
    res = runner.invoke(app, ["run", str(tiny.config), "--out", str(tmp_path / "r"), "--set",
                              'report.pdf_variant="pdf/z"'])
    assert res.exit_code == 2 and "report.pdf_variant" in res.output
