"""Fixtures for the bad-input tests (helpers live in badinput_helpers.py)."""

from __future__ import annotations

import sys

import pytest
from badinput_helpers import FAST, drop_sections


@pytest.fixture()
def fast(tiny):
    """The tiny set-up (45 images, trained CNN, default pack; see tests/conftest.py) with the cheap settings of
    badinput_helpers.FAST."""
    tiny.config.write_text(drop_sections(tiny.config.read_text(), ("views", "cache", "report")) + FAST)
    return tiny


@pytest.fixture()
def fresh_modules():
    """Drop modules imported by a test (factory modules written to tmp) so names never leak between tests."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("badnet_"):
            del sys.modules[name]
