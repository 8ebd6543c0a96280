"""`audit demo`: which example each ``--task`` builds and how (data with a planted shortcut, a trained or hand-built
model, an audit config); the command line then runs the ordinary audit on that config."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from . import examples
from .family import prepare_family_demo
from .radiograph_run import prepare_radiograph_demo
from .run import prepare_demo
from .weather import prepare_weather_demo

#: task -> the shortcut planted in its example (robustness: the weakness; --clean is the augmented twin)
TASKS = {"multiclass": "corner marker", "multilabel": "site letter", "segmentation": "context stripes",
         "anomaly": "fixture mark", "robustness": "clear-weather training only",
         "family": "corner marker learned by seeds 1 and 3 of four"}
METHODS: tuple[str, ...] = ("gradcam", "gradcam_pp", "guided_gradcam", "saliency", "integrated_gradients",
                            "occlusion", "layer_activations")
PACK = "demo"
GATE_PACK = "demo-gate"  # with a baseline: the demo pack plus the comparison rules


def check_request(task: str, train: bool) -> None:
    """ConfigError naming the option for a task without an example, or --train where nothing is trained."""
    if task not in TASKS:
        raise ConfigError(f"--task: one of {', '.join(TASKS)}; got {task!r}")
    if train and task != "segmentation":
        raise ConfigError("--train: only with --task segmentation (the other demos train already or are "
                          "hand-built with known answers)")


def out_folder(task: str, clean: bool) -> Path:
    """The default report folder: reports/demo[-task][-clean]."""
    return Path("reports/demo" + ("" if task == "multiclass" else f"-{task}") + ("-clean" if clean else ""))


def doing(task: str, clean: bool, train: bool) -> str:
    """What ``prepare`` is about to do, for the console."""
    what = "building data" + (" and training" if task in ("multiclass", "multilabel", "robustness", "family") or train
                              else "")
    return f"{what} ({'clean' if clean else 'with ' + TASKS[task]})"


def prepare(task: str, workdir: Path, *, clean: bool, seed: int, epochs: int | None, train: bool,
            gate: bool) -> Path:
    """Build the example of ``task`` in ``workdir``; the audit config to run. ``gate``: the audit will compare with a
    baseline (the multiclass demo then uses the demo-gate pack, the robustness demo adds a relative-mCE ceiling)."""
    check_request(task, train)
    if task == "segmentation":
        return examples.prepare_segmentation(workdir, clean=clean, trained=True) if train \
            else examples.prepare_segmentation(workdir, clean=clean)
    if task == "anomaly":
        return examples.prepare_inspection(workdir, clean=clean)
    if task == "family":  # one recipe, four seeds, audited as a family beside the released seed-0
        return prepare_family_demo(workdir, clean=clean, seed=seed, epochs=epochs or 8)
    if task == "robustness":
        return prepare_weather_demo(workdir, clean=clean, seed=seed, epochs=epochs or 8, gate=gate)
    if task == "multilabel":
        return prepare_radiograph_demo(workdir, clean=clean, seed=seed, epochs=epochs or 10, methods=METHODS[:2])
    return prepare_demo(workdir, clean=clean, seed=seed, epochs=epochs or 8, methods=METHODS,
                        pack=GATE_PACK if gate else PACK)
