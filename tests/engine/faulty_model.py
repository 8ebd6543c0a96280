"""The tiny demo CNN, failing on purpose inside Ray actors when a flag file says so (the Ray engine's fault tests).

Copied next to a test's audit config and named there as ``factory = "faulty_model:build"`` with
``factory_kwargs = { flags = "<folder>" }``. Outside a Ray actor (the driver, a local audit) it is the plain demo
CNN. Inside an actor, files in the flag folder act once each (the first process to delete a flag acts on it):

- ``exit-scoring-N``: the process exits on its N-th forward under inference mode (a scoring batch);
- ``exit-explaining``: the process exits on its first forward with gradients enabled (an explainer's pass);
- ``slow-MS``: every forward under inference mode sleeps MS milliseconds (the flag stays).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from audit.demo.model import DemoCNN


def _in_actor() -> bool:
    try:
        import ray

        return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    except Exception:  # noqa: BLE001 - not inside Ray
        return False


def _consume(flag: Path) -> bool:
    try:
        flag.unlink()
    except FileNotFoundError:
        return False
    return True


class FaultyCNN(DemoCNN):
    def __init__(self, flags: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.flags = flags
        self.inference_calls = 0

    def forward(self, x):
        if self.flags and _in_actor():
            folder = Path(self.flags)
            if torch.is_inference_mode_enabled():
                self.inference_calls += 1
                for f in folder.glob("slow-*"):
                    time.sleep(int(f.name.split("-")[1]) / 1000)
                flag = folder / f"exit-scoring-{self.inference_calls}"
                if flag.exists() and _consume(flag):
                    os._exit(1)
            elif torch.is_grad_enabled():
                flag = folder / "exit-explaining"
                if flag.exists() and _consume(flag):
                    os._exit(1)
        return super().forward(x)


def build(num_classes: int = 3, in_channels: int = 1, width: int = 4, flags: str = "") -> FaultyCNN:
    return FaultyCNN(flags=flags, num_classes=num_classes, in_channels=in_channels, width=width)
