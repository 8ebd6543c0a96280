"""The layers of a TorchScript module, read from its graph: such modules take no hooks, so the layer list cannot be
gathered by hooking a forward pass as for eager models.

Every operation of the inlined graph records the module it ran in (``features(Sequential).0(Conv2d)``); a
module's output is taken to be the last tensor computed inside it. One run of a copy of the graph on the blank
input, returning each operation's tensor as well, gives the real shapes at the configured input size (the same
for traced and scripted modules, and for archives that were saved and loaded, which keep no traced shapes).
This uses TorchScript's graph API (``torch._C``), which the pinned torch version provides; any failure is an
ExplainerError naming it, never a guessed listing."""

from __future__ import annotations

import re

import torch
from torch import nn

from ..errors import ExplainerError

_LEVEL = re.compile(r"([^.()]+)\(([^()]*)\)")


def _outermost_script(model: nn.Module) -> tuple[str, torch.jit.ScriptModule]:
    """The first TorchScript module in the model (the model itself, or the one the output adapter wraps), which
    receives the model's input."""
    for name, m in model.named_modules():
        if isinstance(m, torch.jit.ScriptModule):
            return name, m
    raise ExplainerError("the model holds no TorchScript module")


def _path(node: torch._C.Node, modules: set[str]) -> list[tuple[str, str]]:
    """(dotted module name, type) of each module level the node ran in, outermost first (levels that name no
    submodule, such as an inlined function's ``SELF`` or ``UNKNOWN_INSTANCE``, end the path)."""
    try:
        hierarchy = node.getModuleHierarchy()
    except RuntimeError:
        return []
    out: list[tuple[str, str]] = []
    for attr, kind in _LEVEL.findall(hierarchy or ""):
        name = f"{out[-1][0]}.{attr}" if out else attr
        if name not in modules:
            break
        out.append((name, kind))
    return out


def script_layer_outputs(model: nn.Module, inputs: torch.Tensor) -> list[tuple[str, str, torch.Tensor]]:
    """(name, type, output on ``inputs[:1]``) of every module of the TorchScript model, in the order its last
    operation runs; names are as ``model.named_modules()`` gives them."""
    prefix, script = _outermost_script(model)
    try:
        graph = script.inlined_graph  # a copy: the module's own graph is left untouched
        modules = {n for n, _ in script.named_modules() if n}
        values: list[torch._C.Value] = []
        last: dict[str, tuple[str, int]] = {}
        for node in graph.nodes():
            path = _path(node, modules)
            if not path or node.outputsSize() != 1 or node.output().type().kind() != "TensorType":
                continue
            values.append(node.output())
            for name, kind in reversed(path):  # innermost first: a block finishes after its last layer
                last.pop(name, None)  # re-inserted: the dict keeps the order in which modules finish
                last[name] = (kind, len(values))
        for v in values:
            graph.registerOutput(v)
        graph.makeMultiOutputIntoTuple()
        probe = torch._C._create_function_from_graph("audit_layer_probe", graph)
        with torch.no_grad():
            outs = probe(script._c, inputs[:1])
    except Exception as e:  # noqa: BLE001 - TorchScript's graph API raises RuntimeError and others on odd graphs
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExplainerError(f"cannot read the layers of the TorchScript module from its graph ({first}); give the "
                             "eager model (e.g. model.factory)") from None
    lead = f"{prefix}." if prefix else ""
    return [(lead + name, kind, outs[i]) for name, (kind, i) in last.items() if isinstance(outs[i], torch.Tensor)]
