"""A table of bad inputs, each generated from the tiny set-up (no committed binaries).

Every case must end in exit code 2 with one line `error: …` that names the file, row or field and what was
expected, no traceback, no report folder and no temporary folder next to it, and no code run from the input
(no case may create the sentinel file a hostile payload would write)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from badinput_helpers import (
    assert_bad_input,
    drop_sections,
    edit_manifest,
    forged_bomb_png,
    invoke,
    leftovers,
    truncate,
)
from PIL import Image
from safetensors.torch import load_file


@dataclass
class Ctx:
    """What a case's ``prepare`` can touch: the set-up's files, a scratch folder and pytest's monkeypatch."""

    root: Path
    config: Path
    manifest: Path
    weights: Path
    tmp: Path
    mp: pytest.MonkeyPatch
    config_arg: Path | None = None  # the config path given on the command line (default: config)
    out: Path | None = None  # the --out folder (default: tmp/out)
    args: list[str] = field(default_factory=list)  # extra command-line arguments

    @property
    def sentinel(self) -> Path:
        return self.tmp / "pwned"

    # config edits -------------------------------------------------------------------------------------------
    def sub(self, old: str, new: str) -> None:
        text = self.config.read_text()
        assert old in text, old
        self.config.write_text(text.replace(old, new, 1))

    def model_source(self, lines: str) -> None:
        """Replace the factory/weights/num_classes/factory_kwargs lines of [model] with ``lines``."""
        text = self.config.read_text()
        old = ('factory = "audit.demo.model:build"\nweights = "weights.safetensors"\nnum_classes = 3\n'
               'factory_kwargs = { width = 4 }\n')
        assert old in text
        self.config.write_text(text.replace(old, lines.strip() + "\n"))

    def drop_section(self, name: str) -> None:
        self.config.write_text(drop_sections(self.config.read_text(), (name,)))

    def pack(self, text: str) -> Path:
        p = self.root / "gate.toml"
        p.write_text(text)
        self.sub('pack = "default"', 'pack = "gate.toml"')
        return p

    # files ------------------------------------------------------------------------------------------------------
    def image(self, i: int) -> Path:
        return self.root / "img" / f"{i:03d}.png"

    def factory_module(self, name: str, body: str) -> None:
        """Write ``name``.py next to the config and point model.factory at its ``build``."""
        (self.root / f"{name}.py").write_text("import math\nimport torch\nfrom torch import nn\n\n" + body)
        self.model_source(f'factory = "{name}:build"')

    def payload_pickle(self, path: Path) -> None:
        """A torch checkpoint whose unpickling would create the sentinel file."""
        sentinel = self.sentinel

        class Payload:
            def __reduce__(self):
                return (Path.touch, (sentinel,))

        torch.save({"x": Payload()}, path)


def _set_cell(ctx: Ctx, row: int, column: str, value: str) -> None:
    """Set one cell; ``row`` counts data rows from 0 (file line row + 2)."""

    def fn(header, rows):
        rows[row][header.index(column)] = value

    edit_manifest(ctx.manifest, fn)


def _add_column(ctx: Ctx, column: str, values: Callable[[int], str]) -> None:
    def fn(header, rows):
        return header + [column], [r + [values(i)] for i, r in enumerate(rows)]

    edit_manifest(ctx.manifest, fn)


# ---- prepare functions that need more than one line ----------------------------------------------------------

def _weights_truncated_pt(ctx: Ctx) -> None:
    pt = ctx.root / "weights.pt"
    torch.save(load_file(str(ctx.weights)), pt)
    truncate(pt)
    ctx.sub("weights.safetensors", "weights.pt")


def _weights_other_architecture(ctx: Ctx) -> None:
    other = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(1800, 3))
    torch.save(other.state_dict(), ctx.root / "other.pt")
    ctx.sub("weights.safetensors", "other.pt")


def _torchscript_is_pickle(ctx: Ctx) -> None:
    ctx.payload_pickle(ctx.root / "model.ts")
    ctx.model_source('torchscript = "model.ts"')


def _pickle_without_opt_in(ctx: Ctx) -> None:
    ctx.payload_pickle(ctx.root / "model.pkl")
    ctx.model_source('pickle = "model.pkl"')


def _manifest_header_only(ctx: Ctx) -> None:
    edit_manifest(ctx.manifest, lambda header, rows: (header, []))


def _duplicate_ids(ctx: Ctx) -> None:
    _add_column(ctx, "id", lambda i: "same" if i in (0, 2) else f"s{i}")


def _path_dotdot(ctx: Ctx) -> None:
    Image.new("L", (32, 32)).save(ctx.tmp / "outside.png")
    _set_cell(ctx, 0, "path", "../outside.png")


def _path_symlink(ctx: Ctx) -> None:
    Image.new("L", (32, 32)).save(ctx.tmp / "outside.png")
    (ctx.root / "img" / "link.png").symlink_to(ctx.tmp / "outside.png")
    _set_cell(ctx, 0, "path", "img/link.png")


def _truncated_jpeg(ctx: Ctx) -> None:
    jpg = ctx.root / "img" / "005.jpg"
    Image.open(ctx.image(5)).save(jpg, quality=95)
    truncate(jpg, 0.4)
    _set_cell(ctx, 5, "path", "img/005.jpg")


def _roi_mask(ctx: Ctx, mask: Image.Image | bytes) -> None:
    def fn(header, rows):
        keep = [i for i, h in enumerate(header) if not h.startswith("roi_")]
        header = [header[i] for i in keep] + ["roi_mask"]
        rows = [[r[i] for i in keep] + [""] for r in rows]
        rows[3][-1] = "masks/003.png"
        return header, rows

    (ctx.root / "masks").mkdir()
    if isinstance(mask, bytes):
        (ctx.root / "masks" / "003.png").write_bytes(mask)
    else:
        mask.save(ctx.root / "masks" / "003.png")
    edit_manifest(ctx.manifest, fn)


def _truncated_after_weasyprint(ctx: Ctx) -> None:
    # importing WeasyPrint sets PIL's process-wide LOAD_TRUNCATED_IMAGES = True; decoding must stay strict
    import weasyprint  # noqa: F401
    from PIL import ImageFile

    ctx.mp.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    truncate(ctx.image(5), 0.6)


def _lab_tiff(ctx: Ctx) -> None:
    Image.new("LAB", (32, 32)).save(ctx.root / "img" / "005.tif")
    _set_cell(ctx, 5, "path", "img/005.tif")


def _zero_bytes_with_worker(ctx: Ctx) -> None:
    # a DataLoader worker would wrap the error in its own traceback text; the message must stay one clean line
    ctx.sub("batch_size = 16", "batch_size = 16\nnum_workers = 1")
    ctx.image(5).write_bytes(b"")


def _folder_with_escaping_link(ctx: Ctx) -> None:
    for name in ("left", "middle", "right"):
        (ctx.root / "heldout" / name).mkdir(parents=True)
        Image.new("L", (32, 32)).save(ctx.root / "heldout" / name / "a.png")
    Image.new("L", (32, 32)).save(ctx.tmp / "secret.png")
    (ctx.root / "heldout" / "right" / "link.png").symlink_to(ctx.tmp / "secret.png")
    ctx.sub('manifest = "manifest.csv"', 'image_folder = "heldout"')
    ctx.sub('subgroups = ["site"]', "subgroups = []")


def _extra_field(ctx: Ctx) -> None:
    lines = ctx.manifest.read_text().splitlines()
    lines[3] += ",extra"  # file line 4
    ctx.manifest.write_text("\n".join(lines) + "\n")


def _class_without_samples(ctx: Ctx) -> None:
    edit_manifest(ctx.manifest, lambda header, rows: (header, [r for r in rows if r[1] != "right"]))


def _skip_empties_a_class(ctx: Ctx) -> None:
    ctx.sub('channels = 1', 'channels = 1\non_bad_image = "skip"')
    header_rows = []
    edit_manifest(ctx.manifest, lambda header, rows: header_rows.extend(rows))
    for r in header_rows:
        if r[1] == "right":
            (ctx.root / r[0]).write_bytes(b"")


def _all_unreadable_skip(ctx: Ctx) -> None:
    ctx.sub('channels = 1', 'channels = 1\non_bad_image = "skip"')
    for p in (ctx.root / "img").glob("*.png"):
        p.write_bytes(b"")


def _manifest_not_utf8(ctx: Ctx) -> None:
    ctx.manifest.write_bytes(ctx.manifest.read_bytes().replace(b",A\r\n", b",\xe9t\xe9\r\n", 1))


def _out_parent_is_file(ctx: Ctx) -> None:
    (ctx.tmp / "afile").write_text("not a folder")
    ctx.out = ctx.tmp / "afile" / "report"


def _out_is_file(ctx: Ctx) -> None:
    ctx.out = ctx.tmp / "report.txt"
    ctx.out.write_text("keep me")


def _out_unwritable_proc(ctx: Ctx) -> None:
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    ctx.out = Path("/proc/model-audit-test/report")


def _out_unwritable_chmod(ctx: Ctx) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod does not stop writes (see the /proc case)")
    locked = ctx.tmp / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    ctx.out = locked / "report"


def _cuda_absent(ctx: Ctx) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    ctx.args += ["--device", "cuda"]


def _bomb_below_hard_limit(ctx: Ctx) -> None:
    # 32×32 = 1024 pixels lies between the lowered limit and twice it: Pillow only warns; the audit refuses
    ctx.mp.setattr(Image, "MAX_IMAGE_PIXELS", 800)


FACTORY_4D = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)

    def forward(self, x):
        return self.pool(self.conv(x))  # (N, 3, 2, 2), not (N, C)


def build(**kw):
    return Net()
"""

FACTORY_CONST = """
class Net(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.value = value

    def forward(self, x):
        y = self.conv(x).mean(dim=(2, 3))
        return torch.full_like(y, self.value) if self.value is not None else dict(scores=y, aux=y)


def build(**kw):
    return Net({value})
"""

FACTORY_RAISES = """
def build(**kw):
    raise ValueError("width must be a power of two\\n(got 5)")  # a two-line message still gives one line
"""

FACTORY_SYNTAX = "def build(:\n    pass\n"

FACTORY_NOT_MODULE = """
def build(**kw):
    return 42
"""

FACTORY_FORWARD_ASSERTS = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        assert x.shape[1] == 3, "expects RGB input"
        return self.fc(x.mean(dim=(2, 3)))


def build(**kw):
    return Net()
"""


@dataclass(frozen=True)
class Case:
    id: str
    prepare: Callable[[Ctx], None]
    expect: tuple[str, ...]  # substrings of the error line; {config}, {manifest}, {root}, {tmp}, {out} are filled in


C = Case
CASES: list[Case] = [
    # ---- config -------------------------------------------------------------------------------------------
    C("config-unknown-top-level-key", lambda c: c.sub('seed = 0', 'seed = 0\ncolour = "red"'),
      ("{config}", "colour: unknown key")),
    C("config-wrong-type", lambda c: c.sub("batch_size = 16", 'batch_size = "many"'),
      ("{config}", "data.batch_size", "valid integer", "'many'")),
    C("config-missing-model-section", lambda c: c.drop_section("model"),
      ("{config}", "model: required field is missing")),
    C("config-missing-data-section", lambda c: c.drop_section("data"),
      ("{config}", "data: required field is missing")),
    C("config-three-model-sources",
      lambda c: c.sub("[model]\n", '[model]\ntorchscript = "m.ts"\npickle = "m.pkl"\nallow_pickle = true\n'),
      ("{config}", "model", "exactly one of", "got torchscript, factory, pickle")),
    C("config-device-unknown", lambda c: c.sub("seed = 0", 'seed = 0\ndevice = "gpu"'),
      ("{config}", "device", "auto|cpu|cuda", "'gpu'")),
    C("config-name-escapes-folder", lambda c: c.sub('name = "tiny"', 'name = "../../escape"'),
      ("{config}", "name: String should match pattern", "'../../escape'")),
    C("config-not-utf8", lambda c: c.config.write_bytes(b'name = "caf\xe9"\n'),
      ("{config}", "not a UTF-8 text file")),
    C("config-not-toml", lambda c: c.config.write_text("name = tiny audit\n[model\n"),
      ("{config}", "not valid TOML", "line 1")),
    C("config-file-missing", lambda c: setattr(c, "config_arg", c.root / "nope.toml"),
      ("nope.toml", "config file not found")),
    C("config-override-into-a-value", lambda c: c.args.extend(["--set", "name.x=1"]),
      ("--set name.x", "'name' is not a section")),
    C("config-override-without-equals", lambda c: c.args.extend(["--set", "data.batch_size"]),
      ("--set 'data.batch_size'", "section.key=value")),
    C("config-override-without-key", lambda c: c.args.extend(["--set", "=5"]),
      ("--set '=5'", "dotted key")),
    C("config-override-bad-value-blames-the-command-line", lambda c: c.args.extend(["--set", "data.batch_size=0"]),
      ("--set: data.batch_size", "greater than or equal to 1")),
    C("config-single-class", lambda c: c.sub('classes = ["left", "middle", "right"]', 'classes = ["left"]'),
      ("{config}", "data", "at least two class names")),
    C("config-std-zero", lambda c: c.sub("channels = 1", "channels = 1\nstd = [0.0]"),
      ("{config}", "data.std", "must be a finite number > 0")),
    C("config-std-nan", lambda c: c.sub("channels = 1", "channels = 1\nstd = [nan]"),
      ("{config}", "data.std", "must be a finite number > 0")),
    C("config-mean-inf", lambda c: c.sub("channels = 1", "channels = 1\nmean = [inf]"),
      ("{config}", "data.mean", "must be a finite number")),
    C("config-image-size-zero", lambda c: c.sub("image_size = [32, 32]", "image_size = [0, 32]"),
      ("{config}", "data.image_size", "between 1 and 8192")),
    C("config-image-size-missing", lambda c: c.sub("image_size = [32, 32]\n", ""),
      ("data.image_size", "required")),
    C("config-options-for-unknown-explainer", lambda c: c.sub("[rules]", "[explainers.options.nosuch]\nx = 1\n[rules]"),
      ("explainers.options", "unknown explainer(s) nosuch")),
    C("pack-threshold-out-of-range",
      lambda c: c.pack('[[rule]]\nid = "gate"\nkind = "skipped_max"\nthreshold = 1.5\n'),
      ("gate.toml", "rule[0]", "threshold", "less than or equal to 1", "1.5")),
    C("pack-unknown-rule-kind",
      lambda c: c.pack('[[rule]]\nid = "gate"\nkind = "magic"\nthreshold = 0.5\n'),
      ("gate.toml", "rule[0]", "unknown rule kind 'magic'", "metric_min")),
    C("pack-not-toml", lambda c: c.pack('[[rule]\nid = "gate"\n'),
      ("gate.toml", "rule pack is not valid TOML")),
    C("pack-unknown-parameter",
      lambda c: c.pack('[[rule]]\nid = "gate"\nkind = "metric_min"\nmetric = "accuracy"\ntreshold = 0.9\n'),
      ("gate.toml", "rule[0]", "treshold: unknown key")),
    C("pack-duplicate-rule-id",
      lambda c: c.pack('[[rule]]\nid = "g"\nkind = "skipped_max"\n[[rule]]\nid = "g"\nkind = "skipped_max"\n'),
      ("gate.toml", "rule[1]", "duplicate rule id 'g'")),
    C("pack-without-rules", lambda c: c.pack('[pack]\nname = "empty"\n'),
      ("gate.toml", "at least one [[rule]]")),
    # ---- model ----------------------------------------------------------------------------------------------
    C("weights-missing", lambda c: c.weights.unlink(),
      ("weights.safetensors", "weights file not found")),
    C("weights-truncated-pt", _weights_truncated_pt,
      ("weights.pt", "cannot read checkpoint", "truncated or not a PyTorch file")),
    C("weights-truncated-safetensors", lambda c: truncate(c.weights),
      ("weights.safetensors", "not a valid safetensors file")),
    C("weights-other-architecture", _weights_other_architecture,
      ("other.pt", "weights do not fit the model", "missing keys", "unexpected keys")),
    C("model-wrong-number-of-classes",
      lambda c: c.model_source('factory = "audit.demo.model:build"\nnum_classes = 4\nfactory_kwargs = { width = 4 }'),
      ("the model has 4 outputs but data.classes lists 3 classes",)),
    C("model-output-4d", lambda c: c.factory_module("badnet_fourd", FACTORY_4D),
      ("model output has shape (16, 3, 2, 2)", "expected (batch, classes) = (16, 3)")),
    C("model-output-nan", lambda c: c.factory_module("badnet_nan", FACTORY_CONST.format(value="math.nan")),
      ("NaN or infinite outputs", "img/000.png")),
    C("model-output-inf", lambda c: c.factory_module("badnet_inf", FACTORY_CONST.format(value="-math.inf")),
      ("NaN or infinite outputs",)),
    C("model-output-dict-without-logits", lambda c: c.factory_module("badnet_dict", FACTORY_CONST.format(value="None")),
      ("the model returned dict with keys scores, aux, not a tensor of logits", "set model.output")),
    C("model-forward-raises", lambda c: c.factory_module("badnet_assert", FACTORY_FORWARD_ASSERTS),
      ("the model failed on a (1, 1, 32, 32) input", "expects RGB input")),
    C("model-channels-mismatch", lambda c: c.sub("channels = 1", "channels = 3"),
      ("the model failed on a (1, 3, 32, 32) input", "data.image_size and data.channels")),
    C("torchscript-not-torchscript",
      lambda c: ((c.root / "model.ts").write_bytes(b"PK\x03\x04 this is not an archive"),
                 c.model_source('torchscript = "model.ts"')),
      ("model.ts", "not a TorchScript archive")),
    C("torchscript-missing", lambda c: c.model_source('torchscript = "model.ts"'),
      ("model.ts", "TorchScript file not found")),
    C("hostile-torchscript-path-is-a-pickle", _torchscript_is_pickle,
      ("model.ts", "not a TorchScript archive")),
    C("hostile-pickle-source-without-opt-in", _pickle_without_opt_in,
      ("{config}", "model", "'pickle' loads arbitrary code", "allow_pickle = true")),
    C("torchvision-unknown-architecture", lambda c: c.model_source('torchvision = "resnet9000"\nnum_classes = 3'),
      ("model.torchvision", "unknown architecture 'resnet9000'")),
    C("factory-module-missing", lambda c: c.model_source('factory = "badnet_nowhere:build"'),
      ("model.factory", "cannot import module 'badnet_nowhere'")),
    C("factory-module-syntax-error", lambda c: c.factory_module("badnet_syntax", FACTORY_SYNTAX),
      ("model.factory", "badnet_syntax", "SyntaxError")),
    C("factory-raises", lambda c: c.factory_module("badnet_raises", FACTORY_RAISES),
      ("model.factory", "badnet_raises:build", "ValueError", "power of two (got 5)")),
    C("factory-returns-not-a-module", lambda c: c.factory_module("badnet_int", FACTORY_NOT_MODULE),
      ("model.factory", "returned int, not a torch.nn.Module")),
    # ---- data ---------------------------------------------------------------------------------------------
    C("image-folder-missing", lambda c: c.sub('manifest = "manifest.csv"', 'image_folder = "heldout"'),
      ("heldout", "image folder not found")),
    C("image-folder-link-escapes-root", _folder_with_escaping_link,
      ("heldout/right/link.png", "points outside the image folder", "allow_outside_root")),
    C("manifest-missing-column",
      lambda c: edit_manifest(c.manifest, lambda h, rows: (h[:1] + h[2:], [r[:1] + r[2:] for r in rows])),
      ("{manifest}", "missing column 'label'", "columns are: path, roi_x0")),
    C("manifest-header-only", _manifest_header_only, ("{manifest}", "the manifest has no rows")),
    C("manifest-empty-file", lambda c: c.manifest.write_bytes(b""),
      ("{manifest}", "missing column 'path'", "columns are: none")),
    C("manifest-not-utf8", _manifest_not_utf8, ("{manifest}", "cannot read as CSV", "utf-8")),
    C("manifest-extra-field", _extra_field,
      ("{manifest} row 4", "more fields than columns")),
    C("manifest-duplicate-ids", _duplicate_ids, ("{manifest} row 4", "duplicate sample id 'same'", "first at row 2")),
    C("path-escapes-root-dotdot", _path_dotdot,
      ("{manifest} row 2", "field 'path'", "'../outside.png' points outside the data root")),
    C("path-absolute", lambda c: _set_cell(c, 1, "path", "/etc/passwd"),
      ("{manifest} row 3", "field 'path'", "absolute path '/etc/passwd' not allowed", "allow_outside_root")),
    C("path-symlink-escapes-root", _path_symlink,
      ("{manifest} row 2", "field 'path'", "points outside the data root")),
    C("path-empty", lambda c: _set_cell(c, 3, "path", " "), ("{manifest} row 5", "field 'path' is empty")),
    C("image-missing", lambda c: c.image(5).unlink(),
      ("{manifest} row 7", "field 'path'", "image file not found", "005.png")),
    C("image-is-a-folder", lambda c: (c.image(5).unlink(), c.image(5).mkdir()),
      ("{manifest} row 7", "field 'path'", "image file not found")),
    C("image-zero-bytes", lambda c: c.image(5).write_bytes(b""),
      ("{manifest} row 7", "005.png", "not a readable image")),
    C("image-truncated-png", lambda c: truncate(c.image(5), 0.6),
      ("{manifest} row 7", "005.png", "cannot decode image", "truncated")),
    C("image-truncated-png-after-weasyprint-import", _truncated_after_weasyprint,
      ("{manifest} row 7", "005.png", "cannot decode image", "truncated")),
    C("image-truncated-jpeg", _truncated_jpeg,
      ("{manifest} row 7", "005.jpg", "cannot decode image", "truncated")),
    C("image-decompression-bomb", lambda c: forged_bomb_png(c.image(5)),
      ("{manifest} row 7", "005.png", "image refused as a possible decompression bomb")),
    C("image-decompression-bomb-warning", _bomb_below_hard_limit,
      ("{manifest} row 2", "000.png", "image refused as a possible decompression bomb")),
    C("image-unsupported-mode", _lab_tiff,
      ("{manifest} row 7", "005.tif", "unsupported image mode 'LAB'")),
    C("image-zero-bytes-in-a-worker-process", _zero_bytes_with_worker,
      ("{manifest} row 7", "005.png", "not a readable image")),
    C("label-index-out-of-range", lambda c: _set_cell(c, 0, "label", "7"),
      ("{manifest} row 2", "field 'label'", "'7' is not in classes (left, middle, right)")),
    C("label-empty", lambda c: _set_cell(c, 4, "label", ""),
      ("{manifest} row 6", "field 'label'", "'' is not in classes")),
    C("roi-box-outside-image", lambda c: _set_cell(c, 0, "roi_x1", "100"),
      ("{manifest} row 2", "ROI box", "outside the 32x32 image")),
    C("roi-box-inverted", lambda c: _set_cell(c, 1, "roi_x0", "30"),
      ("{manifest} row 3", "ROI box", "inverted", "x0<x1")),
    C("roi-box-not-a-number", lambda c: _set_cell(c, 2, "roi_y0", "top"),
      ("{manifest} row 4", "field 'roi_y0'", "'top' is not a number")),
    C("roi-box-nan", lambda c: _set_cell(c, 2, "roi_y1", "nan"),
      ("{manifest} row 4", "ROI box", "empty, inverted or negative")),
    C("roi-mask-other-size", lambda c: _roi_mask(c, Image.new("L", (16, 16), 255)),
      ("{manifest} row 5", "roi_mask", "is 16x16 but the image is 32x32")),
    C("roi-mask-not-an-image", lambda c: _roi_mask(c, b"not a png"),
      ("{manifest} row 5", "roi_mask", "masks/003.png")),
    C("roi-mask-empty", lambda c: _roi_mask(c, Image.new("L", (32, 32), 0)),
      ("{manifest} row 5", "roi_mask", "is empty")),
    C("class-without-samples", _class_without_samples,
      ("{manifest}", "class(es) with no held-out samples: right")),
    C("skip-policy-empties-a-class", _skip_empties_a_class,
      ("{manifest}", "class(es) with no held-out samples: right")),
    C("skip-policy-nothing-readable", _all_unreadable_skip,
      ("{manifest}", "no readable image in the held-out set", "45 skipped")),
    C("subgroup-column-missing", lambda c: c.sub('subgroups = ["site"]', 'subgroups = ["hospital"]'),
      ("data.subgroups", "column 'hospital' not in the manifest", "site")),
    # ---- environment ------------------------------------------------------------------------------------------
    C("out-parent-is-a-file", _out_parent_is_file,
      ("{out}", "cannot create the output folder", "afile is a file, not a folder")),
    C("out-is-a-file", _out_is_file, ("{out}", "exists and is not a folder")),
    C("out-not-writable-proc", _out_unwritable_proc, ("{out}", "cannot create the output folder")),
    C("out-not-writable-chmod", _out_unwritable_chmod, ("{out}", "cannot create the output folder")),
    C("device-cuda-without-cuda", _cuda_absent,
      ("device: 'cuda' requested but CUDA is not available",)),
]


@pytest.mark.usefixtures("fresh_modules")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, fast, tmp_path, monkeypatch):
    ctx = Ctx(root=fast.root, config=fast.config, manifest=fast.manifest, weights=fast.weights, tmp=tmp_path,
              mp=monkeypatch)
    before_out = None
    case.prepare(ctx)
    out = ctx.out or tmp_path / "out"
    if out.is_file():
        before_out = out.read_bytes()
    res = invoke("run", ctx.config_arg or ctx.config, "--out", out, *ctx.args)
    fill = {"config": str(ctx.config), "manifest": str(ctx.manifest), "root": str(ctx.root), "tmp": str(tmp_path),
            "out": str(out)}
    expected = tuple(e.format(**fill) for e in case.expect)
    if before_out is None:
        assert_bad_input(res, out, *expected)
    else:  # the output path was an existing file: it must be left as it was
        assert_bad_input(res, out.with_name("absent"), *expected)
        assert out.read_bytes() == before_out
        assert leftovers(out) == [out]  # and no temporary folder beside it
    assert not ctx.sentinel.exists(), "a payload in the input ran"


def test_corpus_size():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


def test_debug_shows_the_traceback(fast, tmp_path):
    """--debug is the one way to see a traceback for bad input; the exit code stays 2."""
    fast.weights.unlink()
    res = invoke("run", fast.config, "--out", tmp_path / "out", "--debug")
    assert res.exit_code == 2
    assert "Traceback" in res.output and "error: " in res.output and "weights file not found" in res.output
    assert not (tmp_path / "out").exists()


def test_validate_reports_listing_problems_without_running(fast, tmp_path):
    """`audit validate` finds the same listing problems (here: a ROI box outside its image) with exit 2."""
    _set_cell(Ctx(fast.root, fast.config, fast.manifest, fast.weights, tmp_path, pytest.MonkeyPatch()), 0,
              "roi_x1", "100")
    res = invoke("validate", fast.config)
    assert res.exit_code == 2 and "outside the 32x32 image" in res.output and "Traceback" not in res.output


def test_forged_png_is_tiny_on_disk(tmp_path):
    """The decompression-bomb case writes a few dozen bytes, not gigabytes, and Pillow refuses it on open."""
    p = tmp_path / "bomb.png"
    forged_bomb_png(p)
    assert p.stat().st_size < 200
    with pytest.raises(Image.DecompressionBombError):
        Image.open(p)
