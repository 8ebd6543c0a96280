"""Partial report folders: a run killed while it writes the report (SIGKILL: no handler runs) leaves its marked
``.NAME.partial-*`` folder, which the next run for the same --out removes; folders the tool did not mark, and
those whose owner may still run (a live process, another host), are left alone. Report folders and files follow
the umask."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from badinput_helpers import invoke
from safety_helpers import siblings

from audit.report import partial

_KILLED = """
import os, signal, sys
from pathlib import Path
from audit.report import partial
folder = partial.create(Path(sys.argv[1]), sys.argv[2])
(folder / "results.json").write_text("{}")
print(folder, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_partial(parent: Path, name: str) -> Path:
    """The partial folder of a process killed (SIGKILL) while it wrote the report."""
    res = subprocess.run([sys.executable, "-c", _KILLED, str(parent), name], capture_output=True, text=True,
                         check=False, timeout=60)
    assert res.returncode == -signal.SIGKILL, res.stderr
    folder = Path(res.stdout.strip())
    assert folder.is_dir() and (folder / partial.MARKER).is_file()
    return folder


def marked(parent: Path, name: str, **owner) -> Path:
    """A partial folder whose marker names ``owner`` (this process's fields, with ``owner`` overriding)."""
    folder = partial.create(parent, name)
    (folder / partial.MARKER).write_text(json.dumps({**partial.owner(), **owner}))
    return folder


def test_the_next_run_removes_what_a_killed_run_left(fast, tmp_path, replay):
    out = tmp_path / "out"
    left = killed_partial(tmp_path, "out")
    other = killed_partial(tmp_path, "other")  # another --out's: not this run's business
    res = invoke("run", str(fast.config), "--out", str(out))
    assert res.exit_code in (0, 1), res.output
    assert not left.exists()
    assert other.is_dir()
    assert siblings(out) == []
    assert partial.MARKER not in os.listdir(out)  # the marker never reaches the report


def test_folders_that_may_still_be_in_use_or_are_not_marked_are_left_alone(tmp_path):
    live = marked(tmp_path, "out")  # this process: alive
    elsewhere = marked(tmp_path, "out", host=socket.gethostname() + "-other", pid=2 ** 22 + 1)
    unmarked = tmp_path / ".out.partial-unmarked"
    unmarked.mkdir()
    (unmarked / "results.json").write_text("{}")
    foreign_marker = tmp_path / ".out.partial-foreign"
    foreign_marker.mkdir()
    (foreign_marker / partial.MARKER).write_text("not ours")
    target = tmp_path / "data"
    target.mkdir()
    (target / partial.MARKER).write_text(json.dumps({**partial.owner(), "pid": 2 ** 22 + 1}))
    (tmp_path / ".out.partial-link").symlink_to(target)  # a symlink: never followed, never removed
    linked_marker = tmp_path / ".out.partial-linked-marker"
    linked_marker.mkdir()
    (linked_marker / partial.MARKER).symlink_to(target / partial.MARKER)
    assert partial.sweep(tmp_path, "out") == []
    for p in (live, elsewhere, unmarked, foreign_marker, target, linked_marker):
        assert p.is_dir(), p
    assert (tmp_path / ".out.partial-link").is_symlink()


def test_a_dead_owner_is_told_by_its_id_start_time_and_boot(tmp_path):
    me = partial.owner()
    reused = marked(tmp_path, "out", start_time=(me["start_time"] or 0) + 1)  # this id, another process's start
    rebooted = marked(tmp_path, "out", boot_id="another-boot") if me["boot_id"] else None
    gone = killed_partial(tmp_path, "out")
    removed = set(partial.sweep(tmp_path, "out"))
    assert gone in removed
    if me["start_time"] is not None:  # Linux: /proc tells when a process started
        assert reused in removed
    if rebooted is not None:
        assert rebooted in removed


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_report_folders_and_files_follow_the_umask(fast, tmp_path, replay, umask):
    out = tmp_path / "out"
    previous = os.umask(umask)
    try:
        res = invoke("run", str(fast.config), "--out", str(out))
    finally:
        os.umask(previous)
    assert res.exit_code in (0, 1), res.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f.name
