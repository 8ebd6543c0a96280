"""The temporary folder a report is written into, next to ``--out``, and the sweep of those a killed run left.

A partial folder is named ``.<out name>.partial-<random>`` and created with mode 0777 less the umask (the mode the
finished report folder keeps). A marker file inside says whose it is: the process id, host name, boot id and the
process's start time. The next run for the same ``--out`` removes the partial folders that are marked and whose
owner is gone: same host, and either the machine has restarted since, or no process has that id, or the process
with that id started at another time (the id was reused). A folder without a readable marker, a symlink, or one
whose owner may be alive (a live process, another host, or a system where this cannot be told) is left alone.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any

MARKER = ".model-audit-partial"
_MAX_MARKER_BYTES = 4096


def prefix(out_name: str) -> str:
    return f".{out_name}.partial-"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (Linux /proc), or None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])  # field 22; the name in parentheses may hold spaces
    except (OSError, ValueError, IndexError):
        return None


def owner() -> dict[str, Any]:
    """This process, as a partial folder's marker records it."""
    pid = os.getpid()
    return {"tool": "model-audit", "pid": pid, "host": socket.gethostname(), "boot_id": _boot_id(),
            "start_time": _start_time(pid)}


def create(parent: Path, out_name: str) -> Path:
    """A new, marked partial folder in ``parent``. OSError when it cannot be created."""
    for _ in range(100):
        folder = parent / f"{prefix(out_name)}{secrets.token_hex(6)}"
        try:
            os.mkdir(folder, 0o777)  # the umask applies, as to any folder the user creates
        except FileExistsError:
            continue
        try:
            (folder / MARKER).write_text(json.dumps(owner(), sort_keys=True) + "\n", encoding="utf-8")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder
    raise FileExistsError(f"{parent}: no free name for a partial report folder")


def unmark(folder: Path) -> None:
    """Remove the marker before the folder becomes the report."""
    (folder / MARKER).unlink()


def _read_marker(folder: Path) -> dict[str, Any] | None:
    marker = folder / MARKER
    try:
        if marker.is_symlink() or not marker.is_file() or marker.stat().st_size > _MAX_MARKER_BYTES:
            return None
        doc = json.loads(marker.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("tool") != "model-audit":
        return None
    pid = doc.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(doc.get("host"), str):
        return None
    return doc


def owner_gone(doc: dict[str, Any]) -> bool:
    """Whether the process a marker names has certainly ended (False whenever that cannot be told)."""
    if os.name != "posix" or doc["host"] != socket.gethostname():
        return False
    boot = _boot_id()
    if boot and doc.get("boot_id") and doc["boot_id"] != boot:
        return True  # the machine has restarted since
    pid = doc["pid"]
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, owned by another user
    except OSError:
        return False
    started = doc.get("start_time")
    now = _start_time(pid)
    return isinstance(started, int) and now is not None and now != started  # the id was reused


def sweep(parent: Path, out_name: str) -> list[Path]:
    """Remove the partial folders for ``--out`` named ``out_name`` in ``parent`` that a run which has ended left
    (see the module docstring); the removed folders."""
    removed = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix(out_name))]
    except OSError:
        return removed
    for folder in sorted(candidates):
        if folder.is_symlink() or not folder.is_dir():
            continue
        doc = _read_marker(folder)
        if doc is None or not owner_gone(doc):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed
