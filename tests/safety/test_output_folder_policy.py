"""`--out` may only replace an empty folder or an earlier report of this tool, and never an input, its folder,
a parent of it, or the working directory. Refusals happen before the audit runs (exit 2, one line naming the
folder, nothing touched, no temporary folder left); sentinel files planted beside every input prove it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from badinput_helpers import invoke
from safety_helpers import earlier_report, plant, record, siblings, snapshot

import audit.api
import audit.runner
from audit.verify import verify_report


@pytest.fixture()
def no_audit(monkeypatch):
    """A refused --out must be refused before the audit runs."""
    def run_audit(*a, **k):
        raise RuntimeError("the audit ran although --out was refused")

    monkeypatch.setattr(audit.api, "run_audit", run_audit)


def assert_refused(res, out: Path, *needles: str) -> str:
    text = res.output
    assert res.exit_code == 2, f"exit {res.exit_code}: {text}\n{res.exception!r}"
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert os.path.abspath(out) in lines[0], lines[0]
    for n in needles:
        assert n in lines[0], f"{n!r} not in: {lines[0]}"
    assert not siblings(Path(os.path.abspath(out))), siblings(Path(os.path.abspath(out)))
    return lines[0]


def _absolute_config(fast, folder: Path, **moved: Path) -> Path:
    """The fast config written into ``folder`` with absolute input paths (``weights=`` a moved weights file)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = fast.config.read_text()
    text = text.replace('manifest = "manifest.csv"', f'manifest = "{fast.manifest}"')
    text = text.replace('weights = "weights.safetensors"', f'weights = "{moved.get("weights", fast.weights)}"')
    cfg = folder / "audit.toml"
    cfg.write_text(text)
    return cfg


# ---- refused: inputs and their folders --------------------------------------------------------------------

@pytest.mark.usefixtures("no_audit")
def test_out_is_the_data_folder(fast):
    s = plant(fast.root, fast.root / "img")
    res = invoke("run", fast.config, "--out", fast.root)
    assert_refused(res, fast.root, "is the data folder")
    s.assert_untouched()


@pytest.mark.usefixtures("no_audit")
def test_out_dot_in_the_config_folder(fast, monkeypatch):
    s = plant(fast.root, fast.root / "img")
    monkeypatch.chdir(fast.root)
    res = invoke("run", "audit.toml", "--out", ".")
    assert_refused(res, fast.root, "refused as the report folder")
    s.assert_untouched()


@pytest.mark.usefixtures("no_audit")
def test_out_is_the_config_folder(fast, tmp_path):
    cfg = _absolute_config(fast, tmp_path / "configs")
    s = plant(fast.root, cfg.parent)
    res = invoke("run", cfg, "--out", cfg.parent)
    assert_refused(res, cfg.parent, "is the config file's folder")
    s.assert_untouched()


@pytest.mark.usefixtures("no_audit")
def test_out_is_a_parent_of_the_manifest(fast, tmp_path):
    s = plant(tmp_path, fast.root)
    res = invoke("run", fast.config, "--out", tmp_path)
    assert_refused(res, tmp_path, "holds the data folder", str(fast.root))
    s.assert_untouched()


@pytest.mark.usefixtures("no_audit")
def test_out_holds_the_model_weights(fast, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    weights = models / "weights.safetensors"
    fast.weights.rename(weights)
    cfg = _absolute_config(fast, fast.root, weights=weights)
    s = plant(models, fast.root)
    res = invoke("run", cfg, "--out", models)
    assert_refused(res, models, "holds the model weights", str(weights))
    s.assert_untouched()


@pytest.mark.usefixtures("no_audit")
def test_out_holds_the_rule_pack(fast, tmp_path):
    packs = tmp_path / "packs"
    packs.mkdir()
    pack = packs / "mine.toml"
    pack.write_text('[pack]\nname = "mine"\n[[rule]]\nid = "acc"\nkind = "metric_min"\nseverity = "error"\n'
                    'metric = "accuracy"\nthreshold = 0.1\n')
    s = plant(packs, fast.root)
    res = invoke("run", fast.config, "--out", packs, "--rules", pack)
    assert_refused(res, packs, "holds the rule pack")
    s.assert_untouched()


@pytest.mark.usefixtures("no_audit")
def test_out_is_the_working_directory_even_when_empty(fast, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    res = invoke("run", fast.config, "--out", ".")
    assert_refused(res, empty, "is the current working directory")
    assert empty.is_dir() and not list(empty.iterdir())


@pytest.mark.usefixtures("no_audit")
def test_a_report_that_is_the_working_directory_is_kept(fast, tmp_path, monkeypatch):
    out = tmp_path / "old-report"
    before = earlier_report(out)
    monkeypatch.chdir(out)
    res = invoke("run", fast.config, "--out", ".")
    assert_refused(res, out, "is the current working directory")
    assert snapshot(out) == before


@pytest.mark.usefixtures("no_audit")
def test_symlink_to_the_data_folder(fast, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(fast.root, target_is_directory=True)
    s = plant(fast.root, fast.root / "img")
    res = invoke("run", fast.config, "--out", link)
    line = assert_refused(res, link, "is the data folder")
    assert f"-> {fast.root.resolve()}" in line
    assert link.is_symlink() and link.resolve() == fast.root.resolve()
    s.assert_untouched()


@pytest.mark.usefixtures("no_audit")
@pytest.mark.parametrize("inside", [False, True], ids=["the-image-folder", "inside-the-image-folder"])
def test_image_folder_data_set(fast, inside):
    classes = fast.root / "classes"
    for c in ("left", "middle", "right"):
        (classes / c).mkdir(parents=True)
    fast.config.write_text(fast.config.read_text().replace('manifest = "manifest.csv"', 'image_folder = "classes"'))
    s = plant(classes, classes / "left")
    out = classes / "report" if inside else classes
    res = invoke("run", fast.config, "--out", out)
    assert_refused(res, out, "lies inside the image folder" if inside else "is the data folder (the image folder)")
    assert not (classes / "report").exists()
    s.assert_untouched()


def test_out_is_the_baseline_report(fast, tmp_path, replay, monkeypatch):
    base = tmp_path / "released"
    assert invoke("run", fast.config, "--out", base).exit_code in (0, 1)
    before = snapshot(base)
    monkeypatch.setattr(audit.api, "run_audit", lambda *a, **k: pytest.fail("the audit ran"))
    res = invoke("run", fast.config, "--out", base, "--baseline", base / "results.json")
    assert_refused(res, base, "holds the baseline report")
    assert snapshot(base) == before


# ---- refused: folders that are not a report of ours -------------------------------------------------------

@pytest.mark.usefixtures("no_audit")
def test_folder_with_unrelated_files(fast, tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    for i in range(30):
        (out / f"img{i:02d}.png").write_bytes(b"\x89PNG not really")
    (out / "notes.txt").write_text("my notes")
    (out / "results.json").write_text("{}")
    s = record(out)
    res = invoke("run", fast.config, "--out", out)
    assert_refused(res, out, "not empty and not a model-audit report (holds 32 files, e.g. img00.png, img01.png",
                   "choose another --out or empty it")
    s.assert_untouched()


@pytest.mark.usefixtures("no_audit")
@pytest.mark.parametrize("tamper", ["extra-file", "sub-folder", "hidden-file", "listed-file-missing",
                                    "foreign-name-listed", "not-our-manifest"])
def test_manifest_that_does_not_match_its_folder(fast, tmp_path, tamper):
    out = tmp_path / "report"
    earlier_report(out)
    needle = "does not match the folder"
    if tamper == "extra-file":
        (out / "notes.txt").write_text("mine")
    elif tamper == "sub-folder":
        (out / "data").mkdir()
        (out / "data" / "x.png").write_bytes(b"x")
    elif tamper == "hidden-file":
        (out / ".env").write_text("SECRET=1")
    elif tamper == "listed-file-missing":
        (out / "summary.md").unlink()
        needle = "missing: summary.md"
    else:
        doc = json.loads((out / "manifest.json").read_text())
        if tamper == "foreign-name-listed":
            doc["files"]["holiday.png"] = "0" * 64
            (out / "holiday.png").write_bytes(b"png")
        else:
            doc = {"files": doc["files"]}  # some other tool's manifest.json
        (out / "manifest.json").write_text(json.dumps(doc))
        needle = "not empty and not a model-audit report"
    s = record(out)
    res = invoke("run", fast.config, "--out", out)
    assert_refused(res, out, needle)
    s.assert_untouched()


# ---- allowed -----------------------------------------------------------------------------------------------

def _assert_fresh_report(out: Path) -> None:
    names = {p.name for p in out.iterdir()}
    assert {"results.json", "summary.md", "manifest.json"} <= names
    assert set(json.loads((out / "manifest.json").read_text())["files"]) == names - {"manifest.json"}
    assert verify_report(out) == []
    assert not siblings(out)


@pytest.mark.parametrize("junk", [False, True], ids=["plain", "with-DS_Store"])
def test_an_earlier_report_is_replaced(fast, tmp_path, replay, junk):
    out = tmp_path / "report"
    before = earlier_report(out)
    if junk:
        (out / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    s = plant(fast.root, fast.root / "img")
    res = invoke("run", fast.config, "--out", out)
    assert res.exit_code in (0, 1), res.output
    assert snapshot(out) != before and not (out / ".DS_Store").exists()
    _assert_fresh_report(out)
    s.assert_untouched()


@pytest.mark.parametrize("kind", ["empty", "missing", "new-folder-in-the-manifest-folder"])
def test_fresh_folders_are_fine(fast, tmp_path, replay, kind):
    out = {"empty": tmp_path / "empty", "missing": tmp_path / "a" / "b",
           "new-folder-in-the-manifest-folder": fast.root / "reports" / "x"}[kind]
    if kind == "empty":
        out.mkdir()
    s = plant(fast.root, fast.root / "img")
    res = invoke("run", fast.config, "--out", out)
    assert res.exit_code in (0, 1), res.output
    _assert_fresh_report(out)
    s.assert_untouched()


def test_default_out_relative_to_the_working_directory(fast, tmp_path, replay, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    res = invoke("run", fast.config)
    assert res.exit_code in (0, 1), res.output
    _assert_fresh_report(work / "reports" / "tiny")


# ---- the folder changes while the audit runs ---------------------------------------------------------------

def test_files_that_appear_during_the_audit_are_kept(fast, tmp_path, finished, monkeypatch):
    out = tmp_path / "report"
    out.mkdir()

    def run_audit(*a, **k):  # someone saves into the (empty, accepted) folder while the audit runs
        (out / "draft.docx").write_bytes(b"important")
        return finished

    monkeypatch.setattr(audit.api, "run_audit", run_audit)
    res = invoke("run", fast.config, "--out", out)
    assert_refused(res, out, "not empty and not a model-audit report (holds 1 file, e.g. draft.docx)")
    assert snapshot(out) == {"draft.docx": b"important"}


def test_final_swap_checks_the_folder_it_moved_aside(tmp_path):
    """The last gap: a file lands after write_outputs' re-check; _replace_dir refuses and puts it back."""
    from audit.errors import RenderError
    from audit.report.output import _replace_dir

    src, dst = tmp_path / "new", tmp_path / "report"
    src.mkdir()
    (src / "results.json").write_text("{}")
    earlier_report(dst)
    (dst / "late.txt").write_text("arrived late")
    before = snapshot(dst)
    with pytest.raises(RenderError, match="not listed: late.txt"):
        _replace_dir(src, dst)
    assert snapshot(dst) == before and src.is_dir()
    assert siblings(dst) == []


# ---- what counts as an earlier report (unit) ----------------------------------------------------------------

@pytest.mark.parametrize("entry", ["symlink-as-listed-file", "DS_Store-folder", "git-folder"])
def test_entries_that_make_a_report_folder_foreign(tmp_path, entry):
    from audit.report.folder import foreign_contents

    out = tmp_path / "report"
    earlier_report(out)
    assert foreign_contents(out) is None
    if entry == "symlink-as-listed-file":
        target = tmp_path / "precious.txt"
        target.write_text("precious")
        (out / "summary.md").unlink()
        (out / "summary.md").symlink_to(target)
    elif entry == "DS_Store-folder":
        (out / ".DS_Store").mkdir()
    else:
        (out / ".git").mkdir()
    assert "does not match the folder" in (foreign_contents(out) or "")
