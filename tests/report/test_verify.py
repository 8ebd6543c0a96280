"""`audit verify DIR` proves the folder: exactly the files manifest.json lists (an added file, folder or link, or a
missing one, fails naming it; .DS_Store / Thumbs.db are tolerated as by the output-folder policy), every SHA-256,
and the document id recomputed from results.json (the manifest's, the one report.html prints, the results.json
hash the model card and Annex IV quote). Exit 0 verified, 1 not verified, 2 not a report folder."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.report.output import write_manifest

runner = CliRunner()


@pytest.fixture(scope="module")
def report(make_setup, tiny_model, tmp_path_factory) -> Path:
    setup = make_setup(tmp_path_factory.mktemp("verify") / "tiny", tiny_model)
    out = setup.root.parent / "report"
    res = runner.invoke(app, ["run", str(setup.config), "--out", str(out), "--set", "cache.enabled=false",
                              "--set", 'report.formats=["html", "json", "junit", "model_card", "annex_iv"]'])
    assert res.exit_code in (0, 1), res.output
    assert {"report.html", "model_card.json", "annex_iv.json"} <= {p.name for p in out.iterdir()}
    return out


@pytest.fixture()
def copy(report, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(report, out)
    return out


def verify(folder: Path) -> tuple[int, str]:
    res = runner.invoke(app, ["verify", str(folder)])
    return res.exit_code, res.output


def rehash(folder: Path) -> None:
    """manifest.json written again over the folder's files (keeping its document id): what a careless edit does."""
    doc = json.loads((folder / "manifest.json").read_text())
    kept = doc["document_id"]
    doc = write_manifest(folder, doc["files"])
    doc["document_id"] = kept
    (folder / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")


def edit_results(folder: Path) -> None:
    path = folder / "results.json"
    doc = json.loads(path.read_text())
    doc["verdict"] = "pass" if doc["verdict"] == "fail" else "fail"
    path.write_text(json.dumps(doc, indent=2) + "\n")


def test_the_written_report_verifies(copy):
    code, output = verify(copy)
    assert code == 0, output
    assert output.startswith("ok: ")
    (copy / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # what a file browser drops is tolerated
    (copy / "Thumbs.db").write_bytes(b"\xd0\xcf")
    assert verify(copy)[0] == 0


def _add_file(f: Path) -> str:
    (f / "notes.txt").write_text("added later\n")
    return "notes.txt: file not listed in the manifest"


def _add_hidden(f: Path) -> str:
    (f / ".env").write_text("TOKEN=1\n")
    return ".env: file not listed"


def _add_folder(f: Path) -> str:
    (f / "extra").mkdir()
    return "extra: folder not listed"


def _add_link(f: Path) -> str:
    (f / "data").symlink_to(f.parent)
    return "data: link not listed"


def _remove(f: Path) -> str:
    (f / "summary.md").unlink()
    return "summary.md: missing"


def _flip(f: Path) -> str:
    p = f / "report.junit.xml"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 1
    p.write_bytes(bytes(data))
    return "report.junit.xml: SHA-256 differs"


def _link_listed(f: Path) -> str:
    p = f / "summary.md"
    kept = f.parent / "summary-elsewhere.md"
    kept.write_bytes(p.read_bytes())
    p.unlink()
    p.symlink_to(kept)  # same bytes behind it, but not the file the audit wrote
    return "summary.md: a link, not the regular file"


def _results_edited_and_rehashed(f: Path) -> str:
    edit_results(f)
    rehash(f)
    return "manifest.json: document id"


def _document_id_forged_too(f: Path) -> str:
    edit_results(f)
    doc = write_manifest(f, json.loads((f / "manifest.json").read_text())["files"])
    assert doc["document_id"] == hashlib.sha256((f / "results.json").read_bytes()).hexdigest()[:12]
    return "report.html: does not print document id"


def _export_out_of_step(f: Path) -> str:
    p = f / "model_card.json"
    p.write_text(p.read_text().replace(hashlib.sha256((f / "results.json").read_bytes()).hexdigest(), "0" * 64))
    rehash(f)
    return "model_card.json: quotes results.json SHA-256 " + "0" * 64


def _manifest_not_ours(f: Path) -> str:
    doc = json.loads((f / "manifest.json").read_text())
    doc["files"]["../outside.txt"] = "0" * 64
    (f / "manifest.json").write_text(json.dumps(doc))
    return "manifest.json: not a model-audit manifest"


def _manifest_not_json(f: Path) -> str:
    (f / "manifest.json").write_text("{")
    return "manifest.json: not a model-audit manifest"


CHANGES: dict[str, Callable[[Path], str]] = {
    "a file added": _add_file, "a hidden file added": _add_hidden, "a folder added": _add_folder,
    "a link added": _add_link, "a file removed": _remove, "a byte flipped": _flip,
    "a listed file replaced by a link": _link_listed,
    "results.json edited and re-hashed into the manifest": _results_edited_and_rehashed,
    "results.json edited, manifest and document id rewritten": _document_id_forged_too,
    "an export quoting another results.json": _export_out_of_step,
    "a manifest listing a path outside": _manifest_not_ours, "a manifest that is not JSON": _manifest_not_json,
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_folder_does_not_verify_and_names_the_file(copy, change):
    expected = CHANGES[change](copy)
    code, output = verify(copy)
    assert code == 1, output
    assert expected in output, output
    assert "NOT VERIFIED" in output and "ok:" not in output


def test_a_folder_that_is_not_a_report_is_bad_input(tmp_path):
    code, output = verify(tmp_path / "missing")
    assert code == 2 and "not a folder" in output
    (tmp_path / "empty").mkdir()
    code, output = verify(tmp_path / "empty")
    assert code == 2 and "no manifest.json" in output
