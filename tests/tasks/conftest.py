"""Segmentation and inspection sets on disk (the examples' data) for hand-built models whose answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.demo import examples


@pytest.fixture(scope="module")
def seg_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("seg")
    examples.prepare_segmentation(root, clean=True, n=30)
    return root


@pytest.fixture(scope="module")
def parts_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parts")
    examples.prepare_inspection(root, clean=True, n=50)
    return root
