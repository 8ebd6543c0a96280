"""The held-out set: an image folder or a CSV manifest, validated up front, decoded lazily."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageFile, UnidentifiedImageError

from ..config import AuditConfig, DataConfig
from ..errors import DataError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
ROI_BOX = ("roi_x0", "roi_y0", "roi_x1", "roi_y1")
RESERVED = {"path", "label", "id", "roi_mask", *ROI_BOX}


@dataclass(frozen=True)
class SampleRecord:
    """One held-out sample as listed (not yet decoded)."""

    id: str
    path: Path
    label: int
    roi_box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in original pixels
    roi_mask: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # "manifest.csv row 7" — for error messages


@dataclass(frozen=True)
class HeldOutSet:
    records: tuple[SampleRecord, ...]
    classes: tuple[str, ...]
    metadata_columns: tuple[str, ...]
    root: Path
    manifest: Path | None

    def metadata_frame(self) -> pd.DataFrame:
        rows = [r.metadata for r in self.records]
        return pd.DataFrame(rows, columns=list(self.metadata_columns))


def _within(root: Path, p: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _parse_label(raw: str, classes: Sequence[str] | None, where: str) -> str | int:
    raw = raw.strip()
    if classes is not None:
        if raw in classes:
            return classes.index(raw)
        if raw.lstrip("-").isdigit():
            i = int(raw)
            if 0 <= i < len(classes):
                return i
        raise DataError(f"{where}: field 'label': {raw!r} is not in classes ({', '.join(classes)})")
    if raw == "":
        raise DataError(f"{where}: field 'label' is empty")
    return raw


def _read_manifest(cfg: DataConfig, manifest: Path, allow_outside: bool) -> HeldOutSet:
    if not manifest.is_file():
        raise DataError(f"{manifest}: manifest file not found")
    root = manifest.parent
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{manifest}: cannot read as CSV: {e}") from None
    header = [h.strip() for h in header]
    for col in ("path", "label"):
        if col not in header:
            raise DataError(f"{manifest}: missing column {col!r} (columns are: {', '.join(header) or 'none'})")
    box_cols = [c for c in ROI_BOX if c in header]
    if box_cols and len(box_cols) != 4:
        missing = sorted(set(ROI_BOX) - set(box_cols))
        raise DataError(f"{manifest}: ROI box needs all of {', '.join(ROI_BOX)}; missing {', '.join(missing)}")
    if box_cols and "roi_mask" in header:
        raise DataError(f"{manifest}: give either roi_x0..roi_y1 or roi_mask, not both")
    if not rows:
        raise DataError(f"{manifest}: the manifest has no rows")
    meta_cols = tuple(h for h in header if h not in RESERVED)
    classes = tuple(cfg.classes) if cfg.classes else None
    raw_labels: list[str | int] = []
    records: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    for lineno, row in enumerate(rows, start=2):
        where = f"{manifest} row {lineno}"
        if None in row:
            raise DataError(f"{where}: more fields than columns in the header")
        row = {k.strip(): (v if v is not None else "") for k, v in row.items()}
        rel = row.get("path", "").strip()
        if not rel:
            raise DataError(f"{where}: field 'path' is empty")
        p = Path(rel)
        if p.is_absolute() and not allow_outside:
            raise DataError(f"{where}: field 'path': absolute path {rel!r} not allowed (set data.allow_outside_root)")
        full = p if p.is_absolute() else root / p
        if not allow_outside and not _within(root, full):
            raise DataError(f"{where}: field 'path': {rel!r} points outside the data root {root}")
        if not full.is_file():
            raise DataError(f"{where}: field 'path': image file not found: {full}")
        sid = row.get("id", "").strip() or rel
        if sid in seen_ids:
            raise DataError(f"{where}: duplicate sample id {sid!r} (first at row {seen_ids[sid]})")
        seen_ids[sid] = lineno
        raw_labels.append(_parse_label(row.get("label", ""), classes, where))
        box = None
        if box_cols:
            vals = []
            for c in ROI_BOX:
                try:
                    vals.append(float(row[c]))
                except (TypeError, ValueError):
                    raise DataError(f"{where}: field {c!r}: {row[c]!r} is not a number") from None
            x0, y0, x1, y1 = vals
            if not (np.isfinite(vals).all() and x1 > x0 and y1 > y0 and x0 >= 0 and y0 >= 0):
                raise DataError(f"{where}: ROI box {tuple(vals)} is empty, inverted or negative (need x0<x1, y0<y1)")
            box = (x0, y0, x1, y1)
        mask = None
        if "roi_mask" in header and row.get("roi_mask", "").strip():
            mrel = Path(row["roi_mask"].strip())
            mask = mrel if mrel.is_absolute() else root / mrel
            if not allow_outside and not _within(root, mask):
                raise DataError(f"{where}: field 'roi_mask': {str(mrel)!r} points outside the data root {root}")
            if not mask.is_file():
                raise DataError(f"{where}: field 'roi_mask': mask file not found: {mask}")
        records.append(
            {"id": sid, "path": full, "roi_box": box, "roi_mask": mask,
             "metadata": {c: row.get(c, "") for c in meta_cols}, "source": where}
        )
    if classes is None:
        names = sorted({str(lbl) for lbl in raw_labels})
        if len(names) < 2:
            raise DataError(f"{manifest}: only one label value ({names[0]!r}); set data.classes")
        classes = tuple(names)
        raw_labels = [classes.index(str(lbl)) for lbl in raw_labels]
    recs = tuple(SampleRecord(label=int(lbl), **r) for lbl, r in zip(raw_labels, records, strict=True))
    for rec in recs:
        if rec.roi_box is not None or rec.roi_mask is not None:
            _check_roi(rec)
    return HeldOutSet(recs, classes, meta_cols, root, manifest)


def _check_roi(rec: SampleRecord) -> None:
    """Up front, from the image header: a ROI box lies inside its image, a mask has the image's size and a non-zero
    pixel. An image whose header cannot be read is left to decoding, which fails or skips it (data.on_bad_image)."""
    try:
        w, h = image_size_of(rec.path)
    except DataError:
        return
    roi_mask(rec, (h, w))


def _read_folder(cfg: DataConfig, folder: Path) -> HeldOutSet:
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    subdirs = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    classes = tuple(cfg.classes) if cfg.classes else tuple(subdirs)
    if len(classes) < 2:
        raise DataError(f"{folder}: needs one subfolder per class (found {len(subdirs)})")
    unknown = sorted(set(subdirs) - set(classes))
    if unknown:
        raise DataError(f"{folder}: subfolder(s) {', '.join(unknown)} not in classes ({', '.join(classes)})")
    recs: list[SampleRecord] = []
    for ci, name in enumerate(classes):
        d = folder / name
        files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS) if d.is_dir() else []
        for f in files:
            if not cfg.allow_outside_root and not _within(folder, f):
                raise DataError(f"{f}: points outside the image folder {folder} (a link?); "
                                f"set data.allow_outside_root to allow it")
            rel = f.relative_to(folder).as_posix()
            recs.append(SampleRecord(id=rel, path=f, label=ci, source=str(f)))
    if not recs:
        raise DataError(f"{folder}: no images found (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return HeldOutSet(tuple(recs), classes, (), folder, None)


def load_heldout(cfg: AuditConfig) -> HeldOutSet:
    """Validate the listing (files exist, labels known, ROIs sane) without decoding images."""
    d = cfg.data
    if d.manifest is not None:
        hs = _read_manifest(d, cfg.resolve(d.manifest), d.allow_outside_root)
    else:
        assert d.image_folder is not None
        hs = _read_folder(d, cfg.resolve(d.image_folder))
    counts = np.bincount([r.label for r in hs.records], minlength=len(hs.classes))
    empty = [c for c, n in zip(hs.classes, counts, strict=False) if n == 0]
    if empty:
        raise DataError(f"{hs.manifest or hs.root}: class(es) with no held-out samples: {', '.join(empty)}")
    for col in d.subgroups:
        if col not in hs.metadata_columns:
            raise DataError(
                f"data.subgroups: column {col!r} not in the manifest (metadata columns: "
                f"{', '.join(hs.metadata_columns) or 'none'})"
            )
    return hs


@contextmanager
def _strict_decoding() -> Iterator[None]:
    """Truncated files are errors and decompression-bomb warnings are refusals while an image is decoded.
    (WeasyPrint sets the process-wide ImageFile.LOAD_TRUNCATED_IMAGES = True on import, which would let a
    truncated held-out image through as a partly black picture.)"""
    prev = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = prev


def open_image(path: Path, channels: int) -> Image.Image:
    """Decode one image fully and convert it to L or RGB; errors name the file."""
    try:
        with _strict_decoding(), Image.open(path) as im:
            im.load()
            img = im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: image refused as a possible decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (empty, corrupt or unknown format)") from None
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, ValueError, struct.error, … from a bad file
        raise DataError(f"{path}: cannot decode image: {e}") from None
    mode = img.mode
    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(img, dtype=np.float64)
            hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
            img = Image.fromarray(np.clip(np.nan_to_num(arr) / hi * 255.0, 0, 255).astype(np.uint8), mode="L")
        target = "L" if channels == 1 else "RGB"
        if img.mode != target:
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA")
                bg = Image.new("RGBA", img.size, (0, 0, 0, 255))
                img = Image.alpha_composite(bg, img)
            img = img.convert(target)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: unsupported image mode {mode!r} ({e})") from None
    return img


@dataclass(frozen=True)
class Preprocess:
    """Image -> normalised float tensor (C, H, W). Resizing stretches to image_size (no crop), so ROI
    boxes map to input pixels by scaling."""

    size: tuple[int, int] | None
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, img: Image.Image) -> torch.Tensor:
        if self.size is not None and (img.height, img.width) != self.size:
            img = img.resize((self.size[1], self.size[0]), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        if arr.ndim == 2:
            arr = arr[:, :, None]
        t = torch.from_numpy(arr.transpose(2, 0, 1).copy())
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (t - mean) / std

    def unnormalize(self, x: torch.Tensor) -> np.ndarray:
        """(C,H,W) tensor -> (H,W,3) float image in [0,1] for display."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        img = (x.detach().cpu().float() * std + mean).clamp(0, 1).numpy().transpose(1, 2, 0)
        return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def make_preprocess(d: DataConfig) -> Preprocess:
    c = d.channels
    mean = tuple(d.mean) if d.mean else (0.0,) * c
    std = tuple(d.std) if d.std else (1.0,) * c
    if len(mean) == 1:
        mean = mean * c
    if len(std) == 1:
        std = std * c
    return Preprocess(d.image_size, c, mean, std)


class ImageDataset(torch.utils.data.Dataset):
    """Decodes records on demand. With ``skip_bad`` a bad image yields (index, None, reason)."""

    def __init__(self, records: Sequence[SampleRecord], preprocess: Preprocess, skip_bad: bool = False) -> None:
        self.records = records
        self.preprocess = preprocess
        self.skip_bad = skip_bad

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        rec = self.records[i]
        try:
            img = open_image(rec.path, self.preprocess.channels)
            if self.preprocess.size is None:
                raise DataError(f"{rec.path}: data.image_size is not set")
            return i, self.preprocess(img), ""
        except DataError as e:
            msg = str(e) if rec.source in ("", str(rec.path)) else f"{rec.source}: {e}"  # name the manifest row
            if self.skip_bad:
                return i, None, msg
            raise DataError(msg) from None


def collate(batch: list[tuple[int, torch.Tensor | None, str]]) -> tuple[torch.Tensor, torch.Tensor | None, list[tuple[int, str]]]:
    ok = [(i, x) for i, x, _ in batch if x is not None]
    bad = [(i, err) for i, x, err in batch if x is None]
    if not ok:
        return torch.empty(0, dtype=torch.long), None, bad
    idx = torch.tensor([i for i, _ in ok], dtype=torch.long)
    return idx, torch.stack([x for _, x in ok]), bad


def image_size_of(path: Path) -> tuple[int, int]:
    """(width, height) from the header only."""
    try:
        with _strict_decoding(), Image.open(path) as im:
            return im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: image refused as a possible decompression bomb ({e})") from None
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, … from a bad file
        raise DataError(f"{path}: cannot read image header: {e}") from None


def roi_mask(rec: SampleRecord, input_size: tuple[int, int]) -> np.ndarray | None:
    """The sample's ROI as a boolean (H, W) mask in model-input pixels, or None when it has none."""
    H, W = input_size
    if rec.roi_box is None and rec.roi_mask is None:
        return None
    w0, h0 = image_size_of(rec.path)
    if rec.roi_box is not None:
        x0, y0, x1, y1 = rec.roi_box
        if x1 > w0 or y1 > h0:
            raise DataError(f"{rec.source}: ROI box {rec.roi_box} extends outside the {w0}x{h0} image")
        sx, sy = W / w0, H / h0
        m = np.zeros((H, W), dtype=bool)
        c0, c1 = int(np.floor(x0 * sx)), int(np.ceil(x1 * sx))
        r0, r1 = int(np.floor(y0 * sy)), int(np.ceil(y1 * sy))
        m[max(r0, 0):min(r1, H), max(c0, 0):min(c1, W)] = True
        return m
    assert rec.roi_mask is not None
    try:
        with _strict_decoding(), Image.open(rec.roi_mask) as im:
            im.load()
            mask_img = im.convert("L")
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, DecompressionBombError, … from a bad file
        raise DataError(f"{rec.source}: roi_mask {rec.roi_mask}: cannot decode: {e}") from None
    if mask_img.size != (w0, h0):
        raise DataError(
            f"{rec.source}: roi_mask {rec.roi_mask} is {mask_img.size[0]}x{mask_img.size[1]} but the image is {w0}x{h0}"
        )
    m = np.asarray(mask_img.resize((W, H), Image.NEAREST)) > 0
    if not m.any():
        raise DataError(f"{rec.source}: roi_mask {rec.roi_mask} is empty (no non-zero pixel)")
    return m
