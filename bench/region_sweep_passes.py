"""Model passes of the demo's region sweep (issue 32): the images the `region-sweep` rule of `audit demo` edits
and scores, its verdict and its wall time, with the rest of the demo's pack left out.

    .venv/bin/python bench/region_sweep_passes.py [--workdir /tmp/model-audit-demo-bench] [--clean]

Prepares the demo (trains its CNN once per work folder), runs the audit with a pack that holds only the demo's
`region-sweep` rule (as rules/demo.toml sets it), and counts every image that goes through
``ModelProbe.map_over_perturbations`` while the rule runs. Run it on two commits (e.g. in a `git worktree`) to
compare: the count is deterministic for a seed.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit import api
from audit.demo.run import prepare_demo
from audit.engine.probe import ModelProbe
from audit.rules.region.confounder_region import ConfounderRegion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/model-audit-demo-bench"))
    ap.add_argument("--clean", action="store_true", help="the clean twin (trained without the marker)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    work = a.workdir / ("clean" if a.clean else "confounded")
    cfg = work / "audit.toml"
    if not cfg.is_file():
        prepare_demo(work, clean=a.clean)
    demo = tomllib.loads((ROOT / "rules" / "demo.toml").read_text(encoding="utf-8"))
    rule = next(r for r in demo["rule"] if r["id"] == "region-sweep")
    lines = ['[pack]\nname = "region-sweep only"\n\n[[rule]]']
    lines += [f"{k} = {v!r}".replace("True", "true").replace("'", '"') for k, v in rule.items()]
    pack = work / "region-sweep-only.toml"
    pack.write_text("\n".join(lines) + "\n", encoding="utf-8")
    images = {"n": 0, "calls": 0, "model_s": 0.0, "rule_s": 0.0}
    orig = ModelProbe.map_over_perturbations
    check = ConfounderRegion.check

    def counted(self, x, perturb, model=None):
        images["n"] += int(x.shape[0])
        images["calls"] += 1
        t = time.perf_counter()
        try:
            return orig(self, x, perturb, model)
        finally:
            images["model_s"] += time.perf_counter() - t

    def timed(self, evidence):
        t = time.perf_counter()
        try:
            return check(self, evidence)
        finally:
            images["rule_s"] += time.perf_counter() - t

    ModelProbe.map_over_perturbations = counted  # type: ignore[method-assign]
    ConfounderRegion.check = timed  # type: ignore[method-assign]
    t0 = time.perf_counter()
    audit = api.run(cfg, overrides=[f"rules.pack={pack}"])
    wall = time.perf_counter() - t0
    f = next((r for r in audit.result.findings if r.rule == "region-sweep"), None)
    print(f"edited images scored: {images['n']} in {images['calls']} calls; audit wall {wall:.1f} s; the rule "
          f"{images['rule_s']:.1f} s, of which edits and model passes {images['model_s']:.1f} s (attributions not "
          "included in either)")
    if f is not None:
        print(f"status {f.status}, value {f.value}, worst {f.details.get('worst_region')}/"
              f"{f.details.get('worst_class')}, named {f.details.get('named_region', {}).get('key')}")
        print(f.message)


if __name__ == "__main__":
    main()
