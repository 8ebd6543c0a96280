"""SIGTERM handled like Ctrl-C: it raises ``Terminated`` in the main thread, so every cleanup path that runs for
KeyboardInterrupt (``except BaseException: remove the partial report``) runs for it too. The CLI maps it to
exit code 143 (128 + SIGTERM), the code a shell reports for a process killed by SIGTERM.

CI runners and Kubernetes send SIGTERM once and SIGKILL after a grace period; only the first SIGTERM raises,
later ones are ignored so the cleanup it started can finish. ``sigterm_held`` defers the signal across the few
file moves that swap a finished report into place.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_TERMINATED = 128 + signal.SIGTERM
MESSAGE = "terminated (SIGTERM): no report was written"


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException like KeyboardInterrupt, so ``except Exception`` does not swallow it."""


class _State:
    installed = False  # our handler is in place
    pid = 0  # the process that installed it (forked workers, e.g. DataLoader's, inherit the handler)
    fired = False  # Terminated was raised once; later SIGTERMs are ignored
    held = 0  # inside sigterm_held: record instead of raising
    pending = False  # a SIGTERM arrived while held


def _handler(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _State.pid:  # a forked worker: end quietly, as it did before this handler existed
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    if _State.fired:
        return
    if _State.held:
        _State.pending = True
        return
    _State.fired = True
    raise Terminated()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While active, SIGTERM raises ``Terminated``; the previous handler is restored afterwards. Does nothing
    outside the main thread (only it may install handlers) or when already active. Usable as a decorator."""
    if _State.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _handler)
    _State.installed, _State.fired, _State.pending, _State.pid = True, False, False, os.getpid()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        _State.installed, _State.fired, _State.pending = False, False, False


class Hold:
    """Handle of ``sigterm_held``: ``check()`` raises ``Terminated`` when a SIGTERM arrived while held."""

    def check(self) -> None:
        if _State.pending and not _State.fired:
            _State.pending, _State.fired = False, True
            raise Terminated()


@contextmanager
def sigterm_held() -> Iterator[Hold]:
    """Within, a SIGTERM is recorded, not raised; ``Hold.check()`` raises it at a safe point (before a commit).
    One that arrives after the last check is dropped: the work it would interrupt is done, and the process ends
    normally moments later. Without ``sigterm_raises`` active this changes nothing."""
    _State.held += 1
    try:
        yield Hold()
    finally:
        _State.held -= 1
        if not _State.held:
            _State.pending = False
