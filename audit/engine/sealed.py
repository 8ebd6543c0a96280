"""Cache entries that prove themselves, and the notes about the ones that did not.

Every cache file (a prediction entry, a scoring checkpoint, a chunk of attribution maps, a Ray batch) ends with a
fixed-size trailer written with it: a magic line, the entry format version, what the entry is (kind and key), and
the size and SHA-256 of the payload before it. A reader checks all of it before it parses a byte of the payload,
so an entry that is empty, short, flipped, foreign, of another format version or filed under another key is one
case, ``Damaged`` with the reason; the store discards it, recomputes what it held and adds a ``CacheNote`` that
the report shows (results.json ``provenance.cache_notes``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

MAGIC = b"model-audit cache entry\n"
FORMAT = 1  # the trailer's layout and what the payloads hold; an entry of another format is discarded
TRAILER_SIZE = 512
_CHUNK = 1 << 20


#: what parsing a payload that passed its check can still raise when it does not hold what this version writes
UNREADABLE = (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile)


class Damaged(Exception):
    """A cache entry that failed its check (not an AuditError: the caller discards and recomputes it)."""

    def __init__(self, reason: str, entry: str = "") -> None:
        super().__init__(f"{entry}: {reason}" if entry else reason)
        self.reason, self.entry = reason, entry


def trailer(kind: str, key: str, size: int, sha256: str) -> bytes:
    body = json.dumps({"format": FORMAT, "kind": kind, "key": key, "size": size, "sha256": sha256},
                      sort_keys=True).encode()
    pad = TRAILER_SIZE - len(MAGIC) - len(body) - 1
    if pad < 0:
        raise ValueError(f"cache key too long for the trailer: {key!r}")
    return MAGIC + body + b" " * pad + b"\n"


def _expect(raw: bytes, total: int, kind: str, key: str) -> tuple[int, str]:
    """(payload size, SHA-256) that the trailer ``raw`` of a ``total``-byte file promises; Damaged otherwise."""
    if total == 0:
        raise Damaged("empty file")
    if total < TRAILER_SIZE or not raw.startswith(MAGIC):
        raise Damaged(f"no model-audit trailer ({total} bytes: truncated, or not written by this version)")
    try:
        meta = json.loads(raw[len(MAGIC):].decode("utf-8"))
        fmt, got_kind, got_key = meta["format"], meta["kind"], meta["key"]
        size, sha = int(meta["size"]), str(meta["sha256"])
    except (ValueError, KeyError, TypeError):
        raise Damaged("unreadable trailer") from None
    if fmt != FORMAT:
        raise Damaged(f"entry format {fmt!r}, this version reads format {FORMAT}")
    if (got_kind, got_key) != (kind, key):
        raise Damaged(f"the entry is {got_kind} {got_key!r}, filed as {kind} {key!r}")
    if size != total - TRAILER_SIZE:
        raise Damaged(f"{total - TRAILER_SIZE} payload bytes, its trailer says {size}")
    return size, sha


def seal(payload: bytes, kind: str, key: str) -> bytes:
    """``payload`` with its trailer (for entries written in one piece)."""
    return payload + trailer(kind, key, len(payload), hashlib.sha256(payload).hexdigest())


def unseal(data: bytes, kind: str, key: str) -> bytes:
    """The payload of a sealed entry, checked; Damaged otherwise."""
    size, sha = _expect(data[-TRAILER_SIZE:], len(data), kind, key)
    payload = data[:size]
    if hashlib.sha256(payload).hexdigest() != sha:
        raise Damaged("SHA-256 of the payload differs from its trailer (flipped or overwritten bytes)")
    return payload


def write_sealed(path: Path, kind: str, key: str, fill: Callable[[IO[bytes]], None]) -> None:
    """Write an entry atomically: ``fill`` writes the payload to a file object, the trailer follows, and the file
    appears under ``path`` complete or not at all. OSError when it cannot be written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as fh:
            fill(fh)
            fh.flush()
            size = fh.seek(0, io.SEEK_END)
            fh.seek(0)
            h = hashlib.sha256()
            for block in iter(lambda: fh.read(min(_CHUNK, size - fh.tell())), b""):
                h.update(block)
            fh.write(trailer(kind, key, size, h.hexdigest()))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sealed_bytes(path: Path, kind: str, key: str, payload: bytes) -> None:
    write_sealed(path, kind, key, lambda fh: fh.write(payload))


class _Window(io.RawIOBase):
    """The first ``size`` bytes of an open file, as a file of their own (what the payload's parser reads)."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self._fh, self._size, self._pos = fh, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), self._size - self._pos))
        if not n:
            return 0
        self._fh.seek(self._pos)
        got = self._fh.readinto(memoryview(b)[:n])
        self._pos += got or 0
        return got or 0


@contextmanager
def open_sealed(path: Path, kind: str, key: str) -> Iterator[IO[bytes]]:
    """The checked payload of the entry at ``path`` as a read-only file (hashed before it is handed out, from the
    same open file, so a concurrent replacement cannot slip in). Damaged when the check fails; OSError when the
    file cannot be read."""
    with open(path, "rb") as fh:
        total = os.fstat(fh.fileno()).st_size
        fh.seek(max(0, total - TRAILER_SIZE))
        size, sha = _expect(fh.read(TRAILER_SIZE), total, kind, key)
        fh.seek(0)
        h = hashlib.sha256()
        left = size
        while left:
            block = fh.read(min(_CHUNK, left))
            if not block:
                raise Damaged("the file ended early while it was checked")
            h.update(block)
            left -= len(block)
        if h.hexdigest() != sha:
            raise Damaged("SHA-256 of the payload differs from its trailer (flipped or overwritten bytes)")
        yield io.BufferedReader(_Window(fh, size))


@dataclass(frozen=True)
class CacheNote:
    """One cache entry that failed its check and was discarded."""

    store: str  # "prediction cache", "attribution cache (gradcam)", "Ray scoring run"
    entry: str  # the file, relative to the cache folder
    problem: str
    action: str  # what was done instead ("discarded; scored again")

    def text(self) -> str:
        return f"{self.store} {self.entry}: {self.problem}; {self.action}"


@dataclass
class CacheLog:
    """The notes of one audit's cache reads (filled by the stores as they find damaged entries)."""

    notes: list[CacheNote] = field(default_factory=list)

    def add(self, note: CacheNote) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def as_json(self) -> list[dict[str, str]]:
        return [asdict(n) for n in self.notes]


def relative(path: Path | str, root: Path | str) -> str:
    """``path`` relative to the cache folder ``root`` when it lies inside, else as given (for notes)."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def discard(path: Path) -> None:
    """Remove a damaged entry (best effort: a cache that cannot be cleaned only costs time)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass
