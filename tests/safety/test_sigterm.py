"""SIGTERM (what CI runners and Kubernetes send) ends a run like Ctrl-C: exit 143, one line "terminated (SIGTERM):
no report was written", no traceback, no temporary folder, and an earlier report at --out left as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from badinput_helpers import invoke
from safety_helpers import earlier_report, siblings, snapshot

import audit.report.output
import audit.report.writers.render
from audit.signals import Terminated, sigterm_held, sigterm_raises

MESSAGE = "terminated (SIGTERM): no report was written"

_SCRIPT = """
import sys, time
import audit.runner

def predict(*a, **k):  # the parent sends SIGTERM once this line is printed
    print("scoring", flush=True)
    time.sleep(120)
    raise SystemExit("SIGTERM never arrived")

audit.runner.predict = predict
from audit.cli import main
sys.argv = ["audit", "run", sys.argv[1], "--out", sys.argv[2]]
main()
"""


@pytest.fixture()
def guard():
    """A SIGTERM handler of the test's own, so a SIGTERM the CLI fails to handle cannot kill pytest; the CLI must
    put it back when it returns."""
    seen: list[int] = []

    def handler(signum, frame):
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    yield handler, seen
    signal.signal(signal.SIGTERM, previous)


def test_real_sigterm_while_scoring(fast, tmp_path):
    """SIGTERM from another process (as a CI runner sends it) while the held-out set is scored."""
    out = tmp_path / "report"
    before = earlier_report(out)
    err = tmp_path / "stderr.txt"
    with err.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(fast.config), str(out)], stdout=subprocess.PIPE,
                                stderr=fh, text=True, cwd=Path(__file__).parents[2],
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})
        watchdog = threading.Timer(300, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout.readline().strip() == "scoring", err.read_text()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=120)
        finally:
            watchdog.cancel()
    stderr = err.read_text()
    assert proc.returncode == 143, stderr
    assert MESSAGE in stderr and "Traceback" not in stderr, stderr
    assert snapshot(out) == before
    assert not siblings(out), siblings(out)


@pytest.mark.parametrize("earlier", [False, True], ids=["no-earlier-report", "earlier-report-kept"])
def test_sigterm_while_the_pdf_renders(fast, tmp_path, replay, monkeypatch, guard, earlier):
    """A real SIGTERM to this process, in process: the run command installs the handler and restores ours."""
    ours, seen = guard

    def render_pdf(html, path, variant=None):
        Path(path).write_bytes(b"%PDF-1.7\n% half a PDF")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises Terminated before this returns
        raise AssertionError("SIGTERM was not turned into Terminated")

    monkeypatch.setattr(audit.report.writers.render, "render_pdf", render_pdf)
    out = tmp_path / "report"
    before = earlier_report(out) if earlier else None
    res = invoke("run", fast.config, "--out", out, "--set", 'report.formats=["html", "pdf", "json"]')
    assert res.exit_code == 143, res.output
    assert MESSAGE in res.output and "Traceback" not in res.output
    assert signal.getsignal(signal.SIGTERM) is ours and seen == []
    if earlier:
        assert snapshot(out) == before
    else:
        assert not out.exists()
    assert not siblings(out)


def test_second_sigterm_is_ignored_while_cleaning_up(guard):
    ours, seen = guard
    with sigterm_raises():
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        os.kill(os.getpid(), signal.SIGTERM)  # ignored: the cleanup the first one started must finish
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGTERM) is ours and seen == []


def test_no_handler_outside_the_main_thread(guard):
    ours, _ = guard
    seen_inside = []

    def work():
        with sigterm_raises():
            seen_inside.append(signal.getsignal(signal.SIGTERM))

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen_inside == [ours] and signal.getsignal(signal.SIGTERM) is ours


def test_held_sigterm_is_raised_at_the_check(guard):
    with sigterm_raises(), sigterm_held() as hold:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # recorded, not raised
        with pytest.raises(Terminated):
            hold.check()


def _swap_with_sigterm_after(monkeypatch, tmp_path, which: str):
    """_replace_dir set up to get SIGTERM right after the rename that moves the earlier report aside
    (``which="aside"``) or the one that moves the new report in (``which="commit"``)."""
    src, dst = tmp_path / "new", tmp_path / "report"
    src.mkdir()
    (src / "results.json").write_text('{"new": true}')
    before = earlier_report(dst)
    real = os.replace

    def replace(a, b):
        real(a, b)
        if (which == "aside" and ".report.old-" in str(b)) or (which == "commit" and Path(a) == src):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)

    monkeypatch.setattr(os, "replace", replace)
    return src, dst, before


def test_sigterm_during_the_swap_keeps_the_earlier_report(guard, tmp_path, monkeypatch):
    src, dst, before = _swap_with_sigterm_after(monkeypatch, tmp_path, "aside")
    with sigterm_raises(), pytest.raises(Terminated):
        audit.report.output._replace_dir(src, dst)
    assert snapshot(dst) == before and src.is_dir() and not siblings(dst)


def test_sigterm_after_the_commit_lets_the_swap_finish(guard, tmp_path, monkeypatch):
    src, dst, _ = _swap_with_sigterm_after(monkeypatch, tmp_path, "commit")
    with sigterm_raises():
        audit.report.output._replace_dir(src, dst)
    assert snapshot(dst) == {"results.json": b'{"new": true}'} and not src.exists() and not siblings(dst)


def test_a_forked_worker_ends_as_before(guard):
    """A process forked while the handler is active (a DataLoader worker) dies of SIGTERM, with no traceback."""
    with sigterm_raises():
        pid = os.fork()
        if pid == 0:  # the worker
            time.sleep(30)
            os._exit(0)
        time.sleep(0.2)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
