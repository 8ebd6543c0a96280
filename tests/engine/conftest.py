"""A local Ray cluster for the engine tests (two CPUs, no dashboard), started once and shut down afterwards, and
the tiny audit set wired to a model that can fail on purpose inside Ray actors (``faulty_model.py``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def ray_cluster():
    """ray.init(num_cpus=2); the Ray engine joins it (ray is in the test extra: no skip when it is missing)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@dataclass(frozen=True)
class FaultySetup:
    root: Path
    config: Path
    flags: Path  # flag files here make the model fail inside Ray actors (see faulty_model.py)
    bad_image: str  # manifest path of an unreadable image (listed last)


@pytest.fixture(scope="session")
def faulty_setup(tmp_path_factory, make_setup, tiny_model) -> FaultySetup:
    """The tiny set of tests/conftest.py (45 images + one unreadable file), the trained tiny CNN as
    ``faulty_model:build``, batches of 4 (12 scoring batches)."""
    root = tmp_path_factory.mktemp("ray-engine") / "tiny"
    setup = make_setup(root, tiny_model, pack="demo")
    shutil.copy(HERE / "faulty_model.py", root / "faulty_model.py")
    flags = root.parent / "flags"
    flags.mkdir()
    text = setup.config.read_text()
    text = text.replace('factory = "audit.demo.model:build"', 'factory = "faulty_model:build"')
    text = text.replace("factory_kwargs = { width = 4 }", f'factory_kwargs = {{ width = 4, flags = "{flags}" }}')
    text = text.replace("batch_size = 16", 'batch_size = 4\non_bad_image = "skip"')
    assert "faulty_model:build" in text and "on_bad_image" in text
    setup.config.write_text(text)
    (root / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with setup.manifest.open("a") as fh:
        fh.write("img/broken.png,left,2,2,10,10,A\n")
    return FaultySetup(root, setup.config, flags, "img/broken.png")
